"""``python -m benchmarks.topology`` — N leaders with the real engines over ring, star and
all-to-all links, in simulated time.

    python -m benchmarks.topology --out results/topology
    python -m benchmarks.topology --leaders 7 --edits 60 --latency-ms 40 --loss 0.1 \\
        --partition 2000:6000:4,5,6 --link 0-1=150 --out /tmp/topo
    python -m benchmarks.topology --quick --out /tmp/topo   # 3 leaders, a few edits

Writes ``topology.json`` (raw rows), ``topology.md`` (the table) and two PNG figures.  Exit
status 1 when some run did not converge (each such run is named on stderr), 0 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import orjson

from benchmarks import provenance
from benchmarks.topology import output, suite
from benchmarks.topology.network import TOPOLOGIES, Partition
from benchmarks.topology.replication import ROUTINGS
from benchmarks.topology.scenario import ENGINES
from benchmarks.topology.workload import Typing

REPO = Path(__file__).resolve().parents[2]


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _link(value: str) -> tuple[tuple[int, int], float]:
    try:
        pair, ms = value.split("=")
        a, b = (int(x) for x in pair.split("-"))
        return (min(a, b), max(a, b)), float(ms)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--link wants A-B=MS (e.g. 0-1=80), got {value!r}") from None


def _partition(value: str) -> tuple[float, float, tuple[int, ...]]:
    parts = value.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        start, end = float(parts[0]), float(parts[1])
        side = tuple(int(x) for x in parts[2].split(",")) if len(parts) == 3 else ()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--partition wants START_MS:END_MS[:LEADER,LEADER...], got {value!r}") from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"--partition needs 0 <= start < end, got {value!r}")
    return start, end, side


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.topology", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = suite.Plan()
    p.add_argument("--quick", action="store_true", help="3 leaders, 8 edits each (smoke run)")
    p.add_argument("--leaders", type=int, help=f"leaders (default {d.leaders})")
    p.add_argument("--edits", type=int, help=f"edits per leader (default {d.typing.edits})")
    p.add_argument("--rate", type=float, help=f"edits/s per leader (default {d.typing.rate})")
    p.add_argument("--latency-ms", type=float, default=d.latency_ms, help="link latency")
    p.add_argument("--jitter-ms", type=float, default=d.jitter_ms,
                   help="uniform jitter added to each message, ±")
    p.add_argument("--link", type=_link, action="append", default=[],
                   help="latency of one link, A-B=MS (repeatable)")
    p.add_argument("--loss", type=float, default=d.loss,
                   help="message loss probability in the 'loss' condition")
    p.add_argument("--partition", type=_partition,
                   help="START_MS:END_MS[:LEADERS] for the 'partition' condition: links "
                        "between LEADERS (default: the last n//2) and the rest drop everything")
    p.add_argument("--topologies", type=_csv, default=TOPOLOGIES,
                   help=f"comma-separated, from {','.join(TOPOLOGIES)}")
    p.add_argument("--engines", type=_csv, default=ENGINES, help="comma-separated: ot,crdt")
    p.add_argument("--conditions", type=_csv, default=suite.CONDITIONS,
                   help=f"comma-separated, from {','.join(suite.CONDITIONS)}")
    p.add_argument("--ae-interval-ms", type=float, default=d.ae_interval_ms,
                   help="anti-entropy round interval")
    p.add_argument("--routing", choices=ROUTINGS, default=d.routing,
                   help="pruned: relays skip the origin's neighbours; flood: plain flooding")
    p.add_argument("--cpu-repeats", type=int,
                   help=f"runs per cell, lowest engine CPU reported (default {d.cpu_repeats}; "
                        "1 with --quick)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", type=Path, help="results folder (default results/topology-<time>)")
    return p.parse_args(argv)


def plan_from(args: argparse.Namespace) -> suite.Plan:
    base = suite.QUICK if args.quick else suite.Plan()
    leaders = args.leaders if args.leaders is not None else base.leaders
    typing = Typing(args.edits if args.edits is not None else base.typing.edits,
                    args.rate if args.rate is not None else base.typing.rate)
    partition = None
    if args.partition is not None:
        start, end, side = args.partition
        chosen = frozenset(side) or suite.default_partition(leaders, typing).side
        partition = Partition(start, end, chosen)
    return dataclasses.replace(
        base, leaders=leaders, typing=typing, latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms, link_latency_ms=dict(args.link), loss=args.loss,
        partition=partition, topologies=args.topologies, engines=args.engines,
        conditions=args.conditions, seed=args.seed, ae_interval_ms=args.ae_interval_ms,
        routing=args.routing,
        cpu_repeats=args.cpu_repeats if args.cpu_repeats is not None else base.cpu_repeats)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        plan = plan_from(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or REPO / "results" / time.strftime("topology-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance.collect(argv, peers=False)
    prov["command"] = "python -m benchmarks.topology " + " ".join(argv)
    results = {"provenance": prov, **suite.run_all(plan)}
    (out / "topology.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    stamp = provenance.stamp(prov)
    figs = output.figures(results, out, stamp)
    md = ["# Weft topology benchmark", "", f"- Command: `{prov['command']}`",
          f"- Code: weft at {prov['git_commit']}", "",
          *output.section(results, figs, stamp)]
    (out / "topology.md").write_text("\n".join(md) + "\n")
    print("\n".join(output.table(results)))
    print(f"results: {out}")
    bad = suite.failures(results)
    for line in bad:
        print(f"FAILED (did not converge) {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
