"""The servers the live suite drives: Weft's two engines and the peers, started as processes.

Every target is a fresh process on a free loopback port, with its output in a log file; the
harness knows its pids (for CPU and memory) and its endpoints (for the load generator).  A
target with several endpoints is a cluster of replicas: the generator spreads editors over
them, so the same scenarios measure cross-replica latency once Weft has ``--redis``.

Multi-replica hook: :func:`start_weft` with ``replicas > 1`` starts a Redis server of its own
(``redis-server`` on a free port, no persistence) and that many ``weft serve --redis URL``
processes.  It refuses with a clear message while ``weft serve`` has no ``--redis`` flag.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.live.plan import Endpoint
from benchmarks.peers import install

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
PEERS_DIR = Path(__file__).resolve().parent.parent / "peers"


class TargetError(RuntimeError):
    """A server under test could not be started (the message names it and says why)."""


@dataclass
class Running:
    """A started target: its processes, endpoints and log files; ``stop()`` ends them."""

    name: str
    procs: list[subprocess.Popen[bytes]]
    endpoints: tuple[Endpoint, ...]
    logs: list[Path]
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    helper_pids: list[int] = field(default_factory=list)  # e.g. Redis: measured apart

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for cleanup in self.cleanups:
            with contextlib.suppress(Exception):
                cleanup()

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for log in self.logs:
            with contextlib.suppress(OSError):
                out.extend(log.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(out)


@dataclass(frozen=True)
class Target:
    """How to start one server under test."""

    name: str  # "weft-crdt", "weft-ot", "y-websocket", "hocuspocus", "sharedb", ...
    engine: str  # "crdt" or "ot"
    protocol: str  # "yws", "hocuspocus" or "sharedb"
    family: str  # "weft", "peer" or "floor" (the reference relay, never a "best peer")
    start: Callable[[Path, int], Running]  # (log dir, replicas) -> Running
    setup: str = ""  # how it runs (one process), for the report
    durability: str = ""  # what an acknowledged or relayed edit survives, for the report

    def describe(self, replicas: int) -> str:
        """How it runs with ``replicas`` servers: Weft replicas store in Redis, not SQLite."""
        if self.family == "weft" and replicas > 1 and self.setup.startswith(WEFT_SETUP):
            return weft_replica_setup(replicas) + self.setup[len(WEFT_SETUP):]
        return self.setup


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(proc: subprocess.Popen[bytes], port: int, name: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise TargetError(f"{name} exited with {proc.returncode} while starting:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    proc.kill()
    raise TargetError(f"{name} did not listen on {HOST}:{port} within {START_TIMEOUT:.0f} s")


def _spawn(name: str, cmd: list[str], port: int, log_dir: Path,
           env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})})
    _wait_listening(proc, port, name, log)
    return proc, log


# -- Weft --------------------------------------------------------------------------------------
def _weft_cmd(port: int, data_dir: Path, redis_url: str | None = None,
              extra: tuple[str, ...] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "server", "serve", "--host", HOST, "--port", str(port),
           "--data-dir", str(data_dir), "--max-ops-per-second", "0", "--log-level", "warning",
           *extra]
    if redis_url:
        cmd += ["--redis", redis_url]
    return cmd


def _weft_supports_redis() -> bool:
    try:
        out = subprocess.run([sys.executable, "-m", "server", "serve", "--help"],
                             capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--redis" in out


def start_weft(engine: str, log_dir: Path, replicas: int = 1, extra: tuple[str, ...] = (),
               name: str = "") -> Running:
    """``weft serve`` with the embedded SQLite store in a temporary data dir, rate limit off.

    ``extra`` is appended to every replica's command line (e.g. ``--sqlite-synchronous``)."""
    name = name or f"weft-{engine}"
    tmp = Path(tempfile.mkdtemp(prefix="weft-bench-"))
    protocol, prefix = ("yws", "/crdt/") if engine == "crdt" else ("sharedb", "/ot")
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    cleanups: list[Callable[[], None]] = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    helper_pids: list[int] = []
    redis_url = None
    try:
        if replicas > 1:
            if not _weft_supports_redis():
                raise TargetError("multi-replica runs need `weft serve --redis URL`, which this "
                                  "server does not have yet (hook: benchmarks/live/targets.py)")
            redis_proc, redis_url = _start_redis(log_dir)
            helper_pids.append(redis_proc.pid)
            cleanups.append(lambda: _end(redis_proc))
        endpoints = []
        for i in range(replicas):
            port = free_port()
            proc, log = _spawn(f"{name}-{i}", _weft_cmd(port, tmp / f"r{i}", redis_url, extra),
                               port, log_dir)
            procs.append(proc)
            logs.append(log)
            endpoints.append(Endpoint(HOST, port, protocol, prefix))
    except BaseException:
        Running(name, procs, (), logs, cleanups).stop()
        raise
    return Running(name, procs, tuple(endpoints), logs, cleanups, helper_pids)


