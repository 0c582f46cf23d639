"""The leaders: each holds a real engine document, makes local edits at once and merges what
arrives over the links.

* :class:`CrdtLeader` — a :class:`~engines.crdt_engine.CRDTEngine` per leader.  Each local
  edit's Yjs update is one item of the leader's own stream, flooded as is; any leader applies
  any update as soon as it arrives (updates commute), so every topology works unchanged.
* :class:`OtLeader` — OT needs one order of ops.  One leader (0: the hub in a star) is the
  *sequencer* and holds the :class:`~engines.ot_engine.OTEngine`; every other leader is an
  :class:`ot.client.Client` (ShareDB/Jupiter: one op in flight, later edits buffered and
  composed).  A client's op travels to the sequencer as a unicast *submit* along the shortest
  path — forwarded hop by hop by the leaders in between, so on a ring an op pays extra hops —
  and the sequencer commits it (transforming it over what it committed since the op's
  version).  Committed ops form the sequencer's stream, flooded to everyone and applied in
  version order; a client recognises its own op by ``src``/``seq`` and takes it as its
  acknowledgement.  A submit lost on the way is sent again after a timeout (doubling, capped);
  the sequencer drops a resubmission it already committed (``src``/``seq`` dedup).  Lost
  committed ops are repaired by the replication layer's anti-entropy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from benchmarks.topology.ledger import Ledger
from benchmarks.topology.network import Message, Network
from benchmarks.topology.replication import ReplicationStats, Replicator
from crdt.updates import decode_state_vector
from engines.crdt_engine import CRDTEngine
from engines.ot_engine import OTCommitted, OTEngine, OTSubmit
from ot.client import AwaitingConfirm, AwaitingWithBuffer, Client, Submission
from ot.server_doc import ServerDocument

#: Yjs client id of leader ``i`` is ``CLIENT_ID_BASE + i``: pinned so runs are reproducible.
CLIENT_ID_BASE = 1000
#: The OT leader that orders every op (the hub of a star).
SEQUENCER = 0
#: Cap on the OT resubmission timeout (ms) while a submit gets no answer.
MAX_RTO_MS = 800.0


class Leader(Protocol):
    """What the scenario drives: local edits, arriving messages, anti-entropy ticks."""

    me: int
    replicator: Replicator

    @property
    def text(self) -> str: ...

    @property
    def settled(self) -> bool:
        """Nothing of this leader's own is waiting to be sent or acknowledged."""
        ...

    def edit(self, edit: int, pos: int, length: int, text: str) -> None: ...

    def receive(self, msg: Message, frm: int) -> None: ...


@dataclass
class Shared:
    """What the leaders of one run share: the network, bookkeeping and counters."""

    network: Network
    ledger: Ledger
    stats: ReplicationStats
    routing: str = "pruned"
    gap_wait_ms: float = 15.0
    grace_ms: float = 50.0
    # CRDT: the edit an item (origin, seq) carries, and the state vector that shows it
    crdt_items: dict[tuple[int, int], tuple[int, dict[int, int]]] = field(default_factory=dict)
    # OT: edits carried by a submission (leader, seq) and by a committed version
    batches: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    commits: dict[int, list[int]] = field(default_factory=dict)
    retransmissions: int = 0
    duplicate_submits: int = 0


def _timed(ledger: Ledger, start: int) -> None:
    ledger.charge(time.thread_time_ns() - start)


class CrdtLeader:
    """A leader holding a Yjs document; its updates are its replicated stream."""

    def __init__(self, me: int, shared: Shared, snapshot: bytes) -> None:
        self.me = me
        self._shared = shared
        self.engine = CRDTEngine.load(snapshot, client_id=CLIENT_ID_BASE + me)
        self.replicator = Replicator(me, shared.network, self._deliver, ordered=False,
                                     routing=shared.routing, gap_wait_ms=shared.gap_wait_ms,
                                     grace_ms=shared.grace_ms,
                                     stats=shared.stats)
        self._unseen: list[tuple[int, dict[int, int]]] = []  # arrived, not yet showing

    @property
    def text(self) -> str:
        return self.engine.text

    @property
    def settled(self) -> bool:
        return True  # updates go out the moment they are made

    def edit(self, edit: int, pos: int, length: int, text: str) -> None:
        before = decode_state_vector(self.engine.token)
        start = time.thread_time_ns()
        effects = self.engine.delete(pos, length) if length else self.engine.insert(pos, text)
        _timed(self._shared.ledger, start)
        # When does another leader's text show this edit?  An insertion: once that leader's
        # state vector reaches the clock the insertion ends at (pycrdt counts a struct only
        # when it is integrated).  A deletion adds no clock; it shows once the deleted
        # characters are there, which is sure when the state vector covers everything the
        # author's text held (conservative: it may have shown a little earlier).
        needs = before
        if not length:
            me = CLIENT_ID_BASE + self.me
            needs = {me: decode_state_vector(self.engine.token)[me]}
        for update in effects.broadcast:
            seq = self.replicator.publish(update, len(update))
            self._shared.crdt_items[(self.me, seq)] = (edit, needs)

    def receive(self, msg: Message, frm: int) -> None:
        self.replicator.receive(msg, frm)

    def _deliver(self, origin: int, seq: int, update: bytes) -> None:
        shared = self._shared
        start = time.thread_time_ns()
        self.engine.apply(update, f"leader{origin}")
        _timed(shared.ledger, start)
        shared.ledger.applied(self.me, origin, seq)
        # An update shows in the text only once what it builds on is here too (pycrdt holds
        # it until then); see edit() for what each edit needs.
        self._unseen.append(shared.crdt_items[(origin, seq)])
        state = decode_state_vector(self.engine.token)
        now = shared.network.loop.now
        still = []
        for edit, deps in self._unseen:
            if all(state.get(c, 0) >= clock for c, clock in deps.items()):
                shared.ledger.mark(self.me, (edit,), now)
            else:
                still.append((edit, deps))
        self._unseen = still


