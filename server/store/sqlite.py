"""The embedded default store: one SQLite file in WAL mode, written with group commit.

Why this shape:

* **No server to run.**  ``weft serve`` works out of the box; the file lives in ``--data-dir``.
* **Never blocks the loop.**  SQLite runs on one dedicated thread; the loop only queues writes
  and awaits futures.  One thread also means one connection, so reads see every committed write.
* **Group commit.**  Writes queued while the previous transaction is running (or within
  ``commit_delay`` of the first one) share the next transaction — one fsync for many edits.
  Each write runs inside its own SAVEPOINT so one bad write (say, a kind mismatch) fails alone.
* **Durable means durable.**  ``synchronous=FULL``: a write's future resolves only after the
  WAL is synced, which is what lets the OT adapter acknowledge an op only once it is durable.

Tables: ``docs`` (name → kind), ``log`` (append-only engine records, keyed by (doc, seq)) and
``snapshots`` (one compacted state per document with the last seq it covers).
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
from server.store.base import StoredDoc

log = logging.getLogger("weft.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    doc TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (doc, seq)
);
CREATE TABLE IF NOT EXISTS snapshots (
    doc TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""


@dataclass(slots=True)
class _Write:
    """One queued write and the future its caller awaits."""

    op: str  # "append" | "compact" | "delete" | "barrier"
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
    ) -> None:
        self.path = Path(path)
        self.commit_delay = commit_delay
        self.metrics = metrics or Metrics()
        self._synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._queue: list[_Write] = []
        self._inflight_docs: set[str] = set()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    # ---- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weft-sqlite")
        await self._run(self._connect)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="weft-store")

    def _connect(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(SCHEMA)
        self._db = db

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

    async def append(self, doc: str, kind: str, first_seq: int, records: Sequence[bytes]) -> None:
        if records:
            await self._enqueue("append", doc, kind, first_seq, tuple(records))

    async def compact(self, doc: str, kind: str, snapshot: bytes, upto_seq: int) -> None:
        await self._enqueue("compact", doc, kind, snapshot, upto_seq)

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

    def _write_batch(self, batch: list[tuple[str, str, tuple[Any, ...]]]) -> list[str | None]:
        """Runs on the store thread: one transaction, one savepoint per write."""
        db = self._db
        if db is None:
            raise StorageError("store is closed")
        errors: list[str | None] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for op, doc, args in batch:
                db.execute("SAVEPOINT w")
                try:
                    self._apply_write(db, op, doc, args)
                except (sqlite3.Error, StorageError) as exc:
                    db.execute("ROLLBACK TO w")
                    errors.append(str(exc))
                else:
                    errors.append(None)
                db.execute("RELEASE w")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return errors

    @staticmethod
    def _apply_write(db: sqlite3.Connection, op: str, doc: str, args: tuple[Any, ...]) -> None:
        if op == "append":
            kind, first_seq, records = args
            _claim(db, doc, kind)
            db.executemany(
                "INSERT INTO log (doc, seq, data) VALUES (?, ?, ?)",
                [(doc, first_seq + i, record) for i, record in enumerate(records)],
            )
        elif op == "compact":
            kind, snapshot, upto_seq = args
            _claim(db, doc, kind)
            db.execute(
                "INSERT OR REPLACE INTO snapshots (doc, seq, data) VALUES (?, ?, ?)",
                (doc, upto_seq, snapshot),
            )
            db.execute("DELETE FROM log WHERE doc = ? AND seq <= ?", (doc, upto_seq))
        elif op == "delete":
            for table, column in (("log", "doc"), ("snapshots", "doc"), ("docs", "name")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (doc,))

    # ---- reads -----------------------------------------------------------------------------

    async def _settle(self, doc: str) -> None:
        """Wait until no queued or running write concerns ``doc`` (read-your-writes)."""
        while any(w.doc == doc for w in self._queue) or doc in self._inflight_docs:
            await asyncio.sleep(0.001)

    async def load(self, doc: str) -> StoredDoc | None:
        await self._settle(doc)
        try:
            result: StoredDoc | None = await self._run(self._load, doc)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot load {doc!r}: {exc}") from exc
        return result

    def _load(self, doc: str) -> StoredDoc | None:
        db = self._db
        if db is None:
            raise StorageError("store is closed")
        row = db.execute("SELECT kind FROM docs WHERE name = ?", (doc,)).fetchone()
        if row is None:
            return None
        snap = db.execute("SELECT seq, data FROM snapshots WHERE doc = ?", (doc,)).fetchone()
        snap_seq, snapshot = (snap[0], bytes(snap[1])) if snap else (0, None)
        rows = db.execute(
            "SELECT seq, data FROM log WHERE doc = ? AND seq > ? ORDER BY seq", (doc, snap_seq)
        ).fetchall()
        last = rows[-1][0] if rows else snap_seq
        return StoredDoc(row[0], snapshot, tuple(bytes(r[1]) for r in rows), last + 1)

    async def kind_of(self, doc: str) -> str | None:
        await self._settle(doc)
        row = await self._run(
            lambda: self._db.execute("SELECT kind FROM docs WHERE name = ?", (doc,)).fetchone()
            if self._db
            else None
        )
        return None if row is None else str(row[0])


def _claim(db: sqlite3.Connection, doc: str, kind: str) -> None:
    """Record the document's engine on first write; refuse a write by the other engine."""
    db.execute(
        "INSERT INTO docs (name, kind, created) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING",
        (doc, kind, time.time()),
    )
    stored = db.execute("SELECT kind FROM docs WHERE name = ?", (doc,)).fetchone()[0]
    if stored != kind:
        raise StorageError(f"document {doc!r} is a {stored} document, not {kind}")
