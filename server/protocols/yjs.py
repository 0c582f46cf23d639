"""The CRDT endpoint: the Yjs sync protocol exactly as npm ``y-websocket`` speaks it.

``new WebsocketProvider('ws://HOST:PORT/crdt', 'notes/a', ydoc)`` connects as is.  On connect
the room is loaded from the store *before* anything is sent, then the server sends sync step 1
(its state vector) and the awareness states it knows; the client answers with step 2 (what the
server lacks — this is how offline edits merge) and sends its own step 1, answered with step 2.

Fan-out is the hot path and stays thin: an update is applied to the room's document (this also
validates it: garbage must not reach the other clients), then the frame **as received** is
broadcast to every other connection with one ``broadcast()`` call, and stored in parallel (see
:mod:`server.rooms.adapters` for why CRDT may broadcast before durability).  Awareness frames
are forwarded as received; the room only decodes them to remember states for newcomers and to
announce the departure of a connection's clients when it closes.

Errors end the connection with a close code and a reason (Yjs has no error message):
malformed frames 4400, document too large 4413, wrong engine 4409, forbidden 4403, rate limit
4529 (y-websocket reconnects later and resyncs, so nothing is lost).  Read-only connections
receive everything, but their edits are dropped and answered once with a y-protocols auth
"permission denied" message (the provider logs it); the connection stays open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import broadcast
from websockets.exceptions import ConnectionClosed

from crdt.errors import is_panic
from engines.interface import Effects, Engine, EngineError
from server.auth import Grant
from server.context import Context
from server.errors import RateLimited, ReadOnly, WeftError, close_reason
from server.limits import TokenBucket
from server.protocols.yjs_awareness import AwarenessTable
from server.protocols.yjs_wire import (
    SYNC_STEP1,
    SYNC_STEP2,
    BadFrame,
    awareness_frame,
    parse,
    permission_denied_frame,
    sync_frame,
    update_frame,
)
from server.relay.base import RelayMessage
from server.rooms.room import Room

log = logging.getLogger("weft.crdt")


def awareness_of(room: Room) -> AwarenessTable:
    if room.presence is None:
        room.presence = AwarenessTable()
    table: AwarenessTable = room.presence
    return table


class YjsSession:
    """One y-websocket connection to one document."""

    def __init__(self, ws: Connection, ctx: Context, grant: Grant, name: str) -> None:
        self._ws = ws
        self.ctx = ctx
        self.grant = grant
        self.name = name
        self.author = f"crdt:{id(self):x}"
        self.room: Room | None = None
        limits = ctx.config.limits
        self.bucket = TokenBucket(limits.max_ops_per_second, limits.ops_burst)
        self.told_read_only = False
        self.closed = False

    @property
    def ws(self) -> Connection:
        return self._ws

    def send(self, frame: bytes) -> None:
        broadcast([self._ws], frame)
        self.ctx.metrics.sent(len(frame))

    def drop(self, error: WeftError) -> None:
        if self.closed:
            return
        self.ctx.metrics.closes_total[error.close_code] += 1
        self.ctx.metrics.errors_total[error.code] += 1
        self.leave()
        self._ws.loop.create_task(self._ws.close(error.close_code, close_reason(error)))

    async def run(self) -> None:
        self.grant.check(self.name, write=False)
        room = await self.ctx.rooms.open(self.name, "crdt")
        try:
            room.join(self)
        finally:
            room.release()
        self.room = room
        room.remote_handler = on_remote
        engine = room.require_engine()
        self.send(sync_frame(SYNC_STEP1, engine.token))
        states = awareness_of(room).snapshot()
        if states is not None:
            self.send(awareness_frame(states))
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

    def leave(self) -> None:
        """Leave the room; tell the others this connection's awareness clients are gone."""
        if self.closed:
            return
        self.closed = True
        room = self.room
        if room is None:
            return
        room.leave(self)
        gone = awareness_of(room).remove_owner(self)
        if gone is not None:
            room.fanout(awareness_frame(gone))

    def handle(self, message: str | bytes) -> None:
        """Handle one frame synchronously (nothing here waits: fan-out is immediate)."""
        if isinstance(message, str):
            raise BadFrame("the Yjs protocol uses binary frames; got a text frame")
        room = self.room
        if room is None:
            return
        frame = parse(message)
        kind = frame.kind
        if kind == "update" or kind == "step2":
            self._update(room, frame.payload, message if kind == "update" else None)
        elif kind == "awareness":
            awareness_of(room).apply(frame.payload, owner=self)
            room.fanout(message, exclude=self)
        elif kind == "step1":
            engine = room.require_engine()
            try:
                missing = engine.newcomer_state(frame.payload)
            except EngineError as exc:
                raise BadFrame(f"invalid state vector in sync step 1: {exc}") from None
            self.send(sync_frame(SYNC_STEP2, missing))
        elif kind == "query_awareness":
            states = awareness_of(room).snapshot()
            self.send(awareness_frame(states if states is not None else b"\x00"))
        else:  # auth: only servers send it
            self.send(permission_denied_frame("clients do not send auth messages"))

    def _update(self, room: Room, update: bytes, frame: bytes | None) -> None:
        if not self.grant.can_write:
            self.ctx.metrics.errors_total[ReadOnly.code] += 1
            if not self.told_read_only:
                self.told_read_only = True
                self.send(permission_denied_frame(close_reason(ReadOnly(
                    f"read-only token for {self.name!r}: your edits are not saved or shared"))))
            return
        if not self.bucket.take():
            raise RateLimited(f"more than {self.ctx.config.limits.max_ops_per_second:g} "
                              "updates/s; reconnecting will resync")
        author = self.author
        try:
            effects, _ = room.change(lambda e: e.apply(update, author), author=author,
                                     growth=len(update))
        except EngineError as exc:
            raise BadFrame(f"{exc.code}: {exc}") from None
        except BaseException as exc:
            if is_panic(exc):
                raise BadFrame(f"update rejected by the CRDT library: {exc}") from None
            raise
        if effects.broadcast:
            room.fanout(frame if frame is not None else update_frame(update), exclude=self)


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
