"""Rooms: lazy loading, unloading when idle, and no lost edit or leak when things go wrong."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.app import WeftServer
from server.client import CRDTClient, OTConnection
from server.rooms import RoomState
from server.store import MemoryStore
from tests.server.conftest import make_config


async def wait_until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_rooms_load_lazily_and_unload_when_idle_after_storing(server):
    assert len(server.rooms) == 0
    client = await CRDTClient.connect(server.url + "/crdt", "notes/idle")
    client.insert(0, "kept")
    await asyncio.sleep(0.05)
    assert server.rooms.get("notes/idle").state is RoomState.LIVE
    await client.close()
    await wait_until(lambda: server.rooms.get("notes/idle") is None)
    again = await CRDTClient.connect(server.url + "/crdt", "notes/idle")
    assert again.text == "kept"
    await again.close()


async def test_an_ot_room_unloads_and_reloads_with_its_history(server):
    conn = await OTConnection.connect(server.url + "/ot")
    doc = await conn.open("notes", "idle-ot", create_with="a")
    doc.insert(1, "b")
    await doc.synced()
    await conn.close()
    await wait_until(lambda: server.rooms.get("notes/idle-ot") is None)
    engine_text = await server.text("notes/idle-ot")
    assert engine_text == "ab"
    # history survives the reload: an op made at version 1 is still transformed
    conn = await OTConnection.connect(server.url + "/ot")
    conn.send({"a": "op", "c": "notes", "d": "idle-ot", "v": 1, "src": "late", "seq": 1,
               "op": ["<"]})
    await asyncio.sleep(0.1)
    assert await server.text("notes/idle-ot") == "<ab"
    await conn.close()


async def test_a_client_joining_while_the_room_is_storing_keeps_it_live(tmp_path):
    store = MemoryStore()
    config = make_config(None, room_idle_seconds=0.05)
    async with WeftServer(config, store=store) as server:
        client = await CRDTClient.connect(server.url + "/crdt", "notes/race")
        client.insert(0, "one ")
        await asyncio.sleep(0.05)
        room = server.rooms.get("notes/race")
        gate = asyncio.Event()
        original = store.compact

        async def slow_compact(*args):
            await gate.wait()
            await original(*args)

        store.compact = slow_compact  # type: ignore[method-assign]
        await client.close()
        await wait_until(lambda: room.state is RoomState.STORING)
        back = await CRDTClient.connect(server.url + "/crdt", "notes/race")
        assert room.state is RoomState.LIVE and server.rooms.get("notes/race") is room
        back.insert(len(back.text), "two")
        gate.set()
        await asyncio.sleep(0.1)
        assert server.rooms.get("notes/race") is room  # still loaded: a client is here
        await back.close()
    async with WeftServer(config, store=store) as server:
        assert await server.text("notes/race") == "one two"


async def test_a_failed_load_leaves_no_room_and_the_next_open_retries(tmp_path):
    store = MemoryStore()
    async with WeftServer(make_config(None), store=store) as server:
        await server.edit("notes/f", insert="x", pos=0, engine="crdt")
        await server.rooms.get("notes/f").shutdown()
        store.fail_next.add("load")
        ws = await connect(server.url + "/crdt/notes/f")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 1011 and "ERR_STORAGE" in closed.value.rcvd.reason
        assert server.rooms.get("notes/f") is None
        assert await server.text("notes/f") == "x"


async def test_a_failed_write_drops_the_room_and_clients_resync_from_the_store(tmp_path):
    store = MemoryStore()
    async with WeftServer(make_config(None), store=store) as server:
        conn = await OTConnection.connect(server.url + "/ot")
        doc = await conn.open("notes", "w", create_with="ok")
        store.fail_next.add("append")
        doc.insert(2, "!")  # not durable: never acknowledged, room dropped
        await wait_until(lambda: server.rooms.get("notes/w") is None)
        assert await server.text("notes/w") == "ok"
        await conn.reconnect()  # the op is resent and now stored
        await doc.synced()
        assert await server.text("notes/w") == "ok!"
        await conn.close()


async def test_an_exception_in_one_connection_does_not_stop_the_server(server, monkeypatch):
    from server.protocols import yjs

    def boom(self, message):
        raise RuntimeError("bug in a handler")

    monkeypatch.setattr(yjs.YjsSession, "handle", boom)
    ws = await connect(server.url + "/crdt/notes/x")
    await ws.recv()
    await ws.send(b"\x00\x00\x01\x00")
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 1011
    monkeypatch.undo()
    client = await CRDTClient.connect(server.url + "/crdt", "notes/x")
    client.insert(0, "still serving")
    await asyncio.sleep(0.05)
    assert await server.text("notes/x") == "still serving"


async def test_a_slow_reader_is_dropped_without_slowing_the_room(tmp_path):
    from server.limits import Limits

    config = make_config(None, limits=Limits(max_outgoing_bytes=64 * 1024, max_ops_per_second=0))
    async with WeftServer(config) as server:
        writer = await CRDTClient.connect(server.url + "/crdt", "notes/slow")
        slow = await connect(server.url + "/crdt/notes/slow", max_queue=1)
        slow.transport.pause_reading()  # a reader that stopped reading
        room = server.rooms.get("notes/slow")
        chunk = "x" * 20_000
        sent = 0
        while server.metrics.closes_total[4508] == 0 and sent < 2000:  # kernel buffers first
            writer.insert(0, chunk)
            sent += 1
            await asyncio.sleep(0.001)
        assert server.metrics.closes_total[4508] == 1
        assert len(room.peers) == 1  # only the writer is left, and it was never slowed:
        await writer.wait_for(lambda t: len(t) == sent * len(chunk))
        assert len(await server.text("notes/slow")) == sent * len(chunk)
        slow.transport.abort()
        await writer.close()
