"""The hook form: a URL vmdash can post to, and events from the fixed list."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from vmdash.hooks.kinds import CHOOSABLE
from vmdash.hooks.models import Hook
from vmdash.virt.xml.tags import tag_problem

HTTP_ONLY = gettext_lazy("Enter an http:// or https:// URL with a host name.")


class HookForm(forms.ModelForm[Hook]):
    # A URL typed without a scheme is taken as https (Django 6's default).
    url = forms.URLField(
        label=gettext_lazy("URL"),
        max_length=500,
        assume_scheme="https",
        error_messages={"invalid": HTTP_ONLY},
        help_text=gettext_lazy("http:// or https://; vmdash posts JSON to it."),
    )
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Events"),
        choices=[(k.value, k.label) for k in CHOOSABLE],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Hook
        fields = ["name", "url", "events", "vm_tag", "pool_threshold", "login_threshold", "enabled"]
        help_texts = {
            "pool_threshold": gettext_lazy("For “Storage pool above its threshold”: percent used."),
            "login_threshold": gettext_lazy(
                "For “Failed logins above the threshold”: failures in a row for one user name."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["url"].widget.attrs["placeholder"] = "https://example.org/vmdash-hook"

    def clean_vm_tag(self) -> str:
        tag = str(self.cleaned_data.get("vm_tag") or "").strip()
        problem = tag_problem(tag) if tag else None
        if problem is not None:
            raise forms.ValidationError(_("Name the tag: %(why)s.") % {"why": problem})
        return tag

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"]).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise forms.ValidationError(HTTP_ONLY, code="scheme")
        if parts.username or parts.password:
            raise forms.ValidationError(
                _("Leave user and password out of the URL; the signature proves the sender."),
                code="credentials",
            )
        return url
