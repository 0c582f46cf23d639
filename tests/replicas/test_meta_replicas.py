"""Document metadata across three real replicas sharing a real Redis.

THE clock-skew case: one replica's clock runs minutes behind.  A write it makes after seeing
the current value is causally newer; last-writer-wins by hybrid logical clock keeps it, plain
wall-clock last-writer-wins silently drops it.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from server.app import WeftServer
from tests.meta.node_meta import NODE, MetaNode
from tests.replicas.conftest import RedisProcess, eventually, replica

MINUTE = 60_000
requires_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def union(existing, incoming):
    return sorted({*existing, *incoming})


POLICIES = {"label": "lww-wall", "notes": "multi-value", "tags": union}


@contextlib.asynccontextmanager
async def three(redis: RedisProcess, offsets=(0, 0, 0), **overrides):
    servers = [replica(redis, f"r{i + 1}", clock_offset_ms=offset, **overrides)
               for i, offset in enumerate(offsets)]
    for server in servers:
        for name, spec in POLICIES.items():
            server.meta.policy(name, spec)
    async with contextlib.AsyncExitStack() as stack:
        for server in servers:
            await stack.enter_async_context(server)
        yield servers


async def values(servers: list[WeftServer], doc: str) -> list[dict]:
    return [await server.meta.get(doc) for server in servers]


async def test_a_slow_clock_loses_a_causally_newer_write_under_wall_lww_but_not_under_hlc(
    redis_server: RedisProcess,
):
    # r2 runs three minutes behind; the drift bound (10 min) is wider than that skew.
    async with three(redis_server, (0, -3 * MINUTE, 0), meta_max_drift_ms=10 * MINUTE) as rs:
        one, slow, other = rs
        await one.meta.write("doc", {"title": "v1", "label": "v1"})
        seen = await slow.meta.get("doc")  # the slow replica sees v1 ...
        assert seen == {"title": "v1", "label": "v1"}
        await slow.meta.write("doc", {"title": "v2", "label": "v2"})  # ... then writes v2
        for view in await values(rs, "doc"):
            assert view["title"] == "v2"  # lww-hlc: the causally newer write wins
            assert view["label"] == "v1"  # lww-wall: silently lost, v2's wall time is older
        detail = (await other.meta.read("doc"))["fields"]
        assert detail["title"]["hlc"].endswith(".r2")


async def test_multi_value_keeps_concurrent_writes_from_two_replicas(redis_server):
    async with three(redis_server) as (one, two, third):
        reported = []
        for server in (one, two, third):
            server.meta.on_meta_conflict = lambda doc, c: reported.append((doc, c.field))
        token = (await third.meta.write("doc", {"notes": "draft"}))["context"]
        await asyncio.gather(one.meta.write("doc", {"notes": "from r1"}, context=token),
                             two.meta.write("doc", {"notes": "from r2"}, context=token))
        view = await third.meta.read("doc")
        assert sorted(view["meta"]["notes"]) == ["from r1", "from r2"]
        assert ("doc", "notes") in reported  # by whichever replica wrote second
        await third.meta.write("doc", {"notes": "agreed"}, context=view["context"])
        assert await values([one, two, third], "doc") == [{"notes": ["agreed"]}] * 3


async def test_a_custom_merge_unions_tags_on_write_and_on_read_across_replicas(redis_server):
    async with three(redis_server) as (one, two, third):
        await one.meta.write("doc", {"tags": ["a"]})
        await two.meta.write("doc", {"tags": ["b"]})  # merged on write with r1's
        await asyncio.gather(one.meta.write("doc", {"tags": ["c"]}),  # perhaps concurrent:
                             two.meta.write("doc", {"tags": ["d"]}))  # merged on read then
        assert await values([one, two, third], "doc") == [{"tags": ["a", "b", "c", "d"]}] * 3


async def test_a_replica_with_a_clock_far_ahead_is_refused_not_adopted(redis_server):
    async with three(redis_server, (0, 0, 30 * MINUTE)) as (one, two, ahead):
        await ahead.meta.write("doc", {"title": "from the future"})
        assert await one.meta.get("doc") == {}  # held back: 30 min > the 60 s bound
        assert one.meta.refused >= 1
        assert one.meta.clock.now().wall < one.meta.clock.physical() + MINUTE
        await one.meta.write("doc", {"title": "now"})
        assert await two.meta.get("doc") == {"title": "now"}


async def test_every_replica_merges_every_write_whatever_the_order(redis_server):
    async with three(redis_server) as rs:
        writes = [server.meta.write("doc", {f"f{i}": i, "title": f"t{i}"})
                  for i, server in enumerate(rs * 3)]
        await asyncio.gather(*writes)
        views = await values(rs, "doc")
        assert views[0] == views[1] == views[2]
        assert {k for k in views[0] if k.startswith("f")} == {f"f{i}" for i in range(9)}


@requires_node
async def test_clients_on_other_replicas_receive_metadata_changes(redis_server):
    async with three(redis_server) as (one, two, third):
        ot = await MetaNode.start("sharedb", one.url + "/ot", "notes", "x")
        crdt = await MetaNode.start("yjs", third.url + "/crdt", "notes/x")
        try:
            await ot.request({"id": 1})
            await crdt.request({"id": 1})
            await two.meta.write("notes/x", {"title": "relayed"})
            for client in (ot, crdt):
                change = await client.expect(lambda m: m.get("changed") == ["title"])
                assert change["meta"] == {"title": "relayed"}
            await crdt.request({"id": 2, "set": {"owner": "crdt client"}})
            change = await ot.expect(lambda m: m.get("changed") == ["owner"])
            assert change["meta"]["owner"] == "crdt client"
            await eventually(lambda: one.relay.watched.get("weft:{notes/x}:meta") != "0-0")
        finally:
            await ot.close()
            await crdt.close()


async def test_compacting_the_metadata_log_loses_nothing_other_replicas_write_meanwhile(
    redis_server: RedisProcess,
):
    from redis.asyncio import Redis

    async with three(redis_server) as rs:
        for server in rs:
            server.meta.compact_after = 5
        for round_ in range(6):
            await asyncio.gather(*(server.meta.write("doc", {f"f{round_}-{i}": i})
                                   for i, server in enumerate(rs * 3)))
        assert sum(server.meta.compactions for server in rs) >= 3
        views = await values(rs, "doc")
        assert views[0] == views[1] == views[2]
        assert len(views[0]) == 6 * 9
        probe = Redis.from_url(redis_server.url)
        try:
            assert await probe.xlen("weft:{doc}:meta") < 6 * 9
        finally:
            await probe.aclose()
