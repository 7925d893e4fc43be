"""First run: hosts from the environment, the first admin, settings readers."""

from __future__ import annotations

import io
import os

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from tests.conftest import TESTNODE_URI
from vmdash.env import envbool, envint
from vmdash.hostsync import parse_hosts
from vmdash.models import Host

pytestmark = pytest.mark.django_db


def setup(settings: object, hosts: str = "", **env: str) -> str:
    settings.VMDASH_HOSTS = hosts  # type: ignore[attr-defined]
    out = io.StringIO()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        call_command("vmdash_setup", stdout=out)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out.getvalue()


def test_it_creates_the_first_admin_once_and_prints_the_password(settings: object) -> None:
    out = setup(settings, f"lab={TESTNODE_URI}")
    password = out.split("password: ")[1].split()[0]
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert "password" not in setup(settings, f"lab={TESTNODE_URI}")
    assert User.objects.count() == 1


def test_the_admin_password_can_come_from_the_environment(settings: object) -> None:
    out = setup(settings, f"lab={TESTNODE_URI}", VMDASH_ADMIN_PASSWORD="s3cret-Pw-x")
    assert "s3cret-Pw-x" not in out
    assert User.objects.get(username="admin").check_password("s3cret-Pw-x")


def test_hosts_come_from_vmdash_hosts(settings: object) -> None:
    setup(settings, f"lab={TESTNODE_URI}, demo=test:///default")
    assert dict(Host.objects.values_list("slug", "uri")) == {
        "lab": TESTNODE_URI,
        "demo": "test:///default",
    }
    setup(settings, "lab=test:///default")
    assert Host.objects.get(slug="lab").uri == "test:///default"


def test_without_hosts_it_adds_the_local_hypervisor_or_the_demo(settings: object) -> None:
    out = setup(settings)
    host = Host.objects.get()
    # qemu:///system when libvirtd answers here, else the test driver.
    assert (host.slug, host.uri) in {("local", "qemu:///system"), ("demo", "test:///default")}
    assert host.uri in out
    setup(settings)
    assert Host.objects.count() == 1


def test_a_malformed_vmdash_hosts_fails_loudly() -> None:
    with pytest.raises(ImproperlyConfigured, match="not 'name=uri'"):
        parse_hosts("qemu:///system")


def test_settings_readers_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL"):
        envbool("X_BOOL")
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_INT"):
        envint("X_INT", 1)
    monkeypatch.setenv("X_BOOL", "yes")
    assert envbool("X_BOOL") is True
