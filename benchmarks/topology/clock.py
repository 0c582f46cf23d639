"""A discrete-event loop: a heap of timed callbacks and a simulated clock in milliseconds.

Nothing sleeps: the loop jumps from one event to the next, so a run of simulated seconds costs
only the callbacks' CPU time and is reproducible exactly (ties are broken by insertion order).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable


class EventLoop:
    """Timed callbacks in simulated time; :attr:`now` is the current time in ms."""

    __slots__ = ("_count", "_heap", "now")

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._count = 0

    def at(self, time_ms: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at simulated time ``time_ms`` (never before :attr:`now`)."""
        self._count += 1
        heapq.heappush(self._heap, (max(time_ms, self.now), self._count, callback))

    def after(self, delay_ms: float, callback: Callable[[], None]) -> None:
        self.at(self.now + delay_ms, callback)

    def run(self, limit_ms: float) -> bool:
        """Run events in time order until none is left; ``False`` if one lies past
        ``limit_ms`` (the run is then cut short, which the caller reports as a failure)."""
        heap = self._heap
        while heap:
            time_ms, _, callback = heapq.heappop(heap)
            if time_ms > limit_ms:
                return False
            self.now = time_ms
            callback()
        return True
