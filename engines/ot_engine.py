"""The OT engine: a :class:`ot.server_doc.ServerDocument` behind the :class:`Engine` interface.

Changes are :class:`OTSubmit` (an op made against a version, identified by ShareDB's
``src``/``seq``); accepting one yields a log record to persist, an :class:`OTAck` for the sender
and an :class:`OTCommitted` for everyone else — ShareDB's ack and op broadcast.  A resubmitted op
that was already committed is only acknowledged again (with the version it was committed at),
as ShareDB's agent does with ``ERR_OP_ALREADY_SUBMITTED``.

Durable formats (orjson): a log record is ``{"v", "op", "src", "seq", "a"}`` — ``v`` the
version the op was applied at, ``a`` the author; a snapshot is ``{"v", "text"}``.

This adapter is on the hot path of the server and of trace replays, so :meth:`OTEngine.apply`
does nothing beyond submit, one ``orjson.dumps`` and building the results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from orjson import JSONDecodeError, dumps, loads

from engines.interface import NO_EFFECTS, Effects, EngineError
from ot.errors import DuplicateOpError, OTError
from ot.server_doc import ServerDocument
from ot.text_op import Op, base_length, check, delete_op, insert_op

#: ShareDB's name for the type this engine speaks.
TYPE_URI = "http://sharejs.org/types/text-unicode"


@dataclass(frozen=True, slots=True)
class OTSubmit:
    """A client's op, made against ``version``; ``src``/``seq`` identify it for dedup."""

    op: Any
    version: int
    src: str | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class OTAck:
    """Acknowledgement for the sender: its op was committed at ``version`` (ShareDB ack's
    ``v``), so the sender's document is now at ``version + 1``."""

    version: int
    src: str | None
    seq: int | None


@dataclass(frozen=True, slots=True)
class OTCommitted:
    """A committed op for the other clients: apply ``op`` to a document at ``version``."""

    version: int
    op: Op
    src: str | None
    seq: int | None


def _error(exc: OTError) -> EngineError:
    return EngineError(str(exc), exc.code)



def _remember(doc: ServerDocument, ops: list[tuple[object, str | None, int | None]],
              max_history: int | None) -> None:
    """Give ``doc`` the ops that led up to its snapshot as history (the newest
    ``max_history``); unreadable history is skipped, not fatal: the text is right without it."""
    if max_history is not None:
        ops = ops[max(0, len(ops) - max_history):] if max_history else []
    with contextlib.suppress(OTError, ValueError):
        doc.remember(ops)

