from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings

from vmdash.models import Host
from vmdash.virt.connection import probe
from vmdash.virt.errors import VirtError
from vmdash.virt.hosts import each_host
from vmdash.virt.refs import HostRef

_URI = re.compile(r"^[a-z][a-z0-9+]*:(//[^\s]*)?$")
RESERVED_SLUGS = {"add"}


class HostForm(forms.ModelForm[Host]):
    class Meta:
        model = Host
        fields = ["slug", "name", "uri", "enabled"]

    def clean_slug(self) -> str:
        slug = str(self.cleaned_data["slug"])
        if slug in RESERVED_SLUGS:
            raise forms.ValidationError(f"'{slug}' is reserved; choose another short name.")
        return slug

    def clean_uri(self) -> str:
        uri = str(self.cleaned_data["uri"]).strip()
        if not _URI.match(uri):
            raise forms.ValidationError(
                "This is not a libvirt URI. Examples: qemu:///system, "
                "qemu+ssh://root@lab1/system, qemu+tls://lab1.example.org/system."
            )
        return uri

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        uri = data.get("uri")
        if uri and data.get("enabled"):
            # A host is saved as working only if it answers now; a disabled
            # host may be saved as it is, to be fixed and enabled later.
            ref = HostRef(slug=str(data.get("slug") or "new"), uri=uri)
            result = each_host([ref], lambda h: probe(h.uri), settings.VMDASH_HOST_TIMEOUT)[0]
            if result.error is not None:
                self.add_error("uri", _explain(result.error))
        return data


def _explain(err: VirtError) -> str:
    return (
        f"{err} — check the URI, that libvirtd runs there and that this server may "
        "log in (for qemu+ssh: the SSH key of the user running vmdash). To keep the "
        "host anyway, untick 'enabled'."
    )
