"""Updates a document accepted but could not integrate yet: their predecessors are missing.

yrs keeps such structs pending, which is what lets replicas apply updates in any order.  But it
leaves them out of ``Doc.get_update()`` (Yjs includes them), and yrs 0.28 sometimes drops one
when another arrival unblocks the pending set: four inserts by one client, delivered in the 24
possible orders, lose an insert in 6 of them (Yjs: none).  So the document keeps the raw bytes
of every update not yet fully integrated, here, to merge them into snapshots and diffs and to
offer them again once their own clocks follow on.  An entry leaves when the state vector
covers it.  In the usual case (updates arriving in causal order) this list stays empty.
"""

from __future__ import annotations

from typing import NamedTuple

from crdt.updates import UpdateSummary


class _Entry(NamedTuple):
    update: bytes
    starts: dict[int, int]
    ends: dict[int, int]
    explicit_parent: bool


def _short_of(clocks: dict[int, int], state: dict[int, int]) -> bool:
    """Whether the state vector has not reached one of ``clocks``.

    Against an update's ``ends``: part of it is not integrated yet.  Against its ``starts``: it
    cannot integrate yet (the same client's earlier structs are missing).
    """
    return any(state.get(client, 0) < clock for client, clock in clocks.items())


class WaitingUpdates:
    """The accepted updates a document still waits to see fully integrated."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[_Entry] = []

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def updates(self) -> list[bytes]:
        return [entry.update for entry in self._entries]

    @property
    def explicit_parent(self) -> bool:
        """Whether one of them names a parent by ID (yrs checks those only when integrating)."""
        return any(entry.explicit_parent for entry in self._entries)

    def settle(self, update: bytes, summary: UpdateSummary, state: dict[int, int]) -> bool:
        """Forget what ``state`` covers; keep ``update`` if it is not covered; return that."""
        self.prune(state)
        if not _short_of(summary.ends, state):
            return False
        self._entries.append(_Entry(update, summary.starts, summary.ends, summary.explicit_parent))
        return True

    def prune(self, state: dict[int, int]) -> bool:
        """Forget the updates ``state`` covers; return whether any went."""
        kept = [entry for entry in self._entries if _short_of(entry.ends, state)]
        progress = len(kept) < len(self._entries)
        self._entries = kept
        return progress

    def candidates(self) -> list[tuple[bytes, dict[int, int]]]:
        """Every waiting update with its start clocks, oldest first (by summed start clocks:
        within one client's chain that is exactly its causal order)."""
        ordered = sorted(self._entries, key=lambda entry: sum(entry.starts.values()))
        return [(entry.update, entry.starts) for entry in ordered]
