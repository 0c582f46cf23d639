"""Replicating streams of items between leaders: flooding with dedup, version vectors and
anti-entropy.

Every item has an origin leader and a per-origin sequence number ``seq`` (1, 2, ...).  What
stops replication loops is the pair ``(origin, seq)``: a leader keeps every item it has seen,
drops a second copy (counted as a *redundant delivery*) and forwards only a first copy — to
its neighbours except the one it came from and except the origin.  With ``routing="pruned"``
(the default) it also skips the origin's own neighbours, which the origin sent the item to
itself; on all-to-all links that means nobody relays, on a ring or star it changes nothing.
Pruning assumes the origin's direct link is the fastest way to its neighbours: when a direct
link is made much slower than a detour (``--link``), ``routing="flood"`` (plain flooding, with
more redundant copies) delivers sooner.

A leader's *version vector* ``vv[origin]`` is the highest ``seq`` up to which it holds every
item of that origin; a digest carries it plus the few items held beyond a gap (a vector with
exceptions).  It serves two jobs:

* **Gap detection.**  An item arriving beyond ``vv[origin] + 1`` means something before it
  was lost or is still on its way (links reorder).  If the gap is still open after a short
  wait, the leader sends its version vector to the neighbour that delivered the item.
* **Anti-entropy.**  Every ``interval`` a leader sends its version vector (a *digest*) to one
  neighbour, taking them in turn and skipping any whose last digest equalled its own while its
  own has not changed since it last sent one — so a quiet, converged network exchanges
  nothing.  A leader receiving a digest pushes the items the sender lacks (*repairs*) — only
  those it has held for longer than a *grace* period (the time an item needs to cross the
  network), since younger ones are most likely still on their way by the ordinary path — and,
  unless the digest was itself a reply, answers with its own digest so the sender can push
  back what it lacks.  This is what repairs the loss of an origin's *last* item (no later item
  reveals the gap) and what heals a partition.  Repaired items are then forwarded like first
  copies.

Delivery to the engine: ``ordered=True`` hands items to the leader in ``seq`` order per origin
(OT: committed ops must be applied in version order); ``ordered=False`` hands each over as it
first arrives (CRDT: updates commute; pycrdt holds ones whose predecessors are missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from benchmarks.topology.clock import EventLoop
from benchmarks.topology.network import Message, Network

ROUTINGS = ("pruned", "flood")


@dataclass
class ReplicationStats:
    """Counters shared by every leader of a run."""

    redundant: int = 0  # copies of an item a leader already had (dropped by dedup)
    gap_pulls: int = 0  # digests sent because a gap stayed open


class Replicator:
    """One leader's side of the replication: its log, version vector and anti-entropy."""

    def __init__(self, me: int, network: Network, deliver: Callable[[int, int, Any], None], *,
                 ordered: bool, routing: str, gap_wait_ms: float, grace_ms: float,
                 stats: ReplicationStats) -> None:
        if routing not in ROUTINGS:
            raise ValueError(f"unknown routing {routing!r}; expected one of {ROUTINGS}")
        n = network.topology.n
        self.me = me
        self._net = network
        self._loop: EventLoop = network.loop
        self._deliver = deliver
        self._ordered = ordered
        self._routing = routing
        self._gap_wait = gap_wait_ms
        self._grace = grace_ms
        self._stats = stats
        self.log: list[dict[int, Message]] = [{} for _ in range(n)]
        self.vv = [0] * n
        self._top = [0] * n  # highest seq held per origin (above vv when there is a gap)
        self._got_at: dict[tuple[int, int], float] = {}  # when each item reached us
        self._delivered = [0] * n
        self._peer_vv: dict[int, tuple[int, ...]] = {}
        self._sent_vv: dict[int, tuple[int, ...]] = {}
        self._gap_checks: set[int] = set()
        self._turn = me  # whose turn for the next digest (staggered across leaders)

    @property
    def neighbours(self) -> tuple[int, ...]:
        return self._net.topology.neighbours[self.me]

    def publish(self, payload: Any, size: int) -> int:
        """Originate an item of ``size`` payload bytes; return its ``seq``."""
        me = self.me
        seq = self.vv[me] + 1
        msg = Message("data", me, seq, payload, size + len(orjson.dumps([me, seq])))
        self.log[me][seq] = msg
        self._got_at[(me, seq)] = self._loop.now
        self.vv[me] = self._top[me] = self._delivered[me] = seq
        for nb in self.neighbours:
            self._net.send(me, nb, msg)
        return seq

    def receive(self, msg: Message, frm: int) -> None:
        if msg.kind == "digest":
            self._receive_digest(msg, frm)
        else:
            self._receive_item(msg, frm)

    def tick(self) -> None:
        """Anti-entropy round (gossip style): one digest, to the next neighbour in turn that
        may differ from us — not every neighbour each round, which on all-to-all links would
        cost n - 1 digests per leader per round."""
        mine = tuple(self.vv)
        neighbours = self.neighbours
        for _ in range(len(neighbours)):
            nb = neighbours[self._turn % len(neighbours)]
            self._turn += 1
            if self._sent_vv.get(nb) != mine or self._peer_vv.get(nb) != mine:
                self._send_digest(nb, reply=False)
                return

    # -- items ---------------------------------------------------------------------------

    def _receive_item(self, msg: Message, frm: int) -> None:
        o, s = msg.origin, msg.seq
        log = self.log[o]
        if s in log or o == self.me:
            self._stats.redundant += 1
            return
        log[s] = msg
        self._got_at[(o, s)] = self._loop.now
        if s > self._top[o]:
            self._top[o] = s
        vv = self.vv
        while vv[o] + 1 in log:
            vv[o] += 1
        if vv[o] < self._top[o] and o not in self._gap_checks:
            self._gap_checks.add(o)
            self._loop.after(self._gap_wait, lambda: self._check_gap(o, frm))
        self._forward(msg, frm)
        if self._ordered:
            while self._delivered[o] < vv[o]:
                self._delivered[o] += 1
                self._deliver(o, self._delivered[o], log[self._delivered[o]].payload)
        else:
            self._deliver(o, s, msg.payload)

    def _forward(self, msg: Message, frm: int) -> None:
        topo = self._net.topology
        skip = {frm, msg.origin}
        if self._routing == "pruned":
            skip.update(topo.neighbours[msg.origin])
        copy = msg if not msg.repair else Message("data", msg.origin, msg.seq, msg.payload,
                                                  msg.size)
        for nb in self.neighbours:
            if nb not in skip:
                self._net.send(self.me, nb, copy)

    def _check_gap(self, origin: int, frm: int) -> None:
        self._gap_checks.discard(origin)
        if self.vv[origin] < self._top[origin]:
            self._stats.gap_pulls += 1
            self._send_digest(frm, reply=False)

    # -- digests -------------------------------------------------------------------------

    def _send_digest(self, nb: int, *, reply: bool) -> None:
        mine = tuple(self.vv)
        self._sent_vv[nb] = mine
        # Items held beyond a gap travel with the vector, so the peer does not push them again.
        extra = tuple((o, s) for o in range(len(mine)) for s in range(mine[o] + 1,
                                                                      self._top[o] + 1)
                      if s in self.log[o])
        payload = (mine, extra)
        self._net.send(self.me, nb, Message("digest", self.me, 0, payload,
                                            len(orjson.dumps(payload)), reply=reply))

    def _receive_digest(self, msg: Message, frm: int) -> None:
        theirs, extra = msg.payload
        self._peer_vv[frm] = theirs
        held = set(extra)
        recent = self._loop.now - self._grace
        for o, have in enumerate(theirs):
            log = self.log[o]
            for s in range(have + 1, self._top[o] + 1):
                item = log.get(s)
                if item is not None and (o, s) not in held and self._got_at[(o, s)] <= recent:
                    self._net.send(self.me, frm, Message("data", o, s, item.payload, item.size,
                                                         repair=True))
        if not msg.reply:
            self._send_digest(frm, reply=True)
