"""Every API operation goes through the door: the token matrix (who by operation).

The operations come from the API's own schema, so an operation added without
a line here fails the test (and one that forgets to ask the door fails the
rows where it must refuse). Asked through the Django test client on libvirt's
test driver (host "demo": VM test, network default, pool default-pool); what
was done is checked with libvirt where it changes something.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from api.urls import api
from domains.models import DomainVersion
from people import tokens
from people.models import ApiToken
from vmdash.access.models import Grant, Role
from vmdash.models import AuditEntry, Host
from vmdash.virt import definition
from vmdash.virt import domains as virt_domains
from vmdash.virt import storage as virt_storage
from vmdash.virt.xml.domain import DomainXML

pytestmark = pytest.mark.django_db

NAMES = {"vms": "test", "networks": "default", "pools": "default-pool"}
OPS = {"vms": "autostart-on", "networks": "autostart-on", "pools": "refresh"}


def operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema(path_prefix="/api/v1")
    return sorted((m.upper(), p) for p, ops in schema["paths"].items() for m in ops)


BODIES = {
    "/snapshots/": {"name": "before-upgrade"},
    # More memory than the test driver's host has; a running VM cloned without a pause.
    "/demo/vms/": {"name": "matrix-vm", "memory_mib": 2**30},
    "/clone/": {"new_name": "matrix-copy"},
    "/disks/vda/": {"bus": "virtio", "cache": "none"},
    "/media/vda/": {"volume": ""},
    "/vms/test/disks/": {"volume": "default-pool/kept.qcow2", "bus": "virtio"},
    "/vms/test/nics/": {"network": "default"},
    "/link/": {"up": True},
    "/nics/aa:bb:cc:dd:ee:ff/": {"kind": "network", "source": "default", "model": "e1000"},
    "/volumes/": {"name": "made.qcow2", "size": "1 MiB"},
    "/size/": {"size": "2 MiB"},
    "/grants/": {"user": "bob", "role": "viewer", "scope": "host", "host": "demo"},
    "/hardware/": {"memory_mib": 2048, "max_memory_mib": 8192, "vcpus": 2, "max_vcpus": 2},
}


def concrete(path: str) -> str:
    kind = next((k for k in NAMES if f"/{k}/{{name}}" in path), "")
    version = DomainVersion.objects.filter(name="test").values_list("pk", flat=True).first()
    return (
        path.replace("{host}", "demo")
        .replace("{name}", NAMES.get(kind, ""))
        .replace("{op}", OPS.get(kind, ""))
        .replace("{snapshot}", "no-such-snapshot")
        .replace("{volume}", "kept.qcow2")
        .replace("{grant}", "0")
        .replace("{target}", "vda")
        .replace("{mac}", "aa:bb:cc:dd:ee:ff")
        .replace("{job}", "no-such-job")
        .replace("{version}", str(version or 0))
    )


# Who may do what: "ok" (2xx), or the refusal. Site-wide lists answer 200
# with only what one may see (checked apart below).
EVERYWHERE = {"/api/v1/me/": "ok", "/api/v1/hosts/": "ok", "/api/v1/vms/": "ok"}
FULL = "ok"


# What even a superuser is told on demo: its disk is raw (no snapshot offered),
# the snapshot and job named do not exist.
REFUSED_TO_ALL = {
    ("POST", "/api/v1/hosts/{host}/vms/{name}/snapshots/"): 400,
    ("POST", "/api/v1/hosts/{host}/vms/{name}/snapshots/{snapshot}/revert/"): 404,
    ("DELETE", "/api/v1/hosts/{host}/vms/{name}/snapshots/{snapshot}/"): 404,
    ("GET", "/api/v1/jobs/{job}/"): 404,
    ("DELETE", "/api/v1/grants/{grant}/"): 404,
    ("POST", "/api/v1/hosts/{host}/vms/"): 400,  # (see BODIES)
    ("POST", "/api/v1/hosts/{host}/vms/{name}/clone/"): 400,
    # The test driver cannot resize or stream volumes (tests/storage does, on libvirtd).
    ("PUT", "/api/v1/hosts/{host}/pools/{name}/volumes/{volume}/size/"): 409,
    ("GET", "/api/v1/hosts/{host}/pools/{name}/volumes/{volume}/content/"): 409,
    ("DELETE", "/api/v1/hosts/{host}/pools/{name}/volumes/{volume}/"): 400,  # no confirm
    # The test driver attaches, detaches and updates no device (409, libvirt's
    # "not supported"; tests/integration does them on libvirtd); vda is no CD-ROM.
    ("POST", "/api/v1/hosts/{host}/vms/{name}/disks/"): 409,
    ("DELETE", "/api/v1/hosts/{host}/vms/{name}/disks/{target}/"): 409,
    ("POST", "/api/v1/hosts/{host}/vms/{name}/nics/"): 409,
    ("DELETE", "/api/v1/hosts/{host}/vms/{name}/nics/{mac}/"): 409,
    ("PUT", "/api/v1/hosts/{host}/vms/{name}/nics/{mac}/link/"): 409,
    ("PUT", "/api/v1/hosts/{host}/vms/{name}/media/{target}/"): 404,
}


def expected(persona: str, method: str, path: str) -> int | str:
    if persona == "nobody":
        return 401
    if persona == "alice":  # superuser, token with all her rights
        return REFUSED_TO_ALL.get((method, path), FULL)
    if path in EVERYWHERE:
        return "ok"
    if path == "/api/v1/jobs/{job}/":
        return 404  # only one's own jobs, and this one does not exist
    if path == "/api/v1/audit/" or path.startswith("/api/v1/grants/"):
        return 403  # site-wide audit and access management: none of these may
    if persona == "bob":  # no grant at all: nothing of demo exists for him
        return 404
    # alice's token narrowed to Viewer on VM test; erin's (Operator on demo)
    # narrowed to Viewer on the site: both may see VM test and do nothing to it.
    if path == "/api/v1/hosts/{host}/vms/":
        return 403  # both see host demo; neither may create on it
    vm_part = "/vms/{name}/" in path
    host_wide = ("/api/v1/hosts/{host}/", "/api/v1/hosts/{host}/stats/")
    if persona == "alice-viewer" and not vm_part and path not in host_wide:
        # networks and pools of demo: the host is seen, its objects are not.
        return "ok" if path.endswith(("/networks/", "/pools/")) else 404
    if method != "GET" or path.endswith(("/xml/", "/console/", "/content/")):
        return 403  # operate, change, snapshot, console, a disk's bytes: not a Viewer's
    if persona == "erin-viewer" and ("/networks/" in path or "/pools/" in path):
        return "ok"  # Viewer on the site sees them
    return "ok"


@pytest.fixture
def demo(db: None) -> Iterator[Host]:
    """The test driver's default world; its state lives as long as this process's
    connection, so what a test makes in its pool goes again after it."""
    host = Host.objects.create(slug="demo", name="Demo", uri="test:///default")
    spec = virt_storage.VolumeSpec("kept.qcow2", virt_storage.VolumeFormat.QCOW2, 1 << 20)
    if "kept.qcow2" not in virt_storage.volume_names(host.ref, "default-pool"):
        virt_storage.create_volume(host.ref, "default-pool", spec)
    yield host
    for name in ("made.qcow2", "kept.qcow2"):
        if name in virt_storage.volume_names(host.ref, "default-pool"):
            virt_storage.delete_volume(host.ref, "default-pool", name, even_in_use=True)


def token(user: User, role: str | None = None, **where: str) -> str:
    row = ApiToken(user=user, name=f"t-{role}", role=Role.objects.get(slug=role) if role else None)
    for field, value in where.items():
        setattr(row, field, value)
    return tokens.issue(row)


@pytest.fixture
def personas(demo: Host, alice: User, bob: User) -> dict[str, dict[str, str]]:
    vm = virt_domains.get_summary(demo.ref, "test")
    erin = User.objects.create_user("erin", password="erin-pw-1")
    Grant.objects.create(
        user=erin, role=Role.objects.get(slug="operator"), scope="host", host="demo"
    )
    raw = {
        "alice": token(alice),
        "bob": token(bob),
        "alice-viewer": token(
            alice, "viewer", scope="vm", host="demo", object_uuid=vm.uuid, object_name="test"
        ),
        "erin-viewer": token(erin, "viewer", scope="site"),
    }
    return {"nobody": {}, **{k: {"HTTP_AUTHORIZATION": f"Bearer {v}"} for k, v in raw.items()}}


def call(method: str, path: str, headers: dict[str, str], admin: dict[str, str]) -> int:
    url = concrete(path)
    body = next((b for end, b in BODIES.items() if url.endswith(end)), None)
    if method == "PUT" and url.endswith("/xml/"):  # the definition as it is: a change of nothing
        body = Client().get(url, **admin).json()
    if method in ("PUT", "POST") and body is not None:
        send = getattr(Client(), method.lower())
        return send(url, body, content_type="application/json", **headers).status_code
    if method == "POST":
        return Client().post(f"{url}?confirm={NAMES['vms']}", **headers).status_code
    if method == "DELETE":
        return Client().delete(url, **headers).status_code
    return Client().get(url, **headers).status_code


@pytest.mark.parametrize("persona", ["nobody", "bob", "alice", "alice-viewer", "erin-viewer"])
def test_every_operation_answers_each_persona_as_the_door_says(persona, personas):
    wrong = []
    for method, path in operations():
        want = expected(persona, method, path)
        got = call(method, path, personas[persona], personas["alice"])
        if (want == "ok" and not 200 <= got < 300) or (want != "ok" and got != want):
            wrong.append(f"{method} {path}: {got}, not {want}")
    assert not wrong, "\n".join(wrong)


def test_the_matrix_knows_every_operation():
    # A new operation must be thought through above; these are the ones there are.
    paths = {p for _m, p in operations()}
    assert all("{host}" not in p or p.startswith("/api/v1/hosts/{host}") for p in paths)
    assert {p for p in paths if "{host}" not in p} == {
        *EVERYWHERE,
        "/api/v1/audit/",
        "/api/v1/jobs/{job}/",
        "/api/v1/grants/",
        "/api/v1/grants/{grant}/",
    }


def test_lists_hold_only_what_one_may_see(personas, demo: Host):
    def get(who: str, url: str) -> object:
        return Client().get(url, **personas[who]).json()

    assert get("bob", "/api/v1/hosts/") == []
    assert get("bob", "/api/v1/vms/")["items"] == []
    assert [h["slug"] for h in get("alice-viewer", "/api/v1/hosts/")] == ["demo"]
    assert [v["name"] for v in get("alice-viewer", "/api/v1/vms/")["items"]] == ["test"]
    assert get("alice-viewer", "/api/v1/hosts/demo/networks/") == []
    assert [p["name"] for p in get("erin-viewer", "/api/v1/hosts/demo/pools/")] == ["default-pool"]


def test_a_narrowed_token_may_not_do_what_its_user_may(personas, demo: Host):
    """erin operates demo's VMs; her Viewer token may not; a token with all her rights may."""
    url = "/api/v1/hosts/demo/vms/test/actions/pause/"
    refused = Client().post(url, **personas["erin-viewer"])
    assert refused.status_code == 403
    assert refused.json()["detail"] == "You may not do this to test."
    assert virt_domains.get_summary(demo.ref, "test").state.value == "running"
    erin = User.objects.get(username="erin")
    full = {"HTTP_AUTHORIZATION": f"Bearer {token(erin)}"}
    done = Client().post(url, **full)
    assert done.status_code == 200, done.content
    assert virt_domains.get_summary(demo.ref, "test").state.value == "paused"  # libvirt says so
    entry = AuditEntry.objects.filter(action="pause").get()
    assert (entry.username, entry.via, entry.outcome) == ("erin", "api", "ok")
    assert Client().post("/api/v1/hosts/demo/vms/test/actions/resume/", **full).status_code == 200


