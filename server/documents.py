"""Server-side document access: read text, make edits, follow changes — for the REST API and
for apps embedding the server.

A server-side edit goes through the same room pipeline as a client's: it is stored, then
broadcast to every connected client in the client's own protocol (a ShareDB op message or a Yjs
update frame), then told to listeners.  Positions and lengths are code points.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from engines.interface import Effects, Engine
from server.auth import OPEN_GRANT, Grant
from server.context import Context
from server.errors import BadMessage, ClientError
from server.protocols import ot_docs, yjs
from server.rooms.room import ChangeEvent, Room


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadMessage(f"{key!r} must be an integer >= 0 (code points), got {value!r}")
    return value


def describe(room: Room) -> dict[str, Any]:
    """The REST view of a document: name, engine, text and causal token."""
    engine = room.require_engine()
    info: dict[str, Any] = {"name": room.name, "engine": room.kind, "text": engine.text}
    if room.kind == "ot":
        info["version"] = ot_docs.version(engine)
    else:
        info["token"] = base64.b64encode(engine.token).decode("ascii")
    return info


def server_change(room: Room, apply: Callable[[Engine], Effects], growth: int,
                  author: str) -> asyncio.Future[Effects]:
    """Apply a server-side change and deliver it to the room's clients in their protocol."""
    if room.kind == "ot":
        return ot_docs.server_change(room, apply, growth, author)
    return yjs.server_change(room, apply, growth, author)


class Documents:
    """Document operations on behalf of the REST API or an embedding app."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def read(self, name: str, grant: Grant = OPEN_GRANT) -> dict[str, Any]:
        grant.check(name, write=False)
        async with self.ctx.rooms.use(name, None, create=False) as room:
            await room.flush()
            return describe(room)

    async def text(self, name: str) -> str:
        text: str = (await self.read(name))["text"]
        return text

    async def edit(self, name: str, grant: Grant, body: dict[str, Any]) -> dict[str, Any]:
        """Apply ``{"pos", "insert"}`` or ``{"pos", "delete"}``; returns the new state.

        A document that does not exist is created only when ``body["engine"]`` names its
        engine (``"ot"`` or ``"crdt"``).
        """
        grant.check(name, write=True)
        pos = _int(body, "pos")
        insert, delete = body.get("insert"), body.get("delete")
        if (insert is None) == (delete is None):
            raise BadMessage('an edit needs exactly one of "insert" (text) or "delete" (count)')
        if insert is not None and not isinstance(insert, str):
            raise BadMessage('"insert" must be a string')
        engine_kind = body.get("engine")
        if engine_kind not in (None, "ot", "crdt"):
            raise BadMessage('"engine" must be "ot" or "crdt"')
        author = str(body.get("author") or "server")
        async with self.ctx.rooms.use(name, engine_kind, create=engine_kind is not None) as room:
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
