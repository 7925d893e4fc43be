"""The new-VM form: what virt-install asks with flags, as fields with osinfo defaults."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from vmdash.virt import cloudinit, osinfo
from vmdash.virt.create import HostFacts
from vmdash.virt.names import name_problem
from vmdash.virt.xml.newdomain import Boot, DiskKind, DiskSpec, Firmware, NicSpec, VmSpec

GIB = 1024**3
SOURCES = [
    ("iso", _("Install from an ISO (CD-ROM)")),
    ("import", _("Import an existing disk volume")),
    ("network", _("Network boot (PXE)")),
    ("kernel", _("Direct kernel boot (kernel, initrd, command line)")),
]
BUSES = [("virtio", "virtio"), ("sata", "SATA"), ("scsi", "SCSI"), ("ide", "IDE")]
NIC_MODELS = [
    ("virtio", "virtio"),
    ("e1000e", "e1000e"),
    ("e1000", "e1000"),
    ("rtl8139", "rtl8139"),
]
FIRMWARES = [
    (Firmware.BIOS.value, _("BIOS")),
    (Firmware.UEFI.value, _("UEFI")),
    (Firmware.UEFI_SECURE.value, _("UEFI with Secure Boot")),
]


class NewVmForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    os_id = forms.ChoiceField(label=_("OS variant"))
    source = forms.ChoiceField(label=_("Install source"), choices=SOURCES)
    iso = forms.ChoiceField(label=_("ISO volume"), required=False)
    import_volume = forms.ChoiceField(label=_("Disk volume to import"), required=False)
    kernel = forms.CharField(label=_("Kernel path on the host"), required=False)
    initrd = forms.CharField(label=_("Initrd path on the host"), required=False)
    cmdline = forms.CharField(label=_("Kernel command line"), required=False)
    memory_mib = forms.IntegerField(label=_("Memory (MiB)"), min_value=16)
    vcpus = forms.IntegerField(label=_("vCPUs"), min_value=1, max_value=4096)
    new_disk = forms.BooleanField(label=_("Create a new disk"), required=False)
    disk_pool = forms.ChoiceField(label=_("Pool for the new disk"), required=False)
    disk_gib = forms.IntegerField(label=_("Disk size (GiB)"), min_value=1, required=False)
    disk_format = forms.ChoiceField(
        label=_("Disk format"), choices=[("qcow2", "qcow2"), ("raw", "raw")]
    )
    disk_bus = forms.ChoiceField(label=_("Disk bus"), choices=BUSES)
    network = forms.ChoiceField(label=_("Network"), required=False)
    bridge = forms.CharField(label=_("…or host bridge"), required=False)
    nic_model = forms.ChoiceField(label=_("NIC model"), choices=NIC_MODELS)
    firmware = forms.ChoiceField(label=_("Firmware"), choices=FIRMWARES)
    machine = forms.ChoiceField(label=_("Machine"), choices=[("q35", "q35"), ("pc", "pc (i440fx)")])
    tpm = forms.BooleanField(label=_("Emulated TPM 2.0"), required=False)
    vnc = forms.BooleanField(label=_("VNC graphics"), required=False)
    serial = forms.BooleanField(label=_("Serial console"), required=False)
    autostart = forms.BooleanField(label=_("Start when the host boots"), required=False)
    start = forms.BooleanField(label=_("Start after create"), required=False)
    ci_hostname = forms.CharField(
        label=_("Cloud-init host name"), required=False, max_length=cloudinit.HOSTNAME_MAX,
        help_text=_("Set to add a NoCloud seed ISO (label cidata) as a CD-ROM."),
    )  # fmt: skip
    ci_user = forms.CharField(label=_("Cloud-init user name"), required=False, max_length=32)
    ci_ssh_key = forms.CharField(
        label=_("SSH public key"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    ci_user_data = forms.CharField(
        label=_("Raw user-data (#cloud-config YAML, replaces the above)"), required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
    )  # fmt: skip

    def __init__(
        self, *args: Any, facts: HostFacts, volumes: dict[str, set[str]], **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.facts = facts
        self.fields["os_id"].choices = osinfo.db().choices()  # type: ignore[attr-defined]
        every = sorted(f"{p}/{v}" for p, vs in volumes.items() for v in vs)
        isos = [v for v in every if v.lower().endswith(".iso")]
        self.fields["iso"].choices = [("", "—")] + [(v, v) for v in isos]  # type: ignore[attr-defined]
        self.fields["import_volume"].choices = [("", "—")] + [(v, v) for v in every]  # type: ignore[attr-defined]
        pools = [p.name for p in facts.pools if p.active]
        self.fields["disk_pool"].choices = [(p, p) for p in pools]  # type: ignore[attr-defined]
        nets = [(n, n if up else f"{n} ({_('inactive')})") for n, up in facts.networks]
        self.fields["network"].choices = [("", _("no network")), *nets]  # type: ignore[attr-defined]

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        problem = name_problem(name)
        if problem or "/" in name:
            raise forms.ValidationError(
                _("This name cannot be used: %(why)s.") % {"why": problem or "/"}
            )
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        source = data.get("source")
        if source == "iso" and not data.get("iso"):
            self.add_error("iso", _("Choose the ISO to install from."))
        if source == "import" and not data.get("import_volume"):
            self.add_error("import_volume", _("Choose the disk volume to import."))
        if source == "kernel" and not data.get("kernel"):
            self.add_error("kernel", _("Direct kernel boot needs a kernel path."))
        if data.get("new_disk") and not data.get("disk_gib"):
            self.add_error("disk_gib", _("Give the new disk a size."))
        if data.get("new_disk") and not data.get("disk_pool"):
            self.add_error("disk_pool", _("This host has no active pool for a new disk."))
        self._clean_cloudinit(data)
        return data

    def _clean_cloudinit(self, data: dict[str, Any]) -> None:
        host = data.get("ci_hostname", "").strip()
        others = data.get("ci_user") or data.get("ci_ssh_key") or data.get("ci_user_data")
        if not host and others:
            self.add_error("ci_hostname", _("Cloud-init needs a host name."))
        elif host and cloudinit.hostname_problem(host):
            self.add_error("ci_hostname", _("Letters, digits and '-' only, at most 63."))
        if host and not data.get("disk_pool"):
            self.add_error("ci_hostname", _("The seed ISO needs an active pool."))
        raw = data.get("ci_user_data", "")
        problem = cloudinit.user_data_problem(raw) if raw.strip() else ""
        if problem:
            self.add_error("ci_user_data", problem)

    def _seed(self, name: str) -> tuple[list[DiskSpec], cloudinit.CloudInit | None]:
        d = self.cleaned_data
        host = d.get("ci_hostname", "").strip()
        if not host:
            return [], None
        seed = cloudinit.CloudInit(
            hostname=host, user=d.get("ci_user", "").strip(),
            ssh_key=d.get("ci_ssh_key", "").strip(), user_data=d.get("ci_user_data", "").strip(),
        )  # fmt: skip
        vol = f"{name}-cidata.iso"  # on virtio-scsi: see vmdash.virt.xml.newdomain._disks
        return [DiskSpec(DiskKind.SEED, d["disk_pool"], vol, "scsi", "raw")], seed

    def spec(self) -> VmSpec:
        d = self.cleaned_data
        source = d["source"]
        disks: list[DiskSpec] = []
        if d["new_disk"]:
            ext = d["disk_format"]
            disks.append(
                DiskSpec(
                    DiskKind.NEW, d["disk_pool"], f"{d['name']}.{ext}", d["disk_bus"], ext,
                    capacity=d["disk_gib"] * GIB,
                )
            )  # fmt: skip
        if source == "import":
            pool_name, vol = d["import_volume"].split("/", 1)
            fmt = "raw" if vol.lower().endswith((".raw", ".img")) else "qcow2"
            disks.insert(0, DiskSpec(DiskKind.VOLUME, pool_name, vol, d["disk_bus"], fmt))
        if source == "iso":
            pool_name, vol = d["iso"].split("/", 1)
            bus = "sata" if d["machine"] == "q35" else "ide"
            disks.append(DiskSpec(DiskKind.CDROM, pool_name, vol, bus, "raw"))
        nics: list[NicSpec] = []
        if d.get("bridge"):
            nics.append(NicSpec("bridge", d["bridge"].strip(), d["nic_model"]))
        elif d.get("network"):
            nics.append(NicSpec("network", d["network"], d["nic_model"]))
        boot = {"iso": Boot.CDROM, "import": Boot.HD, "network": Boot.NETWORK}.get(
            source, Boot.KERNEL
        )
        seed_disks, seed = self._seed(d["name"])
        disks += seed_disks
        variant = osinfo.lookup(d["os_id"]) or osinfo.GENERIC
        return VmSpec(
            name=d["name"], os_id=d["os_id"], memory_mib=d["memory_mib"], vcpus=d["vcpus"],
            virt_type=self.facts.virt_type, machine=d["machine"], firmware=Firmware(d["firmware"]),
            tpm=d["tpm"], cpu_mode="host-passthrough" if self.facts.virt_type == "kvm" else "",
            boot=boot, kernel=d.get("kernel", "").strip(), initrd=d.get("initrd", "").strip(),
            cmdline=d.get("cmdline", "").strip(), disks=tuple(disks), nics=tuple(nics),
            vnc=d["vnc"], serial=d["serial"], localtime=variant.windows, cloudinit=seed,
        )  # fmt: skip


def initial_for(os_id: str, facts: HostFacts) -> dict[str, Any]:
    """The form's starting values for an OS variant (osinfo's recommendations)."""
    v = osinfo.lookup(os_id) or osinfo.GENERIC_LINUX
    firmware = Firmware.BIOS
    if v.uefi == "required" and facts.uefi:
        firmware = Firmware.UEFI_SECURE if v.secure_boot and facts.secure_boot else Firmware.UEFI
    active = [n for n, up in facts.networks if up] or [n for n, _up in facts.networks]
    return {
        "os_id": v.id,
        "source": "iso",
        "memory_mib": min(v.memory_mib, facts.memory_mib),
        "vcpus": min(v.vcpus, facts.max_vcpus),
        "new_disk": True,
        "disk_gib": v.disk_gib,
        "disk_format": "qcow2",
        "disk_bus": v.disk_bus,
        "network": "default" if "default" in dict(facts.networks) else (active[:1] or [""])[0],
        "nic_model": v.net_model,
        "firmware": firmware.value,
        "machine": v.machine,
        "tpm": v.tpm and facts.tpm,
        "vnc": True,
        "serial": True,
        "start": True,
    }
