"""The doctor: each check names a problem and its fix, and this machine passes.

Each check is handed a bad input of its own (a file with the wrong mode, a
missing program, a URI nobody answers on) and must report a problem with the
command that fixes it. The last tests ask the real libvirtd of this machine.
"""

from __future__ import annotations

import getpass
import grp
import os
import socket
import stat
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from vmdash import doctor
from vmdash.doctor import Finding, Mode, Status

NOBODY_URI = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"


def _device(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "kvm"
    path.touch()
    path.chmod(mode)
    return path


def _program(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def _my_group() -> str:
    return grp.getgrgid(os.getegid()).gr_name


def test_it_reports_a_kvm_device_left_root_only_and_how_to_fix_it(tmp_path: Path) -> None:
    path = _device(tmp_path, 0o600)
    found = doctor.check_kvm_device(str(path), owner=getpass.getuser(), group=_my_group())
    assert found.status is Status.PROBLEM
    assert "scripts/ensure-libvirtd" in found.fix
    assert found.breaks(Mode.TEST)
    assert not found.breaks(Mode.RUN)


def test_it_accepts_a_kvm_device_as_udev_leaves_it(tmp_path: Path) -> None:
    path = _device(tmp_path, 0o660)
    found = doctor.check_kvm_device(str(path), owner=getpass.getuser(), group=_my_group())
    assert found.status is Status.OK


def test_it_rejects_a_kvm_device_of_another_group(tmp_path: Path) -> None:
    path = _device(tmp_path, 0o660)
    found = doctor.check_kvm_device(str(path), owner=getpass.getuser(), group="vmdash-no-group")
    assert found.status is Status.PROBLEM


def test_it_notes_tcg_when_there_is_no_kvm_device(tmp_path: Path) -> None:
    found = doctor.check_kvm_device(str(tmp_path / "absent"))
    assert found.status is Status.NOTE
    assert not found.breaks(Mode.TEST)


def test_it_uses_hardware_kvm_only_with_kvm_intel_or_kvm_amd(tmp_path: Path) -> None:
    device = _device(tmp_path, 0o660)
    modules = tmp_path / "module"
    (modules / "kvm").mkdir(parents=True)
    (modules / "kvm_pvm").mkdir()
    assert doctor.check_accelerator(str(device), str(modules)).status is Status.NOTE
    (modules / "kvm_amd").mkdir()
    assert doctor.check_accelerator(str(device), str(modules)).status is Status.OK
    assert doctor.check_accelerator(str(tmp_path / "absent"), str(modules)).status is Status.NOTE


def test_it_reports_a_missing_program_with_the_package_to_install() -> None:
    found = doctor.check_binary("vmdash-no-such-program", "vmdash-pkg", "for a test")
    assert found.status is Status.PROBLEM
    assert found.fix.endswith("apt-get install -y vmdash-pkg")
    assert found.breaks(Mode.TEST)


def test_it_only_warns_about_an_optional_program() -> None:
    found = doctor.check_binary("vmdash-no-such-program", "vmdash-pkg", "optional", frozenset())
    assert found.label(Mode.TEST) == "warn"


def test_it_finds_a_program_in_sbin_even_when_path_lacks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert doctor.check_binary("dnsmasq", "dnsmasq-base", "dnsmasq").status is Status.OK


def test_it_reports_libvirtd_down_when_nobody_answers() -> None:
    found = doctor.check_libvirtd(NOBODY_URI)
    assert found.status is Status.PROBLEM
    assert found.breaks(Mode.TEST)
    assert not found.breaks(Mode.RUN)


def test_it_does_not_judge_capabilities_or_networks_of_a_host_that_is_down() -> None:
    assert doctor.check_capabilities(NOBODY_URI).status is Status.NOTE
    assert doctor.check_network(NOBODY_URI).status is Status.NOTE


def test_it_reports_a_capabilities_answer_that_is_slow_every_time(tmp_path: Path) -> None:
    slow_virsh = _program(tmp_path, "virsh", "sleep 1; echo '<domainCapabilities/>'")
    found = doctor.check_capabilities("qemu:///system", virsh=slow_virsh, slow=0.3)
    assert found.status is Status.PROBLEM
    assert found.fix.endswith("scripts/ensure-libvirtd --restart")


def test_it_reports_capabilities_that_change_between_calls(tmp_path: Path) -> None:
    fickle_virsh = _program(tmp_path, "virsh", "date +%N")
    found = doctor.check_capabilities("qemu:///system", virsh=fickle_virsh)
    assert found.status is Status.PROBLEM


def test_it_reports_virtlogd_down_on_a_socket_nobody_listens_on(tmp_path: Path) -> None:
    found = doctor.check_virtlogd(str(tmp_path / "virtlogd-sock"))
    assert found.status is Status.PROBLEM
    assert found.breaks(Mode.TEST)


def test_it_finds_virtlogd_on_a_socket_that_answers(tmp_path: Path) -> None:
    path = tmp_path / "virtlogd-sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert doctor.check_virtlogd(str(path)).status is Status.OK


def test_it_finds_the_default_network_of_the_test_driver() -> None:
    assert doctor.check_network("test:///default").status is Status.OK
    missing = doctor.check_network("test:///default", name="vmdash-t-absent")
    assert missing.status is Status.PROBLEM
    assert missing.fix
    assert not missing.breaks(Mode.TEST)


def test_it_notes_ovmf_as_optional(tmp_path: Path) -> None:
    assert doctor.check_ovmf([str(tmp_path / "absent.fd")]).status is Status.NOTE
    firmware = tmp_path / "OVMF_CODE.fd"
    firmware.touch()
    assert doctor.check_ovmf([str(firmware)]).status is Status.OK


def test_it_lets_make_run_start_when_libvirtd_is_down() -> None:
    findings = doctor.run_checks(NOBODY_URI)
    assert any(f.status is Status.PROBLEM for f in findings)
    assert not any(f.breaks(Mode.RUN) for f in findings)


def test_it_prints_a_problem_and_its_fix_on_one_line() -> None:
    problem = Finding(Status.PROBLEM, "xmllint is missing", "apt-get install -y x", doctor.TEST)
    assert doctor.format_line(problem, Mode.TEST) == (
        "  FAIL  xmllint is missing; fix: apt-get install -y x"
    )
    assert doctor.format_line(problem, Mode.RUN).startswith("  warn  ")


def test_it_fails_make_test_but_not_make_run_when_libvirtd_is_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(CommandError):
        call_command("vmdash_doctor", "--for=test", f"--uri={NOBODY_URI}")
    assert "FAIL  " in capsys.readouterr().out
    call_command("vmdash_doctor", "--for=run", f"--uri={NOBODY_URI}")
    assert "warn  " in capsys.readouterr().out


@pytest.mark.libvirtd
def test_it_finds_this_machine_ready_for_make_test(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("vmdash_doctor", "--for=test")
    out = capsys.readouterr().out
    assert "FAIL" not in out, out
