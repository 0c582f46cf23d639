"""What stores keep for history: author and time per record, checkpoints, and a budget that
compaction honours (the memory and SQLite stores; Redis is covered in tests/replicas)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from server.store import MemoryStore, SQLiteStore
from server.store.history import CHECKPOINTS, HistoryBudget, redundant, trim_point


def make(kind: str, tmp_path: Path, budget: HistoryBudget | None = None) -> Any:
    if kind == "memory":
        return MemoryStore(history=budget)
    return SQLiteStore(tmp_path / "w.db", history=budget)


@pytest.fixture(params=["memory", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_records_keep_their_author_and_append_time(kind: str, tmp_path: Path) -> None:
    store = make(kind, tmp_path)
    await store.open()
    before = time.time()
    await store.append("d", "crdt", 1, [b"a", b"b"], author="alice")
    await store.append("d", "crdt", 3, [b"c"])
    history = await store.history("d")
    unknown = await store.history("nope")
    await store.close()
    assert history is not None and history.kind == "crdt" and unknown is None
    assert [(r.seq, r.author, r.data) for r in history.records] == [
        (1, "alice", b"a"), (2, "alice", b"b"), (3, "", b"c")]
    assert all(r.time is not None and before <= r.time <= time.time() for r in history.records)


async def test_without_a_budget_compaction_folds_everything(kind: str, tmp_path: Path) -> None:
    store = make(kind, tmp_path)
    await store.open()
    await store.append("d", "ot", 1, [b"1", b"2", b"3"])
    await store.compact("d", "ot", b"snap@2", 2)
    history = await store.history("d")
    await store.close()
    assert history is not None
    assert [(c.seq, c.data) for c in history.checkpoints] == [(2, b"snap@2")]
    assert [r.seq for r in history.records] == [3]


async def test_a_budget_keeps_recent_records_and_the_checkpoint_before_them(
        kind: str, tmp_path: Path) -> None:
    store = make(kind, tmp_path, HistoryBudget(keep_versions=4))
    await store.open()
    seq = 1
    for _ in range(5):  # compact every 3 records: checkpoints at 3, 6, 9, 12, 15
        await store.append("d", "crdt", seq, [b"r%d" % s for s in range(seq, seq + 3)])
        seq += 3
        await store.compact("d", "crdt", b"snap@%d" % (seq - 1), seq - 1)
    history = await store.history("d")
    loaded = await store.load("d")
    await store.close()
    assert history is not None and loaded is not None
    # The last 4 records are 12..15; the newest checkpoint at or before 11 is 9.
    assert [r.seq for r in history.records] == [10, 11, 12, 13, 14, 15]
    assert [c.seq for c in history.checkpoints] == [9, 12, 15]
    assert (loaded.snapshot, loaded.log, loaded.next_seq) == (b"snap@15", (), 16)


async def test_a_time_budget_keeps_young_records(kind: str, tmp_path: Path) -> None:
    store = make(kind, tmp_path, HistoryBudget(keep_seconds=3600))
    await store.open()
    await store.append("d", "crdt", 1, [b"a", b"b"])
    await store.compact("d", "crdt", b"snap@2", 2)
    await store.append("d", "crdt", 3, [b"c"])
    await store.compact("d", "crdt", b"snap@3", 3)
    history = await store.history("d")
    await store.close()
    assert history is not None
    assert [r.seq for r in history.records] == [1, 2, 3]
    assert [c.seq for c in history.checkpoints] == [2, 3]


async def test_sqlite_files_from_before_history_gain_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE docs (name TEXT PRIMARY KEY, kind TEXT NOT NULL, created REAL NOT NULL);
        CREATE TABLE log (doc TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
                          PRIMARY KEY (doc, seq));
        CREATE TABLE snapshots (doc TEXT PRIMARY KEY, seq INTEGER NOT NULL, data BLOB NOT NULL);
        INSERT INTO docs VALUES ('d', 'crdt', 0);
        INSERT INTO log VALUES ('d', 1, x'00');
    """)
    db.close()
    store = SQLiteStore(path)
    await store.open()
    await store.append("d", "crdt", 2, [b"new"], author="bob")
    history = await store.history("d")
    loaded = await store.load("d")
    await store.close()
    assert history is not None and loaded is not None
    assert [(r.seq, r.time is None, r.author) for r in history.records] == [
        (1, True, ""), (2, False, "bob")]
    assert loaded.log == (b"\x00", b"new")


def test_trim_point_is_the_newest_checkpoint_the_budget_no_longer_needs() -> None:
    records = [(s, 100.0 + s) for s in range(1, 11)]
    assert trim_point(HistoryBudget(), [4, 8], records, 200.0) == 8
    assert trim_point(HistoryBudget(keep_versions=5), [4, 8], records, 200.0) == 4
    assert trim_point(HistoryBudget(keep_versions=10), [4, 8], records, 200.0) is None
    assert trim_point(HistoryBudget(keep_seconds=95.5), [4, 8], records, 200.0) == 4
    with pytest.raises(ValueError):
        HistoryBudget(keep_versions=-1)


async def test_frequent_compactions_do_not_pile_up_checkpoints(kind: str, tmp_path: Path) -> None:
    store = make(kind, tmp_path, HistoryBudget(keep_versions=1000))
    await store.open()
    for seq in range(1, 81):  # compact after every record
        await store.append("d", "crdt", seq, [b"r%d" % seq])
        await store.compact("d", "crdt", b"snap@%d" % seq, seq)
    history = await store.history("d")
    await store.close()
    assert history is not None
    assert [r.seq for r in history.records] == list(range(1, 81))  # all within the budget
    seqs = [c.seq for c in history.checkpoints]
    assert seqs[-1] == 80 and len(seqs) <= CHECKPOINTS + 2


def test_redundant_checkpoints_are_closer_than_an_eighth_of_the_history() -> None:
    records = [(s, None) for s in range(1, 81)]
    assert redundant([10, 11, 12, 25, 80], records) == [11, 12]
    assert redundant([10, 80], records) == []
