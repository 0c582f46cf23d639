"""What a document costs to keep, to send and to open: history and snapshot bytes, bytes on the
wire per keystroke, and cold-load time, per engine, for each sequential trace.

Speed per op is only half of the OT-against-CRDT question: a CRDT keeps identifiers and
tombstones, OT keeps a revision log, and a server pays for both on disk, on the network and
whenever a document is opened cold.  This replays the trace the way the server meets it (the
client's prepared ops or updates, ingested one by one by a server-side engine, as
:func:`benchmarks.replay.prepare_ingest` makes them) and measures:

* **history bytes**: the records the engine asks the store to persist (what Weft's log holds);
* **snapshot bytes**: the compacted document (what a newcomer or a cold load reads);
* **up / down bytes per edit**: the client's message as the protocol sends it (y-websocket sync
  update; ShareDB ``op`` JSON) and the server's broadcast to each other client, WebSocket
  framing excluded (2-4 bytes each, the same for both);
* **cold load**: opening the engine from the snapshot alone, and from the whole log with no
  snapshot (the worst case: a document never compacted), median of a few runs.

Each (trace, engine) runs in a fresh process, like the trace replay, so memory and caches left by
one job do not flatter the next.
"""

from __future__ import annotations

import statistics
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from benchmarks.trace_io import SequentialTrace, load_trace

COLLECTION, DOC_ID, SRC = "docs", "footprint", "c0123456789abcdefghij"  # a ShareDB-sized src


def _median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _messages(engine: str) -> tuple[Callable[[Any, int], bytes], Callable[[Any], bytes]]:
    """(client message for a change, server broadcast for one broadcast item) of ``engine``."""
    if engine == "crdt":
        from crdt.sync import update_frame

        return (lambda change, _seq: update_frame(change)), update_frame
    from server.protocols.ot_docs import op_frame
    from server.protocols.sharedb_wire import encode

    def up(change: Any, seq: int) -> bytes:
        return orjson.dumps({"a": "op", "c": COLLECTION, "d": DOC_ID, "v": change.version,
                             "src": SRC, "seq": seq, "op": change.op})

    return up, (lambda committed: encode(op_frame(COLLECTION, DOC_ID, committed)))


def footprint_job(path: str, engine: str, repeats: int = 3) -> dict[str, Any]:
    """Measure one (sequential trace, engine); run in a fresh process.  Never raises."""
    from benchmarks import replay

    try:
        trace = load_trace(path)
        if not isinstance(trace, SequentialTrace):
            raise ValueError(f"{trace.name} is not a sequential trace")
        changes = replay.prepare_ingest(engine, trace)
        if engine == "ot":  # as a ShareDB client sends them: its id and a sequence number
            from engines.ot_engine import OTSubmit

            changes = [OTSubmit(c.op, c.version, SRC, seq) for seq, c in enumerate(changes, 1)]
        cls = replay.ENGINES[engine]
        up, down = _messages(engine)
        doc = cls.load()
        log: list[bytes] = []
        up_bytes = down_bytes = 0
        for seq, change in enumerate(changes, 1):
            up_bytes += len(up(change, seq))
            effects = doc.apply(change, "client")
            log.extend(effects.persist)
            down_bytes += sum(len(down(item)) for item in effects.broadcast)
        snapshot = doc.snapshot()
        ok = doc.text == trace.end
        ok = ok and cls.load(snapshot).text == trace.end and cls.load(None, log).text == trace.end
        edits = max(1, len(changes))
        return {
            "trace": trace.name, "engine": engine, "ok": ok, "edits": len(changes),
            "text_bytes": len(trace.end.encode()),
            "history_bytes": sum(len(r) for r in log), "history_records": len(log),
            "snapshot_bytes": len(snapshot),
            "up_bytes_per_edit": up_bytes / edits, "down_bytes_per_edit": down_bytes / edits,
            "load_snapshot_ms": _median_s(lambda: cls.load(snapshot), repeats) * 1e3,
            "load_log_ms": _median_s(lambda: cls.load(None, log), repeats) * 1e3,
            "error": "" if ok else "a reloaded document differs from endContent",
        }
    except Exception as exc:
        return {"trace": Path(path).name, "engine": engine, "ok": False,
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def table(results: list[dict[str, Any]]) -> list[str]:
    """The report's Markdown table (empty without results)."""
    if not results:
        return []

    def f(x: Any, digits: int = 0) -> str:
        return f"{x:,.{digits}f}" if isinstance(x, int | float) else "-"

    rows = ["| trace | engine | edits | text B | history B (records) | snapshot B | "
            "up B/edit | down B/edit | cold load: snapshot ms | cold load: log ms | result |",
            "|" + "---|" * 11]
    for r in results:
        if not r.get("ok") and "history_bytes" not in r:
            rows.append(f"| {r['trace']} | {r['engine']} | | | | | | | | | "
                        f"**{r.get('error', 'failed')}** |")
            continue
        rows.append(
            f"| {r['trace']} | {r['engine']} | {f(r['edits'])} | {f(r['text_bytes'])} | "
            f"{f(r['history_bytes'])} ({f(r['history_records'])}) | {f(r['snapshot_bytes'])} | "
            f"{f(r['up_bytes_per_edit'], 1)} | {f(r['down_bytes_per_edit'], 1)} | "
            f"{f(r['load_snapshot_ms'], 1)} | {f(r['load_log_ms'], 1)} | "
            f"{'ok' if r['ok'] else '**' + r['error'] + '**'} |")
    return rows
