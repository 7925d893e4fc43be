"""The production settings of the README pass Django's deployment checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vmdash.settings",
        "VMDASH_DATA_DIR": str(tmp_path),
        "VMDASH_HTTPS": "1",
        "VMDASH_ALLOWED_HOSTS": "vmdash.example.org",
    }
    env.pop("VMDASH_SECRET_KEY", None)  # the generated key in the data dir is strong enough
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout
