"""What an editor types, and when: markers and the keystroke schedule.

Each keystroke inserts one *marker*: ``~`` + the editor's id (2 base-36 digits) + the keystroke's
sequence number (4 base-36 digits) + ``~``.  Receivers never merge anything; they find markers
in the raw frames with one regular expression, whatever the protocol's framing (a Yjs update
carries inserted strings verbatim, a ShareDB op carries them in JSON), and even when a server
merges several updates into one.  Markers are ASCII, so code points, UTF-16 units and UTF-8
bytes all agree, and the document is always a concatenation of whole markers (editors only
insert at marker boundaries), which makes the end-of-run check exact.

The schedule is open-loop: keystroke ``k`` of editor ``s`` happens at ``t0 + phase(s) + k/rate``
whatever the server does, so a slow server shows up as latency instead of silently lowering the
offered load.  Every process can compute any keystroke's time, so a receiver measures latency
with no message from the sender's process (CLOCK_MONOTONIC is system-wide on Linux).
"""

from __future__ import annotations

import re

MARKER_LEN = 8
MAX_EDITORS = 36**2
MAX_KEYSTROKES = 36**4
MARKER_RE = re.compile(rb"~([0-9a-z]{2})([0-9a-z]{4})~")
GOLDEN = 0.6180339887498949
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


def marker(editor: int, seq: int) -> str:
    """The text editor ``editor`` inserts with its keystroke number ``seq``."""
    if not 0 <= editor < MAX_EDITORS:
        raise ValueError(f"editor id must be in 0..{MAX_EDITORS - 1}, got {editor}")
    if not 0 <= seq < MAX_KEYSTROKES:
        raise ValueError(f"keystroke number must be in 0..{MAX_KEYSTROKES - 1}, got {seq}")
    return f"~{_b36(editor, 2)}{_b36(seq, 4)}~"


def key(editor: int, seq: int) -> int:
    """A compact integer for (editor, seq), used as a dict/set key."""
    return editor * MAX_KEYSTROKES + seq


def split_key(k: int) -> tuple[int, int]:
    return divmod(k, MAX_KEYSTROKES)


def find_keys(data: bytes) -> list[int]:
    """Every marker in ``data`` as :func:`key` values, in order."""
    return [
        int(e, 36) * MAX_KEYSTROKES + int(s, 36) for e, s in MARKER_RE.findall(data)
    ]


def parse_text(text: str) -> list[int] | None:
    """The markers a document consists of, or None if it is not a concatenation of markers."""
    if len(text) % MARKER_LEN:
        return None
    raw = text.encode("ascii", errors="replace")
    keys = find_keys(raw)
    if len(keys) * MARKER_LEN != len(text):
        return None
    return keys


def phase(editor: int, rate: float) -> float:
    """Offset of an editor's first keystroke: editors are spread evenly over one period."""
    return ((editor * GOLDEN) % 1.0) / rate


class Schedule:
    """When each keystroke happens: ``at(editor, seq)`` in CLOCK_MONOTONIC seconds."""

    def __init__(self, t0: float, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.t0 = t0
        self.rate = rate
        self.period = 1.0 / rate
        self._phases: dict[int, float] = {}

    def at(self, editor: int, seq: int) -> float:
        ph = self._phases.get(editor)
        if ph is None:
            ph = self._phases[editor] = self.t0 + phase(editor, self.rate)
        return ph + seq * self.period
