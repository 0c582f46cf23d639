"""A room: one open document — its engine, its connections, their presence.

:meth:`Room.change` applies a change to the engine and numbers its log records in the same
synchronous step (so a snapshot taken at any moment covers exactly the records numbered so
far), queues the records for the store, and hands the effects to the room's
:class:`~server.rooms.pipeline.Pipeline`, which delivers them in commit order once durable.

Rooms speak no wire protocol: they fan out frames the protocol adapters encoded once
(``broadcast()``: one encoding, many sockets) and drop readers that fall too far behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.asyncio.connection import Connection

from engines.interface import NO_EFFECTS, Effects, Engine
from server.errors import DocTooLarge, SlowConsumer, StorageError, WeftError
from server.hooks.core import Hooks
from server.hooks.events import LoadEvent, StoreEvent
from server.metrics import Metrics
from server.relay.base import Relay, RelayMessage
from server.rooms.adapters import EngineAdapter
from server.rooms.fanout import Outbox, send_now
from server.rooms.lifecycle import RoomEvent, RoomState, next_state
from server.rooms.pipeline import Pending, Pipeline
from server.store.base import Store, StoredDoc

log = logging.getLogger("weft.room")


class Peer(Protocol):
    """A connection as a room sees it: where frames go, and how to drop it."""

    @property
    def ws(self) -> Connection | None: ...

    def drop(self, error: WeftError) -> None:
        """Close the connection with the error's close code and reason (never raises)."""
        ...


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A committed change, as embedding apps and relays see it (engine payloads, not frames)."""

    doc: str
    kind: str
    payloads: tuple[Any, ...]
    author: str
    remote: bool = False


# ``append`` that queues at once and returns the commit's future (SQLiteStore.append_nowait).
QueuedAppend = Callable[[str, str, int, tuple[bytes, ...], str], "asyncio.Future[None]"]
Listener = Callable[[ChangeEvent], None]
RemoteHandler = Callable[["Room", RelayMessage], None]


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """The parts of the server config a room needs."""

    max_doc_bytes: int
    max_outgoing_bytes: int
    idle_seconds: float
    compact_every: int


class Room:
    """One open document.  Created and retired by :class:`~server.rooms.registry.Rooms`."""

    def __init__(
        self,
        name: str,
        adapter: EngineAdapter,
        store: Store,
        relay: Relay,
        metrics: Metrics,
        settings: RoomSettings,
        on_unloaded: Callable[[Room], None],
        hooks: Hooks | None = None,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.kind = adapter.kind
        self.store = store
        self.relay = relay
        self.metrics = metrics
        self.settings = settings
        self.hooks = hooks
        self.state = RoomState.LOADING
        self.engine: Engine | None = None
        # Whether the document exists in the store (or has accepted a change since loading).
        self.stored = False
        self.peers: set[Peer] = set()
        # Protocol-owned presence state (e.g. the Yjs awareness table); opaque to the room.
        self.presence: Any = None
        self.listeners: list[Listener] = []
        self.remote_handler: RemoteHandler | None = None
        self.holds = 0
        self.next_seq = 1
        self.records_since_snapshot = 0
        self.doc_bytes = 0
        self._on_unloaded = on_unloaded
        self._pipeline = Pipeline(self._deliver, self.fail)
        self._loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._compacting: asyncio.Task[None] | None = None
        self._storing: asyncio.Task[None] | None = None
        self._failed: WeftError | None = None
        # Durable records waiting for the next tick's relay message (see _relay_soon).
        self._unrelayed: list[bytes] = []
        self._append_nowait: QueuedAppend | None = getattr(store, "append_nowait", None)
        self._outbox = None if adapter.durable_before_broadcast else Outbox(
            self.peers, settings.max_outgoing_bytes, metrics, self.drop_slow)

    def __repr__(self) -> str:
        return f"<Room {self.name!r} {self.kind} {self.state.value} peers={len(self.peers)}>"

    # ---- lifecycle -------------------------------------------------------------------------

    def _event(self, event: RoomEvent) -> None:
        self.state = next_state(self.state, event)

    async def load(self, stored: StoredDoc | None) -> None:
        """Build the engine from what the store returned (LOADING → LIVE or UNLOADED)."""
        try:
            snapshot, records = (stored.snapshot, stored.log) if stored else (None, ())
            self.engine = self.adapter.load(snapshot, records)
        except BaseException as exc:  # pycrdt panics are BaseExceptions
            self.fail_load(StorageError(f"stored state of {self.name!r} cannot be opened: {exc}"))
            if not isinstance(exc, Exception):
                log.error("engine panicked while loading %r: %r", self.name, exc)
            return
        if stored is not None:
            self.stored = True
            self.next_seq = stored.next_seq
            self.records_since_snapshot = len(stored.log)
            self.doc_bytes = len(stored.snapshot or b"") + sum(map(len, stored.log))
        if self.hooks is not None and self.hooks.wants("load"):
            try:
                seed = await self.hooks.load(LoadEvent(self.name, self.kind, stored is None))
                if seed:
                    await self._seed(seed)
            except BaseException as exc:  # a failed seed write: nothing served yet, retry later
                self.fail_load(exc if isinstance(exc, WeftError) else StorageError(
                    f"seeding {self.name!r} failed: {exc!r}"))
                if not isinstance(exc, Exception):
                    raise
                return
        self.relay.subscribe(self.name, self._on_relay)
        self._event(RoomEvent.LOADED)
        self.metrics.rooms_loaded_total += 1
        self._loaded.set_result(None)
        self._maybe_idle()

    async def _seed(self, text: str) -> None:
        """Write a load hook's initial text into a new document before anyone sees it."""
        engine, seed = self.engine, self.adapter.seed
        if engine is None or seed is None or (
            self.adapter.durable_before_broadcast and hasattr(self.store, "ot_commit")
        ):
            log.warning("load hook seed for %r ignored: %s documents on this store cannot be "
                        "seeded (only the OT sequencer may number their ops)", self.name,
                        self.kind)
            return
        effects = seed(engine, text)
        if effects.persist:
            await self.store.append(self.name, self.kind, self.next_seq, effects.persist,
                                    author="seed")
            self.next_seq += len(effects.persist)
            self.records_since_snapshot += len(effects.persist)
            self.doc_bytes += sum(map(len, effects.persist))
            self.stored = True

    def fail_load(self, error: WeftError) -> None:
        self._event(RoomEvent.LOAD_FAILED)
        if not self._loaded.done():
            self._loaded.set_exception(error)
            self._loaded.exception()  # mark retrieved: waiters may all have gone
        self._on_unloaded(self)

    async def ready(self) -> None:
        """Wait until loaded; raise the load error if loading failed."""
        await asyncio.shield(self._loaded)

    def hold(self) -> None:
        """Keep the room loaded while a request or embedding app uses it."""
        self.holds += 1
        self._touch()

    def release(self) -> None:
        self.holds -= 1
        self._maybe_idle()

    def join(self, peer: Peer) -> None:
        self.peers.add(peer)
        self._touch()

    def leave(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self._maybe_idle()

    def _touch(self) -> None:
        """Someone uses the room: cancel the idle timer, and revive it if it was storing."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.state is RoomState.STORING and self._failed is None:
            self._event(RoomEvent.REJOINED)

    @property
    def idle(self) -> bool:
        return not self.peers and self.holds <= 0 and not self.listeners

    def _maybe_idle(self) -> None:
        if self.state is RoomState.LIVE and self.idle and self._idle_timer is None:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(self.settings.idle_seconds, self._on_idle)

    def _on_idle(self) -> None:
        self._idle_timer = None
        if self.state is RoomState.LIVE and self.idle:
            self._event(RoomEvent.IDLE)
            self._storing = asyncio.get_running_loop().create_task(self._store_and_unload())

    async def _store_and_unload(self) -> None:
        try:
            await self.flush(compact=True)
        except WeftError as exc:
            log.warning("could not store %r before unloading, keeping it: %s", self.name, exc)
            if self.state is RoomState.STORING:
                self._event(RoomEvent.STORE_FAILED)
                self._idle_timer = asyncio.get_running_loop().call_later(
                    max(1.0, self.settings.idle_seconds), self._on_idle
                )
            return
        if self.state is RoomState.STORING:  # nobody came back meanwhile
            self._event(RoomEvent.STORED)
            self._retire()
            self.metrics.rooms_unloaded_total += 1

    async def shutdown(self) -> None:
        """Store everything and unload, whoever is still here (server stopping)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.state is RoomState.LIVE:
            self._event(RoomEvent.SHUTDOWN)
        if self.state is RoomState.STORING:
            try:
                await self.flush(compact=True)
            finally:
                if self.state is RoomState.STORING:
                    self._event(RoomEvent.STORED)
                    self._retire()

    def _retire(self) -> None:
        self.relay.unsubscribe(self.name)
        self.engine = None
        self._on_unloaded(self)

    def fail(self, error: WeftError) -> None:
        """The in-memory state can no longer be trusted (a write failed): drop everything.

        Peers are closed with a "try again" code; on reconnect they resync from the store and
        re-send what it lacks (OT clients resubmit their unacknowledged op, CRDT clients answer
        sync step 1 with everything the server is missing).
        """
        if self.state is RoomState.UNLOADED:
            return
        log.error("room %r failed, unloading: %s", self.name, error)
        self._failed = error
        self._event(RoomEvent.FAILED)
        for peer in list(self.peers):
            peer.drop(error)
        self.peers.clear()
        self._pipeline.fail_all(error)
        self._retire()

    # ---- changes ---------------------------------------------------------------------------

    def require_engine(self) -> Engine:
        if self.engine is None or self.state in (RoomState.LOADING, RoomState.UNLOADED):
            raise StorageError(f"document {self.name!r} is not loaded; retry")
        return self.engine

    def check_growth(self, growth: int) -> None:
        """Raise :class:`DocTooLarge` if ``growth`` more bytes would pass the size limit.

        ``doc_bytes`` is an upper bound kept in O(1) per change; only when it says "too big" is
        the exact size measured (O(document)), so the common path stays cheap.
        """
        limit = self.settings.max_doc_bytes
        if limit <= 0 or self.doc_bytes + growth <= limit:
            return
        self.doc_bytes = self.adapter.measure(self.require_engine())
        if self.doc_bytes + growth > limit:
            raise DocTooLarge(
                f"document {self.name!r} would grow to over {limit} bytes "
                f"(now {self.doc_bytes}, change adds up to {growth})"
            )

    def change(
        self,
        apply: Callable[[Engine], Effects],
        *,
        author: str = "",
        growth: int = 0,
        on_durable: Callable[[Effects], None] | None = None,
    ) -> tuple[Effects, asyncio.Future[Effects]]:
        """Apply a change and queue its effects; returns the effects and a durability future.

        ``apply`` runs synchronously against the engine (an :class:`EngineError` propagates and
        nothing was changed).  ``on_durable`` runs once the records are committed, after the
        callbacks of every earlier change in this room.  Then listeners are told and the
        records are relayed.
        """
        engine = self.require_engine()
        self.check_growth(growth)
        effects = apply(engine)
        write: asyncio.Future[None] | None = None
        if effects.persist:
            first, self.next_seq = self.next_seq, self.next_seq + len(effects.persist)
            write = self._append(first, effects.persist, author)
            self.stored = True
            self.doc_bytes += growth
        if not effects.empty:
            self.metrics.op(self.kind)
        return effects, self._pipeline.push(write, effects, author, on_durable)

    def _append(self, first: int, records: tuple[bytes, ...], author: str) -> asyncio.Future[None]:
        """Queue the store write of one change.  A store that queues synchronously (SQLite's
        ``append_nowait``) hands back its commit future: no task per change on the hot path.
        A refused write fails the future, as a failed task would (the pipeline fails the room).
        """
        if self._append_nowait is not None:
            try:
                return self._append_nowait(self.name, self.kind, first, records, author)
            except StorageError as exc:
                refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                refused.set_exception(exc)
                return refused
        return asyncio.get_running_loop().create_task(
            self.store.append(self.name, self.kind, first, records, author=author))

    def after_durable(self, callback: Callable[[], None]) -> asyncio.Future[Effects]:
        """Run ``callback`` once every change accepted so far is durable and delivered.

        The callback runs inside the delivery loop, before any later change is delivered, so a
        newcomer can be sent state captured *now* and join the room in one step: it then misses
        no later change and never sees a change that is not yet durable.
        """
        return self._pipeline.push(None, NO_EFFECTS, "", lambda _: callback())

    def _deliver(self, pending: Pending) -> None:
        effects = pending.effects
        try:
            if pending.on_durable is not None:
                pending.on_durable(effects)
        except Exception:  # a delivery bug must not stall the room's pipeline
            log.exception("delivering a change to %r failed", self.name)
        if effects.broadcast and self.listeners:
            self.notify(ChangeEvent(self.name, self.kind, effects.broadcast, pending.author))
        if effects.persist:
            self.records_since_snapshot += len(effects.persist)
            self._relay_soon(effects.persist)
            self._maybe_compact()
        if self.hooks is not None:
            self.committed(effects, pending.author, len(effects.persist))

    def committed(self, effects: Effects, author: str, records: int) -> None:
        """Queue the ``change`` and ``store`` hooks of a committed, durable change.

        Called by the delivery pipeline, and by paths that commit without it (OT through the
        Redis sequencer).  Only queues (O(1)): hooks never delay the fan-out.
        """
        hooks = self.hooks
        if hooks is None:
            return
        if effects.broadcast and hooks.wants("change"):
            hooks.emit("change", ChangeEvent(self.name, self.kind, effects.broadcast, author))
        if records and hooks.wants("store"):
            hooks.emit("store", StoreEvent(self.name, self.kind, "records", records, author))

    def _relay_soon(self, records: tuple[bytes, ...]) -> None:
        """Publish durable records on the next tick, all of a tick's in one message.

        One group commit releases many changes in one delivery loop; relaying them as one
        message (one task) keeps the per-change cost of relaying off the hot path.  Records
        keep their commit order: a later tick's records go in a later message.
        """
        if self._unrelayed:
            self._unrelayed.extend(records)
            return
        self._unrelayed = list(records)
        asyncio.get_running_loop().create_task(self._relay_unrelayed(), name=f"relay {self.name}")

    async def _relay_unrelayed(self) -> None:
        records, self._unrelayed = tuple(self._unrelayed), []
        await self._relay(records)

    async def _relay(self, records: tuple[bytes, ...]) -> None:
        try:
            await self.relay.publish(self.name, self.kind, records)
        except Exception:
            log.exception("relaying a change to %r failed", self.name)

    def notify(self, event: ChangeEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("change listener of %r failed", self.name)

    def _on_relay(self, message: RelayMessage) -> None:
        """Apply a change committed through another replica (also while storing to unload).

        A shared store (Redis) compacts up to what the relay delivered, so a delivered record
        must reach the engine even when no protocol installed a handler (REST-only rooms):
        then CRDT records are applied directly (they commute; nobody here needs a frame).
        """
        if self.state not in (RoomState.LIVE, RoomState.STORING) or self.engine is None:
            return
        if self.remote_handler is not None:
            self.remote_handler(self, message)
            return
        if self.adapter.durable_before_broadcast:
            # OT: relayed ops are applied by server.protocols.ot_replicas once attached.
            log.warning("%r was changed through replica %s: relayed OT ops reach only rooms "
                        "a ShareDB client opened here (this one is ignoring it)", self.name,
                        message.origin)
            return
        for record in message.records:
            try:
                self.engine.apply(record, f"relay:{message.origin}")
            except Exception as exc:
                log.error("relayed record for %r rejected: %s", self.name, exc)

    # ---- storage ---------------------------------------------------------------------------

    def _maybe_compact(self) -> None:
        factor = self.adapter.compact_factor
        if (
            factor > 0
            and self.records_since_snapshot >= self.settings.compact_every * factor
            and self._compacting is None
            and self.engine is not None
        ):
            self._compacting = asyncio.get_running_loop().create_task(self._compact())

    async def _compact(self) -> None:
        try:
            await self.compact()
        except WeftError as exc:
            log.warning("background compaction of %r failed (log kept): %s", self.name, exc)
        finally:
            self._compacting = None

    async def compact(self) -> None:
        """Fold the log into a snapshot (background; the log stays valid if this fails)."""
        engine = self.require_engine()
        # Taken synchronously: the snapshot covers exactly the records numbered so far.
        snapshot, upto, pending = engine.snapshot(), self.next_seq - 1, self.records_since_snapshot
        await self.store.compact(self.name, self.kind, snapshot, upto)
        self.records_since_snapshot = max(0, self.records_since_snapshot - pending)
        if self.hooks is not None and self.hooks.wants("store"):
            self.hooks.emit("store", StoreEvent(self.name, self.kind, "snapshot", 1, upto=upto))
        self.doc_bytes = len(snapshot) if self.kind == "crdt" else self.doc_bytes

    async def flush(self, *, compact: bool = False) -> None:
        """Wait until every change accepted so far is durable (and compacted if asked)."""
        if self._pipeline:
            await asyncio.gather(*self._pipeline.waiting(), return_exceptions=True)
        if self._failed is not None:
            raise self._failed
        if self._compacting is not None:
            await asyncio.gather(self._compacting, return_exceptions=True)
        if (
            compact
            and self.adapter.compact_on_unload
            and self.stored
            and self.records_since_snapshot
            and self.engine is not None
        ):
            await self.compact()

    # ---- fan-out ---------------------------------------------------------------------------

    def fanout(
        self, frame: bytes | str, exclude: Peer | None = None, *, text: bool | None = None
    ) -> int:
        """Send one encoded frame to every peer but ``exclude``; returns how many it is for.

        CRDT rooms send a loop tick's first frame at once and the rest of the tick's frames at
        its end, all of them to a peer in one write (:mod:`server.rooms.fanout` says why and
        why only CRDT); OT rooms send every frame at once.
        A peer whose unsent bytes exceed the limit is dropped with a reason instead of being
        written to: one slow reader must not grow the server's memory or slow the room.
        """
        if self._outbox is not None:
            return self._outbox.push(frame, exclude, text)
        sent, slow = send_now(self.peers, frame, exclude, text,
                              self.settings.max_outgoing_bytes, self.metrics)
        for peer in slow:
            self.drop_slow(peer)
        return sent

    def drop_slow(self, peer: Peer) -> None:
        self.peers.discard(peer)
        peer.drop(
            SlowConsumer(
                f"outgoing buffer over {self.settings.max_outgoing_bytes} bytes; "
                "reconnect and resync"
            )
        )
        self._maybe_idle()
