"""The Redis relay on its own: resuming from positions, skipping its own records, trimmed gaps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.relay.base import RelayMessage
from server.relay.redis import RedisRelay
from server.store.redis import RedisStore
from tests.replicas.conftest import RedisProcess, eventually


@pytest.fixture
async def writer(redis_server: RedisProcess) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url, "writer")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def reader(redis_server: RedisProcess) -> AsyncIterator[tuple[RedisStore, RedisRelay]]:
    store = RedisStore(redis_server.url, "reader")
    await store.open()
    relay = RedisRelay(store)
    await relay.start()
    yield store, relay
    await relay.close()
    await store.close()


async def test_records_after_the_loaded_position_are_delivered_in_order(writer, reader):
    store, relay = reader
    await writer.append("d", "crdt", 1, [b"old"])
    await store.load("d")
    got: list[RelayMessage] = []
    relay.subscribe("d", got.append)
    await writer.append("d", "crdt", 2, [b"one", b"two"])
    await store.append("d", "crdt", 9, [b"mine"])
    await writer.append("d", "crdt", 4, [b"three"])
    await eventually(lambda: len(got) == 3)
    assert [m.records for m in got] == [(b"one",), (b"two",), (b"three",)]
    assert {m.origin for m in got} == {"writer"}
    await eventually(lambda: relay.skipped_own["d"] == 1)


async def test_a_reader_behind_a_compaction_merges_the_snapshot_first(writer, reader):
    _, relay = reader
    await writer.append("d", "crdt", 1, [b"a", b"b"])
    await writer.load("d")  # the writer has applied "a" and "b"
    await writer.compact("d", "crdt", b"SNAP(ab)", 2)  # trims them
    await writer.append("d", "crdt", 3, [b"c"])
    got: list[RelayMessage] = []
    relay.subscribe("d", got.append)  # from the very beginning: "a" and "b" are gone
    await eventually(lambda: len(got) == 2)
    assert [(m.origin, m.records) for m in got] == [("snapshot", (b"SNAP(ab)",)),
                                                     ("writer", (b"c",))]
    assert relay.snapshots_merged == 1
