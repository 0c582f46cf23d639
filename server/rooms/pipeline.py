"""Ordered, durable delivery of a room's changes — the "store, then acknowledge, then relay"
rule of DESIGN.md as one small queue.

Each accepted change is pushed with the future of its store write.  Writes of one room may
complete together (group commit), but effects are delivered strictly in push order, and each
only once its own write — and so every earlier one — is durable.  A change without records (a
barrier, or a duplicate that is only acknowledged again) waits its turn the same way.  A failed
write stops the queue: the room's in-memory state is then ahead of the store and cannot be
trusted, so the room fails as a whole (see :meth:`Room.fail`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from engines.interface import Effects
from server.errors import StorageError, WeftError


@dataclass(slots=True)
class Pending:
    """One change waiting for its records to be durable before its effects are delivered."""

    write: asyncio.Future[None] | None
    effects: Effects
    author: str
    on_durable: Callable[[Effects], None] | None
    done: asyncio.Future[Effects] = field(repr=False)


class Pipeline:
    """The delivery queue of one room."""

    def __init__(self, deliver: Callable[[Pending], None],
                 fail: Callable[[WeftError], None]) -> None:
        self._deliver = deliver
        self._fail = fail
        self._queue: deque[Pending] = deque()

    def __bool__(self) -> bool:
        return bool(self._queue)

    def push(self, write: asyncio.Future[None] | None, effects: Effects, author: str,
             on_durable: Callable[[Effects], None] | None) -> asyncio.Future[Effects]:
        """Queue a change; the returned future resolves once its effects were delivered."""
        done: asyncio.Future[Effects] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(write, effects, author, on_durable, done))
        if write is None:
            self.drain()
        else:
            write.add_done_callback(self.drain)
        return done

    def drain(self, _: object = None) -> None:
        queue = self._queue
        while queue:
            head = queue[0]
            if head.write is not None and not head.write.done():
                return
            queue.popleft()
            error = None if head.write is None else head.write.exception()
            if error is not None:
                failure = error if isinstance(error, WeftError) else StorageError(str(error))
                _settle(head.done, failure)
                self._fail(failure)
                return
            self._deliver(head)
            if not head.done.done():
                head.done.set_result(head.effects)

    def fail_all(self, error: WeftError) -> None:
        while self._queue:
            _settle(self._queue.popleft().done, error)

    def waiting(self) -> list[asyncio.Future[Effects]]:
        return [p.done for p in self._queue]


def _settle(future: asyncio.Future[Effects], error: WeftError) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: nobody may be waiting any more
