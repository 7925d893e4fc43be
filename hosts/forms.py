"""The host forms: every URI passes the one rule, an enabled host must answer."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _

from vmdash.models import Host
from vmdash.virt.connection import probe
from vmdash.virt.errors import VirtError
from vmdash.virt.uris import DEMO_URI, check_uri

RESERVED_SLUGS = {"add"}


class HostUriForm(forms.ModelForm[Host]):
    """The URI rule alone (the Django admin): nothing is contacted."""

    class Meta:
        model = Host
        fields = ["slug", "name", "uri", "enabled"]

    def clean_slug(self) -> str:
        slug = str(self.cleaned_data["slug"])
        if slug in RESERVED_SLUGS:
            raise forms.ValidationError(
                _("'%(slug)s' is reserved; choose another short name.") % {"slug": slug}
            )
        return slug

    def clean_uri(self) -> str:
        # The demo host keeps its URI when edited; nobody types test:///default in.
        keeps_demo = bool(self.instance.pk) and self.instance.uri == DEMO_URI
        try:
            return check_uri(str(self.cleaned_data["uri"]), allow_demo=keeps_demo)
        except VirtError as err:
            raise forms.ValidationError(str(err), code="refused") from None

    @property
    def refused(self) -> bool:
        """Did the URI rule refuse the URI (an attack or a typo, not a host that is down)?"""
        return any(e.code == "refused" for e in self.errors.as_data().get("uri", []))


class HostForm(HostUriForm):
    """The dashboard's form: an enabled host is saved only if it answers now."""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        uri = data.get("uri")
        # A disabled host may be saved as it is, to be fixed and enabled later.
        if uri and data.get("enabled") and (reason := probe_error(uri)) is not None:
            self.add_error("uri", reason)
        return data


def probe_error(uri: str) -> str | None:
    """Why `uri` cannot be used now (the pool's bounded open), or None if it answers."""
    try:
        probe(uri)
    except VirtError as err:
        return _(
            "%(error)s — check the URI, that libvirtd runs there and that this server may "
            "log in (for qemu+ssh: the SSH key of the user running vmdash). To keep the "
            "host anyway, untick 'enabled'."
        ) % {"error": err}
    return None
