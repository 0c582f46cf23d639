"""OT across replicas, with Redis as the sequencer (ShareDB's submit loop, ``submit-request.js``).

One replica's in-memory :class:`~engines.ot_engine.OTEngine` is not the authority any more:
an op is committed only when Redis accepts its record at the version it was transformed to
(:meth:`~server.store.redis.RedisStore.ot_commit`, a compare-and-set on ``weft:{doc}:v`` that
XADDs the record in the same script).  On a conflict the replica reads the ops it missed from the
log, applies them to its engine (and sends them to its subscribers), transforms the client's op
again and retries — at most :data:`MAX_TRIES` times, then fails with ShareDB's
``ERR_MAX_SUBMIT_RETRIES_EXCEEDED``.  The engine is changed only after Redis accepted, so it
never holds an op the log lacks; the client is acknowledged only then.

Per room, one :class:`asyncio.Lock` serializes this replica's commits and catch-ups, so the
engine stays at the version the compare-and-set succeeded at until the op is applied.  Records
from other replicas arrive through the relay (:func:`on_remote`): the next version is applied at
once; an older one is skipped; a newer one (a gap) or one arriving while a commit is in flight
schedules a catch-up that reads the log under the lock.

Records go straight to the engine here, not through :meth:`Room.change` (they are durable
already), so OT rooms on Redis are not compacted by this path (limitation: the log grows).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from orjson import JSONDecodeError, dumps, loads

from engines.interface import Effects, EngineError
from engines.ot_engine import OTCommitted, OTEngine, OTSubmit
from server.errors import ClientError, StorageError
from server.protocols import ot_docs
from server.protocols.sharedb_wire import encode
from server.relay.base import RelayMessage
from server.rooms.room import ChangeEvent, Room

log = logging.getLogger("weft.ot_replicas")

#: Attempts before a submit gives up (ShareDB's default ``maxSubmitRetries`` is unbounded).
MAX_TRIES = 20


class Sequencer(Protocol):
    """The part of :class:`~server.store.redis.RedisStore` this module needs."""

    async def ot_commit(self, doc: str, version: int, record: bytes) -> int | None: ...

    async def ot_records(self, doc: str, newest: int | None = None) -> list[bytes]: ...


class _State:
    __slots__ = ("catching_up", "lock")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.catching_up: asyncio.Task[None] | None = None


_states: weakref.WeakKeyDictionary[Room, _State] = weakref.WeakKeyDictionary()


def sequencer(room: Room) -> Sequencer | None:
    """The room's store if it sequences OT ops (Redis), else None (single replica)."""
    store = room.store
    return store if hasattr(store, "ot_commit") else None  # type: ignore[return-value]


def _state(room: Room) -> _State:
    state = _states.get(room)
    if state is None:
        state = _states[room] = _State()
        room.remote_handler = on_remote
    return state


def attach(room: Room) -> None:
    """Make relayed OT records reach this room's engine and subscribers."""
    _state(room)


def _engine(room: Room) -> OTEngine:
    engine = room.require_engine()
    if not isinstance(engine, OTEngine):
        raise TypeError(f"expected an OT engine, got {type(engine).__name__}")
    return engine


def _prepare(ot: OTEngine, change: OTSubmit | ot_docs.Create) -> OTSubmit | Effects:
    """The submit to commit at the engine's version (the create is the op at 0), or the
    effects of a change that commits nothing (a resubmission); raises like ``ot_docs.apply``."""
    if isinstance(change, ot_docs.Create):
        if ot.version > 0:
            return ot_docs.apply(ot, change, "")  # re-ack or ERR_DOC_ALREADY_CREATED; no commit
        op: Any = [change.text] if change.text else []
        return OTSubmit(op, 0, change.src, change.seq)
    if ot.version == 0 or change.version == 0:
        return ot_docs.apply(ot, change, "")  # raises: no document yet / ops start at 1
    if change.version == -1:
        change = OTSubmit(change.op, ot.version, change.src, change.seq)
    prepared = ot.prepare(change)
    if isinstance(prepared, Effects):
        return prepared
    op, version = prepared
    return OTSubmit(op, version, change.src, change.seq)


