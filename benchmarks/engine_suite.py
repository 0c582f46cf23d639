"""The engine suite: trace replay (:mod:`benchmarks.traces`) and cost per op as documents grow.

Trace replay is the lead's :func:`benchmarks.traces.run_job`, one fresh process per
(trace, engine, mode) exactly as ``python -m benchmarks.traces`` runs it.  The growth curve is
measured here: one sequential trace's edits, prepared as a client would send them
(:func:`benchmarks.replay.prepare_ingest`), ingested by a server-side engine document in
chunks; each chunk's time per op is plotted against the document's length at that point.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import traces
from benchmarks.trace_io import SequentialTrace, load_trace

Progress = Callable[[str, dict[str, Any] | None], None]  # (step, None) then (step, result)


def _pool_apply(fn: Callable[..., Any], *args: Any) -> Any:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)


def run_traces(paths: list[Path], runs: int, engines: list[str],
               progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every (trace, engine, mode) of ``paths``; a job that crashes becomes a failed result."""
    results: list[dict[str, Any]] = []
    for path in paths:
        trace = load_trace(path)
        for engine in engines:
            for mode in traces.modes_for(trace):
                label = f"trace {trace.name} {engine} {mode}"
                if progress:
                    progress(label, None)
                try:
                    results.append(_pool_apply(traces.run_job, str(path), engine, mode, runs))
                except Exception as exc:  # one broken engine must not end the whole suite
                    results.append({"trace": trace.name, "engine": engine, "mode": mode,
                                    "edits": trace.edits, "ok": False, "median_s": 0.0,
                                    "runs_s": [], "peak_rss_kb": 0, "snapshot_bytes": 0,
                                    "error": f"{type(exc).__name__}: {exc}"})
                if progress:
                    progress(label, results[-1])
    return results


def growth_job(path: str, engine: str, chunks: int, repeats: int = 1) -> dict[str, Any]:
    """Ingest a sequential trace in ``chunks`` pieces and time each (run in a fresh process).

    With ``repeats`` > 1 the whole ingest is done again on a fresh document and each chunk
    keeps its fastest time: on a shared machine the minimum is what the code costs, the rest
    is other processes.
    """
    from benchmarks import replay

    try:
        trace = load_trace(path)
        if not isinstance(trace, SequentialTrace):
            raise ValueError(f"{trace.name} is not a sequential trace")
        changes = replay.prepare_ingest(engine, trace)
        chunks = max(1, min(chunks, len(changes)))
        bounds = [len(changes) * i // chunks for i in range(chunks + 1)]
        best = [float("inf")] * chunks
        sizes = [0] * chunks
        ok = True
        for _ in range(max(1, repeats)):
            doc = replay.ENGINES[engine].load()
            apply = doc.apply
            gc.collect()
            for i, (start, end) in enumerate(itertools.pairwise(bounds)):
                piece = changes[start:end]
                t0 = time.perf_counter()
                for change in piece:
                    apply(change, "client")
                best[i] = min(best[i], time.perf_counter() - t0)
                sizes[i] = len(doc.text)
            ok = ok and doc.text == trace.end
        points = [{"ops": end, "doc_chars": sizes[i],
                   "us_per_op": best[i] / max(1, end - start) * 1e6}
                  for i, (start, end) in enumerate(itertools.pairwise(bounds))]
        return {"trace": trace.name, "engine": engine, "ok": ok, "points": points,
                "error": "" if ok else "final text differs from endContent"}
    except Exception as exc:
        return {"trace": Path(path).name, "engine": engine, "ok": False, "points": [],
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def run_growth(path: Path, engines: list[str], chunks: int, repeats: int = 1,
               progress: Progress | None = None) -> list[dict[str, Any]]:
    out = []
    for engine in engines:
        label = f"growth {path.name} {engine}"
        if progress:
            progress(label, None)
        try:
            out.append(_pool_apply(growth_job, str(path), engine, chunks, repeats))
        except Exception as exc:
            out.append({"trace": path.name, "engine": engine, "ok": False, "points": [],
                        "error": f"{type(exc).__name__}: {exc}"})
        if progress:
            progress(label, out[-1])
    return out


def run_footprint(paths: list[Path], engines: list[str],
                  progress: Progress | None = None) -> list[dict[str, Any]]:
    """History, snapshot, wire and cold-load cost (:mod:`benchmarks.footprint`) of every
    sequential trace in ``paths``, one fresh process per (trace, engine)."""
    from benchmarks.footprint import footprint_job

    out: list[dict[str, Any]] = []
    for path in paths:
        if not isinstance(load_trace(path), SequentialTrace):
            continue
        for engine in engines:
            label = f"footprint {path.name} {engine}"
            if progress:
                progress(label, None)
            try:
                out.append(_pool_apply(footprint_job, str(path), engine))
            except Exception as exc:  # a crashed job is a failed result, the suite goes on
                out.append({"trace": path.name, "engine": engine, "ok": False,
                            "error": f"{type(exc).__name__}: {exc}"})
            if progress:
                progress(label, out[-1])
    return out


def default_traces(quick: bool) -> list[Path]:
    """Quick: the smallest sequential trace and its concurrent original; else every trace."""
    found = traces.find_traces([])
    if not quick:
        return found
    small = [p for p in found if p.name.startswith("friendsforever")]
    return small or found[:1]


def growth_trace(quick: bool) -> Path | None:
    found = traces.find_traces([])
    wanted = "friendsforever_flat" if quick else "automerge-paper"
    for p in found:
        if p.name.startswith(wanted):
            return p
    for p in found:
        if isinstance(load_trace(p), SequentialTrace):
            return p
    return None
