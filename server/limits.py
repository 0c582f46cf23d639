"""Resource limits and the token bucket that enforces the per-connection edit rate.

Why here and not in the protocols: both wire adapters and the REST API enforce the same limits,
and each limit must act *before* the expensive step it guards — message size before decoding
(websockets' ``max_size``), document size before the engine applies a change, rate before a
change reaches the room, outgoing buffer before a frame is queued for a slow reader.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-server limits; every value ``<= 0`` or ``None`` means "no limit" where noted."""

    # Largest incoming WebSocket message, checked by websockets before it is read whole.
    max_message_bytes: int = 4 * MIB
    # Largest document: UTF-8 text for OT, encoded Yjs state (upper bound) for CRDT.
    max_doc_bytes: int = 64 * MIB
    # Sustained edits per second per connection (token bucket); 0 disables the check.
    max_ops_per_second: float = 200.0
    # Bucket depth: how many edits may arrive at once after a quiet period (paste, reconnect).
    ops_burst: int = 400
    # A reader whose unsent bytes exceed this is dropped so it cannot slow the room.
    max_outgoing_bytes: int = 8 * MIB
    # Largest body the REST API accepts.
    max_http_body_bytes: int = 1 * MIB


class TokenBucket:
    """Classic token bucket: ``rate`` tokens per second, at most ``burst`` stored.

    ``rate <= 0`` disables limiting (every ``take`` succeeds).  Time is injectable so tests
    need no sleeping.
    """

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] | None = None) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock or time.monotonic
        self._tokens = float(self.burst)
        self._last = self._clock()

    def take(self, n: float = 1.0) -> bool:
        """Spend ``n`` tokens if available; False (nothing spent) when over budget."""
        if self.rate <= 0:
            return True
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False
