"""``python -m benchmarks`` — the whole benchmark: engine suite, live suite, report.

    python -m benchmarks                 # engines + Weft live suite (~10 min on 2 cores)
    python -m benchmarks --peers         # ... and the same live scenarios on the peers
    python -m benchmarks --quick         # a ~1 minute smoke run (what the test suite runs)
    python -m benchmarks --only live --targets weft-crdt,y-websocket
    python -m benchmarks --only live --scenarios ramp,idle   # some live scenarios only
    python -m benchmarks --only topology   # multi-leader topologies, simulated (seconds)

Results go to ``results/<timestamp>/`` (or ``--out``): ``results.json`` (raw), ``report.md``,
PNG figures and the servers' logs.  Exit status: 0 when every check held (live convergence,
trace replay matching ``endContent``), 1 when one did not, 2 when nothing could run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks import engine_suite, plots, provenance, report, traces
from benchmarks.live import suite
from benchmarks.live.targets import Target, floor_target, peer_targets, weft_targets
from benchmarks.peers.install import DEFAULT_SCRATCH
from benchmarks.topology import output as topology_output
from benchmarks.topology import suite as topology_suite
from benchmarks.trace_io import SequentialTrace, load_trace

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small, fast version of everything")
    p.add_argument("--peers", action="store_true",
                   help="also run the live scenarios on y-websocket, Hocuspocus, ShareDB and "
                        "pycrdt-websocket (installed on demand into --scratch)")
    p.add_argument("--only", choices=["engines", "live", "topology"],
                   help="run one suite only")
    p.add_argument("--targets", default="",
                   help="comma-separated live targets (default: weft-crdt,weft-ot and, with "
                        "--peers, every peer)")
    p.add_argument("--scenarios", default=",".join(suite.SCENARIOS),
                   help="comma-separated live scenarios to run, from loads (the timed loads), "
                        "ramp (the throughput ramp) and idle (idle memory); default: all")
    p.add_argument("--runs", type=int, default=1, help="trace replay runs per measurement")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes")
    p.add_argument("--replicas", type=int, default=1,
                   help="Weft server replicas over one Redis the harness starts (needs "
                        "`weft serve --redis`; peers run as one process)")
    p.add_argument("--out", type=Path, help="results folder (default results/<timestamp>)")
    p.add_argument("--scratch", type=Path, default=DEFAULT_SCRATCH,
                   help="where peers are installed (gitignored)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def choose_scenarios(args: argparse.Namespace) -> frozenset[str]:
    wanted = {w.strip() for w in args.scenarios.split(",") if w.strip()}
    unknown = wanted - set(suite.SCENARIOS)
    if unknown or not wanted:
        raise SystemExit(f"--scenarios: unknown {', '.join(sorted(unknown)) or 'empty list'}; "
                         f"known: {', '.join(suite.SCENARIOS)}")
    return frozenset(wanted)


def choose_targets(args: argparse.Namespace) -> list[Target]:
    every = [*weft_targets(), floor_target(), *peer_targets(args.scratch)]
    if args.targets:
        wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
        known = {t.name: t for t in every}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise SystemExit(f"unknown target(s) {', '.join(unknown)}; known: "
                             f"{', '.join(known)}")
        return [known[w] for w in wanted]
    return every if args.peers else weft_targets()


class Bar:
    """tqdm when available and wanted; otherwise one line per finished step."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self._bar = tqdm(total=total, unit="step", dynamic_ncols=True)

    def __call__(self, label: str, result: dict[str, Any] | None) -> None:
        if result is None:
            if self._bar is not None:
                self._bar.set_description(label)
            return
        note = ""
        if "delivery_ms" in result:
            note = f"p99 {result['delivery_ms']['p99']:.1f} ms"
        elif "kb_per_connection" in result:
            note = f"{result['kb_per_connection']:.1f} KB/conn"
        elif "history_bytes" in result:
            note = (f"{result['history_bytes']:,} B history, "
                    f"{result['up_bytes_per_edit']:.0f} B/edit up")
        elif result.get("edits"):
            status = "ok" if result.get("ok") else "MISMATCH"
            note = f"{result['median_s'] / result['edits'] * 1e6:.1f} µs/edit {status}"
        elif "points" in result:
            note = "ok" if result.get("ok") else f"failed: {result.get('error')}"
        if self._bar is not None:
            self._bar.set_postfix_str(note)
            self._bar.update(1)
        else:
            print(f"{label}: {note}", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_engines(args: argparse.Namespace, progress: Bar) -> dict[str, Any]:
    paths = engine_suite.default_traces(args.quick)
    growth_path = engine_suite.growth_trace(args.quick)
    engines = ["ot", "crdt"]
    out: dict[str, Any] = {"traces": [], "growth": []}
    out["traces"] = engine_suite.run_traces(paths, args.runs, engines, progress)
    out["footprint"] = engine_suite.run_footprint(paths, engines, progress)
    if growth_path is not None:
        out["growth"] = engine_suite.run_growth(growth_path, engines, 12 if args.quick else 26,
                                                1 if args.quick else 3, progress)
    return out


def _lost(name: str, step: dict[str, Any]) -> str:
    return (f"{name} {step['scenario']} did not converge: "
            + "; ".join(step["convergence"]["problems"][:3]))


def failures(results: dict[str, Any]) -> list[dict[str, str]]:
    """What makes the run fail: a Weft run that did not converge, an error, a bad replay.

    A peer (or the floor relay) that loses edits is a finding about that server, not a
    failure of the run: see :func:`findings`.
    """
    out = []
    for name, res in (results.get("live") or {}).get("targets", {}).items():
        steps = list(res.get("loads", [])) + list((res.get("ramp") or {}).get("steps", []))
        for s in steps:
            if not s["convergence"]["ok"] and res.get("family") == "weft":
                out.append({"suite": "live", "what": _lost(name, s)})
        for e in res.get("errors", []):
            out.append({"suite": "live", "what": f"{name} {e['phase']}: {e['error']}"})
    for r in (results.get("engine") or {}).get("traces", []):
        if not r["ok"]:
            out.append({"suite": "engine", "what": f"{r['trace']} {r['engine']} {r['mode']}: "
                        f"{r.get('error')}"})
    for f in (results.get("engine") or {}).get("footprint", []):
        if not f["ok"]:
            out.append({"suite": "engine", "what": f"footprint {f['trace']} {f['engine']}: "
                        f"{f.get('error')}"})
    for g in (results.get("engine") or {}).get("growth", []):
        if not g["ok"]:
            out.append({"suite": "engine", "what": f"growth {g['engine']}: {g.get('error')}"})
    for line in topology_suite.failures(results.get("topology") or {}):
        out.append({"suite": "topology", "what": f"{line} (did not converge)"})
    return out


def findings(results: dict[str, Any]) -> list[str]:
    """Runs where a peer or the floor relay did not deliver or keep every edit (typically
    ramp steps beyond what it sustains): reported beside the results, never a failure."""
    out = []
    for name, res in (results.get("live") or {}).get("targets", {}).items():
        if res.get("family") == "weft":
            continue
        steps = list(res.get("loads", [])) + list((res.get("ramp") or {}).get("steps", []))
        out += [_lost(name, s) for s in steps if not s["convergence"]["ok"]]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    targets = choose_targets(args) if args.only in (None, "live") else []
    scenarios = choose_scenarios(args)
    out = args.out or REPO / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance.collect(argv, peers=any(t.family == "peer" for t in targets))
    profile = suite.QUICK if args.quick else suite.DEFAULT
    profile = dataclasses.replace(profile, workers=args.workers)
    t_start = time.monotonic()
    engine_steps = 0
    if args.only in (None, "engines"):
        paths = engine_suite.default_traces(args.quick)
        loaded = [load_trace(p) for p in paths]
        engine_steps = (2 * sum(len(traces.modes_for(t)) for t in loaded) + 2
                        + 2 * sum(isinstance(t, SequentialTrace) for t in loaded))
    topology_plan = topology_suite.QUICK if args.quick else topology_suite.Plan()
    topology_steps = (len(topology_suite.scenarios(topology_plan))
                      if args.only in (None, "topology") else 0)
    total = engine_steps + topology_steps + len(targets) * profile.steps_per_target(scenarios)
    bar = Bar(total, not args.no_progress)
    results: dict[str, Any] = {"provenance": prov}
    try:
        if args.only in (None, "engines"):
            results["engine"] = run_engines(args, bar)
        if topology_steps:
            results["topology"] = topology_suite.run_all(
                topology_plan, lambda label, r: bar(label, r if r is None else {
                    "points": 1, "ok": r["ok"], "error": "; ".join(r["problems"])}))
        if targets:
            results["live"] = suite.run(targets, profile, out / "logs", bar, args.replicas,
                                        scenarios)
    finally:
        bar.close()
    if targets and any(t.family == "peer" for t in targets):
        refreshed = provenance.collect(argv, peers=True)
        prov["peer_versions"] = refreshed.get("peer_versions", {})
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    results["elapsed_s"] = time.monotonic() - t_start
    results["failures"] = failures(results)
    results["findings"] = findings(results)
    (out / "results.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    figures = plots.all_figures(results, out, provenance.stamp(prov))
    if results.get("topology"):
        figures.update(topology_output.figures(results["topology"], out,
                                               provenance.stamp(prov)))
    (out / "report.md").write_text(report.render(results, figures))
    print(f"results: {out}")
    for finding in results["findings"]:
        print(f"finding (reference server, not a failure): {finding}")
    for f in results["failures"]:
        print(f"FAILED [{f['suite']}] {f['what']}", file=sys.stderr)
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
