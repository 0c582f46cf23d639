"""Appends to a shared store, sent in the order rooms made them and batched while one is in flight.

Why not a task per change: concurrent tasks take different pooled connections, so a burst of
changes (a replica resuming after a pause, a client flushing offline edits) reached Redis in
any order — measured: a resumed replica's sixty updates landed in the log exactly reversed.
CRDT updates commute, but a reader then holds each one pending until its predecessor arrives,
and every replica and every later load pays that.  Here one writer task sends everything queued
meanwhile as one batch (:attr:`AppendQueue.send`: one pipelined round trip on a single Redis),
so the log keeps each document's order and a burst costs one round trip instead of sixty.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from server.errors import StorageError


@dataclass(slots=True)
class Append:
    """One queued append and the future its change waits on."""

    doc: str
    kind: str
    records: tuple[bytes, ...]
    author: str
    future: asyncio.Future[None]

    def settle(self, error: BaseException | None) -> None:
        if self.future.done():
            return
        if error is None:
            self.future.set_result(None)
        else:
            self.future.set_exception(error)


#: Sends one batch and settles every future in it (in order); may raise for the whole batch.
Send = Callable[[Sequence[Append]], Awaitable[None]]


class AppendQueue:
    """One writer per store: batches go out one at a time, each in queue order."""

    __slots__ = ("_queue", "_writer", "send")

    def __init__(self, send: Send) -> None:
        self.send = send
        self._queue: list[Append] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Whether appends are queued or being sent."""
        return self._writer is not None or bool(self._queue)

    def put(self, doc: str, kind: str, records: tuple[bytes, ...],
            author: str) -> asyncio.Future[None]:
        """Queue an append now; the future resolves once it is durable (or fails)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append(Append(doc, kind, records, author, future))
        if self._writer is None:
            self._writer = loop.create_task(self._drain(), name="weft-store-appends")
        return future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await self.send(batch)
                except asyncio.CancelledError:
                    _fail(batch, StorageError("the store closed before the write was sent"))
                    raise
                except Exception as exc:  # the whole batch failed (connection lost for good)
                    _fail(batch, exc if isinstance(exc, StorageError)
                          else StorageError(f"store write failed: {exc}"))
                else:
                    _fail(batch, StorageError("the store did not answer this write"))
        finally:
            self._writer = None

    async def close(self) -> None:
        """Let queued appends finish (they were accepted); then nothing more is sent."""
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer


def _fail(batch: Sequence[Append], error: BaseException) -> None:
    """Fail every append of ``batch`` that is still unsettled (settled ones keep their result)."""
    for append in batch:
        append.settle(error)
