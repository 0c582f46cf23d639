"""Counters the server keeps about itself, rendered in the Prometheus text format.

Plain attributes, bumped inline on the hot paths (an attribute add costs ~20 ns; a metrics
library with label lookups would cost more than the fan-out it measures).  ``ops/s`` is derived
from a ring of per-second buckets so ``/metrics`` needs no background task.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable

#: Upper bounds (seconds) of the relay lag histogram buckets.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Label cardinality bounds: (document, origin) gauges kept, origins with a histogram.
MAX_LAG_SERIES = 100
MAX_LAG_ORIGINS = 32


def label(value: str) -> str:
    """A Prometheus label value, escaped (document names may hold quotes or newlines)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class RelayLag:
    """How long relayed changes took to arrive: origin's append to local delivery.

    The relay reports each record it hands to a room (:meth:`observe`).  Kept bounded: a gauge
    of the last lag per (document, origin) for at most :data:`MAX_LAG_SERIES` pairs (the most
    recently seen; a document's series go when its room closes, :meth:`forget`), and one
    histogram per origin replica for at most :data:`MAX_LAG_ORIGINS` origins.
    """

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], float] = {}
        self.buckets: dict[str, list[int]] = {}  # origin -> count per bucket, +Inf last
        self.sums: dict[str, float] = {}

    def observe(self, doc: str, origin: str, seconds: float) -> None:
        seconds = max(0.0, seconds)
        key = (doc, origin)
        self.last.pop(key, None)  # re-insert: dict order is recency order
        self.last[key] = seconds
        if len(self.last) > MAX_LAG_SERIES:
            del self.last[next(iter(self.last))]
        counts = self.buckets.get(origin)
        if counts is None:
            if len(self.buckets) >= MAX_LAG_ORIGINS:
                oldest = next(iter(self.buckets))
                del self.buckets[oldest]
                self.sums.pop(oldest, None)
            counts = self.buckets[origin] = [0] * (len(LAG_BUCKETS) + 1)
        counts[bisect_left(LAG_BUCKETS, seconds)] += 1
        self.sums[origin] = self.sums.get(origin, 0.0) + seconds

    def forget(self, doc: str) -> None:
        for key in [k for k in self.last if k[0] == doc]:
            del self.last[key]

    def render(self) -> list[str]:
        name = "weft_relay_lag_seconds"
        lines = [f"# HELP {name} Seconds from a change's append to the log (Redis stream id "
                 "time) to its delivery here; last value per document and origin replica.",
                 f"# TYPE {name} gauge"]
        for (doc, origin), seconds in sorted(self.last.items()):
            lines.append(f'{name}{{doc="{label(doc)}",origin="{label(origin)}"}} {seconds:g}')
        hist = "weft_relay_lag_by_origin_seconds"
        lines += [f"# HELP {hist} Relay lag of every delivered change, per origin replica.",
                  f"# TYPE {hist} histogram"]
        for origin, counts in sorted(self.buckets.items()):
            tag = f'origin="{label(origin)}"'
            total = 0
            for bound, count in zip((*LAG_BUCKETS, float("inf")), counts, strict=True):
                total += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'{hist}_bucket{{{tag},le="{le}"}} {total}')
            lines.append(f"{hist}_sum{{{tag}}} {self.sums[origin]:g}")
            lines.append(f"{hist}_count{{{tag}}} {total}")
        return lines


