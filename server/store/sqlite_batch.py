"""One group commit of the SQLite store, as the store thread runs it.

:class:`~server.store.sqlite.SQLiteStore` queues writes on the event loop and hands each batch
to its thread; this module is what happens there: the whole batch in one transaction (one WAL
sync), in as few statements as possible, and — if any write fails — the batch replayed write
by write so the bad one fails alone.  Kept apart from the store so the SQL of writing can be
read without the asyncio around it; nothing here touches the event loop.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from server.errors import StorageError
from server.store.history import HistoryBudget, redundant, trim_point

T = TypeVar("T")

#: One write as the store thread sees it: (op, doc, args); op is "append" | "compact" |
#: "delete" | "meta_append" | "meta_compact".
Write = tuple[str, str, tuple[Any, ...]]

INSERT_RECORD = "INSERT INTO log (doc, seq, data, ts, author) VALUES (?, ?, ?, ?, ?)"
# Multi-row inserts of 128, 64, … 1 rows (5 parameters a row stays under SQLite's oldest
# limit of 999): a batch of N records takes at most N/128 + 8 statements.
INSERT_SIZES = tuple(2**i for i in range(7, -1, -1))
INSERT_ROWS = {n: "INSERT INTO log (doc, seq, data, ts, author) VALUES "
               + ", ".join(["(?, ?, ?, ?, ?)"] * n) for n in INSERT_SIZES}
# Documents whose kind the store thread remembers; past this the memo is simply dropped.
KIND_CACHE_SIZE = 100_000


class BatchWriter:
    """Writes batches on the store thread, remembering each document's committed kind."""

    def __init__(self) -> None:
        # Kind of each document this process wrote, as committed (used only on the store
        # thread).  One process owns a data dir, so the file cannot change behind it.
        self._kinds: dict[str, str] = {}

    def write(self, db: sqlite3.Connection, batch: list[Write]) -> list[str | None]:
        """The whole batch in one transaction (one WAL sync); one error (or None) per write.

        Fast path: the appends of the batch go in as few ``executemany`` calls as the order of
        writes allows and a document's kind is checked against :attr:`_kinds`, so N appended
        records cost N row inserts and no other statement.  (Every statement is a round trip
        through the GIL, which the event loop needs: statements, not bytes, are the cost.)
        If any write fails, the transaction is rolled back and the batch replayed write by
        write, each in its own savepoint, so the bad write fails alone.
        """
        try:
            claims = in_transaction(db, lambda: self._write_fast(db, batch))
        except (sqlite3.Error, StorageError):
            self._kinds.clear()
            errors: list[str | None] = []
            in_transaction(db, lambda: self._write_one_by_one(db, batch, errors))
            return errors
        if len(self._kinds) > KIND_CACHE_SIZE:
            self._kinds.clear()
        for doc, kind in claims.items():
            if kind is None:
                self._kinds.pop(doc, None)
            else:
                self._kinds[doc] = kind
        return [None] * len(batch)

    def _write_fast(self, db: sqlite3.Connection,
                    batch: list[Write]) -> dict[str, str | None]:
        """Apply ``batch``; returns the kinds it claimed (None: document deleted)."""
        claims: dict[str, str | None] = {}
        rows: list[tuple[Any, ...]] = []
        for op, doc, args in batch:
            if op == "append":
                kind, first_seq, records, author, now = args
                self._check_kind(db, doc, kind, claims)
                rows.extend((doc, first_seq + i, record, now, author)
                            for i, record in enumerate(records))
                continue
            if rows:  # writes of one document apply in call order: appends before a compact
                _insert_records(db, rows)
                rows = []
            if op == "compact":
                kind, snapshot, upto_seq, budget, now = args
                self._check_kind(db, doc, kind, claims)
                _compact(db, doc, snapshot, upto_seq, budget, now)
            elif op == "delete":
                _delete(db, doc)
                claims[doc] = None
            else:
                _write_meta(db, op, doc, args)
        if rows:
            _insert_records(db, rows)
        return claims

    def _check_kind(self, db: sqlite3.Connection, doc: str, kind: str,
                    claims: dict[str, str | None]) -> None:
        known = claims[doc] if doc in claims else self._kinds.get(doc)
        if known is None:
            _claim(db, doc, kind)
            claims[doc] = kind
        elif known != kind:
            raise StorageError(f"document {doc!r} is a {known} document, not {kind}")

    def _write_one_by_one(self, db: sqlite3.Connection, batch: list[Write],
                          errors: list[str | None]) -> None:
        """The slow path: one savepoint per write, kinds read from the file."""
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

    @staticmethod
    def _apply_write(db: sqlite3.Connection, op: str, doc: str, args: tuple[Any, ...]) -> None:
        if op == "append":
            kind, first_seq, records, author, now = args
            _claim(db, doc, kind)
            db.executemany(
                INSERT_RECORD,
                [(doc, first_seq + i, record, now, author) for i, record in enumerate(records)],
            )
        elif op == "compact":
            kind, snapshot, upto_seq, budget, now = args
            _claim(db, doc, kind)
            _compact(db, doc, snapshot, upto_seq, budget, now)
        elif op == "delete":
            _delete(db, doc)
        else:
            _write_meta(db, op, doc, args)


