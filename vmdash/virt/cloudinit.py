"""A NoCloud seed for cloud-init: an ISO-9660 volume labelled "cidata".

cloud-init's NoCloud datasource looks for a filesystem labelled cidata
holding `meta-data` (instance-id, local-hostname) and `user-data`. vmdash
writes both files in a temporary directory, builds the ISO with Debian's
xorriso (argument list, never a shell), and uploads it into the VM's pool
through libvirt (virStorageVolUpload), so it works on a remote host too.
The text is built from data, never by pasting user input into YAML: values
are JSON-quoted (JSON strings are valid YAML scalars).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from vmdash.virt import storage
from vmdash.virt.errors import InvalidInput, OperationFailed
from vmdash.virt.refs import HostRef, VolumeRef

XORRISO = "xorriso"
LABEL = "cidata"
HOSTNAME_MAX = 63


@dataclass(frozen=True)
class CloudInit:
    hostname: str
    user: str = ""
    ssh_key: str = ""
    user_data: str = ""  # raw #cloud-config; replaces the generated user-data
    instance_id: str = ""


def hostname_problem(name: str) -> str:
    """Why `name` is no valid host name label ("" when it is)."""
    if not name or len(name) > HOSTNAME_MAX:
        return f"a host name has 1 to {HOSTNAME_MAX} characters"
    ok = all(c.isascii() and (c.isalnum() or c == "-") for c in name)
    if not ok or name.startswith("-") or name.endswith("-"):
        return "letters, digits and '-' only, not at either end"
    return ""


def user_data_problem(text: str) -> str:
    """Why raw user-data would not be read by cloud-init ("" when it would)."""
    if not text.lstrip().startswith("#cloud-config"):
        return "user-data must start with the line '#cloud-config'"
    try:
        import yaml  # PyYAML, when installed: the real parse
    except ImportError:
        return ""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        return f"user-data is not valid YAML: {err}"
    if data is not None and not isinstance(data, dict):
        return "user-data must be a YAML mapping (key: value)"
    return ""


def meta_data(seed: CloudInit) -> str:
    iid = seed.instance_id or f"iid-{uuid.uuid4()}"
    return f"instance-id: {json.dumps(iid)}\nlocal-hostname: {json.dumps(seed.hostname)}\n"


def user_data(seed: CloudInit) -> str:
    if seed.user_data:
        return seed.user_data if seed.user_data.endswith("\n") else seed.user_data + "\n"
    lines = ["#cloud-config", f"hostname: {json.dumps(seed.hostname)}"]
    if seed.user:
        lines += ["users:", "  - default", f"  - name: {json.dumps(seed.user)}"]
        lines += ["    shell: /bin/bash", '    sudo: "ALL=(ALL) NOPASSWD:ALL"']
        if seed.ssh_key:
            lines += ["    ssh_authorized_keys:", f"      - {json.dumps(seed.ssh_key.strip())}"]
    elif seed.ssh_key:
        lines += ["ssh_authorized_keys:", f"  - {json.dumps(seed.ssh_key.strip())}"]
    return "\n".join(lines) + "\n"


def check(seed: CloudInit) -> None:
    """InvalidInput for a seed cloud-init would not take."""
    problem = hostname_problem(seed.hostname)
    if problem:
        raise InvalidInput(f"Host name {seed.hostname!r}: {problem}.")
    if seed.user_data:
        problem = user_data_problem(seed.user_data)
        if problem:
            raise InvalidInput(problem)


def build_iso(seed: CloudInit) -> bytes:
    """The seed ISO's bytes (xorriso, Joliet + Rock Ridge, volume id cidata)."""
    check(seed)
    with tempfile.TemporaryDirectory(prefix="vmdash-seed-") as tmp:
        root = Path(tmp, "root")
        root.mkdir()
        (root / "meta-data").write_text(meta_data(seed), encoding="utf-8")
        (root / "user-data").write_text(user_data(seed), encoding="utf-8")
        out = Path(tmp, "seed.iso")
        args = [XORRISO, "-as", "mkisofs", "-quiet", "-V", LABEL, "-J", "-R"]
        args += ["-o", str(out), str(root)]
        try:
            subprocess.run(args, check=True, capture_output=True, timeout=60)
        except FileNotFoundError:
            raise OperationFailed(
                "xorriso is not installed (Debian: apt-get install xorriso)."
            ) from None
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            raise OperationFailed(f"xorriso could not build the seed: {err}") from None
        return out.read_bytes()


def upload_seed(host: HostRef, pool_name: str, name: str, seed: CloudInit) -> VolumeRef:
    """A new volume `name` in the pool holding the seed ISO; VirtError."""
    data = build_iso(seed)
    up = storage.Upload(host, pool_name, name, len(data), new=True)
    up.open()
    try:
        for i in range(0, len(data), 1 << 20):
            up.send(data[i : i + (1 << 20)])
        return up.finish()
    except BaseException:  # any failure, even a cancelled job: no half-written volume
        up.abort()
        raise