def test_destroying_asks_for_the_name_again(personas, demo: Host):
    url = "/api/v1/hosts/demo/vms/test/actions/force-off/"
    refused = Client().post(url, **personas["alice"])
    assert refused.status_code == 400
    assert "needs confirm=test" in refused.json()["detail"]
    assert virt_domains.get_summary(demo.ref, "test").state.value == "running"


def test_the_browser_session_needs_csrf_for_a_post(alice: User, demo: Host):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.get("/api/v1/hosts/demo/vms/test/").status_code == 200
    refused = browser.post("/api/v1/hosts/demo/vms/test/actions/pause/")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert virt_domains.get_summary(demo.ref, "test").state.value == "running"


def test_a_stale_digest_is_refused_with_409(personas, demo: Host):
    url = "/api/v1/hosts/demo/vms/test/xml/"
    got = Client().get(url, **personas["alice"]).json()
    changed = got["xml"].replace("</domain>", "<description>x</description></domain>")
    first = Client().put(url, {"xml": changed, "digest": got["digest"]},
                         content_type="application/json", **personas["alice"])  # fmt: skip
    assert first.status_code == 200, first.content
    assert "<description>x</description>" in first.json()["diff"].replace("+  ", "")
    again = Client().put(url, {"xml": got["xml"], "digest": got["digest"]},
                         content_type="application/json", **personas["alice"])  # fmt: skip
    assert again.status_code == 409
    assert "changed" in again.json()["detail"]


