"""Server-side edits (REST API, embedding ``edit()``) of OT documents on replicas.

They are committed like a client's op — through the sequencer or the document's home
(:func:`server.protocols.ot_replicas.commit`) — never appended beside it, so the log keeps one
op per version.  The op is the one the edit makes at the version this replica has: its position
means a position in the text the caller could have read, and it is transformed over whatever
was committed meanwhile, like a client's.  Each edit carries this process's own ``src`` and a
counter as ``seq``, so a commit retried after a lost reply is recognized (never applied twice).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Callable

from engines.interface import Effects
from engines.ot_engine import OTCommitted, OTEngine, OTSubmit
from ot.server_doc import ServerDocument
from server.errors import ClientError
from server.protocols import ot_docs, ot_replicas
from server.rooms.room import Room

#: The ``src`` of this process's server-side edits (random per process: a restarted process
#: must not collide with the ``seq`` numbers its predecessor left in Redis).
SERVER_SRC = f"{ot_docs.SERVER_SRC}:{secrets.token_hex(4)}"
_server_seq = itertools.count(1)


def server_edit(room: Room, apply: Callable[[OTEngine], Effects],
                author: str) -> asyncio.Task[Effects]:
    """A server-side edit (REST, embedding) of an OT room on replicas: the op ``apply`` makes
    at the current version is committed like a client's (creating the document first)."""

    async def run() -> Effects:
        if ot_replicas.engine(room).version == 0:
            create = ot_docs.Create("", SERVER_SRC, next(_server_seq))
            try:
                await ot_replicas.commit(room, create, author, _server_broadcast(room))
            except ClientError as exc:  # created meanwhile by someone else: fine
                if exc.code != "ERR_DOC_ALREADY_CREATED":
                    raise
        ot = ot_replicas.engine(room)
        scratch = OTEngine(ServerDocument(ot.text, ot.version))
        committed = [c for c in apply(scratch).broadcast if isinstance(c, OTCommitted)]
        if not committed:
            return Effects()
        change = OTSubmit(committed[0].op, committed[0].version, SERVER_SRC, next(_server_seq))
        return await ot_replicas.commit(room, change, author, _server_broadcast(room))

    return asyncio.get_running_loop().create_task(run(), name=f"server edit {room.name}")


def _server_broadcast(room: Room) -> ot_replicas.Deliver:
    collection, _, doc_id = room.name.partition("/")
    return lambda effects: ot_docs._broadcast(room, collection, doc_id, effects)
