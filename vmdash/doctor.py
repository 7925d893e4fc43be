"""Checks of the machine vmdash runs on: one finding per check, for a person.

`manage.py vmdash_doctor` (and `make doctor`, which `make run` and `make test`
call first) prints them. Each check is a plain function of what it looks at
(a path, a binary name, a URI), so a test can hand it a bad one. libvirtd is
asked through `virsh`, like a person would, so nothing here imports libvirt.
Every check returns within a few seconds: each command has a timeout.
"""

from __future__ import annotations

import enum
import glob
import grp
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _

SYSTEM_URI = "qemu:///system"
KVM_DEVICE = "/dev/kvm"
VIRTLOGD_SOCKET = "/run/libvirt/virtlogd-sock"
SYS_MODULES = "/sys/module"
OVMF_FILES = ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd")


# Where Debian keeps daemons: a non-root PATH often lacks the sbin directories.
def _search_path() -> str:
    """The program search path, with the sbin folders a non-root PATH may lack."""
    return os.pathsep.join([*os.get_exec_path(), "/usr/sbin", "/sbin"])


# A libvirtd with a warm capabilities cache answers domcapabilities in well
# under a second; one that re-probes QEMU on each call needs 4-8 s.
SLOW_CAPS = 2.5
TEST = frozenset({"test"})


class Mode(enum.StrEnum):
    RUN = "run"
    TEST = "test"


class Status(enum.StrEnum):
    OK = "ok"
    NOTE = "note"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    """What one check found; `fix` is the command that repairs a problem."""

    status: Status
    text: str
    fix: str = ""
    needed_for: frozenset[str] = frozenset()

    def breaks(self, mode: Mode) -> bool:
        return self.status is Status.PROBLEM and mode.value in self.needed_for

    def label(self, mode: Mode) -> str:
        if self.status is Status.PROBLEM:
            return "FAIL" if self.breaks(mode) else "warn"
        return self.status.value


def format_line(finding: Finding, mode: Mode) -> str:
    """`  FAIL  what is wrong; fix: the command`, for a person."""
    line = f"  {finding.label(mode):<5} {finding.text}"
    if finding.fix:
        line += _("; fix: %(fix)s") % {"fix": finding.fix}
    return line


def as_root(command: str) -> str:
    """The command as the person must type it: with sudo unless they are root."""
    return command if os.geteuid() == 0 else f"sudo {command}"