async def commit(room: Room, change: OTSubmit | ot_docs.Create, author: str) -> Effects:
    """Commit ``change`` through Redis (see the module docstring); returns the engine's
    effects (ack + broadcast) once Redis accepted and the engine applied it."""
    store = sequencer(room)
    if store is None:
        raise StorageError(f"{room.name!r} has no OT sequencer")
    state = _state(room)
    async with state.lock:
        for _ in range(MAX_TRIES):
            ot = _engine(room)
            prepared = _prepare(ot, change)
            if isinstance(prepared, Effects):
                return prepared
            submit = prepared
            record = dumps({"v": submit.version, "op": submit.op, "src": submit.src,
                            "seq": submit.seq, "a": author})
            current = await store.ot_commit(room.name, submit.version, record)
            if current is None:
                ot = _engine(room)
                effects = ot.apply(submit, author)
                room.stored = True
                room.metrics.op(room.kind)
                return effects
            await _catch_up_locked(room, store, current)
    raise ClientError(f"Op submit failed. Exceeded max submit retries of {MAX_TRIES}",
                      code="ERR_MAX_SUBMIT_RETRIES_EXCEEDED")


def _publish(room: Room, effects: Effects, author: str) -> None:
    """Send ops committed elsewhere to every subscriber here (and to change listeners)."""
    collection, _, doc_id = room.name.partition("/")
    for committed in effects.broadcast:
        if isinstance(committed, OTCommitted):
            room.fanout(encode(ot_docs.op_frame(collection, doc_id, committed)), text=True)
    if effects.broadcast and room.listeners:
        room.notify(ChangeEvent(room.name, room.kind, effects.broadcast, author))


def _apply_record(room: Room, ot: OTEngine, raw: bytes) -> bool:
    """Apply one logged record if it is the engine's next version; False if it is newer
    (a gap).  Older records (already applied) are skipped."""
    try:
        record = loads(raw)
        version = record["v"]
        submit = OTSubmit(record["op"], version, record.get("src"), record.get("seq"))
    except (JSONDecodeError, KeyError, TypeError) as exc:
        log.error("unreadable OT record in the log of %r: %s", room.name, exc)
        return True
    if type(version) is not int or version < ot.version:
        return True
    if version > ot.version:
        return False
    author = str(record.get("a") or "")
    try:
        effects = ot.apply(submit, author)
    except EngineError as exc:
        log.error("logged OT record v%d of %r does not apply: %s", version, room.name, exc)
        return True
    _publish(room, effects, author)
    return True


async def _catch_up_locked(room: Room, store: Sequencer, upto: int | None = None) -> None:
    """Apply every logged op the engine lacks, in version order (caller holds the lock).

    Knowing the version Redis is at (``upto``), only the log's tail is read; if that tail
    does not reach back to the engine's version, the whole log is."""
    ot = _engine(room)
    if upto is not None and upto > ot.version:
        tail = await store.ot_records(room.name, upto - ot.version)
        if all(_apply_record(room, ot, raw) for raw in tail) and ot.version >= upto:
            return
    records = await store.ot_records(room.name)
    ot = _engine(room)
    for raw in records:
        if not _apply_record(room, ot, raw):
            log.error("the log of %r lacks ops before version %d (compacted?)", room.name,
                      ot.version)
            return


async def _catch_up(room: Room) -> None:
    state, store = _state(room), sequencer(room)
    if store is None:
        return
    try:
        async with state.lock:
            await _catch_up_locked(room, store)
    except (StorageError, EngineError) as exc:
        log.warning("could not catch up %r with the log: %s", room.name, exc)
    finally:
        state.catching_up = None


def on_remote(room: Room, message: RelayMessage) -> None:
    """An OT record another replica committed (relayed in log order): apply the next version
    now; on a gap, or while this replica is committing, catch up from the log instead."""
    state = _state(room)
    engine = room.engine
    if not isinstance(engine, OTEngine):
        return
    if not state.lock.locked() and state.catching_up is None and message.origin != "snapshot":
        for raw in message.records:
            if not _apply_record(room, engine, raw):
                break
        else:
            return
    if state.catching_up is None:
        state.catching_up = asyncio.get_running_loop().create_task(_catch_up(room))