def _end(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _start_redis(log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise TargetError("multi-replica runs need redis-server (apt-get install redis-server)")
    port = free_port()
    proc, _ = _spawn("redis", [exe, "--port", str(port), "--bind", HOST, "--save", "",
                               "--appendonly", "no"], port, log_dir)
    return proc, f"redis://{HOST}:{port}/0"


# -- peers -------------------------------------------------------------------------------------
def _single(replicas: int, name: str) -> None:
    if replicas != 1:
        raise TargetError(f"{name} runs as a single process here (asked for {replicas})")


def start_node_peer(script: str, name: str, protocol: str, scratch: Path) -> Callable[
        [Path, int], Running]:
    def start(log_dir: Path, replicas: int = 1) -> Running:
        _single(replicas, name)
        modules = install.ensure_node(scratch)
        port = free_port()
        proc, log = _spawn(name, ["node", str(PEERS_DIR / script), HOST, str(port)], port,
                           log_dir, env={"NODE_PATH": str(modules), "NODE_ENV": "production"})
        return Running(name, [proc], (Endpoint(HOST, port, protocol, "/"),), [log])
    return start


def start_pycrdt(scratch: Path) -> Callable[[Path, int], Running]:
    def start(log_dir: Path, replicas: int = 1) -> Running:
        _single(replicas, "pycrdt-websocket")
        python = install.ensure_pycrdt(scratch)
        port = free_port()
        proc, log = _spawn("pycrdt-websocket",
                           [str(python), str(PEERS_DIR / "pycrdt_server.py"), HOST, str(port)],
                           port, log_dir)
        return Running("pycrdt-websocket", [proc], (Endpoint(HOST, port, "yws", "/"),), [log])
    return start


def _weft_starter(engine: str, name: str = "", extra: tuple[str, ...] = ()) -> Callable[
        [Path, int], Running]:
    def start(log_dir: Path, replicas: int = 1) -> Running:
        return start_weft(engine, log_dir, replicas, extra, name)
    return start


def start_floor(log_dir: Path, replicas: int = 1) -> Running:
    """The reference relay (benchmarks/peers/floor_relay.py) in Weft's own Python."""
    _single(replicas, "floor")
    port = free_port()
    proc, log = _spawn("floor", [sys.executable, str(PEERS_DIR / "floor_relay.py"), HOST,
                                 str(port)], port, log_dir)
    return Running("floor", [proc], (Endpoint(HOST, port, "yws", "/"),), [log])


WEFT_SETUP = ("`weft serve` (uvloop), SQLite store in a fresh temporary data dir, "
              "`--max-ops-per-second 0` (the per-connection rate limit would cap the ramp)")


def weft_replica_setup(replicas: int) -> str:
    """The replica run's counterpart of :data:`WEFT_SETUP` (see :func:`start_weft`)."""
    return (f"{replicas} `weft serve --redis URL` replicas (uvloop) over one Redis the harness "
            "starts (no persistence): documents stored in and relayed through Redis, editors "
            "spread over the replicas; `--max-ops-per-second 0`; idle memory measured on one "
            "server with the SQLite store")


MEMORY_ONLY = "nothing: memory only, a restart loses every document"


def weft_targets() -> list[Target]:
    return [
        Target("weft-crdt", "crdt", "yws", "weft", _weft_starter("crdt"), WEFT_SETUP + "; "
               "`/crdt/<doc>`, y-websocket protocol",
               "a power cut once fsynced (SQLite, group commit); relayed before that (Yjs "
               "clients resend what a crash lost)"),
        Target("weft-ot", "ot", "sharedb", "weft", _weft_starter("ot"), WEFT_SETUP + "; "
               "`/ot`, ShareDB protocol, text-unicode",
               "a power cut: fsynced (SQLite) before it is acknowledged or broadcast"),
        Target("weft-ot-normal", "ot", "sharedb", "weft",
               _weft_starter("ot", "weft-ot-normal", ("--sqlite-synchronous", "NORMAL")),
               WEFT_SETUP + ", `--sqlite-synchronous NORMAL`; `/ot`, ShareDB protocol, "
               "text-unicode",
               "a server crash, not a power cut: written (SQLite, no fsync) before it is "
               "acknowledged or broadcast"),
    ]


def floor_target() -> Target:
    return Target("floor", "crdt", "yws", "floor", start_floor,
                  "reference relay, not a product: forwards each y-websocket update frame as "
                  "received to the room's other sockets (websockets `broadcast`, uvloop), "
                  "answers sync step 1 from an in-memory list of updates "
                  "(benchmarks/peers/floor_relay.py)", "nothing: memory only")


def peer_targets(scratch: Path = install.DEFAULT_SCRATCH) -> list[Target]:
    return [
        Target("y-websocket", "crdt", "yws", "peer",
               start_node_peer("ywebsocket_server.cjs", "y-websocket", "yws", scratch),
               "@y/websocket-server `setupWSConnection` on ws, one Y.Doc per path, no "
               "persistence (benchmarks/peers/ywebsocket_server.cjs)", MEMORY_ONLY),
        Target("hocuspocus", "crdt", "hocuspocus", "peer",
               start_node_peer("hocuspocus_server.cjs", "hocuspocus", "hocuspocus", scratch),
               "@hocuspocus/server defaults, no extensions (benchmarks/peers/"
               "hocuspocus_server.cjs)", MEMORY_ONLY),
        Target("sharedb", "ot", "sharedb", "peer",
               start_node_peer("sharedb_server.cjs", "sharedb", "sharedb", scratch),
               "sharedb in-memory db and pub/sub, ot-text-unicode, "
               "@teamwork/websocket-json-stream (benchmarks/peers/sharedb_server.cjs)",
               MEMORY_ONLY),
        Target("pycrdt-websocket", "crdt", "yws", "peer", start_pycrdt(scratch),
               "WebsocketServer behind websockets 17 (asyncio), own venv; room creation "
               "serialized to work around a join race (benchmarks/peers/pycrdt_server.py)",
               MEMORY_ONLY),
    ]
