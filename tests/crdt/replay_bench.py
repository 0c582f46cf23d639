"""Cost of a local edit through CrdtDocument versus plain pycrdt, on real editing traces.

Run from the repository root::

    .venv/bin/python -m tests.crdt.replay_bench            # all traces, median of 3
    .venv/bin/python -m tests.crdt.replay_bench --profile automerge-paper

Every variant replays the trace one transaction per edit (a patch with both a deletion and an
insertion is two edits, in both), as a live editor would, and checks ``endContent``:

* ``pycrdt`` — ``Text.insert`` / ``del text[a:b]`` with byte offsets computed beforehand (so
  pycrdt pays nothing for Unicode);
* ``pycrdt+updates`` — the same, plus a ``Doc.observe`` callback keeping each edit's update,
  which is what an editor must broadcast: the baseline CrdtDocument is held to;
* ``CrdtDocument`` — code-point positions, each call returning its update.

``automerge-paper+emoji`` is automerge-paper behind a leading "😀": the same edits, but the text
is never ASCII, so every edit goes through the code-point index instead of the ASCII fast path.
Not a test (no wall-clock asserts in the suite); the numbers go into the report.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import gzip
import json
import pstats
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from pycrdt import Doc, Text

from crdt.document import CrdtDocument

DATA = Path(__file__).resolve().parent.parent / "data"
Edit = tuple[int, int, str]  # (pos, ndel, ins), one of ndel/ins non-empty


def load(name: str) -> tuple[str, str, list[Edit]]:
    """(start, end, edits in code points) — one edit per deletion and per insertion."""
    base = name.removesuffix("+emoji")
    with gzip.open(DATA / f"{base}.json.gz", "rt", encoding="utf-8") as f:
        raw = json.load(f)
    shift = 1 if name.endswith("+emoji") else 0
    start = ("😀" if shift else "") + raw["startContent"]
    edits: list[Edit] = []
    for txn in raw["txns"]:
        for pos, ndel, ins in txn["patches"]:
            if ndel:
                edits.append((pos + shift, ndel, ""))
            if ins:
                edits.append((pos + shift, 0, ins))
    return start, ("😀" if shift else "") + raw["endContent"], edits


def to_bytes(start: str, edits: list[Edit]) -> list[Edit]:
    """The same edits in UTF-8 offsets, computed on a str model (not timed)."""
    model = start
    out: list[Edit] = []
    for pos, ndel, ins in edits:
        if model.isascii():
            out.append((pos, ndel, ins))
        else:
            prefix = len(model[:pos].encode())
            out.append((prefix, len(model[pos : pos + ndel].encode()), ins))
        model = model[:pos] + ins + model[pos + ndel :]
    return out


def run_pycrdt(start: str, end: str, edits: list[Edit], updates: bool) -> float:
    doc: Doc = Doc()
    text = doc.get("text", type=Text)
    text.insert(0, start)
    kept: list[bytes] = []
    if updates:
        doc.observe(lambda event: kept.append(event.update))
    t0 = time.thread_time()
    for pos, ndel, ins in edits:
        if ndel:
            del text[pos : pos + ndel]
        else:
            text.insert(pos, ins)
    elapsed = time.thread_time() - t0
    if str(text) != end:
        raise SystemExit("pycrdt baseline did not reach endContent")
    return elapsed


def run_ours(start: str, end: str, edits: list[Edit]) -> float:
    doc = CrdtDocument()
    doc.insert(0, start)
    kept: list[bytes] = []
    keep = kept.append
    insert, delete = doc.insert, doc.delete
    t0 = time.thread_time()
    for pos, ndel, ins in edits:
        if ndel:
            keep(delete(pos, ndel))
        else:
            keep(insert(pos, ins))
    elapsed = time.thread_time() - t0
    if doc.text != end:
        raise SystemExit("CrdtDocument did not reach endContent")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("traces", nargs="*", default=[
        "automerge-paper", "seph-blog1", "automerge-paper+emoji"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile CrdtDocument only")
    args = parser.parse_args()
    for name in args.traces:
        start, end, edits = load(name)
        if args.profile:
            cProfile.runctx("run_ours(start, end, edits)", globals(), locals(), "/tmp/crdt.prof")
            pstats.Stats("/tmp/crdt.prof").sort_stats("tottime").print_stats(15)
            continue
        medians = measure(start, end, edits, args.runs)
        per_edit = {key: value / len(edits) * 1e6 for key, value in medians.items()}
        ratio = medians["CrdtDocument"] / medians["pycrdt+updates"]
        print(f"{name}: {len(edits)} edits, median of {args.runs}, thread CPU time (s; us/edit)")
        for key, value in medians.items():
            print(f"  {key:15} {value:7.3f} s  {per_edit[key]:6.2f} us")
        print(f"  CrdtDocument / pycrdt+updates = {ratio:.3f}")


def measure(start: str, end: str, edits: list[Edit], runs: int) -> dict[str, float]:
    """Median seconds per variant; runs are interleaved so drift hits every variant alike."""
    byte_edits = to_bytes(start, edits)
    variants: dict[str, Callable[[], float]] = {
        "pycrdt": lambda: run_pycrdt(start, end, byte_edits, updates=False),
        "pycrdt+updates": lambda: run_pycrdt(start, end, byte_edits, updates=True),
        "CrdtDocument": lambda: run_ours(start, end, edits),
    }
    times: dict[str, list[float]] = {key: [] for key in variants}
    for _ in range(runs):
        for key, run in variants.items():
            gc.collect()
            times[key].append(run())
    return {key: statistics.median(values) for key, values in times.items()}


if __name__ == "__main__":
    main()