def in_transaction(db: sqlite3.Connection, body: Callable[[], T]) -> T:
    """Run ``body`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``; roll back if anything raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = body()
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


def _insert_records(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert log rows in as few statements as possible.

    Each statement costs the store thread a GIL round trip (``sqlite3_step`` releases it), and
    while the event loop is busy getting it back can take a whole switch interval (5 ms): with
    one statement per row, a big batch took seconds under load.  So rows go in chunks.
    """
    i, n = 0, len(rows)
    for size in INSERT_SIZES:
        while n - i >= size:
            db.execute(INSERT_ROWS[size], [value for row in rows[i:i + size] for value in row])
            i += size


def _delete(db: sqlite3.Connection, doc: str) -> None:
    for table, column in (("log", "doc"), ("snapshots", "doc"), ("checkpoints", "doc"),
                          ("meta", "doc"), ("docs", "name")):
        db.execute(f"DELETE FROM {table} WHERE {column} = ?", (doc,))


def _write_meta(db: sqlite3.Connection, op: str, doc: str, args: tuple[Any, ...]) -> None:
    """A metadata write (:mod:`server.metadata`): independent of the document's kind, but
    queued with its other writes so that all of them apply in call order."""
    if op == "meta_compact":
        snapshot, ids = args
        db.executemany("DELETE FROM meta WHERE doc = ? AND seq = ?", [(doc, i) for i in ids])
        db.execute("INSERT INTO meta (doc, data) VALUES (?, ?)", (doc, snapshot))
    elif op == "meta_append":
        db.execute("INSERT INTO meta (doc, data) VALUES (?, ?)", (doc, args[0]))
    else:
        raise StorageError(f"unknown store write {op!r}")


def _compact(db: sqlite3.Connection, doc: str, snapshot: bytes, upto_seq: int,
             budget: HistoryBudget, now: float) -> None:
    """Replace the snapshot; keep the old one as a checkpoint and drop only the records (and
    checkpoints) the history budget no longer covers."""
    if budget.enabled:
        db.execute("INSERT OR REPLACE INTO checkpoints (doc, seq, ts, data) "
                   "SELECT doc, seq, ts, data FROM snapshots WHERE doc = ?", (doc,))
    db.execute("DELETE FROM checkpoints WHERE doc = ? AND seq = ?", (doc, upto_seq))
    db.execute("INSERT OR REPLACE INTO snapshots (doc, seq, data, ts) VALUES (?, ?, ?, ?)",
               (doc, upto_seq, snapshot, now))
    kept = [seq for (seq,) in db.execute("SELECT seq FROM checkpoints WHERE doc = ?", (doc,))]
    records = db.execute("SELECT seq, ts FROM log WHERE doc = ? ORDER BY seq", (doc,)).fetchall()
    pairs = [(seq, ts) for seq, ts in records]
    cut = trim_point(budget, [*kept, upto_seq], pairs, now)
    if cut is not None:
        db.execute("DELETE FROM log WHERE doc = ? AND seq <= ?", (doc, cut))
        db.execute("DELETE FROM checkpoints WHERE doc = ? AND seq < ?", (doc, cut))
        kept = [seq for seq in kept if seq >= cut]
    db.executemany("DELETE FROM checkpoints WHERE doc = ? AND seq = ?",
                   [(doc, seq) for seq in redundant([*kept, upto_seq], pairs)])


def _claim(db: sqlite3.Connection, doc: str, kind: str) -> None:
    """Record the document's engine on first write; refuse a write by the other engine."""
    db.execute(
        "INSERT INTO docs (name, kind, created) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING",
        (doc, kind, time.time()),
    )
    stored = db.execute("SELECT kind FROM docs WHERE name = ?", (doc,)).fetchone()[0]
    if stored != kind:
        raise StorageError(f"document {doc!r} is a {stored} document, not {kind}")
