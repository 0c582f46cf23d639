"""A hybrid logical clock (Kulkarni et al., 2014): wall-clock-like timestamps that never run
backwards and always order a write after every write it could have seen.

A timestamp is ``(wall, logical, node)``: ``wall`` is milliseconds since the epoch — the
largest physical time seen so far, locally or in a received timestamp — ``logical`` counts
events within one ``wall`` millisecond, and ``node`` (the replica id) breaks the remaining
ties, so two timestamps from different nodes are never equal.  Tuple order is causal order
plus a deterministic tie-break: if write B was made by a node that had seen write A, then
``A < B`` whatever the nodes' physical clocks say.  That is exactly what plain wall-clock
last-writer-wins lacks: with one clock minutes behind, a causally newer write carries an older
wall time and silently loses.

Bounded drift: a received timestamp more than ``max_drift_ms`` ahead of local physical time is
refused (:class:`~meta.errors.ClockDriftError`) and never adopted.  Adopting it would drag this
clock — and, through it, every replica it talks to — into the far future, after which no
correctly-clocked write could win again until real time caught up.

The physical clock is injectable (tests, and the server's ``--clock-offset-ms`` testing flag),
which is how the skew tests put one replica minutes behind the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from meta.errors import BadMetaInput, ClockDriftError

PhysicalClock = Callable[[], int]
"""Milliseconds since the Unix epoch."""

DEFAULT_MAX_DRIFT_MS = 60_000
MAX_NODE_LENGTH = 128


def system_clock() -> int:
    return time.time_ns() // 1_000_000


def offset_clock(offset_ms: int, base: PhysicalClock = system_clock) -> PhysicalClock:
    """``base`` shifted by ``offset_ms`` (negative: behind) — a deliberately skewed clock."""
    if offset_ms == 0:
        return base
    return lambda: base() + offset_ms


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    """One HLC reading; orders by ``(wall, logical, node)``."""

    wall: int
    logical: int
    node: str

    def encode(self) -> str:
        """``"<wall>.<logical>.<node>"``: compact, and JSON-safe for JS clients (no big ints)."""
        return f"{self.wall}.{self.logical}.{self.node}"

    @classmethod
    def decode(cls, raw: object) -> Timestamp:
        if not isinstance(raw, str):
            raise BadMetaInput(f"HLC timestamp must be a string 'wall.logical.node', got {raw!r}")
        wall, _, rest = raw.partition(".")
        logical, _, node = rest.partition(".")
        if not (wall.isdigit() and logical.isdigit()) or not 0 < len(node) <= MAX_NODE_LENGTH:
            raise BadMetaInput(f"HLC timestamp must look like '1700000000000.0.node', got {raw!r}")
        return cls(int(wall), int(logical), node)

    @property
    def position(self) -> tuple[int, int]:
        """Where this timestamp sits in its node's sequence (for version vectors)."""
        return (self.wall, self.logical)


class HybridClock:
    """The HLC of one node (see the module docstring).

    Invariants: successive :meth:`now` results strictly increase; after :meth:`update` with a
    remote timestamp ``r``, the next :meth:`now` is greater than ``r``; ``wall`` never exceeds
    local physical time by more than ``max_drift_ms`` (refused updates change nothing).
    """

    def __init__(self, node: str, physical: PhysicalClock = system_clock,
                 max_drift_ms: int = DEFAULT_MAX_DRIFT_MS) -> None:
        if not 0 < len(node) <= MAX_NODE_LENGTH or "." in node:
            raise BadMetaInput(f"HLC node id must be 1..{MAX_NODE_LENGTH} characters "
                               f"without '.', got {node!r}")
        if max_drift_ms < 0:
            raise BadMetaInput(f"max_drift_ms must be >= 0, got {max_drift_ms}")
        self.node = node
        self.physical = physical
        self.max_drift_ms = max_drift_ms
        self._wall = 0
        self._logical = 0

    @property
    def last(self) -> Timestamp:
        """The latest timestamp issued or adopted (not a new one)."""
        return Timestamp(self._wall, self._logical, self.node)

    def now(self) -> Timestamp:
        """A new timestamp for a local event, greater than every earlier one."""
        physical = self.physical()
        if physical > self._wall:
            self._wall, self._logical = physical, 0
        else:
            self._logical += 1
        return Timestamp(self._wall, self._logical, self.node)

    def check(self, remote: Timestamp) -> None:
        """Raise :class:`ClockDriftError` if ``remote`` is too far ahead to adopt."""
        physical = self.physical()
        ahead = remote.wall - physical
        if ahead > self.max_drift_ms:
            raise ClockDriftError(
                f"timestamp from {remote.node!r} is {ahead} ms ahead of this node's clock "
                f"(max drift {self.max_drift_ms} ms): refused; check that node's clock"
            )

    def observe(self, remote: Timestamp) -> None:
        """Make sure the next :meth:`now` is after ``remote`` without issuing a timestamp.

        What a replica does for every record it loads: re-reading known records changes
        nothing (unlike :meth:`update`, which counts a receive event).  Same drift rule.
        """
        self.check(remote)
        if remote.position > (self._wall, self._logical):
            self._wall, self._logical = remote.position

    def update(self, remote: Timestamp) -> Timestamp:
        """Adopt a received timestamp; returns the (new) current timestamp.

        Raises :class:`ClockDriftError` without changing the clock when ``remote`` is more
        than ``max_drift_ms`` ahead of local physical time.
        """
        self.check(remote)
        physical = self.physical()
        wall = max(self._wall, remote.wall, physical)
        if wall == self._wall and wall == remote.wall:
            logical = max(self._logical, remote.logical) + 1
        elif wall == self._wall:
            logical = self._logical + 1
        elif wall == remote.wall:
            logical = remote.logical + 1
        else:
            logical = 0
        self._wall, self._logical = wall, logical
        return Timestamp(wall, logical, self.node)
