"""OT across replicas: every op is committed to the Redis log at the version it was transformed
to, and every replica's engine applies the log in version order.

Two ordering modes share this module's commit step (``--ot-ordering``):

* **sequencer** (default): Redis is the sequencer, as in ShareDB's submit loop
  (``submit-request.js``).  :func:`commit_here` asks Redis to append the record only at the
  expected version (:meth:`~server.store.redis.RedisStore.ot_commit`, a compare-and-set on
  ``weft:{doc}:v`` that XADDs in the same script).  On a conflict the replica reads the ops it
  missed from the log, applies them (and sends them to its subscribers), transforms the op again
  and retries — at most :data:`MAX_TRIES` times, then ``ERR_MAX_SUBMIT_RETRIES_EXCEEDED``.
* **home** (:mod:`server.protocols.ot_home`): one replica per document holds a fenced lease and
  runs the same :func:`commit_here` (with its fence, so a deposed home cannot append); the
  others forward their clients' submits to it.  Conflicts then only happen around a failover.

The engine is changed only after Redis accepted, so it never holds an op the log lacks; the
client is acknowledged only then.  Per room, one :class:`asyncio.Lock` serializes this replica's
commits and catch-ups.  Records from other replicas arrive through the relay (:func:`on_remote`):
the next version is applied at once, an older one is skipped, a newer one (a gap) or one
arriving while a commit is in flight schedules a catch-up from the log under the lock.

**Who hears about an op, and when.**  Each submit in flight registers a :class:`Delivery`
under its ``(src, seq)``.  Whichever path first applies that op to this replica's engine — the
commit itself, or the log (an op a home committed for us, or a write whose reply was lost and
that Redis reports as a duplicate) — calls it synchronously: the author gets its ack (and the
other subscribers the op) in the same step the engine moved, so no later op can overtake the
ack, and the author never receives its own op as someone else's.

**Idempotence.**  A commit carries the op's ``src``/``seq`` (server-side edits get theirs from
:mod:`server.protocols.ot_server_edits`), and the commit script refuses a second record for
the same pair; the engine's own ``src``/``seq`` check (ShareDB's) then acknowledges the
resubmission.

**Compaction.**  A replica that committed :attr:`RoomSettings.compact_every` ops stores a
snapshot of text + version and trims the records older than the last ``compact_every`` (kept
for replicas and clients slightly behind).  A replica that falls behind the trim point anyway
cannot rebuild the missing ops, so its room fails and reloads (clients reconnect and resync).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from orjson import JSONDecodeError, dumps, loads

from engines.interface import Effects, EngineError
from engines.ot_engine import OTAck, OTCommitted, OTEngine, OTSubmit
from server.errors import ClientError, StorageError
from server.protocols import ot_docs
from server.protocols.sharedb_wire import encode
from server.relay.base import RelayMessage
from server.rooms.room import ChangeEvent, Room
from server.store.redis import OTCommit

log = logging.getLogger("weft.ot_replicas")

#: Attempts before a submit gives up (ShareDB's default ``maxSubmitRetries`` is unbounded).
MAX_TRIES = 20

Change = OTSubmit | ot_docs.Create
Deliver = Callable[[Effects], None]


class Fenced(StorageError):
    """This replica's home lease was taken over: Redis refused the commit (nothing written)."""


class Sequencer(Protocol):
    """The part of :class:`~server.store.redis.RedisStore` this module needs."""

    async def ot_commit(self, doc: str, version: int, record: bytes, *, src: str | None = None,
                        seq: object = None, fence: int | None = None) -> OTCommit: ...

    async def ot_records(self, doc: str, newest: int | None = None) -> list[bytes]: ...

    async def ot_compact(self, doc: str, snapshot: bytes, version: int,
                         keep_from: int) -> bool: ...


class Router(Protocol):
    """Where submits go in home mode (:class:`server.protocols.ot_home.Homes`)."""

    def track(self, room: Room) -> None: ...

    async def submit(self, room: Room, change: Change, author: str,
                     delivery: Delivery) -> Effects: ...


class Delivery:
    """Tells one submit's author (and everyone else) about it, exactly once (see above)."""

    __slots__ = ("author", "deliver", "effects", "room", "waiter")

    def __init__(self, room: Room, author: str, deliver: Deliver | None) -> None:
        self.room, self.author, self.deliver = room, author, deliver
        self.effects: Effects | None = None
        self.waiter: asyncio.Future[Effects] = asyncio.get_running_loop().create_future()

    def __call__(self, effects: Effects) -> None:
        if self.effects is not None:
            return
        self.effects = effects
        self.waiter.set_result(effects)
        if self.deliver is not None:
            self.deliver(effects)
        else:
            _fanout(self.room, effects)
        _notify(self.room, effects, self.author)


