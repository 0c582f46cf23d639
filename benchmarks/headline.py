"""The headline: one row per server with the figures people compare, and ratios to the best peer.

The benchmark issue asks for exactly this table (10 editors x 5 keys/s latency, the sustained
rate of the ramp, idle memory per connection, the automerge-paper replay) with each Weft
figure divided by the best peer's in the same run, so a reader never has to do the sums.  Each
row also says what an edit survives: the peers keep documents in memory only, while Weft
writes to disk, and that cost belongs beside the latency it explains.

The floor relay (``family == "floor"``) is shown but never counts as the best peer: it is the
machine's and the load generator's floor, not a server anyone could run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

HEADLINE_LOAD = "10x5-one-doc"
HEADLINE_TRACE = "automerge-paper"


def _load(res: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((ld for ld in res.get("loads", []) if ld["scenario"] == name), None)


def _p99(res: dict[str, Any]) -> float:
    ld = _load(res, HEADLINE_LOAD)
    return float(ld["delivery_ms"]["p99"]) if ld else math.nan


def _p50(res: dict[str, Any]) -> float:
    ld = _load(res, HEADLINE_LOAD)
    return float(ld["delivery_ms"]["p50"]) if ld else math.nan


def _sustained(res: dict[str, Any]) -> float:
    ramp = res.get("ramp")
    return float(ramp["max_sustained_ops_s"]) if ramp else math.nan


def _idle_kb(res: dict[str, Any]) -> float:
    idle = res.get("idle")
    return float(idle["kb_per_connection"]) if idle else math.nan


def _best(values: list[float], lower_is_better: bool) -> float:
    known = [v for v in values if math.isfinite(v) and v > 0]
    if not known:
        return math.nan
    return min(known) if lower_is_better else max(known)


def _fmt(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}" if math.isfinite(x) else "-"


def _ratio(x: float, best: float) -> str:
    if not (math.isfinite(x) and math.isfinite(best) and best > 0):
        return ""
    return f" (x{x / best:.2f})"


def _replay(engine: dict[str, Any]) -> dict[str, str]:
    """automerge-paper replay time per engine: 'local s / ingest s'."""
    times: dict[str, dict[str, float]] = {}
    for r in engine.get("traces", []):
        if r.get("trace") == HEADLINE_TRACE and r.get("ok"):
            times.setdefault(r["engine"], {})[r["mode"]] = float(r["median_s"])
    return {eng: " / ".join(f"{m} {_fmt(s, 2)} s" for m, s in sorted(modes.items()))
            for eng, modes in times.items()}


def section(live: dict[str, Any], engine: dict[str, Any]) -> list[str]:
    """The headline table as Markdown lines (empty when the run had no live results)."""
    targets: dict[str, dict[str, Any]] = live.get("targets", {})
    if not targets:
        return []
    peers = [res for res in targets.values() if res.get("family") == "peer"]
    measures: list[tuple[Callable[[dict[str, Any]], float], bool]] = [
        (_p99, True), (_sustained, False), (_idle_kb, True)]
    best = [_best([m(p) for p in peers], low) for m, low in measures]
    replay = _replay(engine)
    rows = []
    for name, res in targets.items():
        ratio = res.get("family") == "weft"
        cells = [name, _fmt(_p50(res))]
        for (measure, _), b in zip(measures, best, strict=True):
            x = measure(res)
            digits = 0 if measure is _sustained else 1
            cells.append(_fmt(x, digits) + (_ratio(x, b) if ratio else ""))
        ramp = res.get("ramp") or {}
        if ramp.get("reached_top"):
            cells[3] += " (top step held)"
        cells.append(replay.get(res.get("engine", ""), "") if ratio else "")
        cells.append(res.get("durability", ""))
        rows.append(cells)
    header = ["target", "10x5 p50 ms", "10x5 p99 ms", "sustained edits/s (p99 < 250 ms)",
              "idle KB/conn", f"{HEADLINE_TRACE} replay", "what an edit survives"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    names = ", ".join(f"{n} {_fmt(b, 0 if i == 1 else 1)}" for i, (n, b) in enumerate(
        zip(("p99 ms", "edits/s", "KB/conn"), best, strict=True)))
    ratios = (f"Ratios (xN) divide a Weft figure by the best peer's in this run ({names}); "
              "below 1 is better for latency and memory, above 1 for the sustained rate."
              if peers else "No peer ran, so there are no ratios (`--peers` adds the peers).")
    out += ["", f"{ratios} The floor row is a bare relay on the same machine and load "
            "generator: latency under it is out of any server's reach here. Replay times are "
            "the engines alone (engine suite, median); the peers' engines are not replayed."]
    return out
