"""Load script (not a test): keystroke fan-out latency and idle-connection memory.

    .venv/bin/python tests/load_fanout.py                      # both engines, defaults below
    .venv/bin/python tests/load_fanout.py --engines crdt --seconds 5

1. Fan-out: ``--editors`` editors on one document each type ``--rate`` keystrokes/s for
   ``--seconds``.  Senders send real protocol frames (a Yjs update made by a real Yjs document;
   a ShareDB ``op`` message at the latest version they heard of).  Receivers do not maintain a
   document: they only identify each frame (Yjs client id + clock, or ShareDB src + seq) and
   note when it arrived.  Latency of a keystroke = the time until *every other* editor has it.
2. Memory: ``--idle`` connections spread over ``--docs`` documents connect, sync and stay idle;
   reported as the server's RSS growth divided by the number of connections.

The server runs as a separate ``weft serve`` process (SQLite store in a temporary directory),
so its RSS is measured alone and clients do not share its event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crdt.document import CrdtDocument  # noqa: E402
from crdt.lib0 import read_var_uint  # noqa: E402
from crdt.sync import FrameKind, read_frame, sync_step1_frame, update_frame  # noqa: E402

# ---- server process -------------------------------------------------------------------------

async def start_server(data_dir: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WEFT_MAX_OPS_PER_SECOND": "0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", "--port", "0", "--data-dir", data_dir,
        "--log-level", "warning", stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    if not line.startswith("weft: listening on "):
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1].strip()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store_commit_ms(url: str) -> float:
    """Mean time of one store transaction so far, from /metrics."""
    import urllib.request

    with urllib.request.urlopen(url.replace("ws://", "http://") + "/metrics", timeout=5) as r:
        values = dict(line.split(" ", 1) for line in r.read().decode().splitlines()
                      if line.startswith("weft_store_commit"))
    commits = float(values.get("weft_store_commits_total", 0))
    return 1000 * float(values.get("weft_store_commit_seconds_total", 0)) / max(commits, 1)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


# ---- editors --------------------------------------------------------------------------------

class Editor:
    """One editor: sends keystrokes, records when other editors' keystrokes arrive."""

    def __init__(self, index: int, ws: ClientConnection) -> None:
        self.index = index
        self.ws = ws
        self.arrivals: dict[tuple[Any, int], float] = {}
        self.key: Any = None  # how other editors recognise this editor's frames

    async def run_reader(self) -> None:
        async for frame in self.ws:
            now = time.perf_counter()
            ident = self.identify(frame)
            if ident is not None:
                self.arrivals[ident] = now

    def identify(self, frame: str | bytes) -> tuple[Any, int] | None:
        raise NotImplementedError

    def keystroke(self, char: str) -> tuple[Any, int]:
        raise NotImplementedError


class CrdtEditor(Editor):
    def __init__(self, index: int, ws: ClientConnection) -> None:
        super().__init__(index, ws)
        self.doc = CrdtDocument()
        self.key = self.doc.client_id
        self.clock = 0

    def identify(self, frame: str | bytes) -> tuple[Any, int] | None:
        if not isinstance(frame, bytes) or frame[:2] != b"\x00\x02":
            return None
        _, pos = read_var_uint(frame, 2)  # payload length
        _, pos = read_var_uint(frame, pos)  # number of clients
        _, pos = read_var_uint(frame, pos)  # number of structs
        client, pos = read_var_uint(frame, pos)
        clock, _ = read_var_uint(frame, pos)
        return client, clock

    def keystroke(self, char: str) -> tuple[Any, int]:
        update = self.doc.insert(0, char)
        ident = (self.key, self.clock)
        self.clock += len(char)
        self.ws.protocol.send_binary(update_frame(update))
        self.ws.send_data()
        return ident


class OTEditor(Editor):
    def __init__(self, index: int, ws: ClientConnection, src: str) -> None:
        super().__init__(index, ws)
        self.key = src
        self.seq = 0
        self.version = 1

    def identify(self, frame: str | bytes) -> tuple[Any, int] | None:
        message = orjson.loads(frame)
        if message.get("a") != "op" or "v" not in message:
            return None
        self.version = max(self.version, message["v"] + 1)
        if "op" not in message:  # our own ack
            return None
        return message["src"], message["seq"]

    def keystroke(self, char: str) -> tuple[Any, int]:
        self.seq += 1
        message = {"a": "op", "c": "load", "d": "fanout", "v": self.version, "src": self.key,
                   "seq": self.seq, "op": [char]}
        self.ws.protocol.send_text(orjson.dumps(message))
        self.ws.send_data()
        return self.key, self.seq


