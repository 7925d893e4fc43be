"""The second-factor pages: the code after the password, enrolment on /me/,
and the admins' side (reset a user's, require it for a group)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from people import twofactor
from people.forms import CodeForm
from people.views import _audit, _manager, _target
from vmdash.audit import Actor, Outcome, record


def _me(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware sent the others away
    return user


def _refused(request: HttpRequest, user: User, why: str) -> None:
    record(
        Actor.of_request(request), "login-code", None, Outcome.DENIED, why,
        object_type="user", object_name=user.get_username(),
    )  # fmt: skip


@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """The second step of a login whose user has a second factor."""
    user = _me(request)
    if twofactor.pending(request) != twofactor.VERIFY:
        return redirect(twofactor.safe_next(request, request.GET.get("next")))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device, problem = twofactor.check_code(request, user, form.cleaned_data["code"])
        if device is not None:
            twofactor.passed(request, device)
            how = "recovery code" if device.__class__.__name__ == "StaticDevice" else "TOTP"
            _audit(request, "login-code", "user", user.username, how)
            return redirect(twofactor.safe_next(request, request.POST.get("next")))
        _refused(request, user, problem)
        if problem == "locked":  # AxesMiddleware answers with the lockout page
            return HttpResponse(status=403)
        form.add_error("code", _refusal(problem))
    status = 400 if form.is_bound else 200
    context = {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")}
    return render(request, "registration/login_code.html", context, status=status)


def _refusal(problem: str) -> str:
    if problem == "throttled":
        return _("Too many wrong codes in a row: wait a few seconds, then try again.")
    return _("That code is not right (or was used already). Try the next one.")


@require_GET
def me_two_factor(request: HttpRequest) -> HttpResponse:
    """Enrolment (a QR code and its key) or, once enrolled, what is set up."""
    user = _me(request)
    device = twofactor.totp_device(user)
    if device is not None:
        context = {
            "device": device,
            "left": twofactor.recovery_left(user),
            "required": twofactor.required_for(user),
        }
        return render(request, "people/two_factor.html", context)
    return _enrol_page(request, user, CodeForm())


def _enrol_page(
    request: HttpRequest, user: User, form: CodeForm, status: int = 200
) -> HttpResponse:
    fresh = twofactor.new_totp(user)
    context = {
        "form": form,
        "qr": twofactor.qr_data_uri(fresh),
        "secret": twofactor.secret_text(fresh),
        "forced": twofactor.pending(request) == twofactor.ENROL,
        "next": request.GET.get("next", ""),
    }
    response = render(request, "people/two_factor_enrol.html", context, status=status)
    patch_cache_control(response, no_store=True)  # it shows the key
    return response


@require_POST
def me_two_factor_confirm(request: HttpRequest) -> HttpResponse:
    """One code from the app proves it holds the key: the device counts from now on."""
    user = _me(request)
    if twofactor.totp_device(user) is not None:
        return redirect("me-two-factor")
    form = CodeForm(request.POST)
    device = twofactor.new_totp(user)
    if not form.is_valid():
        return _enrol_page(request, user, form, status=400)
    allowed, _info = device.verify_is_allowed()
    if not (allowed and device.verify_token("".join(form.cleaned_data["code"].split()))):
        form.add_error(
            "code",
            _("That code is not right: check the time on your phone.")
            if allowed
            else _refusal("throttled"),
        )
        return _enrol_page(request, user, form, status=400)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = twofactor.new_recovery_codes(user)
    twofactor.passed(request, device)
    _audit(request, "two-factor-enrol", "user", user.username, f"{len(codes)} recovery codes")
    return _codes_once(request, codes, request.POST.get("next", ""))


def _codes_once(request: HttpRequest, codes: list[str], next_url: str = "") -> HttpResponse:
    context = {"codes": codes, "next": twofactor.safe_next(request, next_url)}
    response = render(request, "people/recovery_codes.html", context)
    patch_cache_control(response, no_store=True)
    return response


@require_POST
def me_two_factor_codes(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    if twofactor.totp_device(user) is None or not twofactor.verified(request):
        return redirect("me-two-factor")
    codes = twofactor.new_recovery_codes(user)
    _audit(request, "two-factor-codes", "user", user.username, f"{len(codes)} new recovery codes")
    return _codes_once(request, codes)


@require_POST
def me_two_factor_off(request: HttpRequest) -> HttpResponse:
    """Turn one's own second factor off, unless a group requires it."""
    user = _me(request)
    if not twofactor.verified(request):
        messages.error(request, _("Log in again with a code from your app to change this."))
        return redirect("me-two-factor")
    if twofactor.required_for(user):
        messages.error(request, _("A group of yours requires two-factor login: it stays on."))
        return redirect("me-two-factor")
    twofactor.remove_devices(user)
    _audit(request, "two-factor-off", "user", user.username)
    messages.success(request, _("Two-factor login is off."))
    return redirect("me-two-factor")


@require_POST
def user_two_factor_reset(request: HttpRequest, username: str) -> HttpResponse:
    """An admin forgets a user's second factor (a lost phone): they are logged out
    everywhere, and enrol again at their next login if a group requires it."""
    who = _manager(request)
    user = _target(who, username)
    removed = twofactor.remove_devices(user)
    ended = twofactor.end_sessions(user, "second factor reset")
    if user.pk == who.user_id:
        logout(request)
    _audit(
        request, "two-factor-reset", "user", user.username,
        f"{removed} devices removed, {ended} sessions ended",
    )  # fmt: skip
    messages.success(
        request, _("The second factor of %(name)s is reset.") % {"name": user.username}
    )
    return redirect("user-detail", user.username)


@require_POST
def group_two_factor(request: HttpRequest, pk: int) -> HttpResponse:
    """Require a second factor of the group's members, or stop requiring it."""
    _manager(request)
    group = get_object_or_404(Group, pk=pk)
    required = request.POST.get("required") == "1"
    twofactor.require_for_group(group, required)
    _audit(request, "group-two-factor", "group", group.name, "required" if required else "optional")
    done = (
        _("Members of %(name)s must use two-factor login.")
        if required
        else _("Two-factor login is optional again for members of %(name)s.")
    )
    messages.success(request, done % {"name": group.name})
    return redirect("group-detail", group.pk)
