"""Edges of the stores found in review: call order across metadata writes and deletes, writes
after close, and read errors reported as :class:`StorageError` like every other read."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.errors import StorageError
from server.store import SQLiteStore
from server.store.redis import RedisStore
from tests.replicas.conftest import RedisProcess
from tests.replicas.conftest import redis_server as redis_server  # the fixture, shared


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "w.db")
    await s.open()
    yield s
    await s.close()


# ---- SQLite: one document's writes take effect in call order -------------------------------


async def test_sqlite_metadata_appended_after_a_queued_delete_survives_it(store):
    await store.append("d", "crdt", 1, [b"r"])
    await store.meta_append("d", b"old")
    # gather starts its tasks in order: the delete is queued before the metadata is written.
    await asyncio.gather(store.delete("d"), store.meta_append("d", b"new"))
    assert (await store.meta_load("d")).records == (b"new",)
    assert await store.load("d") is None


async def test_sqlite_metadata_appended_before_a_delete_is_deleted_with_it(store):
    await asyncio.gather(store.meta_append("d", b"gone"), store.delete("d"))
    assert (await store.meta_load("d")).records == ()


async def test_sqlite_metadata_compacted_after_a_queued_delete_survives_it(store):
    await store.meta_append("d", b"old")
    ids = (await store.meta_load("d")).ids
    await asyncio.gather(store.delete("d"), store.meta_compact("d", b"snap", ids))
    assert (await store.meta_load("d")).records == (b"snap",)


async def test_sqlite_metadata_and_records_of_one_batch_commit_together(store):
    await asyncio.gather(store.append("d", "ot", 1, [b"1"]), store.meta_append("d", b"m"),
                         store.append("d", "ot", 2, [b"2"]))
    doc = await store.load("d")
    assert doc is not None and doc.log == (b"1", b"2")
    assert (await store.meta_load("d")).records == (b"m",)


async def test_sqlite_metadata_write_after_close_is_refused(tmp_path: Path):
    s = SQLiteStore(tmp_path / "w.db")
    await s.open()
    await s.close()
    with pytest.raises(StorageError):
        await s.meta_append("d", b"late")


# ---- SQLite: reads wrap SQLite's errors ----------------------------------------------------


async def test_sqlite_kind_of_reports_a_broken_file_as_a_storage_error(tmp_path: Path, store):
    await store.append("d", "ot", 1, [b"r"])
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    try:
        other.execute("DROP TABLE docs")
    finally:
        other.close()
    with pytest.raises(StorageError, match="no such table"):
        await store.kind_of("d")


async def test_sqlite_kind_of_a_closed_store_is_a_storage_error(tmp_path: Path):
    s = SQLiteStore(tmp_path / "w.db")
    await s.open()
    await s.close()
    with pytest.raises(StorageError):
        await s.kind_of("d")


# ---- Redis: a closed store accepts no writes -----------------------------------------------


@pytest.fixture
async def redis_store(redis_server: RedisProcess) -> AsyncIterator[RedisStore]:
    s = RedisStore(redis_server.url, "one")
    await s.open()
    yield s
    await s.close()


async def test_redis_append_after_close_is_refused_and_writes_nothing(
        redis_server: RedisProcess, redis_store: RedisStore):
    await redis_store.append("d", "crdt", 1, [b"a"])
    await redis_store.close()
    with pytest.raises(StorageError, match="closed"):
        redis_store.append_nowait("d", "crdt", 2, [b"late"])
    with pytest.raises(StorageError, match="closed"):
        await redis_store.append("d", "crdt", 2, [b"late"])
    reader = RedisStore(redis_server.url, "reader")
    await reader.open()
    try:
        loaded = await reader.load("d")
    finally:
        await reader.close()
    assert loaded is not None and loaded.log == (b"a",)


async def test_redis_append_while_closing_is_refused(redis_store: RedisStore):
    queued = redis_store.append_nowait("d", "crdt", 1, [b"a"])
    closing = asyncio.ensure_future(redis_store.close())
    await asyncio.sleep(0)  # close has begun: it is flushing the queued append
    with pytest.raises(StorageError, match="closed"):
        redis_store.append_nowait("d", "crdt", 2, [b"late"])
    await closing
    await queued
