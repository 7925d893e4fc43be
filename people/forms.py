"""Forms of the people pages: users, passwords, groups, and the audit filters."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.models import Group, User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from people import tokens
from people.models import ApiToken
from vmdash.access.forms import WhereForm
from vmdash.models import AuditEntry

RESERVED = {"add"}  # /users/add/ is the form, not a user's page


def generated_password() -> str:
    """A password to hand over once: 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


class PasswordChoice(forms.Form):
    """A password the admin types (twice; Django's validators check it) or a generated one."""

    MODES = [("generate", _("Generate one and show it once")), ("set", _("Type one"))]
    mode = forms.ChoiceField(
        label=_("Password"), choices=MODES, initial="generate", widget=forms.RadioSelect
    )
    password1 = forms.CharField(
        label=_("New password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("The same again"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, user: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") != "set":
            return data
        one, two = data.get("password1") or "", data.get("password2") or ""
        if not one:
            self.add_error("password1", _("Type the new password, or let vmdash generate one."))
        elif one != two:
            self.add_error("password2", _("The two passwords differ."))
        else:
            try:
                password_validation.validate_password(one, self.user)
            except forms.ValidationError as err:
                self.add_error("password1", err)
        return data

    def password(self) -> str:
        """The password to set: the one typed, or a fresh generated one."""
        if self.cleaned_data["mode"] == "set":
            return str(self.cleaned_data["password1"])
        return generated_password()


class UserCreateForm(PasswordChoice):
    username = forms.CharField(
        label=_("User name"),
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text=_("Letters, digits and @ . + - _ only."),
    )
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    groups = forms.ModelMultipleChoiceField(
        label=_("Groups"),
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    superuser = forms.BooleanField(
        label=_("Superuser: may do everything, without grants"), required=False
    )
    field_order = ["username", "first_name", "last_name", "email", "groups", "superuser"]

    def __init__(self, *args: Any, may_make_superusers: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not may_make_superusers:
            del self.fields["superuser"]

    def clean_username(self) -> str:
        name = str(self.cleaned_data["username"])
        if name.lower() in RESERVED:
            raise forms.ValidationError(
                _("%(name)s is a word the pages need."), params={"name": name}
            )
        if User.objects.filter(username__iexact=name).exists():
            raise forms.ValidationError(
                _("There is already a user named %(name)s."), params={"name": name}
            )
        return name

    def clean(self) -> dict[str, Any]:
        # The validators compare the password with the user's name and email.
        d = self.data
        self.user = User(username=d.get("username", ""), email=d.get("email", ""))
        return super().clean()


class MembershipForm(forms.Form):
    groups = forms.ModelMultipleChoiceField(
        label=_("Groups"),
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class GroupForm(forms.Form):
    name = forms.CharField(label=_("Group name"), max_length=150)

    def __init__(self, *args: Any, group: Group | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError(_("A group needs a name."))
        same = Group.objects.filter(name__iexact=name)
        if self.group is not None:
            same = same.exclude(pk=self.group.pk)
        if same.exists():
            raise forms.ValidationError(
                _("There is already a group named %(name)s."), params={"name": name}
            )
        return name


class MembersForm(forms.Form):
    members = forms.ModelMultipleChoiceField(
        label=_("Members"),
        queryset=User.objects.order_by("username"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class AuditFilter(forms.Form):
    """The audit page's filters; the CSV export reads the same ones."""

    q = forms.CharField(label=_("Search"), required=False, max_length=200)
    user = forms.CharField(label=_("User"), required=False, max_length=150)
    object = forms.CharField(label=_("Object"), required=False, max_length=255)
    action = forms.ChoiceField(label=_("Action"), required=False)
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        required=False,
        choices=[("", _("any")), *AuditEntry.Outcome.choices],
    )
    since = forms.DateTimeField(
        label=_("From"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        label=_("Until"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args: Any, actions: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["action"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("any"))] + [(a, a) for a in actions or []]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end is before the start."))
        return data


class CodeForm(forms.Form):
    """A code from the authenticator app (six digits) or a one-time recovery code."""

    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


TOKEN_DAYS = 90  # the default life of a new API token


class TokenForm(WhereForm):
    """A new API token of `user`: a name, an end, and maybe a role on a scope as its bound."""

    name = forms.CharField(
        label=_("Name"), max_length=60, help_text=_("What it is for, e.g. backup script.")
    )
    field_order = ["name", "expires_at", "role", "scope", "host", "object_name", "tag"]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        role = self.fields["role"]
        assert isinstance(role, forms.ModelChoiceField)
        role.required = False
        role.empty_label = _("All my rights")
        role.help_text = _(
            "A token with a role may do only what the role allows on the scope below, "
            "and never more than you may."
        )
        self.fields["scope"].required = False
        self.fields["expires_at"].help_text = _("Empty: it never ends (not advised).")
        self.fields["expires_at"].initial = (
            timezone.localtime() + timedelta(days=TOKEN_DAYS)
        ).strftime("%Y-%m-%dT%H:%M")

    def clean_name(self) -> str:
        name = str(self.cleaned_data.get("name") or "").strip()
        if ApiToken.objects.filter(user=self.user, name=name).exists():
            raise forms.ValidationError(_("You already have a token of this name."))
        return name

    def clean(self) -> dict[str, Any]:
        if self.cleaned_data.get("role") is None:  # all of the user's rights: no scope
            data = forms.Form.clean(self) or {}
            ends = data.get("expires_at")
            if ends is not None and ends <= timezone.now():
                self.add_error("expires_at", _("This time has passed; choose one ahead."))
            return data
        if not self.cleaned_data.get("scope"):
            self.add_error("scope", _("Choose where the role applies."))
            return self.cleaned_data
        return super().clean()

    def save(self) -> tuple[ApiToken, str]:
        """The new token and its whole secret text, to show once."""
        data = self.cleaned_data
        token = ApiToken(
            user=self.user,
            name=data["name"],
            role=data.get("role"),
            expires_at=data.get("expires_at"),
        )
        if token.role is not None:
            for field, value in self.where().items():
                setattr(token, field, value)
        return token, tokens.issue(token)
