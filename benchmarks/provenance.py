"""What produced a set of results: the command, the code, the versions, the machine.

Every figure and table in the report carries this, so a number can always be traced back to
the run that made it (and the run repeated).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.peers import install

REPO = Path(__file__).resolve().parent.parent
PYTHON_PACKAGES = ("pycrdt", "websockets", "orjson", "uvloop", "psutil")


def _git(*args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def collect(argv: list[str], peers: bool) -> dict[str, Any]:
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    versions = {"weft": _version("weft") if _version("weft") != "not installed" else "0.1.0",
                "python": platform.python_version()}
    versions.update({p: _version(p) for p in PYTHON_PACKAGES})
    out: dict[str, Any] = {
        "command": "python -m benchmarks " + shlex.join(argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "git_commit": commit + ("+dirty" if dirty else "") if commit else "unknown",
        "versions": versions,
        "machine": {
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "platform": platform.platform(),
            "loadavg_at_start": list(os.getloadavg()),
        },
        "executable": sys.executable,
    }
    if peers:
        out["peer_versions"] = {**install.node_versions(), **install.pycrdt_versions()}
    return out


def stamp(prov: dict[str, Any]) -> str:
    """One line naming the command, the code and the main versions (for figure captions)."""
    v = prov["versions"]
    parts = [f"`{prov['command']}`", f"weft {v.get('weft')} @ {prov['git_commit']}",
             f"Python {v.get('python')}", f"pycrdt {v.get('pycrdt')}",
             f"websockets {v.get('websockets')}"]
    peers = prov.get("peer_versions") or {}
    if peers:
        parts.append(", ".join(f"{k} {val}" for k, val in sorted(peers.items())))
    parts.append(f"{prov['machine']['cores']} cores")
    return "; ".join(parts)
