"""Presence across replicas: Yjs awareness and ShareDB presence channels relayed through Redis
pub/sub, never written into a document's log; a dead replica's users expire."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from crdt.sync import awareness_frame
from server.app import WeftServer
from server.client import CRDTClient, OTConnection
from server.relay.redis_presence import RedisPresenceRelay
from server.store.redis import keys
from tests.replicas.conftest import RedisProcess, eventually, replica
from tests.server.node_driver import NODE, NodeClient
from tests.server.raw import RawOT

StartNode = Callable[..., Awaitable[NodeClient]]
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
ANN = {"user": "ann", "cursor": 3}


async def crdt(server: WeftServer, doc: str) -> CRDTClient:
    return await CRDTClient.connect(server.url + "/crdt", doc)


def relay_of(server: WeftServer) -> RedisPresenceRelay:
    assert isinstance(server.presence, RedisPresenceRelay)
    return server.presence


async def die(server: WeftServer) -> None:
    """Stop a replica as a crash would, for presence: it publishes no removals on the way."""
    await server.presence.close()
    await server.stop()


# ---- Yjs awareness ----------------------------------------------------------------------------


async def test_awareness_reaches_a_client_on_another_replica(redis_server: RedisProcess):
    async with replica(redis_server, "a1") as one, replica(redis_server, "a2") as two:
        ann, bob = await crdt(one, "notes/aw"), await crdt(two, "notes/aw")
        ann.set_awareness(ANN)
        await eventually(lambda: ANN in bob.awareness.values())
        bob.set_awareness({"user": "bob"})
        await eventually(lambda: {"user": "bob"} in ann.awareness.values())
        await ann.close()
        await bob.close()


async def test_a_newcomer_sees_clients_of_other_replicas_at_once(redis_server: RedisProcess):
    async with replica(redis_server, "n1") as one, replica(redis_server, "n2") as two:
        ann, bob = await crdt(one, "notes/new"), await crdt(two, "notes/new")
        ann.set_awareness(ANN)
        await eventually(lambda: ANN in bob.awareness.values())
        # Replica two has ann in its cache: a newcomer gets her state with the sync frames.
        carol = await crdt(two, "notes/new")
        assert ANN in carol.awareness.values()
        for client in (ann, bob, carol):
            await client.close()


async def test_a_replica_serving_a_document_first_asks_the_others(redis_server: RedisProcess):
    async with replica(redis_server, "q1") as one, replica(redis_server, "q2") as two:
        ann = await crdt(one, "notes/ask")
        ann.set_awareness(ANN)
        await eventually(lambda: one.rooms.get("notes/ask").presence.awareness.states)
        bob = await crdt(two, "notes/ask")  # replica two knew nothing about this document
        await eventually(lambda: ANN in bob.awareness.values())
        await ann.close()
        await bob.close()


async def test_a_disconnected_clients_awareness_is_removed_elsewhere(redis_server: RedisProcess):
    async with replica(redis_server, "d1") as one, replica(redis_server, "d2") as two:
        ann, bob = await crdt(one, "notes/bye"), await crdt(two, "notes/bye")
        ann.set_awareness(ANN)
        await eventually(lambda: ANN in bob.awareness.values())
        await ann.close()
        await eventually(lambda: not bob.awareness)
        carol = await crdt(two, "notes/bye")  # and the cache forgot her
        assert not carol.awareness
        await bob.close()
        await carol.close()


async def test_live_states_are_refreshed_and_a_dead_replicas_states_expire(
    redis_server: RedisProcess,
):
    timing = {"presence_refresh_seconds": 0.2, "presence_timeout_seconds": 0.6}
    async with replica(redis_server, "x2", **timing) as two:
        one = replica(redis_server, "x1", **timing)
        await one.start()
        ann, bob = await crdt(one, "notes/dead"), await crdt(two, "notes/dead")
        ann.set_awareness(ANN)  # the client renews every 15 s: only heartbeats keep it here
        await eventually(lambda: ANN in bob.awareness.values())
        await asyncio.sleep(1.5)  # over twice the timeout
        assert ANN in bob.awareness.values()
        assert ANN in (await crdt(two, "notes/dead")).awareness.values()
        await die(one)
        await eventually(lambda: not bob.awareness, timeout=5)
        await bob.close()


async def test_each_awareness_update_is_delivered_once_per_other_replica(
    redis_server: RedisProcess,
):
    servers = [replica(redis_server, f"l{i}") for i in range(3)]
    for server in servers:
        await server.start()
    try:
        clients = [await crdt(server, "notes/once") for server in servers]
        clients[0].set_awareness({"n": -1})
        await eventually(lambda: all({"n": -1} in c.awareness.values() for c in clients[1:]))
        await asyncio.sleep(0.2)  # the joins' queries and their answers are done
        topic = ("yjs", "notes/once")
        before = [(relay_of(s).delivered[topic], relay_of(s).skipped_own[topic])
                  for s in servers]
        for n in range(20):
            clients[0].set_awareness({"n": n})
        await eventually(lambda: all({"n": 19} in c.awareness.values() for c in clients[1:]))
        await asyncio.sleep(0.2)
        after = [(relay_of(s).delivered[topic], relay_of(s).skipped_own[topic])
                 for s in servers]
        assert after[0][0] - before[0][0] == 0  # nothing came back to the origin
        assert after[0][1] - before[0][1] == 20  # Redis echoed its own 20, all skipped
        for i in (1, 2):
            assert after[i][0] - before[i][0] == 20
            assert after[i][1] - before[i][1] == 0  # nothing re-published
        for client in clients:
            await client.close()
    finally:
        for server in servers:
            await server.stop()


async def test_presence_is_never_written_to_the_document_log(redis_server: RedisProcess):
    async with replica(redis_server, "w1") as one, replica(redis_server, "w2") as two:
        ann, bob = await crdt(one, "notes/eph"), await crdt(two, "notes/eph")
        ann.insert(0, "x")
        await bob.wait_for(lambda t: t == "x")
        probe = Redis.from_url(redis_server.url)
        try:
            log_key = keys("notes/eph")[1]
            length = await probe.xlen(log_key)
            for n in range(10):
                ann.set_awareness({"n": n})
            await eventually(lambda: {"n": 9} in bob.awareness.values())
            assert await probe.xlen(log_key) == length
        finally:
            await probe.aclose()
        await ann.close()
        await bob.close()


async def test_malformed_awareness_is_still_refused_and_not_relayed(redis_server: RedisProcess):
    async with replica(redis_server, "m1") as one, replica(redis_server, "m2") as two:
        bob = await crdt(two, "notes/bad")
        ann = await crdt(one, "notes/bad")
        topic = ("yjs", "notes/bad")
        published = relay_of(one).published[topic]
        assert ann.ws is not None
        await ann.ws.send(awareness_frame(b"\x05\x01"))  # five entries promised, none there
        await eventually(lambda: ann.close_code is not None)
        assert ann.close_code == 4400
        assert relay_of(one).published[topic] == published
        assert not bob.awareness
        await bob.close()


@needs_node
async def test_npm_providers_see_each_other_across_replicas(
    redis_server: RedisProcess, npm: StartNode,
):
    async with replica(redis_server, "y1") as one, replica(redis_server, "y2") as two:
        a = await npm("yws_client.js", one.url + "/crdt", "notes/yaw")
        b = await npm("yws_client.js", two.url + "/crdt", "notes/yaw")
        await a.call("wait_synced")
        await b.call("wait_synced")
        await a.call("awareness_set", state=ANN)
        await b.call("wait_awareness", state=ANN)
        await b.call("awareness_set", state={"user": "bob"})
        await a.call("wait_awareness", state={"user": "bob"})
        c = await npm("yws_client.js", two.url + "/crdt", "notes/yaw")  # a newcomer on two
        await c.call("wait_synced")
        await c.call("wait_awareness", state=ANN)
        await a.call("close")
        async with asyncio.timeout(10):  # ann's removal reached replica two's providers
            while ANN in (await b.call("awareness_states"))["states"].values():
                await asyncio.sleep(0.05)


@needs_node
async def test_npm_providers_echoes_are_not_relayed_again(
    redis_server: RedisProcess, npm: StartNode,
):
    # A y-websocket provider re-sends every awareness change it applies, others' too: those
    # echoes must be stale at the replica, not news relayed once more.
    servers = [replica(redis_server, f"e{i}") for i in range(3)]
    for server in servers:
        await server.start()
    try:
        clients = [await npm("yws_client.js", s.url + "/crdt", "notes/echo") for s in servers]
        for client in clients:
            await client.call("wait_synced")
        await clients[0].call("awareness_set", state={"n": -1})
        for client in clients[1:]:
            await client.call("wait_awareness", state={"n": -1})
        await asyncio.sleep(0.3)
        topic = ("yjs", "notes/echo")
        before = [relay_of(s).delivered[topic] for s in servers]
        published = [relay_of(s).published[topic] for s in servers]
        for n in range(10):
            await clients[0].call("awareness_set", state={"n": n})
        for client in clients[1:]:
            await client.call("wait_awareness", state={"n": 9})
        await asyncio.sleep(0.3)
        published = [relay_of(s).published[topic] - n
                     for s, n in zip(servers, published, strict=True)]
        delivered = [relay_of(s).delivered[topic] - n for s, n in zip(servers, before, strict=True)]
        assert published == [10, 0, 0]  # the echoes of replicas two and three were stale
        assert delivered == [0, 10, 10]
    finally:
        for server in servers:
            await server.stop()


# ---- ShareDB presence channels -------------------------------------------------------------


@needs_node
async def test_sharedb_presence_channels_span_replicas(redis_server: RedisProcess, npm: StartNode):
    async with (
        replica(redis_server, "s1") as one,
        replica(redis_server, "s2") as two,
        replica(redis_server, "s3") as three,
    ):
        a = await npm("sharedb_client.js", one.url + "/ot")
        b = await npm("sharedb_client.js", two.url + "/ot")
        for client in (a, b):
            await client.call("connect")
            await client.call("presence_subscribe", channel="cursors")
        await a.call("presence_submit", channel="cursors", presence="ann", value={"index": 4})
        event = await b.event("presence", channel="cursors", id="ann")
        assert event["value"] == {"index": 4}
        # A subscriber joining on a third replica asks everyone (``pr``), across replicas.
        c = await npm("sharedb_client.js", three.url + "/ot")
        await c.call("connect")
        await c.call("presence_subscribe", channel="cursors")
        event = await c.event("presence", channel="cursors", id="ann")
        assert event["value"] == {"index": 4}
        await a.call("close")
        await b.event("presence", channel="cursors", id="ann", value=None)
        await c.event("presence", channel="cursors", id="ann", value=None)


async def test_each_sharedb_presence_message_is_delivered_once_per_other_replica(
    redis_server: RedisProcess,
):
    servers = [replica(redis_server, f"o{i}") for i in range(3)]
    for server in servers:
        await server.start()
    try:
        conns = [await OTConnection.connect(s.url + "/ot") for s in servers]
        for conn in conns:
            await conn.subscribe_presence("loops")
        await asyncio.sleep(0.3)  # the subscriptions' requests (pr) have gone round
        topic = ("sharedb", "loops")
        published = [relay_of(s).published[topic] for s in servers]
        before = [relay_of(s).delivered[topic] for s in servers]
        for pv in range(10):
            conns[0].submit_presence("loops", "ann", {"index": pv}, pv)
        await eventually(lambda: all(c.presence["loops"].get("ann") == {"index": 9}
                                     for c in conns[1:]))
        await asyncio.sleep(0.3)
        published = [relay_of(s).published[topic] - n
                     for s, n in zip(servers, published, strict=True)]
        delivered = [relay_of(s).delivered[topic] - n for s, n in zip(servers, before, strict=True)]
        assert published == [10, 0, 0]
        assert delivered == [0, 10, 10]
        for conn in conns:
            await conn.close()
    finally:
        for server in servers:
            await server.stop()


async def test_a_dead_replicas_sharedb_presence_is_cleared(redis_server: RedisProcess):
    timing = {"presence_refresh_seconds": 0.2, "presence_timeout_seconds": 0.6}
    async with replica(redis_server, "t2", **timing) as two:
        one = replica(redis_server, "t1", **timing)
        await one.start()
        ann = await OTConnection.connect(one.url + "/ot")
        bob = await OTConnection.connect(two.url + "/ot")
        await ann.subscribe_presence("cursors")
        await bob.subscribe_presence("cursors")
        ann.submit_presence("cursors", "ann", {"index": 1}, 0)
        await eventually(lambda: bob.presence["cursors"].get("ann") == {"index": 1})
        await asyncio.sleep(1.5)  # keepalives keep it while replica one lives
        assert bob.presence["cursors"].get("ann") == {"index": 1}
        await die(one)
        await eventually(lambda: bob.presence["cursors"].get("ann") is None, timeout=5)
        await bob.close()


async def _answer(client: RawOT, message: dict) -> dict:
    """The reply to ``message``, skipping presence requests relayed meanwhile (bob's own
    request may reach ann's replica after she joined: the relay publishes in batches)."""
    await client.send(message)
    for _ in range(10):
        frame = await client.recv()
        if frame.get("a") != "pr":
            return frame
    raise AssertionError("no reply among the next 10 frames")


async def test_bad_sharedb_presence_is_still_refused_and_not_relayed(
    redis_server: RedisProcess,
):
    async with replica(redis_server, "b1") as one, replica(redis_server, "b2") as two:
        bob = await RawOT.open(two.url + "/ot")
        await bob.rpc({"a": "ps", "ch": "room", "seq": 1})
        ann = await RawOT.open(one.url + "/ot")
        await ann.rpc({"a": "ps", "ch": "room", "seq": 1})
        assert await bob.recv() == {"a": "pr", "ch": "room"}  # ann's request, relayed
        reply = await _answer(ann, {"a": "p", "ch": "room", "id": "cur", "p": 1})  # no pv
        assert reply["error"]["code"] == "ERR_MESSAGE_BADLY_FORMED"
        reply = await _answer(ann, {"a": "p", "ch": "room", "id": "cur", "p": 1, "pv": 0,
                                    "c": "notes", "d": "x", "v": 1, "t": "text-unicode"})
        assert reply["error"]["code"] == "ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE"
        await ann.rpc({"a": "p", "ch": "room", "id": "cur", "p": 2, "pv": 1})
        got = await bob.recv()  # the next frame bob sees is the valid one
        assert (got["a"], got["p"], got["src"]) == ("p", 2, ann.src)
        await ann.close()
        await bob.close()


async def test_presence_flows_again_after_a_redis_restart(redis_server: RedisProcess):
    async with replica(redis_server, "r1") as one, replica(redis_server, "r2") as two:
        ann, bob = await crdt(one, "notes/restart"), await crdt(two, "notes/restart")
        ann.set_awareness({"n": 0})
        await eventually(lambda: {"n": 0} in bob.awareness.values())
        await redis_server.stop()
        await redis_server.start()
        # redis-py re-subscribes on reconnect; a message sent before that may be lost
        # (at-most-once), so keep moving the cursor until one gets through.
        for n in range(1, 200):
            ann.set_awareness({"n": n})
            await asyncio.sleep(0.05)
            if any(isinstance(s, dict) and s.get("n", 0) > 0 for s in bob.awareness.values()):
                break
        else:
            raise AssertionError("no awareness update crossed replicas after the restart")
        await ann.close()
        await bob.close()
