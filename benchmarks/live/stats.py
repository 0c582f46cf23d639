"""Turning what the workers measured into the numbers the report shows."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any

from benchmarks.live.markers import split_key


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (``q`` in 0..100); NaN if empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds of values given in seconds."""
    s = sorted(values)
    if not s:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan,
                "mean": math.nan}
    return {
        "n": len(s),
        "p50": percentile(s, 50) * 1e3,
        "p95": percentile(s, 95) * 1e3,
        "p99": percentile(s, 99) * 1e3,
        "max": s[-1] * 1e3,
        "mean": sum(s) / len(s) * 1e3,
    }


def unpack(raw: bytes, typecode: str) -> array[Any]:
    a = array(typecode)
    a.frombytes(raw)
    return a


def merge_worker_results(results: list[dict[str, Any]], editors_per_doc: dict[str, int],
                         doc_of_editor: dict[int, str]) -> dict[str, Any]:
    """Latency distributions over all workers: per delivery, and per edit (seen by all)."""
    deliveries = array("d")
    lags = array("d")
    worst: dict[int, float] = {}
    receivers: dict[int, int] = {}
    for r in results:
        deliveries.extend(unpack(r["latencies"], "d"))
        lags.extend(unpack(r["lags"], "d"))
        keys = unpack(r["edit_keys"], "q")
        ws = unpack(r["edit_worst"], "d")
        cs = unpack(r["edit_receivers"], "l")
        for k, w, c in zip(keys, ws, cs, strict=True):
            if w > worst.get(k, -math.inf):
                worst[k] = w
            receivers[k] = receivers.get(k, 0) + c
    seen_by_all = [
        w for k, w in worst.items()
        if receivers[k] >= editors_per_doc[doc_of_editor[split_key(k)[0]]] - 1
    ]
    return {
        "delivery_ms": summary_ms(deliveries),
        "edit_seen_by_all_ms": summary_ms(seen_by_all),
        "send_lag_ms": summary_ms(lags),
        "edits_seen_by_all": len(seen_by_all),
    }
