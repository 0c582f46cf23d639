"""One collaborative plain text as a Yjs document: local edits in code points, remote updates
in Yjs bytes.

:class:`CrdtDocument` wraps a pycrdt ``Doc`` holding one ``Text`` root (named ``"text"`` unless
the application picks another — Yjs apps choose their own names, e.g. ``ydoc.getText("monaco")``).
It adds what pycrdt leaves to its caller:

* **Code points.** pycrdt addresses text by UTF-8 byte offsets.  While the text is ASCII the two
  agree and an edit costs a few checks more than pycrdt's own (~0.3 µs); otherwise a
  :class:`~crdt.positions.CodePointIndex` maps positions.  A remote update may change the text
  anywhere, and yrs can only say where by computing a Text event delta — measured at ~37 µs per
  update on a 50 kB text (it walks the whole text), 25x the cost of applying the update.  So
  remote updates merely mark the index stale; it is rebuilt from the text (one O(n) pass) on the
  next local edit that needs it.  A server applies many remote updates and makes few edits of
  its own; that is the trade this favours.
* **Validation.** Positions outside the text raise :class:`~crdt.errors.PositionError`; updates
  are checked by :func:`~crdt.updates.scan_update` before pycrdt sees them, and updates that name
  a parent item by ID (nested types; never a plain-text client) are tried on a scratch copy first,
  because that is the one failure yrs reports only after it has half-applied the update.  Every
  error leaves the document unchanged; pycrdt panics never escape.
* **The update of each local edit**, as a live editor broadcasts it (one transaction per edit).
* **Updates waiting for predecessors** (:mod:`crdt.waiting`). yrs holds structs whose causal
  predecessors are missing, but leaves them out of ``get_update()`` and sometimes drops one.  The
  document keeps such updates, merges them into :meth:`snapshot` and :meth:`diff`, and offers
  them again when their clocks follow on, so out-of-order delivery still converges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Self

from pycrdt import Doc, Text, TransactionEvent, get_update, merge_updates

from crdt.errors import CrdtError, PositionError, TextError, UpdateError, is_panic
from crdt.positions import CodePointIndex, rich_offset
from crdt.updates import (
    EMPTY_UPDATE,
    UpdateSummary,
    decode_state_vector,
    origin_ids,
    scan_update,
)
from crdt.waiting import WaitingUpdates

__all__ = ["EMPTY_UPDATE", "CrdtDocument", "decode_state_vector"]


class _Mode(Enum):
    ASCII = "ascii"  # the text is ASCII: byte offsets are code points
    INDEXED = "indexed"  # a fresh CodePointIndex mirrors the text
    STALE = "stale"  # a remote update arrived; re-derive the mode from the text when needed
    RICH = "rich"  # the text holds embeds (from a rich-text client): map positions via diff()


class CrdtDocument:
    """A Yjs text document edited at Unicode code-point positions.

    Local edits return the Yjs update to broadcast; :meth:`apply_update` merges remote ones.
    Not thread-safe (neither is a pycrdt ``Doc`` by default).
    """

    __slots__ = ("_doc", "_index", "_last", "_length", "_mode", "_root", "_sv", "_text",
                 "_waiting")

    def __init__(self, *, root: str = "text", client_id: int | None = None) -> None:
        if not isinstance(root, str) or not root:
            raise CrdtError(f"the root name must be a non-empty str, not {root!r}")
        try:
            doc: Doc[Any] = Doc(client_id=client_id)
        except (TypeError, ValueError) as exc:
            raise CrdtError(f"invalid client id {client_id!r}: {exc}") from None
        self._doc = doc
        self._root = root
        self._text = doc.get(root, type=Text)
        # The update of the latest transaction, set by the observer.  The observer is
        # subscribed only around local edits and remote updates that take the general path:
        # pycrdt builds its event eagerly, at a cost that grows with the document, and the
        # common remote keystroke does not need it (see _certain).
        self._last = b""
        # The state vector, decoded, while only changes this class accounted for happened
        # since it was read; None once anything else may have.
        self._sv: dict[int, int] | None = None
        self._mode = _Mode.ASCII
        self._length: int | None = 0  # code points, in ASCII mode; None: ask pycrdt
        self._index: CodePointIndex | None = None
        self._waiting = WaitingUpdates()

    @classmethod
    def from_snapshot(
        cls, snapshot: bytes, *, root: str = "text", client_id: int | None = None
    ) -> Self:
        """Open a document from :meth:`snapshot` bytes (any full Yjs update will do)."""
        document = cls(root=root, client_id=client_id)
        document.apply_update(snapshot)
        return document

    # -- reading ---------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return str(self._text)

    def __len__(self) -> int:
        """The length of :attr:`text` in code points."""
        if self._mode is _Mode.ASCII:
            if self._length is None:
                self._length = len(self._text)
            return self._length
        self._refresh()
        if self._index is not None:  # INDEXED
            return self._index.length
        if self._mode is _Mode.ASCII:
            return len(self)
        return sum(len(c) for c, _ in self._text.diff() if isinstance(c, str))  # RICH

    @property
    def root(self) -> str:
        return self._root

    @property
    def client_id(self) -> int:
        return self._doc.client_id

    @property
    def ydoc(self) -> Doc[Any]:
        """The underlying pycrdt document, for reading and for pycrdt's helpers.

        Edit only through this class: edits made on it directly bypass the code-point index.
        """
        return self._doc

    def state_vector(self) -> bytes:
        """The encoded state vector: which clocks of which clients this document has."""
        return self._doc.get_state()

    def diff(self, state_vector: bytes | None = None) -> bytes:
        """The update a peer with ``state_vector`` lacks (everything when ``None``)."""
        if state_vector is None:
            state_vector = b"\x00"
        else:
            decode_state_vector(state_vector)  # a clear error instead of pycrdt's
        update = self._doc.get_update(state_vector)
        if self._waiting:
            update = get_update(merge_updates(update, *self._waiting.updates), state_vector)
        return update

    def snapshot(self) -> bytes:
        """The whole document as one update, including updates still waiting for predecessors."""
        state = self._doc.get_update()
        if not self._waiting:
            return state
        return merge_updates(state, *self._waiting.updates)

    # -- local edits ------------------------------------------------------------------------

    def insert(self, pos: int, text: str) -> bytes:
        """Insert ``text`` before code point ``pos``; return the update to broadcast."""
        return self._recorded(self._insert, pos, text)

    def delete(self, pos: int, length: int) -> bytes:
        """Delete ``length`` code points from ``pos``; return the update to broadcast."""
        return self._recorded(self._delete, pos, length)

    def splice(self, pos: int, length: int, text: str) -> bytes:
        """Replace ``length`` code points at ``pos`` by ``text`` in one transaction (one update).

        What an editor does when the user types over a selection.
        """
        return self._recorded(self._splice, pos, length, text)

    def splice_all(self, changes: Sequence[tuple[int, int, str]]) -> bytes:
        """Several :meth:`splice` edits, in the order given, as one transaction (one update).

        Each position is read against the text as the edits before it left it.  Raises like
        :meth:`splice`; an edit that fails leaves the earlier ones of the call applied.
        """
        return self._recorded(self._splices, changes)

    def _recorded(self, edit: Callable[..., bytes], *args: Any) -> bytes:
        """Make a local edit with the transaction observer subscribed (it records the update
        the edit returns); the kept state vector is dropped, the document's own clock moves."""
        self._sv = None
        observer = self._doc.observe(self._on_transaction)
        try:
            return edit(*args)
        finally:
            self._doc.unobserve(observer)

    def _splices(self, changes: Sequence[tuple[int, int, str]]) -> bytes:
        with self._doc.transaction():
            for pos, length, text in changes:
                self._splice(pos, length, text)
        return self._take_update()

    def _insert(self, pos: int, text: str) -> bytes:
        mode = self._mode
        if mode is _Mode.ASCII and type(text) is str and text.isascii():
            length = self._length
            if length is None:
                length = len(self._text)
            if type(pos) is not int or not 0 <= pos <= length:
                raise _bad_position("insert at", pos, length)
            if not text:
                return EMPTY_UPDATE
            self._text.insert(pos, text)
            self._length = length + len(text)
        elif mode is _Mode.INDEXED and type(text) is str and self._index:
            index = self._index  # typing into a Unicode text: the other hot path
            size = len(text) if text.isascii() else _check_text(text)
            if type(pos) is not int or not 0 <= pos <= index.length:
                raise _bad_position("insert at", pos, index.length)
            if not text:
                return EMPTY_UPDATE
            offset = index.insert(pos, text, size)
            try:
                self._text.insert(offset, text)
            except BaseException as exc:
                raise self._refused(exc) from None
        else:
            self._insert_general(pos, text)
        update, self._last = self._last, b""
        return update or EMPTY_UPDATE

    def _delete(self, pos: int, length: int) -> bytes:
        if self._mode is _Mode.ASCII:
            size = self._length
            if size is None:
                size = len(self._text)
            _check_range(pos, length, size)
            if not length:
                return EMPTY_UPDATE
            del self._text[pos : pos + length]
            self._length = size - length
        elif self._mode is _Mode.INDEXED:
            self._delete_indexed(pos, length)
        else:
            self._delete_general(pos, length)
        update, self._last = self._last, b""
        return update or EMPTY_UPDATE

    def _splice(self, pos: int, length: int, text: str) -> bytes:
        _check_text(text)
        _check_range(pos, length, len(self))
        if not length and not text:
            return EMPTY_UPDATE
        with self._doc.transaction():
            if length:
                self._delete_general(pos, length)
            if text:
                self._insert_general(pos, text)
        return self._take_update()

    # -- remote updates ---------------------------------------------------------------------

    def apply_update(self, update: bytes) -> bool:
        """Merge a Yjs v1 update; return whether it brought anything new.

        ``False`` means the document already had all of it (a duplicate, or an empty update).
        An update whose predecessors are missing counts as new: it is kept until they arrive.
        Raises :class:`UpdateError` (document unchanged) for malformed or unusable updates.
        """
        if type(update) is not bytes and isinstance(update, bytearray | memoryview):
            update = bytes(update)
        if update == b"":
            return False
        summary = scan_update(update)
        if summary.empty:
            return False
        if self._mode is _Mode.ASCII and summary.plain_ascii:
            self._length = None
        else:
            self._mode = _Mode.STALE
            self._index = None
        if self._certain(update, summary):
            return self._apply_certain(update)
        if summary.starts:  # new structs move the state vector: read it again when needed
            self._sv = None
        if summary.explicit_parent or self._waiting.explicit_parent:
            self._try_on_copy(update)
        self._last = b""
        observer = self._doc.observe(self._on_transaction)
        try:
            self._doc.apply_update(update)
        except Exception as exc:
            self._sv, self._mode, self._index = None, _Mode.STALE, None
            raise UpdateError(f"pycrdt rejected the update: {exc}") from None
        except BaseException as exc:
            self._sv, self._mode, self._index = None, _Mode.STALE, None
            if not is_panic(exc):
                raise
            raise UpdateError(f"pycrdt failed on the update (Rust panic: {exc})") from None
        finally:
            self._doc.unobserve(observer)
        integrated, self._last = self._last, b""
        if integrated == update and not self._waiting:  # the usual case: integrated as sent
            return True  # (a deletion integrated whole leaves the state vector as it was)
        return self._settle(update, summary, changed=bool(integrated))

    def _certain(self, update: bytes, summary: UpdateSummary) -> bool:
        """Whether yrs integrates ``update`` whole, at once, and it is all new: a keystroke.

        True when it only inserts (no delete set, no gap, no parent named by ID), each of its
        clients' structs start exactly where the document's state vector says that client is,
        every origin it names is already in the document or earlier in the update, and
        nothing waits.  (An origin by a struct's own client is an earlier struct of that
        client: known once its structs follow on, so the scan notes only the others.)
        Such an update needs no transaction observer to tell what it did, and pycrdt's
        observer event costs more than the integration itself on large documents (it grows
        with the document and with the length of one client's run).
        """
        starts = summary.starts
        if (not starts or summary.deletes or summary.skips or summary.explicit_parent
                or self._waiting):
            return False
        sv = self._sv
        if sv is None:
            sv = self._sv = decode_state_vector(self._doc.get_state())
        for client, clock in starts.items():
            if sv.get(client, 0) != clock:
                return False
        ends = summary.ends
        for client, clock in origin_ids(update, summary.origins):
            if clock >= sv.get(client, 0) and not (client in starts and clock < ends[client]):
                return False
        for client in starts:  # what the state vector will be once it is applied
            sv[client] = ends[client]
        return True

    def _apply_certain(self, update: bytes) -> bool:
        """Apply an update :meth:`_certain` vouched for (it moved the kept state vector)."""
        try:
            self._doc.apply_update(update)
        except BaseException as exc:
            self._sv, self._mode, self._index = None, _Mode.STALE, None
            if isinstance(exc, Exception):
                raise UpdateError(f"pycrdt rejected the update: {exc}") from None
            if not is_panic(exc):
                raise
            raise UpdateError(f"pycrdt failed on the update (Rust panic: {exc})") from None
        return True

    # -- internals --------------------------------------------------------------------------

    def _on_transaction(self, event: TransactionEvent) -> None:
        self._last = event.update

    def _take_update(self) -> bytes:
        update, self._last = self._last, b""
        return update or EMPTY_UPDATE

    def _insert_general(self, pos: int, text: str) -> None:
        size = _check_text(text)
        self._refresh()
        if self._mode is _Mode.ASCII:
            length = len(self)
            if type(pos) is not int or not 0 <= pos <= length:
                raise _bad_position("insert at", pos, length)
            if text.isascii():
                if text:
                    self._text.insert(pos, text)
                    self._length = length + len(text)
                return
            self._index = CodePointIndex(self.text)
            self._mode = _Mode.INDEXED
        if self._mode is _Mode.INDEXED:
            self._insert_indexed(pos, text, size)
            return
        chunks = self._text.diff()
        length = sum(len(c) for c, _ in chunks if isinstance(c, str))
        if type(pos) is not int or not 0 <= pos <= length:
            raise _bad_position("insert at", pos, length)
        if text:
            try:
                self._text.insert(rich_offset(chunks, pos), text)
            except BaseException as exc:
                raise self._refused(exc) from None

    def _delete_general(self, pos: int, length: int) -> None:
        self._refresh()
        if self._mode is _Mode.ASCII:
            size = len(self)
            _check_range(pos, length, size)
            if length:
                del self._text[pos : pos + length]
                self._length = size - length
            return
        if self._mode is _Mode.INDEXED:
            self._delete_indexed(pos, length)
            return
        chunks = self._text.diff()
        _check_range(pos, length, sum(len(c) for c, _ in chunks if isinstance(c, str)))
        if length:
            start = rich_offset(chunks, pos)
            stop = rich_offset(chunks, pos + length)
            try:
                del self._text[start:stop]
            except BaseException as exc:
                raise self._refused(exc) from None

    def _insert_indexed(self, pos: int, text: str, size: int) -> None:
        index = self._index
        if index is None:  # unreachable: INDEXED mode always has an index
            raise CrdtError("internal error: no code-point index in indexed mode")
        if type(pos) is not int or not 0 <= pos <= index.length:
            raise _bad_position("insert at", pos, index.length)
        if text:
            offset = index.insert(pos, text, size)
            try:
                self._text.insert(offset, text)
            except BaseException as exc:
                raise self._refused(exc) from None
            if not index.non_ascii:
                self._leave_index(index)

    def _delete_indexed(self, pos: int, length: int) -> None:
        index = self._index
        if index is None:  # unreachable: INDEXED mode always has an index
            raise CrdtError("internal error: no code-point index in indexed mode")
        _check_range(pos, length, index.length)
        if length:
            start, size = index.delete(pos, length)
            try:
                del self._text[start : start + size]
            except BaseException as exc:
                raise self._refused(exc) from None
            if not index.non_ascii:
                self._leave_index(index)

    def _refused(self, exc: BaseException) -> BaseException:
        """pycrdt refused an edit at offsets we computed — a bug, never bad input.

        Drop the index (it is rebuilt from the text on next use) so a mapping bug cannot
        compound, and report it as a :class:`CrdtError`; anything else propagates untouched.
        """
        if not isinstance(exc, Exception) and not is_panic(exc):
            return exc
        self._mode = _Mode.STALE
        self._index = None
        return CrdtError(f"pycrdt refused an edit at a computed offset: {exc}")

    def _leave_index(self, index: CodePointIndex) -> None:
        """The last non-ASCII character is gone: back to the fast path."""
        self._mode = _Mode.ASCII
        self._length = index.length
        self._index = None

    def _refresh(self) -> None:
        """Turn STALE into the right mode by reading the text once (O(n))."""
        if self._mode is not _Mode.STALE:
            return
        text = str(self._text)
        units = len(self._text)  # UTF-8 bytes plus one per embed
        if text.isascii() and units == len(text):
            self._mode, self._length, self._index = _Mode.ASCII, len(text), None
        elif len(text.encode()) == units:
            self._mode, self._index = _Mode.INDEXED, CodePointIndex(text)
        else:
            self._mode, self._index = _Mode.RICH, None

    def _settle(self, update: bytes, summary: UpdateSummary, changed: bool) -> bool:
        """After an update that did not simply integrate as sent: track what still waits."""
        self._sv = None
        state = decode_state_vector(self._doc.get_state())
        waiting = self._waiting.settle(update, summary, state)
        if changed and self._waiting:
            self._reoffer(state)
        return changed or waiting

    def _reoffer(self, state: dict[int, int]) -> None:
        """Apply again the waiting updates whose own clocks now follow on (see crdt.waiting).

        Harmless when yrs did keep them (known structs are skipped, blocked ones wait again);
        restores what yrs 0.28 sometimes drops.  Candidates go oldest clock first and the state
        is re-read after each one that integrates, so a chain (one client's updates delivered
        newest first: a log written out of order) settles in one pass; each further pass must
        integrate something, so at most one pass per waiting update.
        """
        for _ in range(len(self._waiting.updates) + 1):
            progress = False
            for update, starts in self._waiting.candidates():
                if any(state.get(client, 0) < clock for client, clock in starts.items()):
                    continue
                self._mode, self._index = _Mode.STALE, None
                try:
                    self._doc.apply_update(update)
                except BaseException as exc:
                    if not isinstance(exc, Exception) and not is_panic(exc):
                        raise
                    raise UpdateError(f"a waiting update could not be re-applied: {exc}") from None
                after = decode_state_vector(self._doc.get_state())
                progress = progress or after != state
                state = after
            self._last = b""
            if not self._waiting.prune(state) and not progress:
                return

    def _try_on_copy(self, update: bytes) -> None:
        """Apply ``update`` to a scratch copy first: yrs reports a bad parent only mid-way."""
        probe: Doc[Any] = Doc()
        try:
            probe.apply_update(self._doc.get_update())
            for waiting in self._waiting.updates:
                probe.apply_update(waiting)
            probe.apply_update(update)
        except BaseException as exc:
            if not isinstance(exc, Exception) and not is_panic(exc):
                raise
            raise UpdateError(
                f"the update cannot be integrated into this document: {exc}"
            ) from None


def _check_text(text: object) -> int:
    """Return the UTF-8 size of ``text``, or raise :class:`TextError`."""
    if type(text) is not str:
        raise TextError(f"text to insert must be a str, not {type(text).__name__}")
    try:
        return len(text.encode())
    except UnicodeEncodeError as exc:
        raise TextError(
            f"text contains a lone surrogate at index {exc.start}; it cannot be stored"
        ) from None


def _check_range(pos: object, length: object, size: int) -> None:
    if type(pos) is not int or not 0 <= pos <= size:
        raise _bad_position("delete at", pos, size)
    if type(length) is not int or not 0 <= length <= size - pos:
        raise PositionError(
            f"cannot delete {length!r} code points at {pos}: the text has {size} code points "
            f"(a length from 0 to {size - pos} is allowed there)"
        )


def _bad_position(what: str, pos: object, size: int) -> PositionError:
    return PositionError(
        f"cannot {what} position {pos!r}: positions are integers from 0 to {size} "
        f"(the text has {size} code points)"
    )