def test_the_schema_is_openapi_3_and_public_the_docs_page_is_not(as_alice: Client):
    schema = Client().get("/api/schema/")
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["openapi"].startswith("3.")
    assert all(p.startswith("/api/v1/") for p in doc["paths"])
    assert {"Token", "Session"} <= set(doc["components"]["securitySchemes"])
    assert Client().get("/api/docs/").status_code == 302  # to the login
    page = as_alice.get("/api/docs/")
    assert page.status_code == 200
    assert (
        b"ninja/swagger-ui-bundle.js" in page.content
        and b'data-schema-url="/api/schema/"' in page.content
    )


def test_errors_come_in_the_callers_language(personas):
    english = Client().get("/api/v1/hosts/nope/", **personas["alice"]).json()["detail"]
    russian = (
        Client()
        .get("/api/v1/hosts/nope/", HTTP_ACCEPT_LANGUAGE="ru", **personas["alice"])
        .json()["detail"]
    )
    assert english == "There is no host 'nope'."
    assert russian != english and "nope" in russian
    assert any("а" <= ch <= "я" for ch in russian.casefold())


def _finished(headers: dict[str, str], job: dict[str, object]) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = Client().get(f"/api/v1/jobs/{job['id']}/", **headers).json()
    return job


@pytest.mark.django_db(transaction=True)  # the jobs' threads write their audit entries
def test_a_vm_is_created_and_cloned_through_the_api(personas, demo: Host):
    alice = personas["alice"]
    bad = Client().post("/api/v1/hosts/demo/vms/", {"name": "bad/name"},
                        content_type="application/json", **alice)  # fmt: skip
    assert bad.status_code == 400 and "name" in bad.json()["detail"]
    made = Client().post("/api/v1/hosts/demo/vms/", {"name": "api-made", "memory_mib": 256},
                         content_type="application/json", **alice)  # fmt: skip
    assert made.status_code == 200, made.content
    try:
        job = _finished(alice, made.json())
        assert (job["state"], job["made"]) == ("done", "api-made"), job
        found = virt_domains.get_summary(demo.ref, "api-made")  # libvirt has it
        assert found.memory_kib == 256 * 1024
        # Not another person's job: bob is told there is none.
        assert Client().get(f"/api/v1/jobs/{job['id']}/", **personas["bob"]).status_code == 404
        clone = Client().post("/api/v1/hosts/demo/vms/api-made/clone/", {"new_name": "api-copy"},
                              content_type="application/json", **alice)  # fmt: skip
        assert clone.status_code == 200, clone.content
        assert _finished(alice, clone.json())["state"] == "done"
        assert virt_domains.get_summary(demo.ref, "api-copy").memory_kib == 256 * 1024
        entries = AuditEntry.objects.filter(via="api", username="alice")
        assert {("vm-create", "ok"), ("vm-clone", "ok")} <= set(
            entries.values_list("action", "outcome")
        )
    finally:
        for name in ("api-copy", "api-made"):
            Client().post(f"/api/v1/hosts/demo/vms/{name}/actions/delete/?confirm={name}", **alice)


