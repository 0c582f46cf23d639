"""One run: N leaders of one engine over one topology under given link conditions, typing
until every edit has reached every leader; then the check (identical texts) and the numbers.

The run ends by itself: anti-entropy rounds stop once every leader's text holds every edit and
no leader has an op awaiting acknowledgement, and the messages still in flight then drain.  A
run that passes ``limit_ms`` of simulated time is cut short and reported as not converged.
"""

from __future__ import annotations

import functools
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.topology.clock import EventLoop
from benchmarks.topology.leaders import CLIENT_ID_BASE, CrdtLeader, Leader, OtLeader, Shared
from benchmarks.topology.ledger import Ledger
from benchmarks.topology.network import Conditions, Network, Topology
from benchmarks.topology.replication import ReplicationStats
from benchmarks.topology.workload import INITIAL_TEXT, Typing
from crdt.document import CrdtDocument

ENGINES = ("ot", "crdt")


@dataclass(frozen=True)
class Scenario:
    topology: str = "ring"
    engine: str = "crdt"
    leaders: int = 5
    typing: Typing = field(default_factory=Typing)
    conditions: Conditions = field(default_factory=Conditions)
    condition: str = "clean"  # a label for tables: clean, loss, partition, ...
    seed: int = 1
    ae_interval_ms: float = 100.0
    routing: str = "pruned"
    limit_ms: float = 600_000.0

    def describe(self) -> str:
        c = self.conditions
        parts = [f"{self.topology}/{self.engine}", f"{self.leaders} leaders",
                 f"latency {c.latency_ms:g}±{c.jitter_ms:g} ms"]
        if c.loss:
            parts.append(f"loss {c.loss:.0%}")
        if c.partition is not None:
            parts.append(c.partition.describe())
        return ", ".join(parts)


@dataclass
class Outcome:
    """The result row plus the live objects (for tests that look inside)."""

    result: dict[str, Any]
    leaders: list[Leader]
    ledger: Ledger
    network: Network
    shared: Shared


def simulate(s: Scenario) -> Outcome:
    """Run the scenario to its end; return the result row and the objects that made it."""
    if s.engine not in ENGINES:
        raise ValueError(f"unknown engine {s.engine!r}; expected one of {', '.join(ENGINES)}")
    if not s.ae_interval_ms > 0:
        raise ValueError(f"ae_interval_ms must be > 0, got {s.ae_interval_ms!r}")
    wall = time.perf_counter()
    loop = EventLoop()
    topo = Topology(s.topology, s.leaders)
    network = Network(loop, topo, s.conditions, random.Random(f"{s.seed}:links"))
    n = s.leaders
    expected = n * s.typing.edits
    ledger = Ledger(n)
    shared = Shared(network, ledger, ReplicationStats(), routing=s.routing,
                    gap_wait_ms=2 * s.conditions.jitter_ms + 1.0,
                    # an item younger than this may still be on its way by the ordinary path,
                    # given that the digest asking for it also spent time on a link
                    grace_ms=_crossing_ms(topo, s.conditions) + _slowest_ms(s.conditions))
    leaders: list[Leader]
    if s.engine == "crdt":
        seed_doc = CrdtDocument(client_id=CLIENT_ID_BASE - 1)
        seed_doc.insert(0, INITIAL_TEXT)
        leaders = [CrdtLeader(i, shared, seed_doc.snapshot()) for i in range(n)]
    else:
        leaders = [OtLeader(i, shared, INITIAL_TEXT) for i in range(n)]
    network.deliver = lambda dst, src, msg: leaders[dst].receive(msg, src)

    for i, leader in enumerate(leaders):
        rng = random.Random(f"{s.seed}:typing:{i}")
        for t in s.typing.times_ms(rng):
            loop.at(t, functools.partial(_type, leader, rng, s.typing, ledger, loop))

    def tick() -> None:
        if ledger.everyone_has_everything(expected) and all(x.settled for x in leaders):
            return  # stop anti-entropy; what is in flight drains
        for leader in leaders:
            leader.replicator.tick()
        loop.after(s.ae_interval_ms, tick)

    loop.after(s.ae_interval_ms, tick)
    finished = loop.run(s.limit_ms)
    result = _result(s, leaders, ledger, network, shared, finished, expected)
    result["wall_s"] = time.perf_counter() - wall
    return Outcome(result, leaders, ledger, network, shared)