async def open_editor(engine: str, url: str, index: int) -> Editor:
    if engine == "crdt":
        ws = await connect(f"{url}/crdt/load/fanout", compression=None, max_size=None)
        await ws.send(sync_step1_frame(b"\x00"))
        while read_frame(await ws.recv()).kind is not FrameKind.SYNC_STEP2:
            pass
        return CrdtEditor(index, ws)
    ws = await connect(f"{url}/ot", compression=None, max_size=None)
    await ws.send(orjson.dumps({"a": "hs", "id": None}).decode())
    src = orjson.loads(await ws.recv())["id"]
    if index == 0:
        await ws.send(orjson.dumps({"a": "op", "c": "load", "d": "fanout", "v": 0, "src": src,
                                    "seq": 0, "create": {"type": "text-unicode",
                                                         "data": ""}}).decode())
        await ws.recv()
    await ws.send(orjson.dumps({"a": "s", "c": "load", "d": "fanout"}).decode())
    reply = orjson.loads(await ws.recv())
    editor = OTEditor(index, ws, src)
    editor.version = reply["data"]["v"]
    return editor


async def fanout(engine: str, url: str, pid: int, editors: int, rate: float,
                 seconds: float) -> dict:
    crowd = [await open_editor(engine, url, i) for i in range(editors)]
    readers = [asyncio.create_task(e.run_reader()) for e in crowd]
    sent: dict[tuple[Any, int], tuple[int, float]] = {}
    start = time.perf_counter() + 0.2
    strokes = int(rate * seconds)

    async def type_(editor: Editor) -> None:
        offset = editor.index / (editors * rate)  # spread editors over the interval
        for k in range(strokes):
            delay = start + offset + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ident = editor.keystroke(chr(0x61 + (editor.index + k) % 26))
            sent[ident] = (editor.index, time.perf_counter())

    cpu_before = cpu_seconds(pid)
    await asyncio.gather(*(type_(e) for e in crowd))
    await asyncio.sleep(1.0)  # let the last keystrokes arrive
    cpu = cpu_seconds(pid) - cpu_before
    for task in readers:
        task.cancel()
    latencies, missing = [], 0
    for ident, (author, at) in sent.items():
        arrivals = [e.arrivals.get(ident) for e in crowd if e.index != author]
        if any(a is None for a in arrivals):
            missing += 1
            continue
        latencies.append(max(arrivals) - at)  # type: ignore[type-var]
    for e in crowd:
        await e.ws.close()
    latencies.sort()
    return {
        "engine": engine, "keystrokes": len(sent), "missing": missing,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "max_ms": 1000 * latencies[-1],
        "server_cpu_ms_per_keystroke": 1000 * cpu / max(len(sent), 1),
        "store_commit_ms": store_commit_ms(url),
    }


# ---- idle connections -----------------------------------------------------------------------

async def idle_memory(engine: str, url: str, pid: int, connections: int, docs: int) -> dict:
    before = rss_bytes(pid)
    sockets: list[ClientConnection] = []
    per_conn: dict[int, int] = defaultdict(int)
    for i in range(connections):
        doc = i % docs
        per_conn[doc] += 1
        if engine == "crdt":
            ws = await connect(f"{url}/crdt/idle/{doc}", compression=None)
            await ws.recv()  # sync step 1: the room is loaded
        else:
            ws = await connect(f"{url}/ot", compression=None)
            await ws.send(orjson.dumps({"a": "hs", "id": None}).decode())
            await ws.recv()
            await ws.send(orjson.dumps({"a": "s", "c": "idle", "d": str(doc)}).decode())
            await ws.recv()
        sockets.append(ws)
    await asyncio.sleep(1.0)
    after = rss_bytes(pid)
    for ws in sockets:
        await ws.close()
    return {"engine": engine, "connections": connections, "docs": docs,
            "rss_before_mb": before / 2**20, "rss_after_mb": after / 2**20,
            "kb_per_connection": (after - before) / connections / 1024}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["crdt", "ot"])
    parser.add_argument("--editors", type=int, default=10)
    parser.add_argument("--rate", type=float, default=5.0, help="keystrokes/s per editor")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--docs", type=int, default=100)
    args = parser.parse_args()
    for engine in args.engines:
        with tempfile.TemporaryDirectory() as data_dir:
            proc, url = await start_server(data_dir)
            try:
                result = await fanout(engine, url, proc.pid, args.editors, args.rate,
                                      args.seconds)
                print(f"fan-out {engine}: {args.editors} editors x {args.rate:g}/s x "
                      f"{args.seconds:g}s = {result['keystrokes']} keystrokes, "
                      f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
                      f"max {result['max_ms']:.2f} ms, missing {result['missing']}; server CPU "
                      f"{result['server_cpu_ms_per_keystroke']:.3f} ms/keystroke (incl. "
                      f"{args.editors - 1} sends each), store commit "
                      f"{result['store_commit_ms']:.2f} ms", flush=True)
                mem = await idle_memory(engine, url, proc.pid, args.idle, args.docs)
                print(f"idle {engine}: {mem['connections']} connections over {mem['docs']} docs: "
                      f"RSS {mem['rss_before_mb']:.1f} -> {mem['rss_after_mb']:.1f} MB = "
                      f"{mem['kb_per_connection']:.1f} KiB/connection", flush=True)
            finally:
                proc.terminate()
                await proc.wait()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
