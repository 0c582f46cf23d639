"""The metadata log in each store: append, load, compact (the server's side of it)."""

from __future__ import annotations

import pytest

from server.app import WeftServer
from server.store.memory import MemoryStore
from server.store.sqlite import SQLiteStore
from tests.server.conftest import make_config


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path):
    made = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "m.sqlite3")
    await made.open()
    yield made
    await made.close()


async def test_records_load_in_append_order_with_ids(store):
    await store.meta_append("d", b"one")
    await store.meta_append("d", b"two")
    await store.meta_append("other", b"x")
    loaded = await store.meta_load("d")
    assert loaded.records == (b"one", b"two") and len(set(loaded.ids)) == 2


async def test_compaction_replaces_exactly_the_given_records(store):
    for record in (b"a", b"b", b"c"):
        await store.meta_append("d", record)
    ids = (await store.meta_load("d")).ids
    await store.meta_append("d", b"late")  # appended after the load: must survive
    await store.meta_compact("d", b"snap", ids[:2])
    assert sorted((await store.meta_load("d")).records) == [b"c", b"late", b"snap"]


async def test_deleting_a_document_deletes_its_metadata(store):
    await store.meta_append("d", b"x")
    await store.delete("d")
    assert (await store.meta_load("d")).records == ()


async def test_a_long_metadata_log_is_compacted_and_reads_the_same(tmp_path):
    async with WeftServer(make_config(tmp_path)) as server:
        server.meta.compact_after = 10
        for i in range(35):
            await server.meta.write("d", {"title": f"t{i}", f"f{i % 3}": i})
        assert server.meta.compactions >= 3
        assert len((await server.store.meta_load("d")).records) <= 11
        assert await server.meta.get("d") == {"title": "t34", "f0": 33, "f1": 34, "f2": 32}
    async with WeftServer(make_config(tmp_path)) as again:
        assert (await again.meta.get("d"))["title"] == "t34"
