"""The live scenarios: a timed load, a ramp to the highest sustained rate, idle memory.

Each scenario runs against an already started target (:class:`~benchmarks.live.targets.Running`)
with fresh document names, spreads its editors over ``workers`` spawned processes (editors of
one document land in different processes), and measures the server's CPU and memory from
outside while the editors type.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
import uuid
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from benchmarks.live import verify
from benchmarks.live.editors import sharedb_create
from benchmarks.live.plan import EditorSpec, WorkerPlan
from benchmarks.live.procmon import Monitor, settled_rss
from benchmarks.live.stats import merge_worker_results
from benchmarks.live.targets import Running
from benchmarks.live.worker import run_worker

P99_BUDGET_MS = 250.0
GENERATOR_BUSY = 0.85  # a worker above this share of a core may be limiting the load
START_DELAY = 0.3


class WorkerError(RuntimeError):
    """A load-generator process failed; the message carries its traceback."""


@dataclass(frozen=True)
class Load:
    """C editors typing R keystrokes/s for T seconds over D documents."""

    name: str
    editors: int
    docs: int
    rate: float
    seconds: float
    workers: int = 2
    drain_timeout: float = 10.0

    @property
    def keystrokes(self) -> int:
        return max(1, round(self.rate * self.seconds))

    @property
    def offered_ops_s(self) -> float:
        return self.editors * self.rate


def _docs(target: str, scenario: str, n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"bench-{scenario}-{tag}-{i}" for i in range(n)]


def _plans(running: Running, docs: list[str], editors: int, workers: int, rate: float,
           keystrokes: int, drain_timeout: float) -> tuple[list[WorkerPlan], dict[int, str]]:
    doc_of = {e: docs[e % len(docs)] for e in range(editors)}
    per_doc = {d: 0 for d in docs}
    for d in doc_of.values():
        per_doc[d] += 1
    recorded: set[str] = set()
    specs: list[list[EditorSpec]] = [[] for _ in range(workers)]
    n_rep = len(running.endpoints)
    for e in range(editors):
        doc = doc_of[e]
        record = doc not in recorded
        recorded.add(doc)
        specs[e % workers].append(EditorSpec(e, doc, replica=e % n_rep, record=record))
    plans = [
        WorkerPlan(running.endpoints, tuple(s), per_doc, rate, keystrokes,
                   drain_timeout=drain_timeout)
        for s in specs if s
    ]
    return plans, doc_of


class Workers:
    """Spawned load-generator processes driven in lock step (see :mod:`~.worker`)."""

    def __init__(self, plans: list[WorkerPlan]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.procs: list[BaseProcess] = []
        self.conns: list[Connection] = []
        for plan in plans:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=run_worker, args=(plan, child), daemon=True)
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)

    def expect(self, what: str, timeout: float) -> list[Any]:
        out = []
        deadline = time.monotonic() + timeout
        for conn in self.conns:
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise WorkerError(f"a load generator did not report {what!r} in {timeout:.0f} s")
            try:
                kind, payload = conn.recv()
            except EOFError:
                raise WorkerError(f"a load generator exited before reporting {what!r}") from None
            if kind == "error":
                raise WorkerError(f"load generator failed:\n{payload}")
            if kind != what:
                raise WorkerError(f"expected {what!r} from a load generator, got {kind!r}")
            out.append(payload)
        return out

    def tell(self, command: str, arg: Any = None) -> None:
        for conn in self.conns:
            conn.send((command, arg))

    def close(self) -> None:
        """Ask every worker to disconnect, then make sure each of ours has exited."""
        for conn in self.conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("close", None))
        deadline = time.monotonic() + 15
        for proc in self.procs:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self.conns:
            conn.close()


def run_load(running: Running, load: Load, target: str) -> dict[str, Any]:
    """One timed load; returns latency, throughput, resources and the convergence verdict."""
    docs = _docs(target, load.name, load.docs)
    keystrokes = load.keystrokes
    plans, doc_of = _plans(running, docs, load.editors, load.workers, load.rate, keystrokes,
                           load.drain_timeout)
    ep = running.endpoints[0]
    if ep.protocol == "sharedb":
        asyncio.run(sharedb_create(ep.host, ep.port, ep.path(""), ep.collection, docs, 30.0))
    workers = Workers(plans)
    try:
        ready = workers.expect("ready", 60 + load.editors * 0.2 + keystrokes * 0.01)
        monitor = Monitor(running.pids)
        monitor.start()
        t0 = time.monotonic() + START_DELAY
        workers.tell("start", t0)
        results = workers.expect("drained", load.seconds + load.drain_timeout + 60)
        usage = monitor.stop()
        doc_editors: dict[str, list[int]] = {d: [] for d in docs}
        for e, d in doc_of.items():
            doc_editors[d].append(e)
        try:
            views = [asyncio.run(verify.read_all(ep, docs)) for ep in running.endpoints]
            verdict = verify.check(views[0], doc_editors, keystrokes, results)
            verify.check_replicas(verdict, views)
        except (OSError, TimeoutError, RuntimeError) as exc:
            verdict = verify.Verdict(ok=False, docs=len(docs))
            verdict.fail(f"could not read the documents back: {type(exc).__name__}: {exc}")
    finally:
        workers.close()
    per_doc = {d: len(v) for d, v in doc_editors.items()}
    latency = merge_worker_results(results, per_doc, doc_of)
    last = max((r["last_arrival"] for r in results), default=t0)
    span = max(1e-9, last - t0)
    typing_s = max(r["typing_s"] for r in results)
    gen = [r["cpu_s"] / r["wall_s"] if r["wall_s"] else 0.0 for r in results]
    errors = [e for r in results for e in r["errors"]]
    out: dict[str, Any] = {
        "target": target,
        "scenario": load.name,
        "load": asdict(load),
        "keystrokes_per_editor": keystrokes,
        "offered_ops_s": load.offered_ops_s,
        "sent": sum(r["sent"] for r in results),
        "messages_sent": sum(r["messages_sent"] for r in results),
        "delivered": sum(r["delivered"] for r in results),
        "expected_deliveries": sum(r["expected"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "edits_per_s": sum(r["sent"] for r in results) / max(1e-9, typing_s),
        "messages_per_s": sum(r["messages_sent"] for r in results) / max(1e-9, typing_s),
        "deliveries_per_s": sum(r["delivered"] for r in results) / span,
        **latency,
        "server": {
            "cpu_s": usage.cpu_s,
            "cpu_cores": usage.cores,
            "rss_start_mb": usage.rss_start / 2**20,
            "rss_peak_mb": usage.rss_peak / 2**20,
        },
        "generator": {
            "workers": len(results),
            "cpu_core_fraction_max": max(gen, default=0.0),
            "cpu_cores_total": sum(gen),
            "frames_in": sum(r["frames_in"] for r in results),
            "prep_s_max": max(x["prep_s"] for x in ready),
            "connect_s_max": max(x["connect_s"] for x in ready),
        },
        "convergence": verdict.as_dict(),
        "error_count": sum(r["error_count"] for r in results),
        "errors": errors[:5],
    }
    out["generator"]["saturated"] = (
        out["generator"]["cpu_core_fraction_max"] > GENERATOR_BUSY
        or out["send_lag_ms"]["p99"] > 50.0
    )
    out["sustained"] = bool(
        verdict.ok and out["error_count"] == 0
        and out["delivery_ms"]["p99"] <= P99_BUDGET_MS
    )
    return out


def ramp(running: Running, target: str, editors: int, rates: list[float], seconds: float,
         workers: int = 2, bisect_steps: int = 1, progress: Any = None) -> dict[str, Any]:
    """Raise the per-editor rate until p99 exceeds the budget; bisect once or twice more.

    A failing step during which the load generator was saturated is run a second time.

    Returns every step and the highest offered rate (edits/s over all editors) that held
    p99 <= 250 ms with everything delivered and converged.
    """
    steps: list[dict[str, Any]] = []

    def step(rate: float) -> bool:
        load = Load(f"ramp{editors}x{rate:g}", editors, 1, rate, seconds, workers)
        result = run_load(running, load, target)
        if not result["sustained"] and result["generator"]["saturated"] and running.alive():
            # The generator itself fell behind (a busy machine, usually): measure once more
            # rather than blame the server for it.  Both attempts are kept.
            retry = run_load(running, load, target)
            retry["retry_of"] = result
            result = retry
        steps.append(result)
        if progress is not None:
            progress(result)
        return bool(result["sustained"]) and running.alive()

    good: float | None = None
    bad: float | None = None
    for rate in rates:
        if step(rate):
            good = rate
        else:
            bad = rate
            break
    if good is not None and bad is not None:
        for _ in range(bisect_steps):
            mid = round((good * bad) ** 0.5, 1)
            if mid in (good, bad) or not running.alive():
                break
            if step(mid):
                good = mid
            else:
                bad = mid
    best = max((s for s in steps if s["sustained"]), key=lambda s: s["offered_ops_s"],
               default=None)
    limited_by_generator = bool(
        bad is not None and any(s["generator"]["saturated"] for s in steps
                                if s["load"]["rate"] == bad)
    )
    return {
        "target": target,
        "editors": editors,
        "seconds": seconds,
        "steps": steps,
        "max_sustained_ops_s": best["offered_ops_s"] if best else 0.0,
        "max_sustained_rate": best["load"]["rate"] if best else 0.0,
        "first_failing_rate": bad,
        "reached_top": bad is None,
        "limited_by_generator": limited_by_generator,
    }


def idle_memory(running: Running, target: str, connections: int, docs: int,
                workers: int = 2, settle: float = 1.5) -> dict[str, Any]:
    """Server RSS growth per idle connection: ``connections`` clients over ``docs`` documents.

    The baseline is taken after one warm-up client has come and gone (so code loaded on
    first use is not charged to connections); ShareDB-protocol documents must exist before
    anyone subscribes, so they are created before the baseline.
    """
    names = _docs(target, "idle", docs)
    ep = running.endpoints[0]
    warm = _docs(target, "warm", 1)
    if ep.protocol == "sharedb":
        asyncio.run(sharedb_create(ep.host, ep.port, ep.path(""), ep.collection,
                                   names + warm, 30.0))
    asyncio.run(verify.read_all(ep, warm))
    time.sleep(0.5)
    before = settled_rss(running.pids)
    plans, _ = _plans(running, names, connections, workers, 1.0, 0, 5.0)
    plans = [WorkerPlan(p.endpoints, p.editors, p.editors_per_doc, p.rate, 0,
                        connect_concurrency=32) for p in plans]
    workers_ = Workers(plans)
    try:
        t = time.monotonic()
        workers_.expect("ready", 120)
        connect_s = time.monotonic() - t
        time.sleep(settle)
        after = settled_rss(running.pids)
    finally:
        workers_.close()
    return {
        "target": target,
        "connections": connections,
        "docs": docs,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "kb_per_connection": (after - before) / 1024 / connections,
        "connect_s": connect_s,
    }