def test_a_disk_and_a_nic_change_through_the_api(personas, demo: Host):
    alice = personas["alice"]
    base = "/api/v1/hosts/demo/vms/test"
    disk = Client().put(f"{base}/disks/vda/", {"bus": "virtio", "cache": "writeback"},
                        content_type="application/json", **alice)  # fmt: skip
    assert disk.status_code == 200, disk.content
    refused = Client().put(f"{base}/disks/vda/", {"bus": "virtio", "io": "native"},
                           content_type="application/json", **alice)  # fmt: skip
    assert refused.status_code == 400 and "Native I/O needs" in refused.json()["detail"]
    nic = Client().put(f"{base}/nics/aa:bb:cc:dd:ee:ff/",
                       {"kind": "bridge", "source": "br-api", "model": "e1000e"},
                       content_type="application/json", **alice)  # fmt: skip
    assert nic.status_code == 200 and nic.json()["applies"] == "next start"
    try:
        doc = DomainXML.parse(definition.read(demo.ref, "test").text)  # the next start's
        (vda,) = [d for d in doc.disks if d.target_dev == "vda"]
        (iface,) = doc.interfaces
        assert (vda.driver_cache, iface.type, iface.source_bridge, iface.model) == (
            "writeback",
            "bridge",
            "br-api",
            "e1000e",
        )  # what libvirt's definition now says
    finally:
        Client().put(f"{base}/disks/vda/", {"bus": "virtio"}, content_type="application/json",
                     **alice)  # fmt: skip
        Client().put(f"{base}/nics/aa:bb:cc:dd:ee:ff/", {"kind": "network", "source": "default"},
                     content_type="application/json", **alice)  # fmt: skip


def test_the_vm_list_carries_titles_as_the_page_does(personas, demo: Host):
    import libvirt

    from vmdash.virt.connection import pool

    dom = pool().get("test:///default").lookupByName("test")
    flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_TITLE, "The lab's web VM", None, None, flags)
    try:
        (row,) = Client().get("/api/v1/vms/", **personas["alice"]).json()["items"]
        assert row["title"] == "The lab's web VM"
    finally:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_TITLE, "", None, None, flags)