def _op_size(version: int, op: Any, src: str | None, seq: int | None) -> int:
    """Bytes of the op as ShareDB's JSON protocol would carry it."""
    return len(orjson.dumps({"a": "op", "v": version, "src": src, "seq": seq, "op": op}))


class OtLeader:
    """The sequencer (holding the OT engine) or a client leader (holding an OT client)."""

    def __init__(self, me: int, shared: Shared, text: str) -> None:
        self.me = me
        self._shared = shared
        self.engine: OTEngine | None = None
        self.client: Client | None = None
        if me == SEQUENCER:
            self.engine = OTEngine(ServerDocument(text))
        else:
            self.client = Client(text, 0, src=f"leader{me}")
        self.replicator = Replicator(me, shared.network, self._deliver, ordered=True,
                                     routing=shared.routing, gap_wait_ms=shared.gap_wait_ms,
                                     grace_ms=shared.grace_ms,
                                     stats=shared.stats)
        self._buffered: list[int] = []  # edits in the client's buffer, not yet submitted
        topo = shared.network.topology
        cond = shared.network.conditions
        path = 0.0
        node = me
        while node != SEQUENCER:
            nxt = topo.next_hop(node, SEQUENCER)
            path += cond.latency(node, nxt) + cond.jitter_ms
            node = nxt
        # Round trip to the sequencer and back over the same number of hops, plus slack.
        self._rto0 = max(2.5 * path, 5.0)

    @property
    def text(self) -> str:
        if self.engine is not None:
            return self.engine.text
        assert self.client is not None  # a leader is either the sequencer or a client
        return self.client.text

    @property
    def settled(self) -> bool:
        return self.client is None or not self.client.pending

    def edit(self, edit: int, pos: int, length: int, text: str) -> None:
        start = time.thread_time_ns()
        if self.engine is not None:
            effects = self.engine.delete(pos, length) if length else self.engine.insert(pos, text)
            _timed(self._shared.ledger, start)
            for commit in effects.broadcast:
                self._commit(commit, [edit])
            return
        assert self.client is not None
        sub = self.client.delete(pos, length) if length else self.client.insert(pos, text)
        _timed(self._shared.ledger, start)
        self._buffered.append(edit)
        if sub is not None:
            self._submit(sub)

    def receive(self, msg: Message, frm: int) -> None:
        if msg.kind != "submit":
            self.replicator.receive(msg, frm)
        elif msg.dest != self.me:  # relay towards the sequencer
            net = self._shared.network
            net.send(self.me, net.topology.next_hop(self.me, msg.dest), msg)
        else:
            self._sequence(msg)

    # -- client side ---------------------------------------------------------------------

    def _submit(self, sub: Submission) -> None:
        self._shared.batches[(self.me, sub.seq)] = self._buffered
        self._buffered = []
        self._send(sub, self._rto0)

    def _send(self, sub: Submission, rto: float) -> None:
        net = self._shared.network
        msg = Message("submit", self.me, sub.seq, sub,
                      _op_size(sub.version, sub.op, sub.src, sub.seq), dest=SEQUENCER)
        net.send(self.me, net.topology.next_hop(self.me, SEQUENCER), msg)
        net.loop.after(rto, lambda: self._maybe_resend(sub.seq, rto))

    def _maybe_resend(self, seq: int, rto: float) -> None:
        assert self.client is not None
        state = self.client.state
        if not isinstance(state, AwaitingConfirm | AwaitingWithBuffer) or state.seq != seq:
            return  # acknowledged meanwhile
        sub = self.client.resend()
        if sub is not None:
            self._shared.retransmissions += 1
            self._send(sub, min(2 * rto, MAX_RTO_MS))

    def _deliver(self, origin: int, seq: int, payload: tuple[int, Any, str | None, int | None]
                 ) -> None:
        shared = self._shared
        client = self.client
        assert client is not None  # the sequencer never receives its own stream
        version, op, src, op_seq = payload
        start = time.thread_time_ns()
        applied = client.receive_op(op, version, src, op_seq)
        _timed(shared.ledger, start)
        shared.ledger.applied(self.me, origin, seq)
        shared.ledger.mark(self.me, shared.commits[version], shared.network.loop.now)
        if applied is None:  # our own op came back: acknowledged; send the buffer, if any
            sub = client.flush()
            if sub is not None:
                self._submit(sub)

    # -- sequencer side ------------------------------------------------------------------

    def _sequence(self, msg: Message) -> None:
        assert self.engine is not None
        sub: Submission = msg.payload
        start = time.thread_time_ns()
        effects = self.engine.apply(OTSubmit(sub.op, sub.version, sub.src, sub.seq),
                                    f"leader{msg.origin}")
        _timed(self._shared.ledger, start)
        if not effects.broadcast:  # a resubmission of an op already committed
            self._shared.duplicate_submits += 1
            return
        for commit in effects.broadcast:
            self._commit(commit, self._shared.batches[(msg.origin, sub.seq)])

    def _commit(self, commit: OTCommitted, edits: list[int]) -> None:
        shared = self._shared
        shared.commits[commit.version] = edits
        shared.ledger.mark(self.me, edits, shared.network.loop.now)
        size = _op_size(commit.version, commit.op, commit.src, commit.seq)
        seq = self.replicator.publish((commit.version, commit.op, commit.src, commit.seq), size)
        if seq != commit.version + 1:
            raise RuntimeError(f"sequencer stream out of step: item {seq} for version "
                               f"{commit.version}")
