"""Forms of the storage pages: what a person types, checked before libvirt sees it."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from vmdash.virt.storage import MAX_VOLUME_BYTES, PoolSpec, VolumeSpec, volume_name_problem
from vmdash.virt.xml.pool import PoolType
from vmdash.virt.xml.volume import VolumeFormat

_SIZE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.I)
# Bare K/M/G/T are binary, as virsh reads them; KB/MB/GB are decimal.
_FACTORS = {
    "": 1, "b": 1, "bytes": 1,
    "k": 2**10, "kib": 2**10, "kb": 10**3,
    "m": 2**20, "mib": 2**20, "mb": 10**6,
    "g": 2**30, "gib": 2**30, "gb": 10**9,
    "t": 2**40, "tib": 2**40, "tb": 10**12,
    "p": 2**50, "pib": 2**50, "pb": 10**15,
    "e": 2**60, "eib": 2**60, "eb": 10**18,
}  # fmt: skip


def parse_size(text: str) -> int:
    """ "10 GiB", "512M", "1.5T", "4096" (bytes) -> bytes; ValidationError otherwise."""
    m = _SIZE.match(text or "")
    if not m or m.group(2).lower() not in _FACTORS:
        raise forms.ValidationError(_("Write a size like 20 GiB, 512 MiB or 4096 (bytes)."))
    size = int(float(m.group(1)) * _FACTORS[m.group(2).lower()])
    if size <= 0:
        raise forms.ValidationError(_("The size must be more than 0."))
    if size >= MAX_VOLUME_BYTES:
        raise forms.ValidationError(_("The size must be less than 1 EiB."))
    return size


class SizeField(forms.CharField):
    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        return parse_size(value) if value not in self.empty_values else None


def check_volume_name(name: str) -> str:
    problem = volume_name_problem(name)
    if problem:
        raise forms.ValidationError(_("This name cannot be used: %(why)s.") % {"why": _(problem)})
    return name


# The fields each pool type asks for; the form shows only these.
POOL_FIELDS: dict[PoolType, tuple[str, ...]] = {
    PoolType.DIR: ("target_path",),
    PoolType.FS: ("source_device", "source_format", "target_path"),
    PoolType.NETFS: ("source_host", "source_dir", "target_path"),
    PoolType.LOGICAL: ("source_name", "source_device"),
    PoolType.DISK: ("source_device", "source_format", "target_path"),
    PoolType.ISCSI: ("source_host", "source_device", "target_path"),
}
REQUIRED: dict[PoolType, tuple[str, ...]] = {
    PoolType.DIR: ("target_path",),
    PoolType.FS: ("source_device", "target_path"),
    PoolType.NETFS: ("source_host", "source_dir", "target_path"),
    PoolType.LOGICAL: ("source_name",),
    PoolType.DISK: ("source_device", "target_path"),
    PoolType.ISCSI: ("source_host", "source_device"),
}
TYPE_LABELS = {
    PoolType.DIR: _l("Directory on the host"),
    PoolType.FS: _l("File system on a block device"),
    PoolType.NETFS: _l("NFS export"),
    PoolType.LOGICAL: _l("LVM volume group"),
    PoolType.DISK: _l("Whole disk (partitions as volumes)"),
    PoolType.ISCSI: _l("iSCSI target"),
}


class PoolForm(forms.Form):
    name = forms.CharField(label=_l("Name"), max_length=255)
    type = forms.ChoiceField(label=_l("Type"), choices=list(TYPE_LABELS.items()))
    target_path = forms.CharField(
        label=_l("Directory on the host where the volumes appear"), required=False
    )
    source_host = forms.CharField(label=_l("Server (name or address)"), required=False)
    source_dir = forms.CharField(label=_l("Exported directory on the server"), required=False)
    source_device = forms.CharField(
        label=_l("Device (e.g. /dev/sdb), or target IQN for iSCSI"), required=False
    )
    source_name = forms.CharField(label=_l("Volume group name"), required=False)
    source_format = forms.CharField(
        label=_l("Format (ext4, xfs…; gpt, dos… for a disk)"), required=False
    )
    autostart = forms.BooleanField(label=_l("Start when the host boots"), required=False)
    build = forms.BooleanField(
        label=_l("Create the directory / file system if missing"), required=False
    )

    def pool_type(self) -> PoolType:
        raw = self.data.get("type") or self.initial.get("type") or PoolType.DIR.value
        try:
            return PoolType(raw)
        except ValueError:
            return PoolType.DIR

    def visible_fields_of_type(self) -> list[forms.BoundField]:
        wanted = POOL_FIELDS[self.pool_type()]
        return [self[n] for n in wanted]

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"])
        problem = volume_name_problem(name)  # the same rule: it becomes a file name too
        if problem:
            raise forms.ValidationError(_("This name cannot be used: %(why)s.") % {"why": problem})
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "type" not in data:
            return data
        for key in REQUIRED[PoolType(data["type"])]:
            if not data.get(key):
                self.add_error(key, _("This type of pool needs it."))
        path = data.get("target_path") or ""
        if path and not path.startswith("/"):
            self.add_error("target_path", _("Write an absolute path, starting with /."))
        return data

    def spec(self) -> PoolSpec:
        d = self.cleaned_data
        t = PoolType(d["type"])
        wanted = POOL_FIELDS[t]
        return PoolSpec(
            name=d["name"],
            type=t,
            autostart=bool(d.get("autostart")),
            build=bool(d.get("build")),
            **{k: d.get(k) or "" for k in wanted},
        )


class VolumeForm(forms.Form):
    name = forms.CharField(label=_l("Name"), max_length=1000)
    format = forms.ChoiceField(
        label=_l("Format"),
        choices=[(VolumeFormat.QCOW2.value, "qcow2"), (VolumeFormat.RAW.value, "raw")],
    )
    size = SizeField(label=_l("Size (e.g. 20 GiB)"))
    preallocate = forms.BooleanField(
        label=_l("Allocate now (raw: all of it; qcow2: its metadata)"), required=False
    )
    backing = forms.ChoiceField(
        label=_l("Backing volume (qcow2 overlay)"), required=False, choices=[("", "—")]
    )

    def __init__(self, *args: Any, backing_choices: list[str] = (), **kw: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kw)
        self.fields["backing"].choices = [("", "—"), *((n, n) for n in backing_choices)]  # type: ignore[attr-defined]

    def clean_name(self) -> str:
        return check_volume_name(str(self.cleaned_data["name"]))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("backing") and data.get("format") != VolumeFormat.QCOW2.value:
            self.add_error("backing", _("Only a qcow2 volume can have a backing volume."))
        return data

    def spec(self) -> VolumeSpec:
        d = self.cleaned_data
        return VolumeSpec(
            d["name"], VolumeFormat(d["format"]), d["size"], bool(d["preallocate"]), d["backing"]
        )


class ResizeForm(forms.Form):
    size = SizeField(label=_l("New size (grow only)"))


class CloneForm(forms.Form):
    new_name = forms.CharField(label=_l("Name of the copy"), max_length=1000)
    target_pool = forms.ChoiceField(label=_l("Into pool"))

    def __init__(self, *args: Any, pools: list[str] = (), **kw: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kw)
        self.fields["target_pool"].choices = [(n, n) for n in pools]  # type: ignore[attr-defined]

    def clean_new_name(self) -> str:
        return check_volume_name(str(self.cleaned_data["new_name"]))


def errors_text(form: forms.Form) -> str:
    """The form's errors in one line, for the audit entry of a refused attempt."""
    return "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items())
