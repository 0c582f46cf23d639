"""Replaying editing traces through the engines, the way live editors would produce the edits.

Three ways, each returning the text it ends with (the caller checks it against ``endContent``):

* :func:`replay_local` — a sequential trace as a stream of edits made on one engine document
  through the engine interface (``insert``/``delete`` at code points), one edit at a time, each
  producing what would be persisted and broadcast.
* :func:`replay_ingest` — the server side of a sequential trace: the ops/updates one client
  would send, prepared beforehand, then ingested one by one by a server-side engine document.
* :func:`replay_concurrent` — a concurrent trace with real concurrency: one client per agent,
  each editing its own copy, merged by the engine (OT: transformed through the server
  document; CRDT: exchanging updates).  Each transaction is made on exactly the state its
  parents describe, so the edit positions in the trace mean what they meant to their author.
"""

from __future__ import annotations

from typing import Any

from benchmarks.trace_io import ConcurrentTrace, SequentialTrace, version_vectors
from crdt.document import CrdtDocument
from engines.crdt_engine import CRDTEngine
from engines.interface import Engine
from engines.ot_engine import OTEngine, OTSubmit
from ot import apply as ot_apply
from ot import transform as ot_transform

ENGINES: dict[str, type[Engine]] = {"ot": OTEngine, "crdt": CRDTEngine}
CLIENT_ID = 0x5EED1234  # the one client of a sequential trace (see prepare_ingest)


class ReplayError(RuntimeError):
    """The trace cannot be replayed as asked (e.g. an agent's view is not a server order)."""


def replay_local(engine_cls: type[Engine], trace: SequentialTrace) -> Engine:
    """Apply every patch as a local edit on one engine document; return the document."""
    doc = engine_cls.load()
    if trace.start:
        doc.insert(0, trace.start)
    insert, delete = doc.insert, doc.delete
    for patches in trace.txns:
        for pos, ndel, ins in patches:
            if ndel:
                delete(pos, ndel)
            if ins:
                insert(pos, ins)
    return doc


def prepare_ingest(kind: str, trace: SequentialTrace) -> list[Any]:
    """What one client would send for each edit of ``trace``, ready for :func:`replay_ingest`.

    OT: ``OTSubmit`` ops made at the version the client has (it is always in sync here).
    CRDT: the Yjs update each edit produces on the client's own document.
    """
    changes: list[Any] = []
    if kind == "ot":
        for patches in ([[(0, 0, trace.start)]] if trace.start else []) + trace.txns:
            for op in _edit_ops(patches):
                changes.append(OTSubmit(op, len(changes)))
        return changes
    # A fixed id, 32 bits wide like a Yjs client's: a random one (pycrdt draws 53 bits) would
    # make the byte counts of every run differ by the length of its varint.
    client = CrdtDocument(client_id=CLIENT_ID)
    if trace.start:
        changes.append(client.insert(0, trace.start))
    for patches in trace.txns:
        for pos, ndel, ins in patches:
            if ndel:
                changes.append(client.delete(pos, ndel))
            if ins:
                changes.append(client.insert(pos, ins))
    return changes


def replay_ingest(engine_cls: type[Engine], changes: list[Any]) -> Engine:
    """A server-side engine document ingesting prepared client changes one at a time."""
    doc = engine_cls.load()
    apply = doc.apply
    for change in changes:
        apply(change, "client")
    return doc


def replay_concurrent(kind: str, trace: ConcurrentTrace) -> tuple[str, list[str]]:
    """Replay a concurrent trace; return (server text, every agent's text) once all is merged."""
    if kind == "ot":
        return _concurrent_ot(trace)
    return _concurrent_crdt(trace)


def _edit_ops(patches: list[tuple[int, int, str]]) -> list[list[Any]]:
    """``text-unicode`` ops for trace patches, one per patch (empty patches give none)."""
    ops: list[list[Any]] = []
    for pos, ndel, ins in patches:
        op: list[Any] = [pos] if pos else []
        if ndel:
            op.append({"d": ndel})
        if ins:
            op.append(ins)
        if ndel or ins:
            ops.append(op)
    return ops