class Metrics:
    """All server counters and gauges in one place."""

    WINDOW_SECONDS = 10

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.connections: Counter[str] = Counter()  # gauge per endpoint: "ot", "crdt"
        self.connections_total: Counter[str] = Counter()
        self.ops_total: Counter[str] = Counter()  # per engine kind
        self.errors_total: Counter[str] = Counter()  # per error code
        self.closes_total: Counter[int] = Counter()  # per close code we sent
        self.bytes_in = 0
        self.bytes_out = 0
        self.messages_in = 0
        self.messages_out = 0
        self.store_commits = 0
        self.store_records = 0
        self.store_commit_seconds = 0.0
        self.rooms_loaded_total = 0
        self.rooms_unloaded_total = 0
        # Causal waits (server.causal): per (endpoint, outcome), and seconds per endpoint.
        self.causal_waits_total: Counter[tuple[str, str]] = Counter()
        self.causal_wait_seconds_total: dict[str, float] = {}
        self.relay_lag = RelayLag()
        # Hooks (server.hooks): calls per event, failures per (event, "error"|"timeout"),
        # notifications dropped from a full queue; webhook deliveries per result.
        self.hook_calls_total: Counter[str] = Counter()
        self.hook_failures_total: Counter[tuple[str, str]] = Counter()
        self.hook_dropped_total: Counter[str] = Counter()
        self.webhook_deliveries_total: Counter[str] = Counter()  # delivered, failed, dropped
        self.webhook_attempts_total = 0
        self._buckets: dict[int, int] = {}

    def op(self, kind: str) -> None:
        """Count one accepted edit (for ``ops_total`` and the ops/s window)."""
        self.ops_total[kind] += 1
        second = int(self._clock())
        self._buckets[second] = self._buckets.get(second, 0) + 1
        if len(self._buckets) > self.WINDOW_SECONDS + 2:
            for old in [s for s in self._buckets if s < second - self.WINDOW_SECONDS]:
                del self._buckets[old]

    def ops_per_second(self) -> float:
        """Mean accepted edits per second over the last full ``WINDOW_SECONDS`` seconds."""
        now = int(self._clock())
        total = sum(n for s, n in self._buckets.items() if now - self.WINDOW_SECONDS <= s < now)
        return total / self.WINDOW_SECONDS

    def causal_wait(self, endpoint: str, outcome: str, seconds: float) -> None:
        """Count one request that presented a causal token: "immediate", "waited", "timeout"."""
        self.causal_waits_total[endpoint, outcome] += 1
        total = self.causal_wait_seconds_total.get(endpoint, 0.0)
        self.causal_wait_seconds_total[endpoint] = total + seconds

    def sent(self, nbytes: int, copies: int = 1) -> None:
        self.bytes_out += nbytes * copies
        self.messages_out += copies

    def received(self, nbytes: int) -> None:
        self.bytes_in += nbytes
        self.messages_in += 1

    def render(self, rooms: dict[str, int]) -> str:
        """The Prometheus exposition text; ``rooms`` maps room state to count."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP weft_{name} {help_}")
            lines.append(f"# TYPE weft_{name} {kind}")
            for labels, value in samples:
                lines.append(f"weft_{name}{labels} {value:g}")

        def by(
            label: str, counter: Counter[str] | Counter[int], keys: tuple[str, ...] = ()
        ) -> list[tuple[str, float]]:
            names = sorted({*map(str, counter), *keys})
            values = {str(k): v for k, v in counter.items()}
            return [(f'{{{label}="{k}"}}', values.get(k, 0)) for k in names]

        endpoints = ("crdt", "ot")
        metric("connections", "gauge", "Open WebSocket connections.",
               by("endpoint", self.connections, endpoints))
        metric("connections_total", "counter", "WebSocket connections accepted.",
               by("endpoint", self.connections_total, endpoints))
        metric("rooms", "gauge", "Documents held in memory, by lifecycle state.",
               by("state", Counter(rooms), ("live",)))
        metric("ops_total", "counter", "Edits accepted.", by("engine", self.ops_total, endpoints))
        metric("ops_per_second", "gauge",
               f"Edits accepted per second over the last {self.WINDOW_SECONDS} s.",
               [("", self.ops_per_second())])
        metric("errors_total", "counter", "Errors reported to clients, by code.",
               by("code", self.errors_total))
        metric("closes_total", "counter", "Connections closed by the server, by close code.",
               by("code", self.closes_total))
        metric("bytes_in_total", "counter", "WebSocket payload bytes received.",
               [("", self.bytes_in)])
        metric("bytes_out_total", "counter", "WebSocket payload bytes sent (all copies).",
               [("", self.bytes_out)])
        metric("messages_in_total", "counter", "WebSocket messages received.",
               [("", self.messages_in)])
        metric("messages_out_total", "counter", "WebSocket messages sent (all copies).",
               [("", self.messages_out)])
        metric("store_commits_total", "counter", "Store transactions (group commits).",
               [("", self.store_commits)])
        metric("store_records_total", "counter", "Log records written.",
               [("", self.store_records)])
        metric("store_commit_seconds_total", "counter", "Time spent in store transactions.",
               [("", self.store_commit_seconds)])
        metric("rooms_loaded_total", "counter", "Rooms loaded from the store.",
               [("", self.rooms_loaded_total)])
        metric("rooms_unloaded_total", "counter", "Rooms stored and unloaded when idle.",
               [("", self.rooms_unloaded_total)])
        metric("uptime_seconds", "gauge", "Seconds since the server started.",
               [("", self._clock() - self.started)])
        metric("causal_waits_total", "counter",
               "Requests with a causal token, by endpoint and outcome "
               "(immediate, waited, timeout).",
               [(f'{{endpoint="{e}",outcome="{o}"}}', n)
                for (e, o), n in sorted(self.causal_waits_total.items())])
        metric("causal_wait_seconds_total", "counter",
               "Time requests spent waiting for this replica to reach their causal token.",
               [(f'{{endpoint="{e}"}}', s)
                for e, s in sorted(self.causal_wait_seconds_total.items())])
        metric("hook_calls_total", "counter", "Hook handler calls, by event.",
               by("event", self.hook_calls_total))
        metric("hook_failures_total", "counter",
               "Hook handlers that raised or timed out, by event and reason.",
               [(f'{{event="{e}",reason="{r}"}}', n)
                for (e, r), n in sorted(self.hook_failures_total.items())])
        metric("hook_events_dropped_total", "counter",
               "Hook notifications dropped (oldest first) because the hook queue was full.",
               by("event", self.hook_dropped_total))
        metric("webhook_deliveries_total", "counter",
               "Webhook events by result: delivered, failed (attempts exhausted), dropped "
               "(queue full).", by("result", self.webhook_deliveries_total,
                                   ("delivered", "dropped", "failed")))
        metric("webhook_attempts_total", "counter", "Webhook POST attempts (retries included).",
               [("", self.webhook_attempts_total)])
        lines.extend(self.relay_lag.render())
        return "\n".join(lines) + "\n"
