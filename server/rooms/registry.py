"""The registry of open rooms: lazy loading, one room per document, kind enforcement.

Every access goes through :meth:`Rooms.use` (a short request) or :meth:`Rooms.open` followed by
:meth:`Room.join` (a connection).  Concurrent openers of one document share one load; a failed
load leaves nothing behind (the room removes itself), so the next opener simply tries again.

The engine of a document is decided once: by the store when the document exists, otherwise by
the first endpoint that opens it.  Opening it through the other endpoint raises
:class:`EngineMismatch` — one document never gets both engines.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from server.errors import DocNotFound, EngineMismatch, ShuttingDown, StorageError, WeftError
from server.hooks.core import Hooks
from server.metrics import Metrics
from server.relay.base import Relay
from server.rooms.adapters import ADAPTERS, EngineAdapter
from server.rooms.lifecycle import RoomState
from server.rooms.room import Room, RoomSettings
from server.store.base import Store

log = logging.getLogger("weft.rooms")


class Rooms:
    """All rooms of one server process."""

    def __init__(
        self,
        store: Store,
        relay: Relay,
        metrics: Metrics,
        settings: RoomSettings,
        adapters: dict[str, EngineAdapter] | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.store = store
        self.relay = relay
        self.metrics = metrics
        self.settings = settings
        self.adapters = adapters or ADAPTERS
        # Load/change/store hooks (None: none); also how other modules reach Hooks.emit.
        self.hooks = hooks
        self._rooms: dict[str, Room] = {}
        self._closing = False
        # Called with each room once loaded (e.g. OT rooms on Redis attach to the sequencer,
        # so relayed ops reach rooms opened only through REST).
        self.on_loaded: Callable[[Room], None] | None = None

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, name: str) -> Room | None:
        """The room if it is in memory (any state), without loading it."""
        return self._rooms.get(name)

    def states(self) -> dict[str, int]:
        return dict(Counter(room.state.value for room in self._rooms.values()))

    async def open(self, name: str, kind: str | None, *, create: bool = True) -> Room:
        """The live room for ``name``, loading it if needed.

        ``kind`` is the engine the caller speaks; None accepts whatever the document uses (the
        REST API).  With ``create=False`` (or ``kind=None``) a document that does not exist
        raises :class:`DocNotFound` instead of being opened empty.
        """
        for _ in range(100):  # a room may retire between our look and our hold: look again
            if self._closing:
                raise ShuttingDown("server is shutting down")
            room = self._rooms.get(name)
            if room is None or room.state is RoomState.UNLOADED:
                stored_kind = await self.store.kind_of(name)
                room = self._rooms.get(name)  # someone else may have started while we awaited
                if room is None or room.state is RoomState.UNLOADED:
                    if stored_kind is None and (kind is None or not create):
                        raise DocNotFound(f"document {name!r} does not exist")
                    room = self._start(name, stored_kind or kind or "")
            await room.ready()
            if room.state is RoomState.UNLOADED:
                continue
            if kind is not None and room.kind != kind:
                raise EngineMismatch(
                    f"document {name!r} is a {room.kind} document; open it through the "
                    f"/{room.kind} endpoint (one document never gets both engines)"
                )
            if not create and not room.stored:
                raise DocNotFound(f"document {name!r} does not exist")
            room.hold()  # the caller's hold; Room.join/leave or release() take over
            return room
        raise StorageError(f"document {name!r} keeps unloading while being opened; retry")

    def _start(self, name: str, kind: str) -> Room:
        adapter = self.adapters.get(kind)
        if adapter is None:
            raise StorageError(f"document {name!r} has unknown engine kind {kind!r}")
        room = Room(name, adapter, self.store, self.relay, self.metrics, self.settings,
                    self._forget, self.hooks)
        self._rooms[name] = room
        asyncio.get_running_loop().create_task(self._load(room), name=f"load {name}")
        return room

    async def _load(self, room: Room) -> None:
        try:
            stored = await self.store.load(room.name)
            if stored is not None and stored.kind != room.kind:
                raise StorageError(f"stored kind {stored.kind} != {room.kind} for {room.name!r}")
        except WeftError as exc:
            room.fail_load(exc)
            return
        except Exception as exc:
            log.exception("loading %r failed", room.name)
            room.fail_load(StorageError(f"cannot load {room.name!r}: {exc}"))
            return
        await room.load(stored)
        if self.on_loaded is not None and room.state is RoomState.LIVE:
            self.on_loaded(room)

    def _forget(self, room: Room) -> None:
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]

    @asynccontextmanager
    async def use(
        self, name: str, kind: str | None, *, create: bool = True
    ) -> AsyncIterator[Room]:
        """Hold a room for the duration of a request."""
        room = await self.open(name, kind, create=create)
        try:
            yield room
        finally:
            room.release()

    async def close(self) -> None:
        """Store and unload every room (server shutdown); peers must be closed first."""
        self._closing = True
        rooms = list(self._rooms.values())
        results = await asyncio.gather(*(r.shutdown() for r in rooms), return_exceptions=True)
        for room, result in zip(rooms, results, strict=True):
            if isinstance(result, BaseException):
                log.error("could not store %r at shutdown: %s", room.name, result)
