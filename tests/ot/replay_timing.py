"""Time a sequential editing trace replayed through ``ServerDocument.submit``.

    .venv/bin/python -m tests.ot.replay_timing [trace-name] [runs] [--engine]

Each patch becomes the op a ShareDB client would send (``[pos, {"d": n}]`` / ``[pos, "text"]``),
submitted at the document's current version: op construction, version check, validation, log
append and buffer edit are all inside the timed loop; loading the trace is not.  With
``--engine`` the ops go through ``OTEngine.apply`` instead (adds the ``OTSubmit`` change, the
persisted record and the ack/broadcast objects).  Prints the median of the runs.  (A
measurement tool, not a test: no timing is asserted anywhere.)
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from engines.ot_engine import OTEngine, OTSubmit
from ot.server_doc import ServerDocument

DATA = Path(__file__).resolve().parent.parent / "data"


def load(name: str) -> dict[str, Any]:
    with gzip.open(DATA / f"{name}.json.gz") as f:
        trace: dict[str, Any] = json.load(f)
    return trace


def replay(trace: dict[str, Any]) -> tuple[ServerDocument, float]:
    doc = ServerDocument(trace["startContent"])
    submit = doc.submit
    start = time.perf_counter()
    for txn in trace["txns"]:
        for pos, ndel, ins in txn["patches"]:
            if ndel:
                submit([pos, {"d": ndel}] if pos else [{"d": ndel}], doc.version)
            if ins:
                submit([pos, ins] if pos else [ins], doc.version)
    return doc, time.perf_counter() - start


def replay_engine(trace: dict[str, Any]) -> tuple[ServerDocument, float]:
    engine = OTEngine(ServerDocument(trace["startContent"]))
    doc = engine.document
    apply = engine.apply
    start = time.perf_counter()
    for txn in trace["txns"]:
        for pos, ndel, ins in txn["patches"]:
            if ndel:
                apply(OTSubmit([pos, {"d": ndel}] if pos else [{"d": ndel}], doc.version, "c", 1),
                      "author")
            if ins:
                apply(OTSubmit([pos, ins] if pos else [ins], doc.version, "c", 1), "author")
    return doc, time.perf_counter() - start


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--engine"]
    run = replay_engine if "--engine" in sys.argv else replay
    name = args[0] if args else "automerge-paper"
    runs = int(args[1]) if len(args) > 1 else 5
    trace = load(name)
    times = []
    for _ in range(runs):
        doc, seconds = run(trace)
        if doc.text != trace["endContent"]:
            raise SystemExit(f"{name}: replay did not reach endContent")
        times.append(seconds)
    edits = doc.version
    median = statistics.median(times)
    print(f"{name}: {edits} ops, median {median:.3f} s over {runs} runs "
          f"({median / edits * 1e6:.2f} µs/op); runs: {', '.join(f'{t:.3f}' for t in times)}")


if __name__ == "__main__":
    main()
