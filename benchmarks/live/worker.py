"""One load-generator process: connect its editors, type on schedule, report what arrived.

The parent drives every worker through a pipe, in lock step::

    worker -> ("ready", info)       all editors connected and joined their documents
    parent -> ("start", t0)         the schedule's time origin (CLOCK_MONOTONIC)
    worker -> ("drained", result)   typed everything; everything arrived or drain timed out
    parent -> ("close", None)       after it checked the documents (editors still connected,
                                    since some servers drop a document with its last client)
    worker -> ("closed", None)

An idle run (``keystrokes == 0``) skips ``start``/``drained``.  Any failure is reported as
``("error", traceback)``.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import gc
import time
import traceback
from array import array
from multiprocessing.connection import Connection
from typing import Any

from benchmarks.live import yjs_wire
from benchmarks.live.editors import Editor, ShareDBEditor, Tally, YjsEditor
from benchmarks.live.markers import Schedule
from benchmarks.live.plan import WorkerPlan

PIPE_TIMEOUT = 600.0


def run_worker(plan: WorkerPlan, conn: Connection) -> None:
    """Process entry point."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the dev/bench extras
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(_main(plan, conn))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


async def _recv(conn: Connection, timeout: float = PIPE_TIMEOUT) -> tuple[str, Any]:
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, conn.poll, timeout):
        raise TimeoutError(f"no word from the parent in {timeout:.0f} s")
    message: tuple[str, Any] = conn.recv()
    return message


def _build(plan: WorkerPlan, tally: Tally) -> list[Editor]:
    editors: list[Editor] = []
    for spec in plan.editors:
        ep = plan.endpoints[spec.replica]
        expected = (plan.editors_per_doc[spec.doc] - 1) * plan.keystrokes
        if ep.protocol == "sharedb":
            editors.append(ShareDBEditor(spec.index, ep.collection, spec.doc, expected, tally))
        else:
            framing = yjs_wire.framing_for(ep.protocol, spec.doc)
            updates = yjs_wire.generate_updates(spec.index, plan.keystrokes)
            editors.append(YjsEditor(spec.index, spec.doc, expected, tally, framing, updates,
                                     spec.record))
    return editors


async def _connect_all(plan: WorkerPlan, editors: list[Editor]) -> None:
    gate = asyncio.Semaphore(plan.connect_concurrency)

    async def one(editor: Editor, replica: int) -> None:
        ep = plan.endpoints[replica]
        async with gate:
            await editor.open(ep.host, ep.port, ep.path(editor.doc), plan.connect_timeout)

    await asyncio.gather(*(one(e, s.replica) for e, s in zip(editors, plan.editors, strict=True)))


async def _type(plan: WorkerPlan, editors: list[Editor], schedule: Schedule) -> array[float]:
    """Send every keystroke at its scheduled time; return how late each one went out."""
    events = sorted(
        (schedule.at(e.index, k), i, k) for i, e in enumerate(editors)
        for k in range(plan.keystrokes)
    )
    lags = array("d")
    i, n = 0, len(events)
    monotonic = time.monotonic
    while i < n:
        now = monotonic()
        due = events[i][0]
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while i < n and events[i][0] <= now:
            t, ei, k = events[i]
            editors[ei].keystroke(k)
            lags.append(now - t)
            i += 1
    return lags


async def _drain(plan: WorkerPlan, editors: list[Editor]) -> None:
    deadline = time.monotonic() + plan.drain_timeout
    while time.monotonic() < deadline:
        if all(e.complete and e.idle for e in editors):
            return
        await asyncio.sleep(0.02)


def _result(
    editors: list[Editor], tally: Tally, lags: array[float], cpu_s: float, wall_s: float,
    typing_s: float,
) -> dict[str, Any]:
    keys = array("q", tally.per_edit.keys())
    worst = array("d", (v[0] for v in tally.per_edit.values()))
    counts = array("l", (int(v[1]) for v in tally.per_edit.values()))
    texts: dict[str, str] = {}
    for e in editors:
        if isinstance(e, YjsEditor) and e.record:
            texts[f"{e.doc}#{e.index}"] = e.final_text()
    return {
        "latencies": tally.latencies.tobytes(),
        "edit_keys": keys.tobytes(),
        "edit_worst": worst.tobytes(),
        "edit_receivers": counts.tobytes(),
        "lags": lags.tobytes(),
        "sent": sum(e.sent for e in editors),
        "messages_sent": sum(e.messages_sent for e in editors),
        "delivered": sum(len(e.seen) for e in editors),
        "expected": sum(e.expected for e in editors),
        "incomplete_editors": sum(1 for e in editors if not e.complete),
        "busy_editors": sum(1 for e in editors if not e.idle),
        "duplicates": tally.duplicates,
        "last_arrival": tally.last_arrival,
        "cpu_s": cpu_s,
        "wall_s": wall_s,
        "typing_s": typing_s,
        "frames_in": sum(e.client.frames_in for e in editors if e.client),
        "bytes_in": sum(e.client.bytes_in for e in editors if e.client),
        "errors": tally.errors,
        "error_count": tally.error_count,
        "editors": [e.summary() for e in editors],
        "texts": texts,
    }


async def _main(plan: WorkerPlan, conn: Connection) -> None:
    tally = Tally()
    t_prep = time.monotonic()
    editors = _build(plan, tally)
    prep_s = time.monotonic() - t_prep
    t_conn = time.monotonic()
    try:
        await _connect_all(plan, editors)
        conn.send(("ready", {"editors": len(editors), "prep_s": prep_s,
                             "connect_s": time.monotonic() - t_conn}))
        command, arg = await _recv(conn)
        # Nothing made during the run is cyclic; a full collection over hundreds of thousands
        # of timestamps would stall the sender by tens of milliseconds.
        gc.collect()
        gc.disable()
        if command == "start":
            t0 = float(arg)
            tally.schedule = Schedule(t0, plan.rate)
            cpu0 = time.process_time()
            lags = await _type(plan, editors, tally.schedule)
            typing_s = time.monotonic() - t0
            await _drain(plan, editors)
            for e in editors:
                if e.client is None or e.client.closed.done():
                    tally.error(f"editor {e.index} on {e.doc}: the server closed its connection "
                                "during the run")
            cpu_s = time.process_time() - cpu0
            wall_s = time.monotonic() - t0
            conn.send(("drained", _result(editors, tally, lags, cpu_s, wall_s, typing_s)))
            command, arg = await _recv(conn)
        if command != "close":
            raise RuntimeError(f"unexpected command from the parent: {command!r}")
    finally:
        gc.enable()
        await asyncio.gather(*(e.client.close() for e in editors if e.client),
                             return_exceptions=True)
    conn.send(("closed", None))
