"""Giving a grant: who, which role, where, until when."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from vmdash.access.models import Grant, Role
from vmdash.models import Host
from vmdash.virt.errors import VirtError
from vmdash.virt.names import name_problem
from vmdash.virt.resolve import domain_ref, network_ref, pool_ref
from vmdash.virt.xml.tags import tag_problem

_RESOLVE = {"vm": domain_ref, "pool": pool_ref, "network": network_ref}


class WhereForm(forms.Form):
    """A role on a scope, maybe until a time: what a grant gives and a token is bounded by."""

    role = forms.ModelChoiceField(Role.objects.all(), label=gettext_lazy("Role"))
    scope = forms.ChoiceField(choices=Grant.Scope.choices, label=gettext_lazy("On"))
    host = forms.ModelChoiceField(
        Host.objects.filter(enabled=True),
        required=False,
        to_field_name="slug",
        label=gettext_lazy("Host"),
    )
    object_name = forms.CharField(
        required=False, max_length=255, label=gettext_lazy("Name of the VM, pool or network")
    )
    tag = forms.CharField(
        required=False,
        max_length=40,
        label=gettext_lazy("Tag"),
        help_text=gettext_lazy("For “the VMs with a tag”: every VM of any host carrying it."),
    )
    expires_at = forms.DateTimeField(
        required=False,
        label=gettext_lazy("Ends at"),
        help_text=gettext_lazy(
            "Optional. The grant stops working at this time, open consoles too."
        ),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope, host = data.get("scope"), data.get("host")
        if scope == Grant.Scope.TAG:
            self._tag(data)
        elif scope != Grant.Scope.SITE and host is None:
            self.add_error("host", _("Choose the host."))
        if scope in _RESOLVE and host is not None:
            self._resolve(data, str(scope), host)
        ends = data.get("expires_at")
        if ends is not None and ends <= timezone.now():
            self.add_error("expires_at", _("This time has passed; choose one ahead."))
        return data

    def _tag(self, data: dict[str, Any]) -> None:
        tag = str(data.get("tag") or "").strip()
        problem = tag_problem(tag)
        if problem is not None:
            self.add_error("tag", _("Name the tag: %(why)s.") % {"why": problem})
        data["tag"] = tag

    def _resolve(self, data: dict[str, Any], scope: str, host: Host) -> None:
        name = str(data.get("object_name") or "")
        problem = name_problem(name)
        if problem is not None:
            self.add_error("object_name", _("Name the object: %(why)s.") % {"why": problem})
            return
        try:
            data["ref"] = _RESOLVE[scope](host.ref, name)
        except VirtError as err:
            self.add_error("object_name", str(err))

    def where(self) -> dict[str, Any]:
        """The scope's fields as a Grant (and an ApiToken) keeps them."""
        data = self.cleaned_data
        ref = data.get("ref")
        scope = data["scope"]
        return {
            "scope": scope,
            "host": data["host"].slug if scope not in (Grant.Scope.SITE, Grant.Scope.TAG) else "",
            "tag": data.get("tag", "") if scope == Grant.Scope.TAG else "",
            "object_uuid": ref.uuid if ref is not None else "",
            "object_name": ref.name if ref is not None else "",
        }


class GrantForm(WhereForm):
    user = forms.ModelChoiceField(
        get_user_model().objects.filter(is_active=True),
        required=False,
        label=gettext_lazy("User"),
    )
    group = forms.ModelChoiceField(
        Group.objects.all(), required=False, label=gettext_lazy("or group")
    )
    note = forms.CharField(required=False, max_length=200, label=gettext_lazy("Note"))
    field_order = ["user", "group", "role", "scope", "host", "object_name", "tag", "expires_at"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if bool(data.get("user")) == bool(data.get("group")):
            self.add_error("user", _("Choose a user or a group (one of them)."))
        return data

    def grant(self, by: Any) -> Grant:
        data = self.cleaned_data
        return Grant.objects.create(
            user=data.get("user"),
            group=data.get("group"),
            role=data["role"],
            **self.where(),
            expires_at=data.get("expires_at"),
            note=data.get("note") or "",
            created_by=by,
        )
