"""Replicas sharing one Redis: documents stored in streams, changes relayed through them."""

from __future__ import annotations

import random

from redis.asyncio import Redis

from server.client import CRDTClient, OTConnection
from server.relay.redis import RedisRelay
from server.store.redis import keys
from tests.replicas.conftest import RedisProcess, eventually, replica


async def _connect_all(servers, doc):
    return [await CRDTClient.connect(s.url + "/crdt", doc) for s in servers]


async def test_concurrent_edits_through_three_replicas_converge(redis_server: RedisProcess):
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    async with (
        replica(redis_server, "r1") as one,
        replica(redis_server, "r2") as two,
        replica(redis_server, "r3") as three,
    ):
        clients = await _connect_all([one, two, three], "notes/shared")
        for round_ in range(20):
            for i, client in enumerate(clients):
                pos = rng.randint(0, len(client.text))
                client.insert(pos, f"{i}:{round_}é😀 ")
        expected = clients[0]
        await expected.wait_for(lambda t: t.count("😀") == 60)
        final = expected.text
        for client in clients:
            await client.wait_for(lambda t: t == final)
        for server in (one, two, three):
            assert server.rooms.get("notes/shared").engine.text == final
        for client in clients:
            await client.close()


async def test_a_replica_opening_a_document_later_loads_snapshot_and_log(
    redis_server: RedisProcess,
):
    # No history budget: compaction trims everything the snapshot covers (see server.history).
    async with replica(redis_server, "early", compact_every=5, history_keep_versions=0) as early:
        writer = (await _connect_all([early], "notes/later"))[0]
        for i in range(23):
            writer.insert(len(writer.text), f"{i} ")
        expected = "".join(f"{i} " for i in range(23))
        room = early.rooms.get("notes/later")
        await eventually(lambda: room.engine.text == expected)
        await room.flush(compact=True)
        _, log_key, snap_key = keys("notes/later")
        probe = Redis.from_url(redis_server.url)
        try:
            assert await probe.hget(snap_key, "id") is not None  # compacted into a snapshot
            assert await probe.xlen(log_key) < 23  # and the log trimmed
        finally:
            await probe.aclose()
        writer.insert(0, ">")  # a record after the last snapshot
        expected = ">" + expected
        async with replica(redis_server, "late") as late:
            reader = (await _connect_all([late], "notes/later"))[0]
            await reader.wait_for(lambda t: t == expected)
            await reader.close()
        await writer.close()


async def test_each_update_is_applied_once_by_every_other_replica(redis_server: RedisProcess):
    servers = [replica(redis_server, f"n{i}") for i in range(3)]
    for server in servers:
        await server.start()
    try:
        clients = await _connect_all(servers, "notes/loops")
        for i in range(30):
            clients[i % 3].insert(0, "x")
        for client in clients:
            await client.wait_for(lambda t: t == "x" * 30)
        probe = Redis.from_url(redis_server.url)
        try:
            entries = await probe.xrange(keys("notes/loops")[1])
        finally:
            await probe.aclose()
        by_origin = {f"n{i}": 0 for i in range(3)}
        for _, fields in entries:
            by_origin[fields[b"o"].decode()] += 1
        # Every record was written once, by the replica its client spoke to ...
        assert sum(by_origin.values()) == len(entries)
        for server in servers:
            relay = server.relay
            assert isinstance(relay, RedisRelay)
            own = by_origin[relay.replica_id]
            await eventually(
                lambda r=relay: r.delivered["notes/loops"] + r.skipped_own["notes/loops"]
                == len(entries))
            # ... and each replica applied every other replica's records exactly once,
            # and never re-applied (or re-published) its own.
            assert relay.delivered["notes/loops"] == len(entries) - own
            assert relay.skipped_own["notes/loops"] == own
        for client in clients:
            await client.close()
    finally:
        for server in servers:
            await server.stop()


