"""Install the peer servers on demand into a scratch folder (``.bench-peers/``, gitignored).

Node peers (y-websocket's server, Hocuspocus, ShareDB) come from ``package.json`` and
``package-lock.json`` beside this file, installed with ``npm ci --ignore-scripts`` (no native
builds: the optional LevelDB persistence of ``@y/websocket-server`` is not used).
pycrdt-websocket gets its own venv, so its pins never touch Weft's environment.
A stamp file records what was installed; nothing is reinstalled while it matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_SCRATCH = REPO / ".bench-peers"
PYCRDT_REQUIREMENTS = ["pycrdt-websocket==0.16.5", "websockets==17.4"]
NODE_PACKAGES = {
    "y-websocket": "@y/websocket-server",
    "hocuspocus": "@hocuspocus/server",
    "sharedb": "sharedb",
    "ot-text-unicode": "ot-text-unicode",
    "yjs": "yjs",
}
INSTALL_TIMEOUT = 900


class PeerInstallError(RuntimeError):
    """A peer could not be installed; the message says which step failed and why."""


def _stamp(parts: list[bytes]) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerInstallError(f"{' '.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-10:]
        raise PeerInstallError(f"{' '.join(cmd)} exited {proc.returncode}:\n" + "\n".join(tail))


def ensure_node(scratch: Path = DEFAULT_SCRATCH) -> Path:
    """Install the node peers; return their ``node_modules`` folder."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise PeerInstallError("node and npm are needed for the y-websocket, Hocuspocus and "
                               "ShareDB peers")
    dest = scratch / "node"
    files = [HERE / "package.json", HERE / "package-lock.json"]
    stamp = _stamp([f.read_bytes() for f in files if f.exists()])
    modules = dest / "node_modules"
    stamp_file = dest / ".installed"
    if modules.is_dir() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return modules
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        if f.exists():
            shutil.copy2(f, dest / f.name)
    verb = "ci" if (dest / "package-lock.json").exists() else "install"
    _run(["npm", verb, "--no-audit", "--no-fund", "--ignore-scripts"], cwd=dest)
    stamp_file.write_text(stamp)
    return modules


def ensure_pycrdt(scratch: Path = DEFAULT_SCRATCH) -> Path:
    """Create the pycrdt-websocket venv; return its Python interpreter."""
    venv = scratch / "pycrdt-venv"
    python = venv / "bin" / "python"
    stamp = _stamp([r.encode() for r in PYCRDT_REQUIREMENTS])
    stamp_file = venv / ".installed"
    if python.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return python
    scratch.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", "--clear", str(venv)])
    _run([str(python), "-m", "pip", "install", "--quiet", *PYCRDT_REQUIREMENTS])
    stamp_file.write_text(stamp)
    return python


def node_versions(scratch: Path = DEFAULT_SCRATCH) -> dict[str, str]:
    """Installed versions of the node peers (read from their package.json)."""
    out: dict[str, str] = {}
    modules = scratch / "node" / "node_modules"
    for label, package in NODE_PACKAGES.items():
        meta = modules / package / "package.json"
        if meta.exists():
            out[label] = json.loads(meta.read_text())["version"]
    node = shutil.which("node")
    if node:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            out["node"] = subprocess.run([node, "--version"], capture_output=True, text=True,
                                         timeout=10, check=False).stdout.strip()
    return out


def pycrdt_versions(scratch: Path = DEFAULT_SCRATCH) -> dict[str, str]:
    python = scratch / "pycrdt-venv" / "bin" / "python"
    if not python.exists():
        return {}
    code = ("import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
            "('pycrdt-websocket', 'pycrdt', 'websockets')}))")
    try:
        proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                              timeout=30, check=False)
        versions: dict[str, str] = json.loads(proc.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}
    return versions