class _State:
    __slots__ = ("again", "catching_up", "compacting", "forwards", "lock", "since_compact")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.catching_up: asyncio.Task[None] | None = None
        # Set when a catch-up is asked for while one runs: it may have read the log already,
        # so it reads once more (else a record relayed meanwhile is skipped by the relay and
        # never applied until a later op reveals the gap).
        self.again = False
        self.compacting: asyncio.Task[None] | None = None
        self.since_compact = 0
        # (src, seq) -> the delivery of a submit of this replica still in flight.
        self.forwards: dict[tuple[str, object], Delivery] = {}


_states: weakref.WeakKeyDictionary[Room, _State] = weakref.WeakKeyDictionary()
_routers: weakref.WeakKeyDictionary[object, Router] = weakref.WeakKeyDictionary()


def route_through(store: object, router: Router | None) -> None:
    """Send the submits of rooms on ``store`` through ``router`` (home mode); None: undo."""
    if router is None:
        _routers.pop(store, None)
    else:
        _routers[store] = router


def sequencer(room: Room) -> Sequencer | None:
    """The room's store if it sequences OT ops (Redis), else None (single replica)."""
    store = room.store
    return store if hasattr(store, "ot_commit") else None  # type: ignore[return-value]


def _state(room: Room) -> _State:
    state = _states.get(room)
    if state is None:
        state = _states[room] = _State()
        room.remote_handler = on_remote
        router = _routers.get(room.store)
        if router is not None:
            router.track(room)
    return state


def attach(room: Room) -> None:
    """Make relayed OT records reach this room's engine and subscribers (and, in home mode,
    take part in the document's home lease)."""
    if room.kind == "ot" and sequencer(room) is not None:
        _state(room)


def engine(room: Room) -> OTEngine:
    """The room's OT engine (raises :class:`StorageError` while it is not loaded)."""
    current = room.require_engine()
    if not isinstance(current, OTEngine):
        raise TypeError(f"expected an OT engine, got {type(current).__name__}")
    return current


def _key(change: Change) -> tuple[str, object] | None:
    return None if change.src is None or change.seq is None else (change.src, change.seq)


def _prepare(ot: OTEngine, change: Change) -> OTSubmit | Effects:
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


async def commit(room: Room, change: Change, author: str,
                 deliver: Deliver | None = None) -> Effects:
    """Commit ``change`` through Redis (directly, or through the document's home); return the
    engine's effects once Redis accepted and this replica's engine applied it.

    ``deliver`` (the protocol's ack + broadcast) runs synchronously at that moment; without
    it every subscriber gets the op."""
    store = sequencer(room)
    if store is None:
        raise StorageError(f"{room.name!r} has no OT sequencer")
    state = _state(room)
    delivery = Delivery(room, author, deliver)
    key = _key(change)
    if key is not None:
        state.forwards[key] = delivery
    try:
        router = _routers.get(store)
        if router is None:
            return await commit_here(room, change, author, delivery)
        return await router.submit(room, change, author, delivery)
    finally:
        if key is not None and state.forwards.get(key) is delivery:
            del state.forwards[key]


async def commit_here(room: Room, change: Change, author: str, delivery: Delivery,
                      fence: int | None = None) -> Effects:
    """Commit on this replica: the submit loop (see the module docstring).  With ``fence``
    (home mode) Redis refuses the record once a newer home exists: raises :class:`Fenced`."""
    store = sequencer(room)
    if store is None:
        raise StorageError(f"{room.name!r} has no OT sequencer")
    state = _state(room)
    async with state.lock:
        for _ in range(MAX_TRIES):
            if delivery.effects is not None:  # the log brought it while we waited
                return delivery.effects
            prepared = _prepare(engine(room), change)
            if isinstance(prepared, Effects):
                delivery(prepared)
                return prepared
            submit = prepared
            record = dumps({"v": submit.version, "op": submit.op, "src": submit.src,
                            "seq": submit.seq, "a": author})
            result = await store.ot_commit(room.name, submit.version, record, src=submit.src,
                                           seq=submit.seq, fence=fence)
            if result.status == "committed":
                effects = engine(room).apply(submit, author)
                room.stored = True
                room.metrics.op(room.kind)
                delivery(effects)
                room.committed(effects, author, 1)  # hooks: fire where the op was committed
                _count_commit(room, state, store)
                return effects
            if result.status == "fenced":
                raise Fenced(f"{room.name!r} has a newer home (fence {result.version} > {fence})")
            if result.status == "duplicate":  # committed before: the log has it
                return await _settle_duplicate_locked(room, store, change, delivery,
                                                      result.version)
            await _catch_up_locked(room, store, result.version)
    raise ClientError(f"Op submit failed. Exceeded max submit retries of {MAX_TRIES}",
                      code="ERR_MAX_SUBMIT_RETRIES_EXCEEDED")


