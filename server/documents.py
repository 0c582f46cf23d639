"""Server-side document access: read text, make edits, follow changes — for the REST API and
for apps embedding the server.

A server-side edit goes through the same room pipeline as a client's: it is stored, then
broadcast to every connected client in the client's own protocol (a ShareDB op message or a Yjs
update frame), then told to listeners.  Positions and lengths are code points.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from engines.interface import Effects, Engine
from server import causal
from server.auth import OPEN_GRANT, Grant
from server.context import Context
from server.errors import BadMessage, ClientError
from server.protocols import ot_docs, ot_replicas, ot_server_edits, yjs
from server.relay.base import RelayMessage
from server.rooms.room import ChangeEvent, Room


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadMessage(f"{key!r} must be an integer >= 0 (code points), got {value!r}")
    return value


def describe(room: Room) -> dict[str, Any]:
    """The REST view of a document: name, engine, text and causal token (see server.causal)."""
    engine = room.require_engine()
    info: dict[str, Any] = {"name": room.name, "engine": room.kind, "text": engine.text}
    if room.kind == "ot":
        info["version"] = ot_docs.version(engine)
    info["token"] = causal.token_of(room)
    return info


def follow_relay(room: Room) -> None:
    """Make changes from other replicas reach this room's engine *and notify its listeners*.

    A room only REST opened may have no protocol handler for relayed records (OT ones are then
    ignored; CRDT ones applied silently).  A causal wait needs both, so install the protocol's
    handler.  An OT room reads what it lacks from the log at once (it may have ignored records
    until now, and the log is the authority: no need to wait for the relay).
    """
    if room.kind == "crdt":
        if room.remote_handler is None:
            room.remote_handler = yjs.on_remote
    elif ot_replicas.sequencer(room) is not None:
        ot_replicas.attach(room)
        # An empty "snapshot" message makes ot_replicas read what the engine lacks from the log.
        ot_replicas.on_remote(room, RelayMessage(room.name, room.kind, "snapshot", ()))


def server_change(room: Room, apply: Callable[[Engine], Effects], growth: int,
                  author: str) -> asyncio.Future[Effects]:
    """Apply a server-side change and deliver it to the room's clients in their protocol."""
    if room.kind == "ot":
        if ot_replicas.sequencer(room) is not None:  # replicas: through the sequencer / home
            room.check_growth(growth)
            return ot_server_edits.server_edit(room, apply, author)
        return ot_docs.server_change(room, apply, growth, author)
    return yjs.server_change(room, apply, growth, author)


class Documents:
    """Document operations on behalf of the REST API or an embedding app."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def read(self, name: str, grant: Grant = OPEN_GRANT,
                   after: str | None = None) -> dict[str, Any]:
        """The document's state; with ``after`` (a causal token), one at least that new."""
        grant.check(name, write=False)
        wanted = causal.decode(after) if after else None
        async with self.ctx.rooms.use(name, None, create=False) as room:
            if wanted is not None:
                await self.catch_up(room, wanted)
            await room.flush()
            return describe(room)

    async def catch_up(self, room: Room, wanted: causal.CausalToken,
                       endpoint: str = "rest") -> float:
        """Wait (bounded) until ``room`` covers ``wanted``; count the wait in the metrics."""
        if not causal.reached(room, wanted):
            follow_relay(room)
        try:
            waited = await causal.wait_until(room, wanted, self.ctx.config.causal_wait_seconds)
        except causal.NotCaughtUp:
            self.ctx.metrics.causal_wait(endpoint, "timeout", self.ctx.config.causal_wait_seconds)
            raise
        self.ctx.metrics.causal_wait(endpoint, "waited" if waited else "immediate", waited)
        return waited

    async def text(self, name: str) -> str:
        text: str = (await self.read(name))["text"]
        return text

    async def edit(self, name: str, grant: Grant, body: dict[str, Any],
                   after: str | None = None) -> dict[str, Any]:
        """Apply ``{"pos", "insert"}`` or ``{"pos", "delete"}``; returns the new state.

        A document that does not exist is created only when ``body["engine"]`` names its
        engine (``"ot"`` or ``"crdt"``).  With ``after`` (a causal token) the edit waits until
        the document covers it, so ``pos`` means a position in a state the caller has seen.
        """
        grant.check(name, write=True)
        wanted = causal.decode(after) if after else None
        pos = _int(body, "pos")
        insert, delete = body.get("insert"), body.get("delete")
        if (insert is None) == (delete is None):
            raise BadMessage('an edit needs exactly one of "insert" (text) or "delete" (count)')
        if insert is not None and not isinstance(insert, str):
            raise BadMessage('"insert" must be a string')
        engine_kind = body.get("engine")
        if engine_kind not in (None, "ot", "crdt"):
            raise BadMessage('"engine" must be "ot" or "crdt"')
        author = grant.author(body.get("author"), "server")
        async with self.ctx.rooms.use(name, engine_kind, create=engine_kind is not None) as room:
            if wanted is not None:
                await self.catch_up(room, wanted)
            length = len(room.require_engine().text)
            if pos > length:
                raise ClientError(f"pos {pos} is past the end of the document ({length})",
                                  code="ERR_OT_OP_NOT_APPLIED")
            if insert is not None:
                text = insert
                growth = len(text.encode("utf-8", "surrogatepass"))
                await server_change(room, lambda e: e.insert(pos, text, author), growth, author)
            else:
                count = _int(body, "delete")
                if pos + count > length:
                    raise ClientError(
                        f"cannot delete {count} code points at {pos}: the document has {length}",
                        code="ERR_OT_OP_NOT_APPLIED",
                    )
                await server_change(room, lambda e: e.delete(pos, count, author), 0, author)
            return describe(room)

    @asynccontextmanager
    async def changes(self, name: str, kind: str | None = None) -> AsyncIterator[
        asyncio.Queue[ChangeEvent]
    ]:
        """Follow a document's committed changes; the room stays loaded meanwhile."""
        queue: asyncio.Queue[ChangeEvent] = asyncio.Queue()
        room = await self.ctx.rooms.open(name, kind, create=kind is not None)
        room.listeners.append(queue.put_nowait)
        try:
            yield queue
        finally:
            room.listeners.remove(queue.put_nowait)
            room.release()
