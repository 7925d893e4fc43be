"""A person in Chromium makes a dir pool and a qcow2 volume, uploads a 200 MB file
while the progress bar moves, downloads it back; libvirt and checksums are the judge."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import libvirt
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, login
from tests.storage.conftest import POOL_PREFIX

pytestmark = [pytest.mark.browser, pytest.mark.libvirtd]
SIZE = 200 * 1000 * 1000


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def test_a_person_uploads_and_downloads_a_volume(
    page: Page, server: Server, system_conn: libvirt.virConnect, tmp_path: Path
) -> None:
    name = f"{POOL_PREFIX}{uuid.uuid4().hex[:8]}"
    source = tmp_path / "image.raw"
    with source.open("wb") as f:
        for _ in range(SIZE // (1 << 20)):
            f.write(os.urandom(1 << 20))
        f.write(os.urandom(SIZE % (1 << 20)))
    login(page, server.url)

    page.goto(f"{server.url}/hosts/local/storage/new/")
    page.fill("input[name=name]", name)
    page.fill("input[name=target_path]", str(tmp_path / "pool"))
    page.check("input[name=build]")
    page.click("text=Create and start")
    expect(page.locator("h1")).to_contain_text(name)
    pool = system_conn.storagePoolLookupByName(name)
    assert pool.isActive()

    page.fill("#volume-create input[name=name]", "disk.qcow2")
    page.select_option("#volume-create select[name=format]", "qcow2")
    page.fill("#volume-create input[name=size]", "1 GiB")
    page.click("text=Create volume")
    expect(page.locator('tr[data-volume="disk.qcow2"]')).to_be_visible()
    assert pool.storageVolLookupByName("disk.qcow2").info()[1] == 1 << 30

    page.click("text=Upload a file")
    page.set_input_files("#upload-file", str(source))
    page.fill("#upload-name", "upload.raw")
    page.click("#upload-start")
    seen: set[int] = set()
    deadline = time.monotonic() + 300
    while page.get_attribute("#upload-form", "data-state") == "running":
        seen.add(int(page.eval_on_selector("#upload-bar", "e => e.value")))
        assert time.monotonic() < deadline, "the upload did not end in 5 minutes"
        time.sleep(0.05)
    assert page.get_attribute("#upload-form", "data-state") == "done", page.inner_text(
        "#upload-error"
    )
    assert any(0 < v < 100 for v in seen), seen  # the bar moved
    expect(page.locator("#upload-status")).to_contain_text("uploaded")
    vol = pool.storageVolLookupByName("upload.raw")
    assert vol.info()[1] == SIZE

    page.goto(f"{server.url}/hosts/local/storage/{name}/volumes/upload.raw/")
    with page.expect_download(timeout=120_000) as info:
        page.click("text=Download")
    back = tmp_path / "back.raw"
    info.value.save_as(back)
    assert back.stat().st_size == SIZE
    assert _sha(back) == _sha(source)
