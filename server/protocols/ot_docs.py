"""ShareDB document semantics on top of the OT engine.

ShareDB documents have a lifecycle the engine does not model: a document that was never
created has ``type: null`` at version 0; ``create`` sets the type and initial text and takes it
to version 1; ops follow.  We map that onto the engine without a second record kind: **the
create is the engine's op at version 0** (``["initial text"]``, or ``[]`` for an empty
document), so ShareDB versions and engine versions are the same numbers and a document exists
exactly when its version is > 0.  A resubmitted create (same ``src``/``seq``) is acknowledged
again, as ShareDB's ``_fetchCreateOpVersion`` does.

``del`` is refused (``ERR_DOC_DELETE_UNSUPPORTED``): the engine has no "deleted" state with a
version, and faking one would break version monotonicity for other clients.  The client rolls
the delete back and reports the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engines.interface import Effects, Engine, EngineError
from engines.ot_engine import OTAck, OTCommitted, OTEngine, OTSubmit
from server.errors import BadMessage, ClientError, DocNotFound, UnsupportedAction
from server.protocols.sharedb_wire import TEXT_UNICODE_NAMES, encode, op_message
from server.rooms.room import Room

SERVER_SRC = "weft-server"


@dataclass(frozen=True, slots=True)
class Create:
    """A ShareDB ``create``: the initial text, committed as the op at version 0."""

    text: str
    src: str | None
    seq: int | None


def _engine(engine: Engine) -> OTEngine:
    if not isinstance(engine, OTEngine):
        raise TypeError(f"expected an OT engine, got {type(engine).__name__}")
    return engine


def version(engine: Engine) -> int:
    return _engine(engine).version


def snapshot(engine: Engine) -> tuple[int, str | None]:
    """``(version, text)``; text is None while the document has not been created."""
    ot = _engine(engine)
    return ot.version, (ot.text if ot.version > 0 else None)


def ops_since(engine: Engine, since: int) -> list[OTCommitted]:
    ops: list[OTCommitted] = _engine(engine).newcomer_state(since)
    return ops


def ops_between(engine: Engine, start: int, end: int) -> list[OTCommitted]:
    """Committed ops with ``start <= version < end`` (what a non-subscriber missed)."""
    if start >= end:
        return []
    return [c for c in ops_since(engine, start) if c.version < end]


def op_frame(collection: str, doc_id: str, committed: OTCommitted) -> dict[str, Any]:
    if committed.version == 0:  # the create, as ShareDB broadcasts it
        text = "".join(c for c in committed.op if isinstance(c, str))
        return {"a": "op", "c": collection, "d": doc_id, "v": 0, "src": committed.src,
                "seq": committed.seq, "create": {"type": "http://sharejs.org/types/text-unicode",
                                                 "data": text}}
    return op_message(collection, doc_id, committed.version, committed.op, committed.src,
                      committed.seq)


def submission(request: dict[str, Any], src: str, seq: Any) -> OTSubmit | Create:
    """Turn an ``op`` message into the change to apply."""
    if "op" in request:
        version = request.get("v")
        if version is None:
            version = -1  # "apply at the current version": resolved in apply()
        return OTSubmit(request["op"], version, src, seq)
    if request.get("create"):
        create = request["create"]
        if not isinstance(create, dict):
            raise BadMessage("Invalid create: expected {type, data}")
        if create.get("type") not in TEXT_UNICODE_NAMES:
            raise ClientError(
                f"Unsupported document type {create.get('type')!r}: this server keeps "
                "text-unicode documents (ShareDB.types.register(require('ot-text-unicode')."
                "type); doc.create(text, 'text-unicode'))",
                code="ERR_DOC_TYPE_NOT_RECOGNIZED",
            )
        data = create.get("data")
        if data is None:
            data = ""
        if not isinstance(data, str):
            raise ClientError("text-unicode documents are created from a string",
                              code="ERR_OT_OP_BADLY_FORMED")
        return Create(data, src, seq)
    if request.get("del"):
        raise UnsupportedAction(
            "deleting documents is not supported; clear the text with an op instead",
            code="ERR_DOC_DELETE_UNSUPPORTED",
        )
    raise BadMessage("Invalid op message: expected 'op', 'create' or 'del'")


def growth(change: OTSubmit | Create) -> int:
    """UTF-8 bytes the change inserts at most (deletions ignored): for the size limit."""
    if isinstance(change, Create):
        return len(change.text.encode("utf-8", "surrogatepass"))
    if not isinstance(change.op, list):
        return 0
    return sum(len(c.encode("utf-8", "surrogatepass")) for c in change.op if isinstance(c, str))


def apply(engine: Engine, change: OTSubmit | Create, author: str) -> Effects:
    ot = _engine(engine)
    if isinstance(change, Create):
        return _create(ot, change, author)
    if ot.version == 0:
        raise DocNotFound("Document does not exist: create it before submitting ops")
    if change.version == -1:
        change = OTSubmit(change.op, ot.version, change.src, change.seq)
    elif change.version == 0:
        raise ClientError("Document was created at version 0; ops need a version >= 1",
                          code="ERR_DOC_ALREADY_CREATED")
    return ot.apply(change, author)


def _create(ot: OTEngine, change: Create, author: str) -> Effects:
    if ot.version > 0:
        try:
            first = ot.newcomer_state(0)[0]
        except (EngineError, IndexError):
            first = None
        if first is not None and change.src and (first.src, first.seq) == (change.src,
                                                                            change.seq):
            return Effects(reply=(OTAck(0, change.src, change.seq),))  # a resubmitted create
        raise ClientError("Invalid op submitted. Document already created",
                          code="ERR_DOC_ALREADY_CREATED")
    op = [change.text] if change.text else []
    return ot.apply(OTSubmit(op, 0, change.src, change.seq), author)


def ack(effects: Effects, src: str, seq: Any) -> dict[str, Any]:
    """The ack fields ShareDB sends: ``{src, seq, v}`` with the version committed at."""
    for reply in effects.reply:
        if isinstance(reply, OTAck):
            return {"src": src, "seq": seq, "v": reply.version}
    raise EngineError("the OT engine acknowledged nothing", "ERR_OT_OP_NOT_APPLIED")


def server_change(room: Room, apply_fn: Callable[[Engine], Effects], growth_bytes: int,
                  author: str) -> asyncio.Future[Effects]:
    """A server-side edit of an OT room: committed, then broadcast to every subscriber."""
    collection, _, doc_id = room.name.partition("/")
    engine = room.require_engine()
    if _engine(engine).version == 0:
        # Create it first (ShareDB clients must see a create before ops).
        room.change(lambda e: apply(e, Create("", SERVER_SRC, None), author),
                    author=author, on_durable=lambda fx: _broadcast(room, collection, doc_id, fx))

    def on_durable(effects: Effects) -> None:
        _broadcast(room, collection, doc_id, effects)

    _, done = room.change(apply_fn, author=author, growth=growth_bytes, on_durable=on_durable)
    return done


def _broadcast(room: Room, collection: str, doc_id: str, effects: Effects) -> None:
    for committed in effects.broadcast:
        if isinstance(committed, OTCommitted):
            frame = op_frame(collection, doc_id, committed)
            if committed.src is None:
                frame["src"], frame["seq"] = SERVER_SRC, None
            room.fanout(encode(frame), text=True)