class OTEngine:
    """One OT document.  ``newcomer_state()`` gives ``(text, version)``;
    ``newcomer_state(since)`` the :class:`OTCommitted` ops since that version."""

    kind: ClassVar[str] = "ot"
    __slots__ = ("_doc",)

    def __init__(self, doc: ServerDocument | None = None) -> None:
        self._doc = doc if doc is not None else ServerDocument()

    @property
    def document(self) -> ServerDocument:
        """The underlying server document (for tests, benchmarks and compaction)."""
        return self._doc

    @classmethod
    def load(cls, snapshot: bytes | None = None, log: Iterable[bytes] = (), *,
             max_history: int | None = None) -> Self:
        """Open from a snapshot plus the log records after it (records the snapshot already
        covers are skipped; a gap in versions is an error)."""
        text, version = "", 0
        if snapshot is not None:
            try:
                data = loads(snapshot)
                text, version = data["text"], data["v"]
            except (JSONDecodeError, KeyError, TypeError) as exc:
                raise EngineError(f"OT snapshot is not {{'v': int, 'text': str}}: {exc}",
                                  "ERR_SNAPSHOT_INVALID") from exc
            if type(text) is not str or type(version) is not int or version < 0:
                raise EngineError("OT snapshot is not {'v': int >= 0, 'text': str}",
                                  "ERR_SNAPSHOT_INVALID")
        doc = ServerDocument(text, version, max_history=max_history)
        # Records the snapshot covers are not applied, but kept as history when they run up to
        # it: ops made before the snapshot still transform, resubmissions are still spotted.
        earlier: list[tuple[object, str | None, int | None]] = []
        after = -1  # the version the kept run of earlier records reaches
        for i, raw in enumerate(log):
            try:
                record = loads(raw)
                v = record["v"]
                if type(v) is int and v < doc.version:
                    if v != after:
                        earlier = []
                    earlier.append((record["op"], record.get("src"), record.get("seq")))
                    after = v + 1
                    continue
                if earlier:
                    _remember(doc, earlier if after == version else [], max_history)
                    earlier = []
                if v != doc.version:
                    raise EngineError(f"OT log record {i} is for version {v!r} but the document "
                                      f"is at version {doc.version}: records are missing",
                                      "ERR_LOG_GAP")
                doc.submit(record["op"], v, record.get("src"), record.get("seq"))
            except (JSONDecodeError, KeyError, TypeError, AttributeError, OTError) as exc:
                raise EngineError(f"OT log record {i} is unreadable: {exc}",
                                  "ERR_LOG_INVALID") from exc
        if earlier and after == version:
            _remember(doc, earlier, max_history)
        return cls(doc)

    def apply(self, change: Any, author: str = "") -> Effects:
        """Commit an :class:`OTSubmit`; raise :class:`EngineError` (document unchanged) if the
        op is invalid, too old or from the future."""
        if type(change) is not OTSubmit:
            raise EngineError(f"the OT engine takes OTSubmit changes, got "
                              f"{type(change).__name__}", "ERR_MESSAGE_BADLY_FORMED")
        src = change.src
        seq = change.seq
        try:
            op, v = self._doc.submit(change.op, change.version, src, seq)
        except DuplicateOpError as dup:
            return Effects(reply=(OTAck(dup.version, src, seq),))
        except OTError as exc:
            raise _error(exc) from exc
        return Effects(
            (dumps({"v": v, "op": op, "src": src, "seq": seq, "a": author}),),
            (OTAck(v, src, seq),),
            (OTCommitted(v, op, src, seq),),
        )

    def prepare(self, change: OTSubmit) -> tuple[Op, int] | Effects:
        """What :meth:`apply` would commit — ``(op transformed to the current version, that
        version)`` — without committing it, for a sequencer that must accept the op first
        (replicas over Redis).  A resubmission gives its re-ack effects instead.  Raises
        :class:`EngineError` (also when the op does not fit the text) like :meth:`apply`."""
        doc = self._doc
        try:
            if change.version == doc.version and type(change.version) is int:
                op = check(change.op)
            else:
                op = doc._rebase(change.op, change.version, change.src, change.seq)
        except DuplicateOpError as dup:
            return Effects(reply=(OTAck(dup.version, change.src, change.seq),))
        except OTError as exc:
            raise _error(exc) from exc
        if base_length(op) > len(doc):
            raise EngineError(f"op walks over {base_length(op)} characters but the text has "
                              f"{len(doc)}", "ERR_OT_OP_NOT_APPLIED")
        return op, doc.version

    def newcomer_state(self, since: int | bytes | None = None) -> Any:
        """``(text, version)``, or the ops committed since ``since`` (a version or a
        :attr:`token`) as a list of :class:`OTCommitted`."""
        doc = self._doc
        if since is None:
            return doc.text, doc.version
        if type(since) is bytes:
            if not since.isdigit():
                raise EngineError(f"an OT token is an ASCII version number, got {since!r}",
                                  "ERR_MESSAGE_BADLY_FORMED")
            since = int(since)
        try:
            ops = doc.ops_since(since)  # type: ignore[arg-type]
        except OTError as exc:
            raise _error(exc) from exc
        return [OTCommitted(c.version, c.op, c.src, c.seq) for c in ops]

    @property
    def text(self) -> str:
        return self._doc.text

    @property
    def version(self) -> int:
        return self._doc.version

    @property
    def token(self) -> bytes:
        """The version in ASCII digits (``b"1234"``): compact, and a Redis script can compare
        it with ``tonumber``."""
        return b"%d" % self._doc.version

    def insert(self, pos: int, text: str, author: str = "server") -> Effects:
        """Insert ``text`` at code point ``pos`` as the next committed op."""
        try:
            op = insert_op(pos, text)
        except OTError as exc:
            raise _error(exc) from exc
        if pos > len(self._doc):
            raise EngineError(f"insert position {pos} is past the end of the text (length "
                              f"{len(self._doc)}); expected 0 <= pos <= {len(self._doc)}",
                              "ERR_OT_OP_NOT_APPLIED")
        return self._server_edit(op, author)

    def delete(self, pos: int, length: int, author: str = "server") -> Effects:
        """Delete ``length`` code points at ``pos`` as the next committed op."""
        if type(length) is not int:
            raise EngineError(f"delete length must be an int, got {type(length).__name__}",
                              "ERR_OT_OP_BADLY_FORMED")
        try:
            op = delete_op(pos, length)
        except OTError as exc:
            raise _error(exc) from exc
        if pos + length > len(self._doc):
            raise EngineError(f"delete of {length} at {pos} runs past the end of the text "
                              f"(length {len(self._doc)}); expected pos + length <= "
                              f"{len(self._doc)}", "ERR_OT_OP_NOT_APPLIED")
        return self._server_edit(op, author)

    def _server_edit(self, op: Op, author: str) -> Effects:
        if not op:
            return NO_EFFECTS
        return self.apply(OTSubmit(op, self._doc.version), author)

    def snapshot(self) -> bytes:
        doc = self._doc
        return dumps({"v": doc.version, "text": doc.text})
