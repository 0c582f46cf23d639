"""The simulation's omniscient bookkeeping: when each edit was made, when each leader's text
first contained it, how often each replicated item was applied, and the engines' CPU time.

Leaders report to the ledger; the protocol never reads it (except that the OT leaders use it
to name which edits a committed op carries, which a real deployment would not need to know).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable


class Ledger:
    """Edits are numbered in creation order; ``had[edit][leader]`` is the simulated time the
    edit first showed in that leader's text (NaN until it does)."""

    def __init__(self, leaders: int) -> None:
        self.leaders = leaders
        self.created: list[float] = []
        self.author: list[int] = []
        self.had: list[list[float]] = []
        self.holdings = 0  # (edit, leader) pairs marked so far
        self.applies: Counter[tuple[int, int, int]] = Counter()  # (leader, origin, seq)
        self.cpu_ns = 0
        self.engine_calls = 0

    def new_edit(self, leader: int, now: float) -> int:
        """Record an edit made by ``leader``; its own text has it at once (local echo)."""
        edit = len(self.created)
        self.created.append(now)
        self.author.append(leader)
        self.had.append([math.nan] * self.leaders)
        self.mark(leader, (edit,), now)
        return edit

    def mark(self, leader: int, edits: Iterable[int], now: float) -> None:
        for edit in edits:
            row = self.had[edit]
            if math.isnan(row[leader]):
                row[leader] = now
                self.holdings += 1

    def applied(self, leader: int, origin: int, seq: int) -> None:
        self.applies[(leader, origin, seq)] += 1

    def charge(self, ns: int) -> None:
        self.cpu_ns += ns
        self.engine_calls += 1

    def everyone_has_everything(self, expected_edits: int) -> bool:
        return (len(self.created) == expected_edits
                and self.holdings == expected_edits * self.leaders)

    def spreads_ms(self) -> list[float]:
        """Per edit: time from its creation until the last leader had it (NaN if one never
        did)."""
        return [max(row) - t if not any(math.isnan(x) for x in row) else math.nan
                for t, row in zip(self.created, self.had, strict=True)]
