"""``python -m benchmarks.traces [PATH ...]`` — replay editing traces through both engines.

Every trace (all of ../shared/traces, or tests/data, when no path is given) goes through each
engine in every mode that fits its shape (see :mod:`benchmarks.replay`); each result is checked
against ``endContent`` and the command exits non-zero on any mismatch.  Each (trace, engine, mode)
runs in a fresh process so that peak memory is its own; time is the median of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.trace_io import ConcurrentTrace, Trace, load_trace

HERE = Path(__file__).resolve().parent
DEFAULT_DIRS = [HERE.parent.parent / "shared" / "traces", HERE.parent / "tests" / "data"]


@dataclass(slots=True)
class Result:
    trace: str
    engine: str
    mode: str
    edits: int
    ok: bool
    median_s: float
    runs_s: list[float]
    peak_rss_kb: int
    snapshot_bytes: int
    error: str = ""

    @property
    def us_per_edit(self) -> float:
        return self.median_s / self.edits * 1e6 if self.edits else 0.0


def modes_for(trace: Trace) -> list[str]:
    if isinstance(trace, ConcurrentTrace):
        return ["concurrent"]
    return ["local", "ingest"]


def _reset_peak_rss() -> None:
    """Reset the kernel's high-water mark so the next peak is the replay's own (Linux only)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # elsewhere the peak includes loading the trace: an overestimate, never less


def _rss_kb(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in KiB (falls back to getrusage's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _start_measuring() -> int:
    """Collect garbage, reset the peak, and return the resident size to measure from."""
    gc.collect()
    before = _rss_kb("VmRSS")
    _reset_peak_rss()
    return before


def _one_run(engine: str, mode: str, trace: Trace) -> tuple[float, str, int, int]:
    """Run once; return (seconds, final text, snapshot size, peak KiB above the start).

    Preparation (loading, encoding what clients would send) is neither timed nor counted.
    """
    from benchmarks import replay

    cls = replay.ENGINES[engine]
    if isinstance(trace, ConcurrentTrace):
        before = _start_measuring()
        t0 = time.perf_counter()
        text, agent_texts = replay.replay_concurrent(engine, trace)
        elapsed = time.perf_counter() - t0
        peak = _rss_kb("VmHWM") - before
        if any(a != text for a in agent_texts):
            return elapsed, "<agents diverged>", 0, peak
        return elapsed, text, 0, peak
    if mode == "ingest":
        changes = replay.prepare_ingest(engine, trace)
        before = _start_measuring()
        t0 = time.perf_counter()
        doc = replay.replay_ingest(cls, changes)
    else:
        before = _start_measuring()
        t0 = time.perf_counter()
        doc = replay.replay_local(cls, trace)
    elapsed = time.perf_counter() - t0
    return elapsed, doc.text, len(doc.snapshot()), _rss_kb("VmHWM") - before


def run_job(path: str, engine: str, mode: str, runs: int) -> dict[str, Any]:
    """One (trace, engine, mode) measurement; meant to run in a fresh process."""
    trace = load_trace(path)
    times: list[float] = []
    peak = 0
    size = 0
    text = ""
    error = ""
    try:
        for i in range(runs):
            elapsed, text, size, run_peak = _one_run(engine, mode, trace)
            if i == 0:
                peak = max(0, run_peak)
            times.append(elapsed)
            if text != trace.end:
                break
    except Exception as exc:  # reported as a failed result, not a crash of the whole run
        error = f"{type(exc).__name__}: {exc}"
    ok = not error and text == trace.end
    if not ok and not error:
        error = _first_difference(text, trace.end)
    return asdict(
        Result(
            trace.name,
            engine,
            mode,
            trace.edits,
            ok,
            statistics.median(times) if times else 0.0,
            times,
            peak,
            size,
            error,
        )
    )


def _first_difference(got: str, want: str) -> str:
    i = next((k for k, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    if i is None:
        i = min(len(got), len(want))
    return f"text differs at code point {i} (got {len(got)}, want {len(want)} code points)"


def find_traces(paths: list[str]) -> list[Path]:
    if paths:
        return [Path(p) for p in paths]
    for d in DEFAULT_DIRS:
        found = sorted(d.glob("*.json.gz")) + sorted(d.glob("*.json"))
        if found:
            return found
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.traces", description=__doc__)
    parser.add_argument("paths", nargs="*", help="trace files (.json or .json.gz)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--engines", default="ot,crdt", help="comma-separated: ot,crdt")
    parser.add_argument("--modes", default="", help="restrict to modes: local,ingest,concurrent")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    traces = find_traces(args.paths)
    if not traces:
        print("no trace files found", file=sys.stderr)
        return 2
    engines = [e for e in args.engines.split(",") if e]
    wanted = {m for m in args.modes.split(",") if m}
    ctx = multiprocessing.get_context("spawn")
    results: list[dict[str, Any]] = []
    print(f"{'trace':<22}{'engine':<7}{'mode':<11}{'edits':>8}{'median s':>10}"
          f"{'µs/edit':>9}{'peak +MB':>10}{'snapshot B':>11}  result")
    for path in traces:
        trace = load_trace(path)
        for engine in engines:
            for mode in modes_for(trace):
                if wanted and mode not in wanted:
                    continue
                with ctx.Pool(1) as pool:
                    r = pool.apply(run_job, (str(path), engine, mode, args.runs))
                results.append(r)
                res = Result(**r)
                status = "ok" if res.ok else f"MISMATCH: {res.error}"
                print(f"{res.trace:<22}{res.engine:<7}{res.mode:<11}{res.edits:>8}"
                      f"{res.median_s:>10.3f}{res.us_per_edit:>9.2f}"
                      f"{res.peak_rss_kb / 1024:>10.1f}{res.snapshot_bytes:>11}  {status}",
                      flush=True)
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
