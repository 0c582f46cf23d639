"""A bounded FIFO that drops its *oldest* item when full — the one queue shape hooks and the
webhook share.

Why drop the oldest: both queues sit behind the edit path, which must never wait for them.
When a consumer (a slow hook, an unreachable webhook receiver) falls this far behind, the
newest events are the ones still worth delivering.  Every drop is counted by the caller
(``on_drop``) and logged at most once per :data:`LOG_EVERY_SECONDS`, with the running total,
so a flood of drops cannot flood the log too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

LOG_EVERY_SECONDS = 5.0


class DropOldestQueue(Generic[T]):
    """``put`` never blocks; ``get`` waits for an item."""

    def __init__(self, maxsize: int, name: str, log: logging.Logger,
                 on_drop: Callable[[T], None] | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.name = name
        self.dropped = 0
        self._log = log
        self._on_drop = on_drop
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._last_log = float("-inf")

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Append ``item``; if the queue is full, drop (count, maybe log) the oldest first."""
        if len(self._items) >= self.maxsize:
            old = self._items.popleft()
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop(old)
            now = time.monotonic()
            if now - self._last_log >= LOG_EVERY_SECONDS:
                self._last_log = now
                self._log.warning("%s queue full (%d): dropped the oldest event (%d dropped so "
                                  "far); its consumer is too slow", self.name, self.maxsize,
                                  self.dropped)
        self._items.append(item)
        self._ready.set()

    async def get(self) -> T:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def get_nowait(self) -> T | None:
        return self._items.popleft() if self._items else None