async def test_replicas_reconnect_and_catch_up_after_redis_restarts(redis_server: RedisProcess):
    async with replica(redis_server, "a") as one, replica(redis_server, "b") as two:
        a, b = await _connect_all([one, two], "notes/restart")
        a.insert(0, "before ")
        await b.wait_for(lambda t: t == "before ")
        one_room = one.rooms.get("notes/restart")
        await one_room.flush()  # acknowledged: durable in Redis

        await redis_server.stop()
        await redis_server.start()

        a.insert(len(a.text), "after-a ")
        b.insert(0, "after-b ")
        await a.wait_for(lambda t: "after-a" in t and "after-b" in t)
        await b.wait_for(lambda t: t == a.text)
        final = a.text
        assert "before " in final
        await one.rooms.get("notes/restart").flush()
        await two.rooms.get("notes/restart").flush()
        assert isinstance(one.relay, RedisRelay) and isinstance(two.relay, RedisRelay)
        # A third replica, loading only from Redis, sees everything acknowledged.
        async with replica(redis_server, "c") as three:
            c = (await _connect_all([three], "notes/restart"))[0]
            await c.wait_for(lambda t: t == final)
            await c.close()
        await a.close()
        await b.close()


async def test_a_replica_without_clients_applies_relayed_updates_before_compacting(
    redis_server: RedisProcess,
):
    # Replica "idle" opens the document through the embedding API only (no protocol handler);
    # the updates it hears must reach its engine, because its unload-time snapshot trims the
    # log up to what it heard.
    async with replica(redis_server, "busy") as busy, replica(redis_server, "idle") as idle:
        writer = (await _connect_all([busy], "notes/quiet"))[0]
        writer.insert(0, "first ")
        await eventually(lambda: busy.rooms.get("notes/quiet").engine.text == "first ")
        await busy.rooms.get("notes/quiet").flush()
        assert await idle.text("notes/quiet") == "first "
        writer.insert(6, "second")
        room = idle.rooms.get("notes/quiet")
        await eventually(lambda: room.engine is not None and room.engine.text == "first second")
        await eventually(lambda: idle.rooms.get("notes/quiet") is None)  # stored and unloaded
        probe = Redis.from_url(redis_server.url)
        try:
            assert await probe.hget(keys("notes/quiet")[2], "id") is not None
        finally:
            await probe.aclose()
        async with replica(redis_server, "fresh") as fresh:
            assert await fresh.text("notes/quiet") == "first second"
        await writer.close()


async def test_a_document_keeps_one_engine_across_replicas(redis_server: RedisProcess):
    async with replica(redis_server, "p") as one, replica(redis_server, "q") as two:
        await one.edit("notes/kind", pos=0, insert="x", engine="crdt")
        info = await two.info("notes/kind")
        assert info["engine"] == "crdt"
        assert await two.store.kind_of("notes/kind") == "crdt"


async def test_an_ot_document_on_one_replica_is_stored_in_redis(redis_server: RedisProcess):
    # OT through a single replica with the Redis store (several: tests/replicas/test_ot_replicas).
    async with replica(redis_server, "ot-1") as one:
        conn = await OTConnection.connect(one.url + "/ot")
        doc = await conn.open("notes", "ot-doc", create_with="hello")
        doc.insert(5, " wörld 😀")
        await doc.synced()
        await conn.close()
    async with replica(redis_server, "ot-2") as two:
        info = await two.info("notes/ot-doc")
        assert (info["engine"], info["text"]) == ("ot", "hello wörld 😀")


async def test_edits_made_while_redis_restarts_are_stored_once_it_is_back(
    redis_server: RedisProcess,
):
    # Writes retry with backoff (about 4 s in all) while Redis is down; a restart within
    # that window loses nothing and drops no client.
    async with replica(redis_server, "x") as one, replica(redis_server, "y") as two:
        a, b = await _connect_all([one, two], "notes/down")
        a.insert(0, "up ")
        await b.wait_for(lambda t: t == "up ")
        await redis_server.stop()
        a.insert(3, "while-down ")
        b.insert(0, "also-down ")
        await redis_server.start()
        await a.wait_for(lambda t: "while-down" in t and "also-down" in t)
        await b.wait_for(lambda t: t == a.text)
        final = a.text
        await one.rooms.get("notes/down").flush()
        await two.rooms.get("notes/down").flush()
        assert a.connected and b.connected
        async with replica(redis_server, "z") as three:
            assert await three.text("notes/down") == final
        await a.close()
        await b.close()
