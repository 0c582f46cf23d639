"""What stores keep for a document's history, and how much of it (the budget).

Compaction folds a document's log into a snapshot so documents load fast.  History needs the
opposite — old records — so a store with a :class:`HistoryBudget` keeps, at compaction, every
record the budget still covers plus *checkpoints*: the snapshots of earlier compactions.  A
record is dropped only together with everything before it and only up to a checkpoint, so the
kept history always reads "checkpoint, then every record after it": any kept version can be
rebuilt by replaying records onto the checkpoint before it.

The budget is a minimum: the last ``keep_versions`` records *and* every record younger than
``keep_seconds`` stay (more may stay, up to the next checkpoint).  The zero budget is the
plain compaction of old: fold everything into the snapshot.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

#: A record's key in its store: a sequence number, or a Redis stream id as ``(ms, seq)``.
K = TypeVar("K", int, tuple[int, int])

#: Checkpoints kept between the oldest kept one and the snapshot, at most (about): enough
#: to trim in steps of 1/CHECKPOINTS of the kept history, however often documents compact.
CHECKPOINTS = 8


@dataclass(frozen=True, slots=True)
class HistoryBudget:
    """How much history compaction keeps (zero: none beyond the current snapshot)."""

    keep_versions: int = 0
    keep_seconds: float = 0.0

    def __post_init__(self) -> None:
        if type(self.keep_versions) is not int or self.keep_versions < 0:
            raise ValueError(f"keep_versions must be an int >= 0, got {self.keep_versions!r}")
        if not isinstance(self.keep_seconds, int | float) or self.keep_seconds < 0:
            raise ValueError(f"keep_seconds must be a number >= 0, got {self.keep_seconds!r}")

    @property
    def enabled(self) -> bool:
        return self.keep_versions > 0 or self.keep_seconds > 0


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One kept log record.  ``seq`` is its number in the document's log (1 for the first
    record ever; None when the store cannot tell, e.g. Redis data written before history
    existed); ``time`` is when it was appended, in seconds since the epoch (None: unknown)."""

    seq: int | None
    time: float | None
    author: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A stored snapshot: the document after record ``seq`` (None: unknown)."""

    seq: int | None
    time: float | None
    data: bytes


@dataclass(frozen=True, slots=True)
class StoredHistory:
    """Everything a store kept of a document's past, oldest first.

    ``checkpoints`` ends with the current snapshot (if any); ``records`` holds every kept
    record, including those older than the current snapshot that the budget keeps.  If the
    log was ever trimmed, the oldest record follows the oldest checkpoint directly.
    """

    kind: str
    checkpoints: tuple[Checkpoint, ...]
    records: tuple[HistoryRecord, ...]


def trim_point(budget: HistoryBudget, checkpoints: Sequence[K],
               records: Sequence[tuple[K, float | None]], now: float) -> K | None:
    """The checkpoint up to which (inclusive) records may be dropped, or None (keep all).

    ``checkpoints``: keys of every checkpoint, including the snapshot being written;
    ``records``: ``(key, time)`` of every kept record, oldest first.  Checkpoints older than
    the returned one may go too.  With the zero budget this is the newest checkpoint.
    """
    if not checkpoints:
        return None
    if not budget.enabled:
        return max(checkpoints)
    droppable = len(records) - budget.keep_versions
    if budget.keep_seconds > 0:
        cutoff = now - budget.keep_seconds
        for i, (_, time) in enumerate(records[:max(droppable, 0)]):
            if time is not None and time >= cutoff:
                droppable = i
                break
    if droppable <= 0:
        return None
    floor = records[droppable - 1][0]
    older = [c for c in checkpoints if c <= floor]
    return max(older) if older else None


def redundant(checkpoints: Sequence[K], records: Sequence[tuple[K, float | None]]) -> list[K]:
    """Checkpoints that may go because a kept one precedes them by fewer records than
    1/:data:`CHECKPOINTS` of the kept history (so frequent compactions do not pile up full
    snapshots).  The oldest (the base of the history) and the newest are always kept."""
    ordered = sorted(checkpoints)
    if len(ordered) <= 2:
        return []
    keys = [key for key, _ in records]
    spacing = max(1, len(keys) // CHECKPOINTS)
    drop: list[K] = []
    last = ordered[0]
    for checkpoint in ordered[1:-1]:
        between = bisect.bisect_right(keys, checkpoint) - bisect.bisect_right(keys, last)
        if between < spacing:
            drop.append(checkpoint)
        else:
            last = checkpoint
    return drop
