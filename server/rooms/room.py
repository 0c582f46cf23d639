"""A room: one open document — its engine, its connections, their presence.

:class:`Room` is :class:`~server.rooms.changes.RoomChanges` (the engine and the path of each
change to the store, listeners and relay) plus what this module adds: the room's lifecycle
(load → live → storing → unloaded, the table in :mod:`server.rooms.lifecycle`), its peers, the
changes other replicas relay to it, and the fan-out.

Rooms speak no wire protocol: they fan out frames the protocol adapters encoded once
(``broadcast()``: one encoding, many sockets) and drop readers that fall too far behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from server.errors import SlowConsumer, StorageError, WeftError
from server.hooks.core import Hooks
from server.hooks.events import LoadEvent
from server.metrics import Metrics
from server.relay.base import Relay, RelayMessage
from server.rooms.adapters import EngineAdapter
from server.rooms.changes import RoomChanges
from server.rooms.fanout import Outbox, send_now
from server.rooms.interface import ChangeEvent, Peer, RoomSettings
from server.rooms.lifecycle import RoomEvent, RoomState, next_state
from server.store.base import Store, StoredDoc

# ChangeEvent, Peer and RoomSettings live in server.rooms.interface; importable here as before.
__all__ = ["ChangeEvent", "Peer", "RemoteHandler", "Room", "RoomSettings"]

log = logging.getLogger("weft.room")

RemoteHandler = Callable[["Room", RelayMessage], None]


class Room(RoomChanges):
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
        super().__init__(name, adapter, store, relay, metrics, settings, hooks)
        self.peers: set[Peer] = set()
        # Protocol-owned presence state (e.g. the Yjs awareness table); opaque to the room.
        self.presence: Any = None
        self.remote_handler: RemoteHandler | None = None
        self.holds = 0
        self._on_unloaded = on_unloaded
        self._loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._storing: asyncio.Task[None] | None = None
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

    # ---- changes from other replicas -------------------------------------------------------

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
