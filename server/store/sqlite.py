"""The embedded default store: one SQLite file in WAL mode, written with group commit.

Why this shape:

* **No server to run.**  ``weft serve`` works out of the box; the file lives in ``--data-dir``.
* **Never blocks the loop.**  SQLite runs on one dedicated thread; the loop only queues writes
  and awaits futures.  One thread also means one connection, so reads see every committed write.
* **Group commit.**  Writes queued while the previous transaction is running (or within
  ``commit_delay`` of the first one) share the next transaction — one fsync for many edits.
* **Few statements.**  The store thread needs the GIL back after every SQLite statement, and
  while the event loop is busy that can take a whole switch interval (5 ms): with one
  ``INSERT`` (plus a savepoint and a kind check) per record, a batch of a few thousand edits
  took seconds under load.  So a batch's records go in multi-row ``INSERT`` statements and a
  document's kind is remembered once committed.  If any write of the batch fails, the
  transaction is rolled back and replayed write by write, each in its own SAVEPOINT, so one
  bad write (say, a kind mismatch or a duplicate seq) fails alone.
* **Durable means durable.**  ``synchronous=FULL``: a write's future resolves only after the
  WAL is synced (in the same transaction as every other write of its batch), which is what
  lets the OT adapter acknowledge an op only once it is durable.  Every record whose future
  resolved survives a crash of the process or of the machine.  CRDT rooms fan an update out
  before its future resolves (y-websocket has no acknowledgement; see
  :mod:`server.rooms.adapters`): a crash can lose updates that other clients already saw, and
  those clients send them back in their sync step 2 when they reconnect.
  ``--sqlite-synchronous NORMAL`` trades the machine-crash guarantee for no fsync per commit
  (a process crash still loses nothing acknowledged): this disk's fsync tail stalled single
  commits for 100-300 ms about once per 500-1,000 commits, and OT acknowledgements with them.

Modules: this one is the store as the event loop sees it (the write queue, the group-commit
loop and the reads); :mod:`server.store.sqlite_batch` is what the store thread does with one
batch, and :mod:`server.store.sqlite_schema` the file's tables and how it is opened.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.errors import StorageError
from server.metrics import Metrics
from server.store.base import StoredDoc, StoredMeta
from server.store.history import Checkpoint, HistoryBudget, HistoryRecord, StoredHistory
from server.store.sqlite_batch import BatchWriter, Write
from server.store.sqlite_schema import connect

log = logging.getLogger("weft.store")


@dataclass(slots=True)
class _Write:
    """One queued write and the future its caller awaits."""

    op: str  # "append" | "compact" | "delete" | "meta_append" | "meta_compact"
    doc: str
    args: tuple[Any, ...]
    future: asyncio.Future[None] = field(repr=False)


class SQLiteStore:
    """SQLite-backed :class:`~server.store.base.Store` with group commit."""

    def __init__(
        self,
        path: Path,
        *,
        commit_delay: float = 0.0,
        metrics: Metrics | None = None,
        synchronous: str = "FULL",
        history: HistoryBudget | None = None,
    ) -> None:
        self.path = Path(path)
        self.budget = history or HistoryBudget()
        self.commit_delay = commit_delay
        self.metrics = metrics or Metrics()
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self._synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._queue: list[_Write] = []
        self._inflight_docs: set[str] = set()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        # Runs on the store thread; remembers the kind of each document it committed.
        self._batches = BatchWriter()

    # ---- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weft-sqlite")
        await self._run(self._connect)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="weft-store")

    def _connect(self) -> None:
        self._db = connect(self.path, self._synchronous)

    async def close(self) -> None:
        """Flush queued writes, then close the file.  Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            raise StorageError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ---- writes ----------------------------------------------------------------------------

    def _enqueue(self, op: str, doc: str, *args: Any) -> asyncio.Future[None]:
        if self._closing or self._executor is None:
            raise StorageError("store is closed; the write was not accepted")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Write(op, doc, args, future))
        self._wakeup.set()
        return future

    async def append(self, doc: str, kind: str, first_seq: int, records: Sequence[bytes],
                     author: str = "") -> None:
        if records:
            await self.append_nowait(doc, kind, first_seq, records, author)

    def append_nowait(self, doc: str, kind: str, first_seq: int, records: Sequence[bytes],
                      author: str = "") -> asyncio.Future[None]:
        """:meth:`append` without a coroutine: queue now, return the commit's future.

        Rooms use this on the hot path (one future per change instead of a task wrapping a
        coroutine wrapping a future); the semantics are :meth:`append`'s.
        """
        return self._enqueue("append", doc, kind, first_seq, tuple(records), author,
                             time.time())

    async def compact(self, doc: str, kind: str, snapshot: bytes, upto_seq: int) -> None:
        await self._enqueue("compact", doc, kind, snapshot, upto_seq, self.budget, time.time())

    async def delete(self, doc: str) -> None:
        await self._enqueue("delete", doc)

    async def _write_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.commit_delay > 0 and not self._closing:
                await asyncio.sleep(self.commit_delay)
            else:
                await asyncio.sleep(0)  # gather everything queued in this loop tick
            batch, self._queue = self._queue, []
            if batch:
                await self._commit(batch)
            if self._closing and not self._queue:
                return

    async def _commit(self, batch: list[_Write]) -> None:
        self._inflight_docs = {w.doc for w in batch}
        started = time.perf_counter()
        try:
            errors = await self._run(self._write_batch, [(w.op, w.doc, w.args) for w in batch])
        except Exception as exc:  # the whole transaction failed (disk full, I/O error)
            log.exception("store transaction failed (%d writes)", len(batch))
            errors = [f"transaction failed: {exc}"] * len(batch)
        finally:
            self._inflight_docs = set()
        self.metrics.store_commits += 1
        self.metrics.store_commit_seconds += time.perf_counter() - started
        for write, error in zip(batch, errors, strict=True):
            if write.future.done():
                continue
            if error is None:
                if write.op == "append":
                    self.metrics.store_records += len(write.args[2])
                write.future.set_result(None)
            else:
                write.future.set_exception(StorageError(f"{write.op} {write.doc!r}: {error}"))

    def _write_batch(self, batch: list[Write]) -> list[str | None]:
        """Runs on the store thread: the whole batch in one transaction (one WAL sync); see
        :meth:`~server.store.sqlite_batch.BatchWriter.write`."""
        db = self._db
        if db is None:
            raise StorageError("store is closed")
        return self._batches.write(db, batch)

    # ---- reads -----------------------------------------------------------------------------

    async def _settle(self, doc: str) -> None:
        """Wait until no queued or running write concerns ``doc`` (read-your-writes)."""
        while any(w.doc == doc for w in self._queue) or doc in self._inflight_docs:
            await asyncio.sleep(0.001)

    async def _read(self, read: Any, doc: str, what: str) -> Any:
        """Run ``read(doc)`` on the store thread once ``doc``'s queued writes are in."""
        await self._settle(doc)
        try:
            return await self._run(read, doc)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot {what} {doc!r}: {exc}") from exc

    async def load(self, doc: str) -> StoredDoc | None:
        result: StoredDoc | None = await self._read(self._load, doc, "load")
        return result

    def _opened(self, doc: str) -> tuple[sqlite3.Connection, str] | None:
        """The connection and ``doc``'s kind on the store thread (None: no such document)."""
        db = self._db
        if db is None:
            raise StorageError("store is closed")
        row = db.execute("SELECT kind FROM docs WHERE name = ?", (doc,)).fetchone()
        return None if row is None else (db, row[0])

    def _load(self, doc: str) -> StoredDoc | None:
        opened = self._opened(doc)
        if opened is None:
            return None
        db, kind = opened
        snap = db.execute("SELECT seq, data FROM snapshots WHERE doc = ?", (doc,)).fetchone()
        snap_seq, snapshot = (snap[0], bytes(snap[1])) if snap else (0, None)
        rows = db.execute(
            "SELECT seq, data FROM log WHERE doc = ? AND seq > ? ORDER BY seq", (doc, snap_seq)
        ).fetchall()
        last = rows[-1][0] if rows else snap_seq
        return StoredDoc(kind, snapshot, tuple(bytes(r[1]) for r in rows), last + 1)

    async def history(self, doc: str) -> StoredHistory | None:
        result: StoredHistory | None = await self._read(self._history, doc,
                                                         "read the history of")
        return result

    def _history(self, doc: str) -> StoredHistory | None:
        opened = self._opened(doc)
        if opened is None:
            return None
        db, kind = opened
        checkpoints = [Checkpoint(seq, ts, bytes(data)) for seq, ts, data in db.execute(
            "SELECT seq, ts, data FROM checkpoints WHERE doc = ? ORDER BY seq", (doc,))]
        snap = db.execute("SELECT seq, ts, data FROM snapshots WHERE doc = ?", (doc,)).fetchone()
        if snap is not None:
            checkpoints.append(Checkpoint(snap[0], snap[1], bytes(snap[2])))
        records = tuple(HistoryRecord(seq, ts, author or "", bytes(data)) for seq, ts, author, data
                        in db.execute("SELECT seq, ts, author, data FROM log WHERE doc = ? "
                                      "ORDER BY seq", (doc,)))
        return StoredHistory(str(kind), tuple(checkpoints), records)

    async def meta_append(self, doc: str, record: bytes) -> None:
        """Queued like every other write of ``doc``, so it takes effect in call order (a
        ``delete`` queued earlier must not run after it and remove the new record)."""
        await self._enqueue("meta_append", doc, record)

    async def meta_load(self, doc: str) -> StoredMeta:
        await self._settle(doc)  # a delete still queued must not be overtaken

        def select() -> StoredMeta:
            if self._db is None:
                raise StorageError("store is closed")
            rows = self._db.execute("SELECT seq, data FROM meta WHERE doc = ? ORDER BY seq",
                                    (doc,)).fetchall()
            return StoredMeta(tuple(bytes(r[1]) for r in rows), tuple(str(r[0]) for r in rows))

        try:
            stored: StoredMeta = await self._run(select)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot load metadata of {doc!r}: {exc}") from exc
        return stored

    async def meta_compact(self, doc: str, snapshot: bytes, ids: Sequence[str]) -> None:
        """Queued like :meth:`meta_append`; ``ids`` and ``snapshot`` swap atomically."""
        await self._enqueue("meta_compact", doc, snapshot, tuple(int(i) for i in ids))

    async def kind_of(self, doc: str) -> str | None:
        result: str | None = await self._read(self._kind_of, doc, "read the kind of")
        return result

    def _kind_of(self, doc: str) -> str | None:
        opened = self._opened(doc)
        return None if opened is None else str(opened[1])