def _virsh(virsh: str, uri: str, *args: str, timeout: float = 5.0) -> str | None:
    """virsh's output, or None when it fails, is missing or takes too long."""
    try:
        done = subprocess.run(
            [virsh, "-q", "-c", uri, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def check_libvirtd(uri: str = SYSTEM_URI, virsh: str = "virsh") -> Finding:
    """`virsh uri` only opens a connection: `virsh version` asks QEMU's capabilities,
    which a poisoned cache takes seconds to answer (check_capabilities tells that)."""
    if _virsh(virsh, uri, "uri") is None:
        return Finding(
            Status.PROBLEM,
            _("libvirtd does not answer on %(uri)s (make run shows a demo host instead)")
            % {"uri": uri},
            as_root("scripts/ensure-libvirtd"),
            TEST,
        )
    return Finding(Status.OK, _("libvirtd answers on %(uri)s") % {"uri": uri})


def check_virtlogd(socket_path: str = VIRTLOGD_SOCKET) -> Finding:
    """virtlogd keeps QEMU's console logs; without it no guest starts."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(socket_path)
        except PermissionError:
            return Finding(Status.NOTE, _("virtlogd: not checked, only root may connect"))
        except OSError:
            return Finding(
                Status.PROBLEM,
                _("virtlogd does not answer on %(path)s") % {"path": socket_path},
                as_root("scripts/ensure-libvirtd"),
                TEST,
            )
    return Finding(Status.OK, _("virtlogd answers on %(path)s") % {"path": socket_path})


def _owner(st: os.stat_result) -> str:
    def name(lookup: Callable[[int], object], ident: int) -> str:
        try:
            return str(lookup(ident)[0])  # type: ignore[index]
        except KeyError:
            return str(ident)

    return f"{name(pwd.getpwuid, st.st_uid)}:{name(grp.getgrgid, st.st_gid)}"


def check_kvm_device(path: str = KVM_DEVICE, owner: str = "root", group: str = "kvm") -> Finding:
    """/dev/kvm as Debian's udev rule leaves it: root:kvm 0660.

    Without udev it stays root:root 0600; libvirtd then finds KVM "not
    available now" on every call and re-probes QEMU each time (~50 s a define).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Finding(Status.NOTE, _("%(path)s is absent: guests run under TCG") % {"path": path})
    found = f"{_owner(st)} {stat.S_IMODE(st.st_mode):o}"
    want = f"{owner}:{group} 660"
    if found != want:
        return Finding(
            Status.PROBLEM,
            _("%(path)s is %(found)s, not %(want)s: libvirtd re-probes QEMU on every call")
            % {"path": path, "found": found, "want": want},
            as_root("scripts/ensure-libvirtd"),
            TEST,
        )
    return Finding(Status.OK, _("%(path)s is %(want)s") % {"path": path, "want": want})


def check_accelerator(path: str = KVM_DEVICE, modules: str = SYS_MODULES) -> Finding:
    """Hardware KVM only with kvm_intel/kvm_amd: on others (kvm_pvm) guests die."""
    loaded = sorted(p.name for p in Path(modules).glob("kvm_*"))
    hardware = [m for m in loaded if m in ("kvm_intel", "kvm_amd")]
    if os.path.exists(path) and hardware:
        return Finding(
            Status.OK, _("hardware KVM (%(mods)s): guests use type='kvm'") % {"mods": hardware[0]}
        )
    source = ", ".join(loaded) or _("no kvm module")
    return Finding(
        Status.NOTE,
        _("no hardware KVM (%(source)s): guests run under TCG, type='qemu'") % {"source": source},
    )


def _timed_domcaps(virsh: str, uri: str, slow: float) -> tuple[str | None, float]:
    start = time.monotonic()
    out = _virsh(virsh, uri, "domcapabilities", "--virttype", "qemu", timeout=slow)
    return out, time.monotonic() - start


def check_capabilities(
    uri: str = SYSTEM_URI, virsh: str = "virsh", slow: float = SLOW_CAPS
) -> Finding:
    """Two domcapabilities calls must be quick (a warm cache) and agree."""
    first, took_first = _timed_domcaps(virsh, uri, slow)
    if first is None and took_first < slow:
        return Finding(
            Status.NOTE,
            _("libvirt capabilities: not checked, %(uri)s does not give them") % {"uri": uri},
        )
    second, took_second = _timed_domcaps(virsh, uri, slow)
    if min(took_first, took_second) >= slow:
        return Finding(
            Status.PROBLEM,
            _("libvirtd re-probes QEMU on every call (domcapabilities took over %(s)s s)")
            % {"s": slow},
            as_root("scripts/ensure-libvirtd --restart"),
            TEST,
        )
    if first is not None and second is not None and first != second:
        return Finding(
            Status.PROBLEM,
            _("libvirt's QEMU capabilities change from one call to the next"),
            as_root("scripts/ensure-libvirtd --restart"),
            TEST,
        )
    return Finding(Status.OK, _("libvirt's QEMU capabilities are cached and stable"))


def check_network(uri: str = SYSTEM_URI, name: str = "default", virsh: str = "virsh") -> Finding:
    """The network new VMs plug into; vmdash's own test guest has no NIC."""
    names = _virsh(virsh, uri, "net-list", "--all", "--name")
    if names is None:
        return Finding(Status.NOTE, _("networks: not checked, libvirtd is down"))
    info = _virsh(virsh, uri, "net-info", name) if name in names.split() else None
    if info is None:
        return Finding(
            Status.PROBLEM,
            _("network '%(name)s' is not defined on %(uri)s") % {"name": name, "uri": uri},
            as_root(f"virsh net-define /usr/share/libvirt/networks/{name}.xml"),
        )
    fields = dict(
        (key.strip(), value.strip())
        for key, _sep, value in (line.partition(":") for line in info.splitlines())
    )
    if fields.get("Active") != "yes":
        return Finding(
            Status.PROBLEM,
            _("network '%(name)s' is not active") % {"name": name},
            as_root(f"virsh net-start {name} && virsh net-autostart {name}"),
        )
    bridge = fields.get("Bridge", "?")
    return Finding(
        Status.OK,
        _("network '%(name)s' is active on %(bridge)s") % {"name": name, "bridge": bridge},
    )


def check_binary(name: str, package: str, why: str, needed_for: frozenset[str] = TEST) -> Finding:
    """A program from a Debian package, found on PATH or in the sbin directories."""
    found = shutil.which(name, path=_search_path())
    if found is None:
        return Finding(
            Status.PROBLEM,
            _("%(name)s is missing (%(why)s)") % {"name": name, "why": why},
            as_root(f"apt-get install -y {package}"),
            needed_for,
        )
    return Finding(Status.OK, _("%(name)s: %(path)s") % {"name": name, "path": found})


def check_postgresql(pattern: str = "/usr/lib/postgresql/*/bin/initdb") -> Finding:
    """Debian's PostgreSQL server (its programs are not on PATH): the
    deployment test makes a cluster of its own with initdb."""
    found = sorted(glob.glob(pattern))
    if not found:
        return Finding(
            Status.PROBLEM,
            _("%(name)s is missing (%(why)s)")
            % {"name": "PostgreSQL", "why": _("the deployment test runs a cluster of its own")},
            as_root("apt-get install -y postgresql"),
            TEST,
        )
    return Finding(Status.OK, _("%(name)s: %(path)s") % {"name": "PostgreSQL", "path": found[-1]})


def check_ovmf(files: Sequence[str] = OVMF_FILES) -> Finding:
    """UEFI firmware is optional: without it only BIOS guests are offered."""
    present = [f for f in files if os.path.isfile(f)]
    if present:
        return Finding(Status.OK, _("OVMF (UEFI guests): %(path)s") % {"path": present[0]})
    return Finding(
        Status.NOTE,
        _("OVMF is not installed: BIOS guests only (optional: %(fix)s)")
        % {"fix": as_root("apt-get install -y ovmf")},
    )


def run_checks(uri: str = SYSTEM_URI) -> list[Finding]:
    """Every check, in the order a person reads them."""
    return [
        check_libvirtd(uri),
        check_virtlogd(),
        check_kvm_device(),
        check_accelerator(),
        check_capabilities(uri),
        check_network(uri),
        check_binary(
            "dnsmasq", "dnsmasq-base", _("libvirt networks hand out addresses with it"), frozenset()
        ),
        check_binary("xmllint", "libxml2-utils", _("virt-xml-validate runs it")),
        check_binary("virt-xml-validate", "libvirt-clients", _("tests validate generated XML")),
        check_binary("chromium", "chromium", _("browser tests drive it")),
        check_binary("redis-server", "redis-server", _("events tests start one")),
        check_binary(
            "nginx", "nginx-light", _("the deployment test puts it before two web workers")
        ),
        check_postgresql(),
        check_ovmf(),
    ]
