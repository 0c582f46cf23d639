"""The store contract, for every implementation: append, load, compact, kinds, durability."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.errors import StorageError
from server.store import MemoryStore, SQLiteStore, Store


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path: Path):
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "w.db")
    await s.open()
    yield s
    await s.close()


async def test_unknown_document_loads_as_none(store):
    assert await store.load("nope") is None
    assert await store.kind_of("nope") is None


async def test_appended_records_load_back_in_order(store):
    await store.append("d", "crdt", 1, [b"a", b"b"])
    await store.append("d", "crdt", 3, [b"c"])
    doc = await store.load("d")
    assert doc is not None
    assert (doc.kind, doc.snapshot, doc.log, doc.next_seq) == ("crdt", None, (b"a", b"b", b"c"), 4)


async def test_compaction_replaces_covered_records_only(store):
    await store.append("d", "ot", 1, [b"1", b"2", b"3"])
    await store.compact("d", "ot", b"snap", 2)
    doc = await store.load("d")
    assert (doc.snapshot, doc.log, doc.next_seq) == (b"snap", (b"3",), 4)


async def test_compaction_of_everything_keeps_the_sequence(store):
    await store.append("d", "ot", 1, [b"1", b"2"])
    await store.compact("d", "ot", b"snap", 2)
    doc = await store.load("d")
    assert (doc.snapshot, doc.log, doc.next_seq) == (b"snap", (), 3)


async def test_a_document_keeps_its_first_kind(store):
    await store.append("d", "ot", 1, [b"x"])
    with pytest.raises(StorageError, match="ot document"):
        await store.append("d", "crdt", 2, [b"y"])
    assert await store.kind_of("d") == "ot"
    assert (await store.load("d")).log == (b"x",)


async def test_duplicate_sequence_numbers_are_refused(store):
    await store.append("d", "ot", 1, [b"x"])
    with pytest.raises(StorageError):
        await store.append("d", "ot", 1, [b"again"])
    assert (await store.load("d")).log == (b"x",)


async def test_delete_frees_the_name(store):
    await store.append("d", "ot", 1, [b"x"])
    await store.delete("d")
    assert await store.load("d") is None
    await store.append("d", "crdt", 1, [b"y"])
    assert await store.kind_of("d") == "crdt"


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_sqlite_survives_reopen(tmp_path: Path, synchronous: str):
    path = tmp_path / "w.db"
    first = SQLiteStore(path, synchronous=synchronous)
    await first.open()
    await first.append("notes/a", "crdt", 1, [b"\x00\x01binary\xff"])
    await first.close()
    second = SQLiteStore(path)
    await second.open()
    try:
        doc = await second.load("notes/a")
        assert doc is not None and doc.log == (b"\x00\x01binary\xff",)
    finally:
        await second.close()


async def test_sqlite_group_commits_concurrent_writes(tmp_path: Path):
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    try:
        await asyncio.gather(*(store.append(f"d{i}", "crdt", 1, [b"x"]) for i in range(50)))
        assert store.metrics.store_commits < 50
        assert store.metrics.store_records == 50
    finally:
        await store.close()


async def test_sqlite_one_bad_write_does_not_fail_its_batch(tmp_path: Path):
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    try:
        await store.append("d", "ot", 1, [b"x"])
        results = await asyncio.gather(
            store.append("d", "crdt", 2, [b"wrong kind"]),
            store.append("e", "ot", 1, [b"fine"]),
            return_exceptions=True,
        )
        assert isinstance(results[0], StorageError) and results[1] is None
        assert (await store.load("e")).log == (b"fine",)
    finally:
        await store.close()


async def test_sqlite_close_flushes_queued_writes(tmp_path: Path):
    path = tmp_path / "w.db"
    store = SQLiteStore(path, commit_delay=0.05)
    await store.open()
    pending = asyncio.ensure_future(store.append("d", "ot", 1, [b"late"]))
    await asyncio.sleep(0)
    await store.close()
    await pending
    reopened = SQLiteStore(path)
    await reopened.open()
    try:
        assert (await reopened.load("d")).log == (b"late",)
    finally:
        await reopened.close()


async def test_sqlite_refuses_writes_after_close(tmp_path: Path):
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    await store.close()
    with pytest.raises(StorageError, match="closed"):
        await store.append("d", "ot", 1, [b"x"])
