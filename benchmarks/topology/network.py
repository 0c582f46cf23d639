"""Who is linked to whom, and what the links do to messages: latency with jitter, loss,
partitions — plus the count of every message and byte that crosses a link.

Links are bidirectional and independent per direction.  A message sent on a link is dropped
if the link is cut by a partition at send time or by a loss draw; otherwise it arrives after
the link's latency plus uniform jitter (so messages on one link may overtake each other).
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.topology.clock import EventLoop

TOPOLOGIES = ("ring", "star", "all-to-all")


class Topology:
    """The links between ``n`` leaders, with shortest-path next hops for unicast."""

    def __init__(self, kind: str, n: int) -> None:
        if kind not in TOPOLOGIES:
            raise ValueError(f"unknown topology {kind!r}; expected one of {', '.join(TOPOLOGIES)}")
        if type(n) is not int or n < 2:
            raise ValueError(f"a topology needs at least 2 leaders, got {n!r}")
        self.kind = kind
        self.n = n
        edges: set[tuple[int, int]] = set()
        if kind == "ring":
            edges = {_edge(i, (i + 1) % n) for i in range(n)}
        elif kind == "star":  # leader 0 is the hub
            edges = {(0, i) for i in range(1, n)}
        else:
            edges = {(i, j) for i in range(n) for j in range(i + 1, n)}
        self.edges = frozenset(edges)
        self.neighbours: tuple[tuple[int, ...], ...] = tuple(
            tuple(sorted(j for j in range(n) if _edge(i, j) in edges)) for i in range(n))
        self._next = [self._next_hops_to(dst) for dst in range(n)]

    def linked(self, a: int, b: int) -> bool:
        return _edge(a, b) in self.edges

    def next_hop(self, src: int, dst: int) -> int:
        """The neighbour of ``src`` on a shortest path to ``dst`` (lowest id on ties)."""
        return self._next[dst][src]

    def hops(self, src: int, dst: int) -> int:
        count = 0
        while src != dst:
            src = self.next_hop(src, dst)
            count += 1
        return count

    def _next_hops_to(self, dst: int) -> list[int]:
        """BFS from ``dst``: each node's parent in the tree is its next hop towards ``dst``."""
        nxt = [-1] * self.n
        nxt[dst] = dst
        queue = deque([dst])
        while queue:
            node = queue.popleft()
            for nb in self.neighbours[node]:
                if nxt[nb] == -1:
                    nxt[nb] = node
                    queue.append(nb)
        return nxt


def _edge(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


@dataclass(frozen=True, slots=True)
class Partition:
    """Between ``start_ms`` and ``end_ms`` every link between ``side`` and the other leaders
    drops everything sent on it; afterwards the links heal."""

    start_ms: float
    end_ms: float
    side: frozenset[int]

    def cuts(self, a: int, b: int, now: float) -> bool:
        return self.start_ms <= now < self.end_ms and ((a in self.side) != (b in self.side))

    def describe(self) -> str:
        return (f"leaders {{{', '.join(map(str, sorted(self.side)))}}} cut off from "
                f"{self.start_ms:.0f} to {self.end_ms:.0f} ms")


@dataclass(frozen=True, slots=True)
class Conditions:
    """Link behaviour: default latency and jitter (ms), per-link latency overrides, the
    probability that a message is lost, and an optional partition."""

    latency_ms: float = 20.0
    jitter_ms: float = 5.0
    link_latency_ms: dict[tuple[int, int], float] = field(default_factory=dict)
    loss: float = 0.0
    partition: Partition | None = None

    def latency(self, a: int, b: int) -> float:
        return self.link_latency_ms.get(_edge(a, b), self.latency_ms)


@dataclass(frozen=True, slots=True)
class Message:
    """What travels on a link.  ``kind``: ``"data"`` (an item of a replicated stream,
    ``(origin, seq)``), ``"digest"`` (a version vector, for anti-entropy) or ``"submit"`` (an
    OT op on its way to the sequencer ``dest``).  ``size`` is the encoded size in bytes."""

    kind: str
    origin: int
    seq: int
    payload: Any
    size: int
    dest: int = -1
    repair: bool = False
    reply: bool = False


@dataclass
class Traffic:
    """Messages and bytes put on links, per kind; drops by cause."""

    messages: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    cut: int = 0


class Network:
    """Sends messages over a topology's links under :class:`Conditions`; calls
    ``deliver(dst, src, message)`` on arrival."""

    def __init__(self, loop: EventLoop, topology: Topology, conditions: Conditions,
                 rng: random.Random) -> None:
        if not 0.0 <= conditions.loss < 1.0:
            raise ValueError(f"loss must be a probability in [0, 1), got {conditions.loss!r}")
        self.loop = loop
        self.topology = topology
        self.conditions = conditions
        self.traffic = Traffic()
        self.deliver: Callable[[int, int, Message], None] = _nowhere
        self._rng = rng

    def send(self, src: int, dst: int, message: Message) -> None:
        if not self.topology.linked(src, dst):
            raise ValueError(f"leaders {src} and {dst} are not linked in this "
                             f"{self.topology.kind}")
        traffic = self.traffic
        kind = "repair" if message.repair else message.kind
        traffic.messages[kind] += 1
        traffic.bytes[kind] += message.size
        cond = self.conditions
        # Draw both numbers every time so one link's fate does not shift the others' draws.
        lost = self._rng.random() < cond.loss
        jitter = self._rng.uniform(-cond.jitter_ms, cond.jitter_ms)
        if cond.partition is not None and cond.partition.cuts(src, dst, self.loop.now):
            traffic.cut += 1
            return
        if lost:
            traffic.lost += 1
            return
        delay = max(0.1, cond.latency(src, dst) + jitter)
        self.loop.after(delay, lambda: self.deliver(dst, src, message))


def _nowhere(dst: int, src: int, message: Message) -> None:
    raise RuntimeError("Network.deliver was not set")
