"""The tiny real test guest: build it and describe it as libvirt domain XML.

The guest (kernel + busybox initramfs, no disks, no NICs) is built by
``scripts/make-test-guest`` and cached outside the repository, in
``$VMDASH_GUEST_DIR`` (default ``/var/cache/vmdash/test-guest``).

Behaviour of the booted guest that tests can rely on:

* ``GUEST_BANNER`` is printed on the serial console (ttyS0) and on the VGA
  console (tty1) about 2.5-3 s after ``start`` under TCG (4.5 s with three
  guests booting at once on 2 CPUs); allow 30 s in tests;
* right after the banner a root shell (``GUEST_PROMPT``) runs on ttyS0 and on
  tty1, respawned if it exits.  A console client that attaches later has
  missed the prompt: send a newline first (or just type the command);
* tty1 is white-on-blue over (nearly) the whole 720x400 VGA text screen, blue
  being RGB (0, 0, 168) in screenshots; screen blanking is disabled;
* an ACPI power-button press (``virDomainShutdown`` / ``virsh shutdown``) powers
  the guest off at once (``GUEST_POWEROFF_BANNER`` on ttyS0) and libvirt reports
  "shut off" ~1-4 s later; but only after the banner (acpid is started just
  before it): a shutdown request sent earlier is silently lost, so wait for the
  banner or re-send the request until the domain is off;
* ``virsh reboot`` works too (ACPI + libvirt fake reboot, same QEMU process);
* ``virsh screenshot`` / ``virDomainScreenshot`` returns PNG (image/png),
  720x400, whatever the output file is called.

Typical use::

    d = ensure_guest()
    xml = guest_domain_xml(
        "vmdash-t-boot",
        kernel=d / "vmlinuz",
        initrd=d / "initrd.img",
        domain_type="kvm" if kvm_usable() else "qemu",
    )
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lxml import etree

REPO_ROOT = Path(__file__).resolve().parent.parent
MAKE_TEST_GUEST = REPO_ROOT / "scripts" / "make-test-guest"
DEFAULT_GUEST_DIR = Path("/var/cache/vmdash/test-guest")

GUEST_BANNER = "VMDASH-TEST-GUEST READY"
GUEST_POWEROFF_BANNER = "VMDASH-TEST-GUEST POWEROFF"
# Printed on ttyS0 and tty1 before GUEST_BANNER when a NoCloud seed (iso9660 labelled
# cidata, a CD-ROM on virtio-scsi or IDE, or a virtio disk) names the host.
GUEST_HOSTNAME_MARKER = "VMDASH-TEST-GUEST HOSTNAME="
GUEST_PROMPT = "vmdash-guest# "
GUEST_CMDLINE = "console=tty0 console=ttyS0,115200n8 quiet"
# RGB of the VGA text-mode blue background (palette entry 1, 6-bit DAC 0x2a).
VGA_BLUE = (0, 0, 168)


def guest_dir() -> Path:
    """Directory holding ``vmlinuz`` and ``initrd.img`` (may not exist yet)."""
    return Path(os.environ.get("VMDASH_GUEST_DIR") or DEFAULT_GUEST_DIR)


def ensure_guest() -> Path:
    """Build the test guest if needed (fast no-op when cached); return its dir."""
    env = dict(os.environ)
    env["VMDASH_GUEST_DIR"] = str(guest_dir())
    subprocess.run(
        [str(MAKE_TEST_GUEST)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    d = guest_dir()
    for name in ("vmlinuz", "initrd.img"):
        if not (d / name).is_file():
            raise RuntimeError(f"{MAKE_TEST_GUEST} did not produce {d / name}")
    return d


def kvm_usable() -> bool:
    """True only if hardware KVM (kvm_intel / kvm_amd) backs /dev/kvm.

    Some hosts expose /dev/kvm from a software nested module (e.g. kvm_pvm) on
    which a stock guest kernel dies under ``type='kvm'``; use TCG there.
    """
    if not os.path.exists("/dev/kvm"):
        return False
    return os.path.isdir("/sys/module/kvm_intel") or os.path.isdir("/sys/module/kvm_amd")


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def guest_domain_xml(
    name: str,
    *,
    kernel: Path,
    initrd: Path,
    domain_type: str = "qemu",
    vnc: bool = True,
    serial: bool = True,
    memory_mib: int = 128,
    title: str | None = None,
    description: str | None = None,
    serial_log: Path | None = None,
) -> str:
    """Domain XML for the test guest (direct kernel boot, no disks, no NICs).

    Keep ``memory_mib`` >= 128: with 64 MiB the guest hangs while booting.
    ``serial=False`` drops both the serial port and the console, so the guest
    has no ttyS0 and the banner/shell are only on the VGA console.
    """
    dom = etree.Element("domain", type=domain_type)
    _sub(dom, "name", name)
    if title is not None:
        _sub(dom, "title", title)
    if description is not None:
        _sub(dom, "description", description)
    _sub(dom, "memory", str(int(memory_mib)), unit="MiB")
    _sub(dom, "currentMemory", str(int(memory_mib)), unit="MiB")
    _sub(dom, "vcpu", "1", placement="static")

    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="pc")
    _sub(os_el, "kernel", str(kernel))
    _sub(os_el, "initrd", str(initrd))
    _sub(os_el, "cmdline", GUEST_CMDLINE)

    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")

    devices = _sub(dom, "devices")
    if serial:
        ser = _sub(devices, "serial", type="pty")
        if serial_log is not None:
            # virtlogd copies everything the guest writes to ttyS0 into this
            # file, so tests can wait for the banner without opening a console.
            _sub(ser, "log", file=str(serial_log), append="off")
        _sub(ser, "target", port="0")
        con = _sub(devices, "console", type="pty")
        _sub(con, "target", type="serial", port="0")
    if vnc:
        _sub(devices, "graphics", type="vnc", port="-1", autoport="yes", listen="127.0.0.1")
    video = _sub(devices, "video")
    _sub(video, "model", type="vga")

    return etree.tostring(dom, encoding="unicode", pretty_print=True)