def run(s: Scenario) -> dict[str, Any]:
    """Run the scenario; return its result row (``ok`` says whether every leader converged)."""
    return simulate(s).result


def _type(leader: Leader, rng: random.Random, typing: Typing, ledger: Ledger,
          loop: EventLoop) -> None:
    pos, length, text = typing.choose(rng, len(leader.text))
    leader.edit(ledger.new_edit(leader.me, loop.now), pos, length, text)


def _slowest_ms(c: Conditions) -> float:
    return max([c.latency_ms, *c.link_latency_ms.values()]) + c.jitter_ms


def _crossing_ms(topo: Topology, c: Conditions) -> float:
    """Longest time an item needs along a shortest path (diameter x slowest link)."""
    diameter = max(topo.hops(a, b) for a in range(topo.n) for b in range(topo.n))
    return diameter * _slowest_ms(c)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of the finite ``values`` (NaN when there are none)."""
    xs = sorted(v for v in values if math.isfinite(v))
    if not xs:
        return math.nan
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


def _result(s: Scenario, leaders: list[Leader], ledger: Ledger, network: Network,
            shared: Shared, finished: bool, expected: int) -> dict[str, Any]:
    texts = [x.text for x in leaders]
    problems = []
    if not finished:
        problems.append(f"cut short at {s.limit_ms:.0f} simulated ms")
    if not ledger.everyone_has_everything(expected):
        problems.append(f"{expected * s.leaders - ledger.holdings} (edit, leader) pairs "
                        "never delivered")
    differing = sorted({i for i, t in enumerate(texts) if t != texts[0]})
    if differing:
        problems.append(f"leaders {differing} differ from leader 0's text")
    max_applies = max(ledger.applies.values(), default=0)
    if max_applies > 1:
        problems.append(f"an item was applied {max_applies} times at one leader")
    spreads = ledger.spreads_ms()
    complete_at = max((max(row) for row in ledger.had), default=math.nan)
    last_edit = max(ledger.created, default=math.nan)
    traffic = network.traffic
    edits = max(1, len(ledger.created))
    msgs = sum(traffic.messages.values())
    payload_msgs = msgs - traffic.messages["digest"]
    c = s.conditions
    return {
        "topology": s.topology, "engine": s.engine, "condition": s.condition,
        "leaders": s.leaders, "edits": len(ledger.created), "rate_per_s": s.typing.rate,
        "latency_ms": c.latency_ms, "jitter_ms": c.jitter_ms, "loss": c.loss,
        "partition": c.partition.describe() if c.partition else None, "seed": s.seed,
        "routing": s.routing, "ae_interval_ms": s.ae_interval_ms,
        "ok": not problems, "problems": problems,
        "converged_after_last_edit_ms": complete_at - last_edit,
        "spread_ms": {"p50": percentile(spreads, 50), "p95": percentile(spreads, 95),
                      "max": percentile(spreads, 100)},
        "messages_per_edit": msgs / edits,
        "payload_messages_per_edit": payload_msgs / edits,
        "control_messages_per_edit": traffic.messages["digest"] / edits,
        "bytes_per_edit": sum(traffic.bytes.values()) / edits,
        "messages": dict(traffic.messages), "bytes": dict(traffic.bytes),
        "redundant_deliveries": shared.stats.redundant,
        "redundant_per_edit": shared.stats.redundant / edits,
        "lost": traffic.lost, "cut": traffic.cut, "repairs": traffic.messages["repair"],
        "gap_pulls": shared.stats.gap_pulls, "retransmissions": shared.retransmissions,
        "duplicate_submits": shared.duplicate_submits,
        "engine_cpu_us_per_edit": ledger.cpu_ns / 1000 / edits,
        "engine_calls": ledger.engine_calls, "max_applies_per_item": max_applies,
        "final_length": len(texts[0]), "simulated_ms": network.loop.now,
    }
