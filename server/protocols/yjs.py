"""The CRDT endpoint: the Yjs sync protocol exactly as npm ``y-websocket`` speaks it.

``new WebsocketProvider('ws://HOST:PORT/crdt', 'notes/a', ydoc)`` connects as is.  On connect
the room is loaded from the store *before* anything is sent, then the server sends sync step 1
(its state vector) and the awareness states it knows; the client answers with step 2 (what the
server lacks — this is how offline edits merge) and sends its own step 1, answered with step 2.

The protocol logic is the pure :class:`crdt.sync.SyncServer` (one per room, holding the
awareness registry); this module moves bytes.  Fan-out is the hot path and stays thin: an
update is applied through the room's engine (which validates it: garbage must not reach the
other clients), then the frame **as received** is broadcast to every other connection with one
``broadcast()`` call and stored in parallel (:mod:`server.rooms.adapters` says why CRDT may
broadcast before durability).  Awareness frames are forwarded as received — to the sender too,
as y-websocket's server does: a lone provider drops its socket after 30 s without a message.
With replicas, awareness also travels to and from the other replicas' clients
(:mod:`server.protocols.yjs_presence`: relayed, shown to newcomers, expired if a replica dies).

Errors end the connection with a close code and a reason (Yjs has no error message):
malformed frames 4400, document too large 4413, wrong engine 4409, forbidden 4403, rate limit
4529 (y-websocket reconnects later and resyncs, so nothing is lost).  Read-only connections
receive everything, but their edits are dropped and answered once with a y-protocols auth
"permission denied" message (the provider logs it); the connection stays open.

Monotonic reads across replicas: a client's sync step 1 carries its state vector.  If it holds
clocks this replica lacks (the client saw a newer state through another replica, and this
replica's relay is behind), the step 2 answer waits — in a task, the connection keeps being
read — until the room covers that vector, at most ``Config.causal_wait_seconds``, and is then
computed against the vector.  Past the bound it is answered anyway: a y-websocket server must
never refuse a client, and the vector also counts the client's *own* edits not yet sent (they
arrive in its step 2 or as updates, which is also what usually ends the wait: about one round
trip).  Relayed updates are sent to the client meanwhile, as to every peer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import broadcast
from websockets.exceptions import ConnectionClosed

from crdt.errors import ProtocolError, UpdateError, is_panic
from crdt.sync import (
    FrameKind,
    SyncServer,
    permission_denied_frame,
    sync_step2_frame,
    update_frame,
)
from crdt.updates import decode_state_vector
from engines.crdt_engine import CRDTEngine
from engines.interface import Effects, Engine, EngineError
from server import causal
from server.auth import Grant
from server.context import Context
from server.errors import InvalidFrame, RateLimited, ReadOnly, WeftError, close_reason
from server.limits import TokenBucket
from server.metadata import wire as meta_wire
from server.protocols.yjs_presence import YjsPresence, yjs_presence
from server.relay.base import RelayMessage
from server.rooms.room import ChangeEvent, Room

log = logging.getLogger("weft.crdt")


def sync_of(room: Room) -> SyncServer:
    """The room's protocol state (created with the room's engine, gone with it)."""
    if room.presence is None:
        engine = room.require_engine()
        if not isinstance(engine, CRDTEngine):
            raise TypeError(f"expected a CRDT engine, got {type(engine).__name__}")
        room.presence = SyncServer(engine.document)
    sync: SyncServer = room.presence
    return sync


class YjsSession:
    """One y-websocket connection to one document."""

    def __init__(self, ws: Connection, ctx: Context, grant: Grant, name: str) -> None:
        self._ws = ws
        self.ctx = ctx
        self.grant = grant
        self.name = name
        self.author = grant.user or f"crdt:{id(self):x}"  # the token's user, else this connection
        self.room: Room | None = None
        limits = ctx.config.limits
        self.bucket = TokenBucket(limits.max_ops_per_second, limits.ops_burst)
        self.told_read_only = False
        self.closed = False
        self._closing: asyncio.Task[None] | None = None
        # Created on first use: most connections never ask for metadata or wait to be
        # answered, and an idle connection should cost as little as possible (target 10 KB).
        self.meta: meta_wire.YjsMeta | None = None
        self._answering: set[asyncio.Task[None]] | None = None  # step 2 answers waiting
        self.presence: YjsPresence | None = None  # awareness across replicas, once joined

    @property
    def ws(self) -> Connection:
        return self._ws

    def _meta(self) -> meta_wire.YjsMeta | None:
        """This connection's metadata channel (None when the server offers no metadata)."""
        if self.meta is None:
            service = self.ctx.shared.get("meta")
            if service is not None:
                self.meta = meta_wire.YjsMeta(service, self.send, self.grant, self.name)
        return self.meta

    def send(self, frame: bytes) -> None:
        broadcast([self._ws], frame)
        self.ctx.metrics.sent(len(frame))

    def drop(self, error: WeftError) -> None:
        if self.closed:
            return
        self.ctx.metrics.closes_total[error.close_code] += 1
        self.ctx.metrics.errors_total[error.code] += 1
        self.leave()
        self._closing = self._ws.loop.create_task(
            self._ws.close(error.close_code, close_reason(error))
        )

    async def run(self) -> None:
        self.grant.check(self.name, write=False)
        room = await self.ctx.rooms.open(self.name, "crdt")
        try:
            room.join(self)
        finally:
            room.release()
        self.room = room
        room.remote_handler = on_remote
        for frame in sync_of(room).open(self):
            self.send(frame)
        config = self.ctx.config
        self.presence = yjs_presence(self.ctx.shared, config.presence_refresh_seconds,
                                     config.presence_timeout_seconds)
        self.presence.join(room)  # awareness to and from the other replicas
        try:
            async for message in self._ws:
                self.ctx.metrics.received(len(message))
                if self.closed:
                    break
                try:
                    self.handle(message)
                except WeftError as exc:
                    self.drop(exc)
        except ConnectionClosed:
            pass
        finally:
            self.leave()
            if self._closing is not None:  # finish our close before websockets sends 1000
                await self._closing

    def leave(self) -> None:
        """Leave the room; tell the others this connection's awareness clients are gone."""
        if self.closed:
            return
        self.closed = True
        for task in self._answering or ():
            task.cancel()
        if self.meta is not None:
            self.meta.close()
        room = self.room
        if room is None:
            return
        room.leave(self)
        removals: tuple[bytes, ...] = ()
        if room.presence is not None:
            removals = sync_of(room).close(self)
            for frame in removals:
                room.fanout(frame)
        if self.presence is not None:
            self.presence.leave(room, removals)

    def handle(self, message: str | bytes) -> None:
        """Handle one frame synchronously (nothing here waits: fan-out is immediate)."""
        room = self.room
        if room is None:
            return
        if isinstance(message, str):
            raise InvalidFrame("the Yjs protocol uses binary frames; got a text frame")
        meta = self._meta() if meta_wire.is_yjs_meta(message) else None
        if meta is not None:
            if not self.bucket.take():
                raise RateLimited("too many metadata requests; reconnecting will resync")
            meta.receive(message)  # a Weft extension (server.metadata.wire)
            return
        try:
            reaction = sync_of(room).receive(self, message)
        except ProtocolError as exc:
            raise InvalidFrame(str(exc)) from None
        if reaction.update is not None:
            if not self._update(room, reaction.update):
                return
            for frame in reaction.broadcast:
                room.fanout(frame, exclude=self)
            return
        kind, payload = reaction.frame.kind, reaction.frame.payload
        if kind is FrameKind.SYNC_STEP1 and self._behind(room, payload):
            self._answer_later(room, payload)
            return
        for frame in reaction.reply:
            self.send(frame)
        for frame in reaction.broadcast:  # awareness: everyone, the sender included
            room.fanout(frame)
            if self.presence is not None:  # and the other replicas
                self.presence.published(room, frame)

    @staticmethod
    def _behind(room: Room, vector: bytes) -> bool:
        """Whether the client's state vector has clocks the room lacks."""
        try:
            wanted = decode_state_vector(vector)
        except UpdateError as exc:
            raise InvalidFrame(f"sync step 1: {exc}") from None
        mine = decode_state_vector(room.require_engine().token)
        return any(mine.get(client, 0) < clock for client, clock in wanted.items())

    def _answer_later(self, room: Room, vector: bytes) -> None:
        task = self._ws.loop.create_task(self._answer_when_caught_up(room, vector))
        if self._answering is None:
            self._answering = set()
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer_when_caught_up(self, room: Room, vector: bytes) -> None:
        """Send sync step 2 once the room covers ``vector``, or after the bound regardless."""
        wanted = causal.CausalToken("crdt", clocks=tuple(decode_state_vector(vector).items()))
        bound = self.ctx.config.causal_wait_seconds
        try:
            waited = await causal.wait_until(room, wanted, bound)
            self.ctx.metrics.causal_wait("crdt", "waited", waited)
        except causal.NotCaughtUp:
            self.ctx.metrics.causal_wait("crdt", "timeout", bound)
        except WeftError:  # the room failed or unloaded: the connection is being dropped
            return
        if self.closed or room.engine is None:
            return
        self.send(sync_step2_frame(sync_of(room).document.diff(vector)))

    def _update(self, room: Room, update: bytes) -> bool:
        """Apply a client's update through the engine; True if it brought news."""
        if not self.grant.can_write:
            self.ctx.metrics.errors_total[ReadOnly.code] += 1
            if not self.told_read_only:
                self.told_read_only = True
                self.send(permission_denied_frame(close_reason(ReadOnly(
                    f"read-only token for {self.name!r}: your edits are not saved or shared"))))
            return False
        if not self.bucket.take():
            raise RateLimited(f"more than {self.ctx.config.limits.max_ops_per_second:g} "
                              "updates/s; reconnecting will resync")
        author = self.author
        try:
            effects, _ = room.change(lambda e: e.apply(update, author), author=author,
                                     growth=len(update))
        except EngineError as exc:
            raise InvalidFrame(f"{exc.code}: {exc}") from None
        except BaseException as exc:
            if is_panic(exc):
                raise InvalidFrame(f"update rejected by the CRDT library: {exc}") from None
            raise
        return bool(effects.broadcast)


def server_change(room: Room, apply_fn: Callable[[Engine], Effects], growth: int,
                  author: str) -> asyncio.Future[Effects]:
    """A server-side edit of a CRDT room: fanned out at once, durable when the future is."""
    room.remote_handler = on_remote
    effects, done = room.change(apply_fn, author=author, growth=growth)
    for update in effects.broadcast:
        room.fanout(update_frame(update))
    return done


def on_remote(room: Room, message: RelayMessage) -> None:
    """An update committed through another replica: apply it and tell local clients."""
    engine = room.require_engine()
    for record in message.records:
        try:
            effects = engine.apply(record, f"relay:{message.origin}")
        except EngineError as exc:
            log.error("relayed update for %r rejected: %s", room.name, exc)
            continue
        for update in effects.broadcast:
            room.fanout(update_frame(update))
        if effects.broadcast and room.listeners:  # e.g. causal waits (server.causal)
            room.notify(ChangeEvent(room.name, room.kind, effects.broadcast,
                                    f"relay:{message.origin}", remote=True))
