"""The half of a room that changes its document: apply, store, deliver, relay, compact.

:meth:`RoomChanges.change` applies a change to the engine and numbers its log records in the
same synchronous step (so a snapshot taken at any moment covers exactly the records numbered so
far), queues the records for the store, and hands the effects to the room's
:class:`~server.rooms.pipeline.Pipeline`, which delivers them in commit order once durable:
then listeners and hooks are told and the records are relayed to other replicas.

:class:`~server.rooms.room.Room` adds the other half — its lifecycle (load, idle, unload,
fail), its peers and the fan-out — on top of this class.  The split keeps each half readable in
one sitting; this half never decides when the room lives or dies: when a write fails it calls
:meth:`fail`, which the room implements.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from engines.interface import NO_EFFECTS, Effects, Engine
from server.errors import DocTooLarge, StorageError, WeftError
from server.hooks.core import Hooks
from server.hooks.events import StoreEvent
from server.metrics import Metrics
from server.relay.base import Relay
from server.rooms.adapters import EngineAdapter
from server.rooms.interface import ChangeEvent, Listener, RoomSettings
from server.rooms.lifecycle import RoomState
from server.rooms.pipeline import Pending, Pipeline
from server.store.base import Store

log = logging.getLogger("weft.room")

# ``append`` that queues at once and returns the commit's future (SQLiteStore.append_nowait).
QueuedAppend = Callable[[str, str, int, tuple[bytes, ...], str], "asyncio.Future[None]"]

# Relay tasks in flight: the event loop keeps only a weak reference to a task, so one nobody
# else holds could be garbage-collected mid-run.  One set for every room (no per-room cost).
_RELAYING: set[asyncio.Task[None]] = set()


class RoomChanges:
    """A document's engine and the path of its changes to the store, listeners and relay."""

    def __init__(
        self,
        name: str,
        adapter: EngineAdapter,
        store: Store,
        relay: Relay,
        metrics: Metrics,
        settings: RoomSettings,
        hooks: Hooks | None,
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
        self.listeners: list[Listener] = []
        self.next_seq = 1
        self.records_since_snapshot = 0
        self.doc_bytes = 0
        self._pipeline = Pipeline(self._deliver, self.fail)
        self._compacting: asyncio.Task[None] | None = None
        self._failed: WeftError | None = None
        # Durable records waiting for the next tick's relay message (see _relay_soon).
        self._unrelayed: list[bytes] = []
        self._append_nowait: QueuedAppend | None = getattr(store, "append_nowait", None)

    def fail(self, error: WeftError) -> None:
        """A write failed: the in-memory state can no longer be trusted (see ``Room.fail``)."""
        raise NotImplementedError

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
        task = asyncio.get_running_loop().create_task(self._relay_unrelayed(),
                                                      name=f"relay {self.name}")
        _RELAYING.add(task)
        task.add_done_callback(_RELAYING.discard)

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
