"""Presence between replicas with the in-process presence relay (two servers, one process)."""

from __future__ import annotations

import asyncio

from server.app import WeftServer
from server.client import CRDTClient
from server.relay import LocalHub, LocalRelay
from server.relay.presence import LocalPresenceHub, LocalPresenceRelay
from server.store import MemoryStore
from tests.server.conftest import make_config


async def test_awareness_reaches_a_client_of_another_replica_in_process():
    hub, presence = LocalHub(), LocalPresenceHub()

    def server(name: str) -> WeftServer:
        return WeftServer(make_config(None), store=MemoryStore(), relay=LocalRelay(hub, name),
                          presence=LocalPresenceRelay(presence, name))

    async with server("one") as one, server("two") as two:
        a = await CRDTClient.connect(one.url + "/crdt", "notes/p")
        b = await CRDTClient.connect(two.url + "/crdt", "notes/p")
        a.set_awareness({"user": "ann"})
        async with asyncio.timeout(5):
            while {"user": "ann"} not in b.awareness.values():
                await asyncio.sleep(0.01)
        await a.close()
        async with asyncio.timeout(5):
            while b.awareness:
                await asyncio.sleep(0.01)
        await b.close()


async def test_a_lone_replica_publishes_to_nobody():
    relay = LocalPresenceRelay(replica_id="alone")
    got: list[object] = []
    relay.subscribe(("yjs", "d"), got.append)
    relay.publish(("yjs", "d"), b"x")
    await asyncio.sleep(0)
    assert got == [] and not relay.published


async def test_the_python_client_renews_its_awareness_like_a_y_protocols_peer(tmp_path):
    async with WeftServer(make_config(tmp_path)) as server:
        a = CRDTClient(server.url + "/crdt", "notes/renew")
        a.renew_seconds = 0.05
        await a.open()
        a.set_awareness({"user": "ann"})
        b = await CRDTClient.connect(server.url + "/crdt", "notes/renew")
        client = a.doc.client_id
        async with asyncio.timeout(5):  # b sees new clocks without a's state changing
            while b.presence.meta.get(client, {}).get("clock", 0) < 3:
                await asyncio.sleep(0.01)
        assert b.awareness == {client: {"user": "ann"}}
        await a.close()
        await b.close()
