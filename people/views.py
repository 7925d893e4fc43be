"""Users and groups in the dashboard, and each person's own page.

Managing people needs Action.MANAGE_ACCESS on the whole site (a Host admin
of one host may not); every change is a POST and leaves an audit entry
(never a password). Only a superuser may make, change the password of, or
deactivate a superuser: else a site-wide access manager could become one.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from people import lockout, twofactor
from people.forms import (
    GroupForm,
    MembersForm,
    MembershipForm,
    PasswordChoice,
    TokenForm,
    UserCreateForm,
)
from people.grants import by_scope, grants_of
from people.models import ApiToken, SecondFactorRequired
from vmdash import door
from vmdash.access.models import Grant
from vmdash.audit import Actor, Outcome, record
from vmdash.models import AuditEntry
from vmdash.policy import Action, Who, require
from vmdash.revoke import rights_changed


def _manager(request: HttpRequest) -> Who:
    who = door.who(request)
    require(who, Action.MANAGE_ACCESS)
    return who


def _target(who: Who, username: str) -> User:
    """The user `username` (404), if `who` may act on them (only superusers act on superusers)."""
    user = get_object_or_404(User, username=door.check_name(username))
    if user.is_superuser and not who.superuser:
        raise PermissionDenied(_("Only a superuser may change a superuser."))
    return user


def _audit(request: HttpRequest, action: str, kind: str, name: str, message: str = "") -> None:
    record(
        Actor.of_request(request), action, None, Outcome.OK, message,
        object_type=kind, object_name=name,
    )  # fmt: skip


def _shown_once(request: HttpRequest, user: User, password: str) -> HttpResponse:
    """The generated password, on a page no cache keeps."""
    response = render(request, "people/password_once.html", {"target": user, "password": password})
    patch_cache_control(response, no_store=True)
    return response


@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    _manager(request)
    users = (
        User.objects.order_by("username")
        .prefetch_related("groups")
        .annotate(n_grants=Count("vmdash_grants", distinct=True))
    )
    return render(
        request, "people/user_list.html", {"users": users, "locked": lockout.locked_names()}
    )


@require_http_methods(["GET", "POST"])
def user_add(request: HttpRequest) -> HttpResponse:
    who = _manager(request)
    form = UserCreateForm(request.POST or None, may_make_superusers=who.superuser)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        password = form.password()
        user = User.objects.create_user(
            d["username"], d["email"], password, first_name=d["first_name"],
            last_name=d["last_name"], is_superuser=bool(d.get("superuser")),
        )  # fmt: skip
        user.groups.set(d["groups"])
        groups = ", ".join(g.name for g in d["groups"]) or "-"
        su = "; superuser" if user.is_superuser else ""
        _audit(request, "user-create", "user", user.username, f"groups: {groups}{su}")
        if d["mode"] == "generate":
            return _shown_once(request, user, password)
        messages.success(request, _("User %(name)s created.") % {"name": user.username})
        return redirect("user-detail", user.username)
    status = 400 if form.is_bound else 200
    return render(request, "people/user_add.html", {"form": form}, status=status)


@require_GET
def user_detail(request: HttpRequest, username: str) -> HttpResponse:
    who = _manager(request)
    user = get_object_or_404(User, username=door.check_name(username))
    return render(request, "people/user_detail.html", _user_context(who, user))


def _user_context(who: Who, user: User, **forms: object) -> dict[str, object]:
    trail = AuditEntry.objects.filter(user_id=user.pk) | AuditEntry.objects.filter(
        object_type="user", object_name=user.username
    )
    return {
        "target": user,
        "blocks": by_scope(grants_of(user)),
        "groups_form": forms.get("groups_form")
        or MembershipForm(initial={"groups": user.groups.all()}),
        "password_form": forms.get("password_form") or PasswordChoice(),
        "entries": trail.order_by("-at", "-id")[:20],
        "failures": lockout.failures(user.username),
        "locked": user.username in lockout.locked_names(),
        "two_factor": twofactor.totp_device(user) is not None,
        "two_factor_required": twofactor.required_for(user),
        "may_change": who.superuser or not user.is_superuser,
        "may_super": who.superuser,
        "tokens": ApiToken.objects.filter(user=user).select_related("role"),
    }


@require_POST
def user_token_revoke(request: HttpRequest, username: str, key: str) -> HttpResponse:
    """An access manager takes back one of a user's API tokens (a lost laptop, a
    script that leaked it); only a superuser does so for a superuser."""
    who = _manager(request)
    user = _target(who, username)
    token = get_object_or_404(ApiToken, user=user, key=key)
    token.delete()
    _audit(request, "token-revoke", "token", f"{user.get_username()}/{token.name}")
    messages.success(request, _("Token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("user-detail", user.get_username())


@require_POST
def user_active(request: HttpRequest, username: str) -> HttpResponse:
    """Deactivate (ends their sessions' sockets through vmdash.revoke) or activate again."""
    who = _manager(request)
    user = _target(who, username)
    if user.is_active and (problem := _cannot_deactivate(who, user)):
        messages.error(request, problem)
        return redirect("user-detail", user.username)
    user.is_active = not user.is_active
    user.save(update_fields=["is_active"])
    action = "user-activate" if user.is_active else "user-deactivate"
    _audit(request, action, "user", user.username)
    done = _("%(name)s may log in again.") if user.is_active else _("%(name)s is deactivated.")
    messages.success(request, done % {"name": user.username})
    return redirect("user-detail", user.username)


def _cannot_deactivate(who: Who, user: User) -> str:
    if user.pk == who.user_id:
        return _("You cannot deactivate yourself.")
    others = User.objects.filter(is_superuser=True, is_active=True).exclude(pk=user.pk)
    if user.is_superuser and not others.exists():
        return _("%(name)s is the last active superuser.") % {"name": user.username}
    return ""


@require_POST
def user_superuser(request: HttpRequest, username: str) -> HttpResponse:
    """Make a superuser or take it back; never from the last active one."""
    who = _manager(request)
    user = _target(who, username)
    if not who.superuser:
        raise PermissionDenied(_("Only a superuser may make or unmake superusers."))
    others = User.objects.filter(is_superuser=True, is_active=True).exclude(pk=user.pk)
    if user.is_superuser and not others.exists():
        messages.error(
            request, _("%(name)s is the last active superuser.") % {"name": user.username}
        )
        return redirect("user-detail", user.username)
    user.is_superuser = not user.is_superuser
    user.save(update_fields=["is_superuser"])
    rights_changed(user.pk, "superuser changed")
    _audit(request, "user-superuser", "user", user.username, "on" if user.is_superuser else "off")
    messages.success(request, _("Saved."))
    return redirect("user-detail", user.username)


@require_POST
def user_password(request: HttpRequest, username: str) -> HttpResponse:
    """A new password set by the admin, or generated and shown once; their sockets close."""
    who = _manager(request)
    user = _target(who, username)
    form = PasswordChoice(request.POST, user=user)
    if not form.is_valid():
        context = _user_context(who, user, password_form=form)
        return render(request, "people/user_detail.html", context, status=400)
    password = form.password()
    user.set_password(password)
    user.save(update_fields=["password"])
    how = "generated" if form.cleaned_data["mode"] == "generate" else "typed by the admin"
    _audit(request, "user-password", "user", user.username, how)
    if form.cleaned_data["mode"] == "generate":
        return _shown_once(request, user, password)
    messages.success(request, _("New password set for %(name)s.") % {"name": user.username})
    return redirect("user-detail", user.username)


@require_POST
def user_unlock(request: HttpRequest, username: str) -> HttpResponse:
    """Forget the failed logins of this user name (django-axes), so it may log in at once."""
    who = _manager(request)
    user = _target(who, username)
    count = lockout.unlock(user.username)
    _audit(request, "user-unlock", "user", user.username, f"{count} failed attempts forgotten")
    messages.success(request, _("%(name)s is unlocked.") % {"name": user.username})
    return redirect("user-detail", user.username)


@require_POST
def user_groups(request: HttpRequest, username: str) -> HttpResponse:
    who = _manager(request)
    user = _target(who, username)
    form = MembershipForm(request.POST)
    if not form.is_valid():
        context = _user_context(who, user, groups_form=form)
        return render(request, "people/user_detail.html", context, status=400)
    before = sorted(user.groups.values_list("name", flat=True))
    user.groups.set(form.cleaned_data["groups"])
    after = sorted(g.name for g in form.cleaned_data["groups"])
    rights_changed(user.pk, "groups changed")
    message = f"{', '.join(before) or '-'} → {', '.join(after) or '-'}"
    _audit(request, "user-groups", "user", user.username, message)
    messages.success(request, _("Groups of %(name)s saved.") % {"name": user.username})
    return redirect("user-detail", user.username)


@require_GET
def group_list(request: HttpRequest) -> HttpResponse:
    _manager(request)
    return _group_list(request, GroupForm())


def _group_list(request: HttpRequest, form: GroupForm, status: int = 200) -> HttpResponse:
    groups = Group.objects.order_by("name").annotate(
        n_members=Count("user", distinct=True), n_grants=Count("vmdash_grants", distinct=True)
    )
    context = {"groups": groups, "form": form}
    return render(request, "people/group_list.html", context, status=status)


@require_POST
def group_add(request: HttpRequest) -> HttpResponse:
    _manager(request)
    form = GroupForm(request.POST)
    if not form.is_valid():
        return _group_list(request, form, status=400)
    group = Group.objects.create(name=form.cleaned_data["name"])
    _audit(request, "group-create", "group", group.name)
    messages.success(request, _("Group %(name)s created.") % {"name": group.name})
    return redirect("group-detail", group.pk)


@require_GET
def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _manager(request)
    group = get_object_or_404(Group, pk=pk)
    return render(request, "people/group_detail.html", _group_context(group))


def _group_context(group: Group, **forms: object) -> dict[str, object]:
    grants = list(Grant.objects.filter(group=group).select_related("role", "group"))
    return {
        "group": group,
        "blocks": by_scope(grants),
        "rename_form": forms.get("rename_form") or GroupForm(initial={"name": group.name}),
        "members_form": forms.get("members_form")
        or MembersForm(initial={"members": group.user_set.all()}),
        "two_factor_required": SecondFactorRequired.objects.filter(group=group).exists(),
    }


@require_POST
def group_rename(request: HttpRequest, pk: int) -> HttpResponse:
    _manager(request)
    group = get_object_or_404(Group, pk=pk)
    form = GroupForm(request.POST, group=group)
    if not form.is_valid():
        context = _group_context(group, rename_form=form)
        return render(request, "people/group_detail.html", context, status=400)
    old, group.name = group.name, form.cleaned_data["name"]
    group.save(update_fields=["name"])
    _audit(request, "group-rename", "group", group.name, f"{old} → {group.name}")
    messages.success(request, _("Group renamed to %(name)s.") % {"name": group.name})
    return redirect("group-detail", group.pk)


@require_POST
def group_members(request: HttpRequest, pk: int) -> HttpResponse:
    who = _manager(request)
    group = get_object_or_404(Group, pk=pk)
    form = MembersForm(request.POST)
    if not form.is_valid():
        context = _group_context(group, members_form=form)
        return render(request, "people/group_detail.html", context, status=400)
    before = set(group.user_set.all())
    after = set(form.cleaned_data["members"])
    if not who.superuser and any(u.is_superuser for u in before ^ after):
        raise PermissionDenied(_("Only a superuser may change a superuser."))
    group.user_set.set(after)
    for user in before ^ after:
        rights_changed(user.pk, "groups changed")
    names = ", ".join(sorted(u.username for u in after)) or "-"
    _audit(request, "group-members", "group", group.name, names)
    messages.success(request, _("Members of %(name)s saved.") % {"name": group.name})
    return redirect("group-detail", group.pk)


@require_POST
def group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """The group and the grants given to it go; its members lose what those grants gave."""
    _manager(request)
    group = get_object_or_404(Group, pk=pk)
    members = list(group.user_set.values_list("pk", flat=True))
    name = group.name
    # The grants go first, while their group still exists: vmdash.access.signals
    # reads grant.group to tell its members' open connections.
    grants, _kinds = Grant.objects.filter(group=group).delete()
    group.delete()
    for user_id in members:
        rights_changed(user_id, "group deleted")
    _audit(request, "group-delete", "group", name, f"{len(members)} members, {grants} grants")
    messages.success(request, _("Group %(name)s deleted.") % {"name": name})
    return redirect("group-list")


@require_GET
def me(request: HttpRequest) -> HttpResponse:
    who = door.who(request)  # every logged-in person; the login middleware sent the others away
    return render(
        request, "people/me.html", _me_context(request, who, PasswordChangeForm(request.user))
    )


def _me_context(
    request: HttpRequest,
    who: Who,
    form: PasswordChangeForm,
    token_form: TokenForm | None = None,
) -> dict[str, object]:
    user = request.user
    assert isinstance(user, User)
    return {
        "who": who,
        "blocks": by_scope(grants_of(user)),
        "form": form,
        "two_factor": twofactor.totp_device(user) is not None,
        "tokens": ApiToken.objects.filter(user=user).select_related("role"),
        "token_form": token_form or TokenForm(user=user),
    }


@require_POST
def me_token_add(request: HttpRequest) -> HttpResponse:
    """A new API token of one's own, shown once on a page no cache keeps."""
    who = door.who(request)
    user = request.user
    assert isinstance(user, User)
    form = TokenForm(request.POST, user=user)
    if not form.is_valid():
        context = _me_context(request, who, PasswordChangeForm(user), token_form=form)
        return render(request, "people/me.html", context, status=400)
    token, secret = form.save()
    _audit(request, "token-add", "token", f"{user.get_username()}/{token.name}")
    response = render(request, "people/token_once.html", {"token": token, "secret": secret})
    patch_cache_control(response, no_store=True)
    return response


@require_POST
def me_token_revoke(request: HttpRequest, key: str) -> HttpResponse:
    door.who(request)
    token = get_object_or_404(ApiToken, user=request.user, key=key)
    token.delete()
    _audit(request, "token-revoke", "token", f"{request.user.get_username()}/{token.name}")
    messages.success(request, _("Token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("me")


@require_POST
def me_password(request: HttpRequest) -> HttpResponse:
    """Django's password change; vmdash.revoke closes the sockets of the other sessions."""
    who = door.who(request)
    form = PasswordChangeForm(request.user, request.POST)
    if not form.is_valid():
        return render(request, "people/me.html", _me_context(request, who, form), status=400)
    user = form.save()
    update_session_auth_hash(request, user)  # this session stays logged in
    _audit(request, "password-change", "user", user.get_username())
    messages.success(request, _("Your password is changed; your other sessions are logged out."))
    return redirect("me")
