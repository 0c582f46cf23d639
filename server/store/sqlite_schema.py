"""The SQLite store's file: its tables, and opening it with the settings the store relies on.

Kept apart from :mod:`server.store.sqlite` so the layout of the file can be read (and
migrated) in one place, without the group-commit machinery around it.

Tables: ``docs`` (name → kind), ``log`` (append-only engine records, keyed by (doc, seq), with
the append time and author for history), ``snapshots`` (one compacted state per document with
the last seq it covers), ``meta`` (the metadata log of :mod:`server.metadata`) and
``checkpoints`` (older snapshots kept for history within the
:class:`~server.store.history.HistoryBudget`).  Files written before history existed gain the
``ts``/``author`` columns on open (NULL/empty for their old records).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
CREATE TABLE IF NOT EXISTS meta (
    doc TEXT NOT NULL,
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS meta_doc ON meta (doc, seq);
CREATE TABLE IF NOT EXISTS checkpoints (
    doc TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL,
    data BLOB NOT NULL,
    PRIMARY KEY (doc, seq)
);
"""

# Columns added after the first release; added to older files when they are opened.
MIGRATIONS = (("log", "ts", "REAL"), ("log", "author", "TEXT NOT NULL DEFAULT ''"),
              ("snapshots", "ts", "REAL"))


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """Open (creating or migrating) the store's file, for use by the store thread only.

    Autocommit mode (``isolation_level=None``): the store writes its own ``BEGIN IMMEDIATE``
    … ``COMMIT``.  WAL with ``synchronous`` FULL or NORMAL (see :mod:`server.store.sqlite`).
    """
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(SCHEMA)
    for table, column, decl in MIGRATIONS:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    return db