async def settle_duplicate(room: Room, change: Change, delivery: Delivery,
                           version: int) -> Effects:
    """``change`` was committed at ``version`` already (a home or Redis said so): catch up to
    it and acknowledge it again."""
    store = sequencer(room)
    if store is None:
        raise StorageError(f"{room.name!r} has no OT sequencer")
    async with _state(room).lock:
        return await _settle_duplicate_locked(room, store, change, delivery, version)


async def _settle_duplicate_locked(room: Room, store: Sequencer, change: Change,
                                   delivery: Delivery, version: int) -> Effects:
    await _catch_up_locked(room, store, version + 1)
    if delivery.effects is None:  # the engine already had it: ack it again, ShareDB-style
        prepared = _prepare(engine(room), change)
        delivery(prepared if isinstance(prepared, Effects) else Effects(
            reply=(OTAck(version, change.src, change.seq),)))
    return delivery.effects or Effects()


def _fanout(room: Room, effects: Effects) -> None:
    collection, _, doc_id = room.name.partition("/")
    for committed in effects.broadcast:
        if isinstance(committed, OTCommitted):
            room.fanout(encode(ot_docs.op_frame(collection, doc_id, committed)), text=True)


def _notify(room: Room, effects: Effects, author: str) -> None:
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
    state = _states.get(room)
    key = _key(submit)
    delivery = state.forwards.get(key) if state is not None and key is not None else None
    if delivery is not None:
        delivery(effects)  # our own submit, committed by a home or by a lost-reply retry
    else:
        _fanout(room, effects)
        _notify(room, effects, author)
    return True


async def _catch_up_locked(room: Room, store: Sequencer, upto: int | None = None) -> None:
    """Apply every logged op the engine lacks, in version order (caller holds the lock).

    Knowing the version Redis is at (``upto``), only the log's tail is read; if that tail
    does not reach back to the engine's version, the whole log is.  If the whole log does not
    either (trimmed by a compaction), the room fails and reloads from the snapshot."""
    ot = engine(room)
    if upto is not None and upto > ot.version:
        tail = await store.ot_records(room.name, upto - ot.version)
        if all(_apply_record(room, ot, raw) for raw in tail) and ot.version >= upto:
            return
    records = await store.ot_records(room.name)
    ot = engine(room)
    for raw in records:
        if not _apply_record(room, ot, raw):
            error = StorageError(f"the log of {room.name!r} was compacted past version "
                                 f"{ot.version} before this replica read it; reloading")
            room.fail(error)
            raise error


def _count_commit(room: Room, state: _State, store: Sequencer) -> None:
    state.since_compact += 1
    every = room.settings.compact_every
    if every > 0 and state.since_compact >= every and state.compacting is None:
        state.since_compact = 0
        state.compacting = asyncio.get_running_loop().create_task(
            _compact(room, state, store), name=f"compact {room.name}")


async def _compact(room: Room, state: _State, store: Sequencer) -> None:
    """Snapshot the engine (text + version, taken synchronously) and trim the older log."""
    try:
        ot = engine(room)
        snapshot, version = ot.snapshot(), ot.version
        keep_from = version - room.settings.compact_every
        if keep_from > 0:
            await store.ot_compact(room.name, snapshot, version, keep_from)
    except StorageError as exc:
        log.warning("compacting the OT log of %r failed (log kept): %s", room.name, exc)
    finally:
        state.compacting = None


async def _catch_up(room: Room) -> None:
    state, store = _state(room), sequencer(room)
    if store is None:
        return
    try:
        state.again = True
        while state.again:
            state.again = False
            async with state.lock:
                await _catch_up_locked(room, store)
    except (StorageError, EngineError) as exc:
        log.warning("could not catch up %r with the log: %s", room.name, exc)
    finally:
        state.catching_up = None


def catch_up_soon(room: Room) -> None:
    """Schedule a catch-up from the log (one at a time per room; asked for while one runs,
    that one reads the log once more)."""
    state = _state(room)
    if state.catching_up is None:
        state.catching_up = asyncio.get_running_loop().create_task(_catch_up(room))
    else:
        state.again = True


def on_remote(room: Room, message: RelayMessage) -> None:
    """An OT record another replica committed (relayed in log order): apply the next version
    now; on a gap, or while this replica is committing, catch up from the log instead."""
    state = _state(room)
    current = room.engine
    if not isinstance(current, OTEngine):
        return
    if not state.lock.locked() and state.catching_up is None and message.origin != "snapshot":
        for raw in message.records:
            if not _apply_record(room, current, raw):
                break
        else:
            return
    catch_up_soon(room)
