"""A document's history for either engine: its versions, its text at any kept version, and the
ops that restore an old version or undo/redo one user's own edits.

**Versions.**  Version *n* is the document after the first *n* records of its log (a stored OT
op or CRDT update each), so the numbers mean the same for both engines — and for OT they are
ShareDB's versions.  A :class:`Timeline` starts at a checkpoint (or the empty document at
version 0) and holds, for each later version, the text op its record made (deletes carry the
deleted text, so every op inverts), its time and its author.

**Restore and undo are new edits, never rewrites.**  Each is an ordinary op computed here
against the head of the timeline and committed through the engine like any client's edit, so
it merges with concurrent edits and is itself undoable:

* restore: the op from the head text to the old text (:func:`diff`);
* undo: the inverse of the user's latest not-yet-undone edit, transformed over every later op
  (other users' edits included, so theirs stay intact: selective undo);
* redo: the same for the user's latest undo.

Which edit is "latest not-yet-undone" is read from the log alone (:func:`undo_op`): authors
of undo/redo/restore records are tagged ``undo:<user>``, ``redo:<user>``, ``restore:<user>``.
Deriving the stacks from the log rather than keeping them in memory (pycrdt's
``UndoManager`` per user) is what makes undo work the same on every replica and after a
restart — an in-memory stack knows only the edits its own replica applied.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orjson import JSONDecodeError, loads

from crdt.document import EMPTY_UPDATE, CrdtDocument
from crdt.errors import CrdtError
from crdt.history import apply_op as crdt_apply_op
from crdt.history import replay as crdt_replay
from crdt.updates import decode_state_vector
from engines.crdt_engine import CRDTEngine
from engines.interface import NO_EFFECTS, Effects, Engine, EngineError
from engines.ot_engine import OTEngine, OTSubmit
from ot.buffer import TextBuffer
from ot.errors import OTError
from ot.invert import invert, make_invertible, strip_invertible
from ot.text_op import Op, apply, is_noop
from ot.transform import transform

ERR_HISTORY_INVALID = "ERR_HISTORY_INVALID"
ERR_VERSION_UNKNOWN = "ERR_VERSION_UNKNOWN"
ERR_HISTORY_COMPACTED = "ERR_HISTORY_COMPACTED"
ERR_NOTHING_TO_UNDO = "ERR_NOTHING_TO_UNDO"

UNDO, REDO, RESTORE = "undo", "redo", "restore"
_ACTIONS = (UNDO, REDO, RESTORE)


def tagged(action: str, user: str) -> str:
    """The author recorded for a history action by ``user``."""
    return f"{action}:{user}"


def parse_author(author: str) -> tuple[str | None, str]:
    """``(action, user)`` of a recorded author; action None for an ordinary edit."""
    action, sep, user = author.partition(":")
    if sep and action in _ACTIONS:
        return action, user
    return None, author


@dataclass(frozen=True, slots=True)
class Entry:
    """What one record did: the document went from version ``number - 1`` to ``number``."""

    number: int
    time: float | None
    author: str
    op: Op


@dataclass(frozen=True, slots=True)
class Source:
    """Stored history in engine terms: a base state (None: the empty document at version
    ``base_version``) and the records after it as ``(number, time, author, data)``."""

    kind: str
    base: bytes | None
    base_version: int
    base_time: float | None
    records: Sequence[tuple[int | None, float | None, str, bytes]]


@dataclass(slots=True)
class Timeline:
    """Versions ``base_version .. head_version`` of one document (see the module docstring)."""

    kind: str
    base_version: int
    base_time: float | None
    base_text: str
    entries: list[Entry] = field(default_factory=list)
    head_text: str = ""
    # CRDT: the encoded state vector of the head (what an engine must have to cover it).
    head_state: bytes | None = None

    def covered_by(self, engine: Engine) -> bool:
        """Whether ``engine`` already holds every change up to the head of this timeline."""
        if isinstance(engine, OTEngine):
            return engine.version >= self.head_version
        if self.head_state is None:
            return True
        have = decode_state_vector(engine.token)
        return all(have.get(client, 0) >= clock
                   for client, clock in decode_state_vector(self.head_state).items())

    @property
    def head_version(self) -> int:
        return self.entries[-1].number if self.entries else self.base_version

    def check_version(self, version: object) -> int:
        """``version`` if it is kept; :class:`EngineError` saying why otherwise."""
        if type(version) is not int or version < 0:
            raise EngineError(f"a version is an int >= 0, got {version!r}", ERR_VERSION_UNKNOWN)
        if version > self.head_version:
            raise EngineError(f"version {version} does not exist yet: the document is at "
                              f"version {self.head_version}", ERR_VERSION_UNKNOWN)
        if version < self.base_version:
            raise EngineError(f"version {version} was compacted away: history starts at "
                              f"version {self.base_version}", ERR_HISTORY_COMPACTED)
        return version

    def text_at(self, version: int) -> str:
        """The text at a kept ``version``."""
        version = self.check_version(version)
        if version == self.head_version:
            return self.head_text
        buffer = TextBuffer(self.base_text)
        for entry in self.entries:
            if entry.number > version:
                break
            buffer.apply(entry.op)
        return buffer.text

    def texts(self) -> Iterable[tuple[int, str]]:
        """``(version, text)`` for every kept version, oldest first."""
        buffer = TextBuffer(self.base_text)
        yield self.base_version, buffer.text
        for entry in self.entries:
            buffer.apply(entry.op)
            yield entry.number, buffer.text

    def version_at(self, when: float) -> int:
        """The version the document had at time ``when`` (seconds since the epoch)."""
        times = [e.time if e.time is not None else float("-inf") for e in self.entries]
        i = bisect.bisect_right(times, when)
        if i == 0:
            if self.base_time is not None and when < self.base_time and self.base_version > 0:
                raise EngineError(f"the document's history before {self.base_time:.3f} was "
                                  f"compacted away", ERR_HISTORY_COMPACTED)
            return self.base_version
        return self.entries[i - 1].number


def build(source: Source) -> Timeline:
    """Replay a :class:`Source` into a :class:`Timeline`; :class:`EngineError` if unreadable."""
    if source.kind == "ot":
        return _build_ot(source)
    if source.kind == "crdt":
        return _build_crdt(source)
    raise EngineError(f"unknown engine kind {source.kind!r}", ERR_HISTORY_INVALID)


def _build_ot(source: Source) -> Timeline:
    text, version = "", source.base_version
    if source.base is not None:
        try:
            snap = loads(source.base)
            text, version = snap["text"], snap["v"]
        except (JSONDecodeError, KeyError, TypeError) as exc:
            raise EngineError(f"OT checkpoint is unreadable: {exc}", ERR_HISTORY_INVALID) from exc
    timeline = Timeline("ot", version, source.base_time, text)
    buffer = TextBuffer(text)
    for _, time, author, data in source.records:
        try:
            record = loads(data)
            v = record["v"]
            if type(v) is not int or v < version:
                continue  # covered by the base
            if v > version:
                break  # a gap: history after it cannot be rebuilt
            op = make_invertible(record["op"], buffer)
            buffer.apply(op)
        except (JSONDecodeError, KeyError, TypeError, OTError) as exc:
            raise EngineError(f"OT record at version {version} is unreadable: {exc}",
                              ERR_HISTORY_INVALID) from exc
        version += 1
        timeline.entries.append(Entry(version, time, author or str(record.get("a") or ""), op))
    timeline.head_text = buffer.text
    return timeline


def _build_crdt(source: Source) -> Timeline:
    document = CrdtDocument()
    try:
        if source.base is not None:
            document.apply_update(source.base)
        timeline = Timeline("crdt", source.base_version, source.base_time, document.text)
        records = list(source.records)
        replayed = crdt_replay(document, (data for _, _, _, data in records))
        number = source.base_version
        for (seq, time, author, _), (op, _) in zip(records, replayed, strict=True):
            number = seq if seq is not None and seq > number else number + 1
            timeline.entries.append(Entry(number, time, author, op))
    except (CrdtError, OTError) as exc:
        raise EngineError(f"stored CRDT history is unreadable: {exc}",
                          ERR_HISTORY_INVALID) from exc
    timeline.head_text = document.text
    timeline.head_state = document.state_vector()
    return timeline


# ---- new edits ----------------------------------------------------------------------------


def diff(current: str, target: str) -> Op:
    """An op taking ``current`` to ``target``: one change between their common prefix and
    suffix (what a restore commits; concurrent edits outside it are untouched)."""
    limit = min(len(current), len(target))
    start = 0
    while start < limit and current[start] == target[start]:
        start += 1
    end = 0
    while end < limit - start and current[-1 - end] == target[-1 - end]:
        end += 1
    op: Op = []
    if start and (start < len(current) or start < len(target)):
        op.append(start)
    removed = current[start:len(current) - end]
    if removed:
        op.append({"d": removed})
    added = target[start:len(target) - end]
    if added:
        op.append(added)
    return op


def undo_op(timeline: Timeline, user: str, action: str = UNDO) -> Op:
    """The op (over the head text) that undoes ``user``'s latest edit not yet undone — or,
    with ``action=REDO``, that redoes the latest undo not yet redone.

    Raises :class:`EngineError` ``ERR_NOTHING_TO_UNDO`` when the kept history holds none.
    """
    if action not in (UNDO, REDO):
        raise EngineError(f"action must be {UNDO!r} or {REDO!r}, got {action!r}",
                          ERR_HISTORY_INVALID)
    undo: list[int] = []
    redo: list[int] = []
    cancels: dict[int, int] = {}  # undo/redo entry -> the entry it reverted
    for i, entry in enumerate(timeline.entries):
        tag, who = parse_author(entry.author)
        if tag is None or tag == RESTORE:
            if who == user and not is_noop(entry.op):  # an edit or a restore by the user
                undo.append(i)
                redo.clear()
            continue
        stack, other = (undo, redo) if tag == UNDO else (redo, undo)
        if who == user and stack:
            cancels[i] = stack.pop()
            other.append(i)
    # From the top of the stack down: an edit others have since overwritten entirely (its
    # undo would change nothing) is passed over, so undo never gets stuck on it.
    for index in reversed(undo if action == UNDO else redo):
        op = strip_invertible(invert(timeline.entries[index].op))
        # "right": text an undo brings back goes after what others typed at that spot since
        # (the spot they typed at was the edge of the text that is coming back).
        for later in _effective(index + 1, len(timeline.entries), cancels):
            op = transform(op, strip_invertible(timeline.entries[later].op), "right")
        if not is_noop(op):
            return op
    raise EngineError(f"nothing to {action} for {user!r} in the kept history",
                      ERR_NOTHING_TO_UNDO)


def _effective(start: int, stop: int, cancels: dict[int, int]) -> list[int]:
    """Entries ``start..stop-1`` without the pairs that cancel out: an undo (or redo) right
    after the entry it reverted (once inner pairs are gone) composes with it to nothing.
    Transforming over such a pair instead would lose where text was (a deletion followed by
    its re-insertion moves a later insert at that spot to the wrong side of it)."""
    kept: list[int] = []
    for i in range(start, stop):
        if kept and cancels.get(i) == kept[-1]:
            kept.pop()
        else:
            kept.append(i)
    return kept


def rebase(op: Op, head_text: str, current_text: str) -> Op:
    """``op`` made over ``head_text``, moved over the edits that led to ``current_text`` (as one
    change: :func:`diff`) — for a CRDT document that moved on while history was read."""
    if head_text == current_text:
        return op
    return transform(op, strip_invertible(diff(head_text, current_text)), "left")


def commit(engine: Engine, op: Op, version: int, author: str, head_text: str) -> Effects:
    """Commit ``op`` (made over the text at ``version``, ``head_text``) as ``author``'s edit.

    OT: submitted at ``version`` and transformed by the engine over later ops.  CRDT: moved
    over whatever changed since (:func:`rebase`) and made one local update.
    """
    if is_noop(op):
        return NO_EFFECTS
    if isinstance(engine, OTEngine):
        return engine.apply(OTSubmit(op, version), author)
    if isinstance(engine, CRDTEngine):
        current = engine.text
        try:
            moved = rebase(op, head_text, current)
            apply(current, moved)  # checks it fits before the CRDT sees it
            update = crdt_apply_op(engine.document, moved)
        except (OTError, CrdtError) as exc:
            raise EngineError(f"cannot apply the history edit: {exc}",
                              ERR_HISTORY_INVALID) from exc
        if update == EMPTY_UPDATE:
            return NO_EFFECTS
        return Effects(persist=(update,), broadcast=(update,))
    raise EngineError(f"history edits need an OT or CRDT engine, got {type(engine).__name__}",
                      ERR_HISTORY_INVALID)
