"""Seeded typing: each leader makes edits at random times (a Poisson process at ``rate`` edits
per second), each a small insertion or deletion anywhere in its current text — one shared
region, so concurrent edits collide often.  Insertions mix ASCII with accented letters, CJK,
emoji (with a skin-tone modifier: two code points) and a lone combining mark, so positions
really are code points and not bytes or UTF-16 units.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: What a keystroke may insert; each entry is one unit (some are several code points).
KEYS = (*"abcdefghijklmnopqrstuvwxyz      .,",
        "é", "ü", "ß", "中", "文", "字", "😀", "🦊", "👍🏽", "\u0301", "e\u0301")

#: The text every leader starts from (the same on all, as if loaded from one snapshot).
INITIAL_TEXT = "Weft: one shared text — 共有テキスト 🧵\n"


@dataclass(frozen=True, slots=True)
class Typing:
    """``edits`` per leader at ``rate`` edits/s each; ``delete_share`` of them deletions."""

    edits: int = 40
    rate: float = 5.0
    delete_share: float = 0.25

    def __post_init__(self) -> None:
        if type(self.edits) is not int or self.edits < 1:
            raise ValueError(f"edits per leader must be an int >= 1, got {self.edits!r}")
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0 edits/s, got {self.rate!r}")

    @property
    def duration_ms(self) -> float:
        """Expected time one leader takes to type its edits."""
        return self.edits / self.rate * 1000.0

    def times_ms(self, rng: random.Random) -> list[float]:
        """When one leader makes its edits (simulated ms)."""
        t = rng.uniform(0.0, 1000.0 / self.rate)
        out = []
        for _ in range(self.edits):
            out.append(t)
            t += rng.expovariate(self.rate / 1000.0)
        return out

    def choose(self, rng: random.Random, length: int) -> tuple[int, int, str]:
        """One edit on a text of ``length`` code points: ``(pos, delete count, inserted)``,
        exactly one of the last two non-empty."""
        if length and rng.random() < self.delete_share:
            pos = rng.randrange(length)
            return pos, min(rng.randint(1, 3), length - pos), ""
        return rng.randint(0, length), 0, "".join(rng.choice(KEYS)
                                                  for _ in range(rng.randint(1, 3)))
