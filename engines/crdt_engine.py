"""The CRDT engine: a :class:`~crdt.document.CrdtDocument` behind the ``Engine`` interface.

Payloads are Yjs v1 update bytes in both directions.  An accepted update is persisted and
broadcast *as received* (updates commute, so no rewriting is needed and relays can forward
frames untouched); the causal token is the document's encoded state vector.  The adapter is on
every edit's path, so it only translates: validation, Unicode and pending updates are the
document's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Self

from crdt.document import EMPTY_UPDATE, CrdtDocument
from crdt.errors import CrdtError, PositionError, TextError, UpdateError
from engines.interface import NO_EFFECTS, Effects, EngineError

ERR_UPDATE_INVALID = "ERR_CRDT_UPDATE_INVALID"
ERR_STATE_VECTOR_INVALID = "ERR_CRDT_STATE_VECTOR_INVALID"
ERR_POSITION = "ERR_CRDT_POSITION"
ERR_TEXT_INVALID = "ERR_CRDT_TEXT_INVALID"


class CRDTEngine:
    """A document merged as a Yjs CRDT (pycrdt), addressed in code points."""

    kind: ClassVar[str] = "crdt"

    __slots__ = ("document",)

    def __init__(self, document: CrdtDocument | None = None) -> None:
        self.document = document if document is not None else CrdtDocument()

    @classmethod
    def load(
        cls,
        snapshot: bytes | None = None,
        log: Iterable[bytes] = (),
        *,
        client_id: int | None = None,
    ) -> Self:
        """Open from a snapshot (a full update) and the updates logged after it.

        ``client_id`` fixes the Yjs client id of this replica's own edits (random by default).
        Concurrent insertions at one position are ordered by client id, so replays that must
        reproduce a recorded outcome pin it.
        """
        document = CrdtDocument(client_id=client_id)
        try:
            if snapshot:
                document.apply_update(snapshot)
            for update in log:
                document.apply_update(update)
        except UpdateError as exc:
            raise EngineError(
                f"cannot load the stored document: {exc}", ERR_UPDATE_INVALID
            ) from None
        return cls(document)

    @staticmethod
    def compact(snapshot: bytes | None, log: Iterable[bytes]) -> bytes:
        """Fold a snapshot and the log after it into one new snapshot.

        Goes through a document rather than ``merge_updates`` so deleted text is dropped (the
        document garbage-collects it), while updates still waiting for predecessors are kept.
        """
        return CRDTEngine.load(snapshot, log).snapshot()

    def apply(self, change: Any, author: str = "") -> Effects:
        """Merge a client's update; persist and broadcast it as received if it brought news.

        A duplicate (everything already known) or empty update has no effects at all.
        """
        if type(change) is not bytes and isinstance(change, bytearray | memoryview):
            change = bytes(change)
        try:
            news = self.document.apply_update(change)
        except UpdateError as exc:
            raise EngineError(str(exc), ERR_UPDATE_INVALID) from None
        if not news:
            return NO_EFFECTS
        return Effects(persist=(change,), broadcast=(change,))

    def newcomer_state(self, since: Any = None) -> bytes:
        """The update a client with state vector ``since`` lacks (everything for ``None``)."""
        try:
            return self.document.diff(since)
        except UpdateError as exc:
            raise EngineError(str(exc), ERR_STATE_VECTOR_INVALID) from None

    @property
    def text(self) -> str:
        return self.document.text

    @property
    def token(self) -> bytes:
        return self.document.state_vector()

    def insert(self, pos: int, text: str, author: str = "server") -> Effects:
        try:
            update = self.document.insert(pos, text)
        except CrdtError as exc:
            raise _engine_error(exc) from None
        return _local(update)

    def delete(self, pos: int, length: int, author: str = "server") -> Effects:
        try:
            update = self.document.delete(pos, length)
        except CrdtError as exc:
            raise _engine_error(exc) from None
        return _local(update)

    def snapshot(self) -> bytes:
        return self.document.snapshot()


def _local(update: bytes) -> Effects:
    if update == EMPTY_UPDATE:  # the edit changed nothing (empty text or length)
        return NO_EFFECTS
    return Effects(persist=(update,), broadcast=(update,))


def _engine_error(exc: CrdtError) -> EngineError:
    if isinstance(exc, PositionError):
        return EngineError(str(exc), ERR_POSITION)
    if isinstance(exc, TextError):
        return EngineError(str(exc), ERR_TEXT_INVALID)
    return EngineError(str(exc), ERR_UPDATE_INVALID)
