"""The Redis store on its own: kinds, Redis-numbered records, snapshot + trim, compaction race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.errors import StorageError
from server.store.redis import RedisStore, keys
from tests.replicas.conftest import RedisProcess


@pytest.fixture
async def stores(redis_server: RedisProcess) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    one, two = RedisStore(redis_server.url, "one"), RedisStore(redis_server.url, "two")
    await one.open()
    await two.open()
    yield one, two
    await one.close()
    await two.close()


async def test_records_of_two_replicas_share_one_log_in_append_order(stores):
    one, two = stores
    await one.append("d", "crdt", 1, [b"a", b"b"])
    await two.append("d", "crdt", 1, [b"c"])  # same room-local number: Redis numbers records
    loaded = await one.load("d")
    assert loaded is not None
    assert (loaded.kind, loaded.snapshot, loaded.log) == ("crdt", None, (b"a", b"b", b"c"))


async def test_an_append_by_the_other_engine_is_refused_and_writes_nothing(stores):
    one, two = stores
    await one.append("d", "crdt", 1, [b"a"])
    with pytest.raises(StorageError, match="is a crdt document, not ot"):
        await two.append("d", "ot", 1, [b"x"])
    loaded = await one.load("d")
    assert loaded is not None and loaded.log == (b"a",)


async def test_compaction_keeps_records_after_the_covered_position(stores):
    one, _ = stores
    await one.append("d", "crdt", 1, [b"a", b"b"])
    await one.load("d")  # position: after "b"
    await one.append("d", "crdt", 3, [b"c"])
    await one.compact("d", "crdt", b"SNAP(ab)", 2)
    loaded = await one.load("d")
    assert loaded is not None
    assert (loaded.snapshot, loaded.log) == (b"SNAP(ab)", (b"c",))
    assert await one.redis.xlen(keys("d")[1]) == 2  # "a", "b" trimmed; "c" and a marker left


async def test_an_older_snapshot_never_replaces_a_newer_one(stores):
    one, two = stores
    await one.append("d", "crdt", 1, [b"a"])
    await two.load("d")  # two has seen "a" only
    await one.append("d", "crdt", 2, [b"b"])
    await one.load("d")  # one has seen "a", "b"
    await one.compact("d", "crdt", b"SNAP(ab)", 2)
    await two.compact("d", "crdt", b"SNAP(a)", 1)  # late and older: ignored
    loaded = await two.load("d")
    assert loaded is not None
    assert (loaded.snapshot, loaded.log) == (b"SNAP(ab)", ())


async def test_delete_frees_the_name(stores):
    one, two = stores
    await one.append("d", "crdt", 1, [b"a"])
    await one.delete("d")
    assert await two.kind_of("d") is None
    await two.append("d", "ot", 1, [b"x"])
    assert await one.kind_of("d") == "ot"


async def test_a_burst_of_appends_reaches_the_log_in_the_order_it_was_made(stores):
    """Sixty concurrent append tasks once landed in the log reversed; queued appends keep
    their order (and share round trips)."""
    one, _ = stores
    futures = [one.append_nowait("d/burst", "crdt", i, (f"r{i}".encode(),), f"u{i % 3}")
               for i in range(200)]
    await asyncio.gather(*futures)
    entries = await one.redis.xrange(keys("d/burst")[1])
    assert [f[b"p"] for _, f in entries] == [f"r{i}".encode() for i in range(200)]
    assert [f[b"a"] for _, f in entries][:3] == [b"u0", b"u1", b"u2"]


async def test_a_refused_append_in_a_batch_fails_alone(stores):
    one, _ = stores
    await one.append("d/mixed", "crdt", 1, [b"first"])
    results = await asyncio.gather(
        one.append_nowait("d/mixed", "crdt", 2, (b"a",)),
        one.append_nowait("d/mixed", "ot", 3, (b"wrong engine",)),
        one.append_nowait("d/mixed", "crdt", 4, (b"b",)),
        return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], StorageError) and "crdt document" in str(results[1])
    loaded = await one.load("d/mixed")
    assert loaded is not None and loaded.log == (b"first", b"a", b"b")


async def test_appends_after_redis_lost_its_script_cache_still_land_in_order(stores):
    """A restarted Redis has no scripts: the pipelined EVALSHAs answer NOSCRIPT and are sent
    again through the loading script object, nothing lost or reordered."""
    one, _ = stores
    await one.append("d/noscript", "crdt", 1, [b"before"])
    await one.redis.script_flush()
    await asyncio.gather(*(one.append_nowait("d/noscript", "crdt", i, (f"r{i}".encode(),))
                           for i in range(5)))
    loaded = await one.load("d/noscript")
    assert loaded is not None and loaded.log == (b"before", b"r0", b"r1", b"r2", b"r3", b"r4")