def _concurrent_ot(trace: ConcurrentTrace) -> tuple[str, list[str]]:
    """OT with one client per agent and a server that orders everything.

    Agents may have several edits the server has committed but they have not yet seen the
    echo of, so this runs the server side of the Jupiter protocol: per agent, the committed
    foreign ops not yet delivered to it (``pending``), kept in that agent's context.  An agent's
    edit is transformed over its pending ops (and they over it) to reach the server's current
    version, then committed through the server engine; foreign ops are delivered to an agent
    in commit order exactly when the trace says its author had seen them.
    """
    server = OTEngine.load()
    n = trace.num_agents
    texts = [""] * n
    # (author, op or None, last op of its transaction?) per agent, in commit order
    pending: list[list[tuple[int, list[Any] | None, bool]]] = [[] for _ in range(n)]
    seen = [[0] * n for _ in range(n)]  # seen[agent][author]: foreign edits delivered
    vvs = version_vectors(trace)
    for t, vv in zip(trace.txns, vvs, strict=True):
        me = t.agent
        _deliver_ot(me, vv, texts, pending[me], seen[me])
        ops = _edit_ops(t.patches)
        committed_ops: list[list[Any] | None] = []
        for op in ops:
            texts[me] = ot_apply(texts[me], op)
            mine = op
            queue = pending[me]
            for i, (author, other, last) in enumerate(queue):
                if other is None:
                    continue
                mine, queue[i] = (
                    ot_transform(mine, other, "left"),
                    (author, ot_transform(other, mine, "right"), last),
                )
            effects = server.apply(OTSubmit(mine, server.version), f"agent{me}")
            committed_ops.extend(c.op for c in effects.broadcast)
        if not committed_ops:
            committed_ops.append(None)  # still a transaction others must count as seen
        for other_agent in range(n):
            if other_agent != me:
                for i, c in enumerate(committed_ops):
                    pending[other_agent].append((me, c, i == len(committed_ops) - 1))
        seen[me][me] += 1
    for agent in range(n):
        full = [len([x for x in trace.txns if x.agent == a]) for a in range(n)]
        _deliver_ot(agent, tuple(full), texts, pending[agent], seen[agent])
    return server.text, texts


def _deliver_ot(
    me: int,
    vv: tuple[int, ...],
    texts: list[str],
    queue: list[tuple[int, list[Any] | None, bool]],
    seen: list[int],
) -> None:
    """Apply, in commit order, the foreign ops ``me`` has to have seen according to ``vv``."""
    # Count transactions, not ops: one transaction may have committed several ops.
    while any(seen[a] < vv[a] for a in range(len(vv)) if a != me):
        if not queue:
            raise ReplayError(f"agent {me} must see edits the server has not committed")
        author, op, last = queue[0]
        if seen[author] >= vv[author]:
            raise ReplayError(
                f"agent {me}'s view is not a prefix of the server order (agent {author} ahead)"
            )
        queue.pop(0)
        if op is not None:
            texts[me] = ot_apply(texts[me], op)
        if last:
            seen[author] += 1


def _concurrent_crdt(trace: ConcurrentTrace) -> tuple[str, list[str]]:
    """CRDT with one document per agent; updates travel through a server engine document."""
    # The trace has a few concurrent inserts at the same position, which a CRDT orders by client
    # id; pinned ids (server 1, agents 2, 3, ...) make the replay deterministic, as it was when
    # the trace was recorded.
    server = CRDTEngine.load(client_id=1)
    n = trace.num_agents
    agents = [CRDTEngine.load(client_id=2 + i) for i in range(n)]
    by_agent: list[list[list[bytes]]] = [[] for _ in range(n)]  # updates per agent's txn
    seen = [[0] * n for _ in range(n)]
    vvs = version_vectors(trace)
    for t, vv in zip(trace.txns, vvs, strict=True):
        me = t.agent
        doc = agents[me]
        for author in range(n):
            while seen[me][author] < vv[author]:
                for update in by_agent[author][seen[me][author]]:
                    doc.apply(update, f"agent{author}")
                seen[me][author] += 1
        updates: list[bytes] = []
        for pos, ndel, ins in t.patches:
            if ndel:
                updates.extend(doc.delete(pos, ndel, f"agent{me}").broadcast)
            if ins:
                updates.extend(doc.insert(pos, ins, f"agent{me}").broadcast)
        for update in updates:
            server.apply(update, f"agent{me}")
        by_agent[me].append(updates)
        seen[me][me] += 1
    for doc in agents:
        doc.apply(server.newcomer_state(doc.token), "server")
    return server.text, [d.text for d in agents]

