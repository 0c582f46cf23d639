"""Runs the web client's node unit tests (offset conversion, OT cursor placement) in the suite."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

WEB_CLIENT = Path(__file__).resolve().parents[2] / "web_client"


def test_web_client_node_unit_tests_pass():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (WEB_CLIENT / "node_modules").is_dir():
        pytest.fail("web_client/node_modules is missing: run `npm ci` in web_client")
    result = subprocess.run(
        [node, "--test", "test/"], cwd=WEB_CLIENT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
