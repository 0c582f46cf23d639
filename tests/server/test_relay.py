"""Relaying between replicas, with the in-process relay (two servers in one process)."""

from __future__ import annotations

import asyncio

from server.app import WeftServer
from server.client import CRDTClient
from server.relay import LocalHub, LocalRelay
from server.store import MemoryStore
from tests.server.conftest import make_config


async def test_crdt_updates_reach_clients_of_another_replica(tmp_path):
    # The replicas share the relay; each keeps its own store here (a store shared between
    # replicas must assign log sequence numbers itself: the Redis store's job).
    hub = LocalHub()
    async with (
        WeftServer(make_config(None), store=MemoryStore(), relay=LocalRelay(hub, "one")) as one,
        WeftServer(make_config(None), store=MemoryStore(), relay=LocalRelay(hub, "two")) as two,
    ):
        a = await CRDTClient.connect(one.url + "/crdt", "notes/relayed")
        b = await CRDTClient.connect(two.url + "/crdt", "notes/relayed")
        a.insert(0, "from one ")
        await b.wait_for(lambda t: t == "from one ")
        b.insert(9, "and two")
        await a.wait_for(lambda t: t == "from one and two")
        assert one.rooms.get("notes/relayed").engine.text == "from one and two"
        assert two.rooms.get("notes/relayed").engine.text == "from one and two"
        await a.close()
        await b.close()


async def test_a_replica_never_receives_its_own_messages():
    hub = LocalHub()
    relay = LocalRelay(hub, "self")
    got = []
    relay.subscribe("d", got.append)
    await relay.publish("d", "crdt", (b"x",))
    await asyncio.sleep(0)
    assert got == []
