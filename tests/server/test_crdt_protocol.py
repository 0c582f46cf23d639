"""The CRDT endpoint at the wire level: y-websocket's frames, fan-out, awareness and errors."""

from __future__ import annotations

import asyncio

import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from crdt.awareness import decode_awareness_update
from crdt.sync import (
    FrameKind,
    awareness_frame,
    read_frame,
    sync_step1_frame,
    update_frame,
)
from server.app import WeftServer
from server.limits import Limits
from tests.server.conftest import make_config


def awareness_update(client: int, clock: int, state: str) -> bytes:
    """One awareness entry, encoded as y-protocols does (small ints fit in one byte)."""
    raw = state.encode()
    return bytes([1, client, clock, len(raw)]) + raw


def update_inserting(text: str) -> bytes:
    doc: Doc = Doc()
    doc.get("text", type=Text).insert(0, text)
    return doc.get_update()


async def open_synced(server, doc="notes/wire"):
    ws = await connect(f"{server.url}/crdt/{doc}")
    first = read_frame(await ws.recv())
    assert first.kind is FrameKind.SYNC_STEP1  # the server speaks first, once loaded
    await ws.send(sync_step1_frame(b"\x00"))
    reply = read_frame(await ws.recv())
    while reply.kind is not FrameKind.SYNC_STEP2:
        reply = read_frame(await ws.recv())
    return ws, reply.payload


async def test_newcomers_get_the_stored_state_in_sync_step_2(server):
    ws, _ = await open_synced(server)
    await ws.send(update_frame(update_inserting("héllo 😀 世界 e\u0301")))
    await asyncio.sleep(0.05)
    _, state = await open_synced(server)
    doc: Doc = Doc()
    doc.apply_update(state)
    assert str(doc.get("text", type=Text)) == "héllo 😀 世界 e\u0301"
    assert await server.text("notes/wire") == "héllo 😀 世界 e\u0301"


async def test_an_update_is_forwarded_to_the_others_byte_for_byte(server):
    a, _ = await open_synced(server)
    b, _ = await open_synced(server)
    frame = update_frame(update_inserting("x"))
    await a.send(frame)
    assert await asyncio.wait_for(b.recv(), 5) == frame
    with pytest.raises(TimeoutError):  # not echoed to its sender
        await asyncio.wait_for(a.recv(), 0.2)


async def test_awareness_is_forwarded_remembered_and_cleared_on_disconnect(server):
    a, _ = await open_synced(server)
    frame = awareness_frame(awareness_update(7, 1, '{"user":"ann"}'))
    await a.send(frame)
    assert await asyncio.wait_for(a.recv(), 5) == frame  # echoed: keeps a lone provider alive
    b = await connect(f"{server.url}/crdt/notes/wire")
    assert read_frame(await b.recv()).kind is FrameKind.SYNC_STEP1
    known = read_frame(await b.recv())
    assert known.kind is FrameKind.AWARENESS
    assert decode_awareness_update(known.payload) == [(7, 1, {"user": "ann"})]
    await a.close()
    gone = read_frame(await asyncio.wait_for(b.recv(), 5))
    assert decode_awareness_update(gone.payload) == [(7, 1, None)]  # same clock + null: gone


async def test_query_awareness_is_answered(server):
    a, _ = await open_synced(server)
    await a.send(awareness_frame(awareness_update(9, 1, "{}")))
    await a.recv()  # the echo
    await a.send(bytes([3]))
    assert read_frame(await a.recv()).kind is FrameKind.AWARENESS


async def test_opening_an_ot_document_through_the_crdt_endpoint_is_refused(server):
    await server.edit("notes/ot-doc", insert="x", pos=0, engine="ot")
    ws = await connect(f"{server.url}/crdt/notes/ot-doc")
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd.code == 4409
    assert "ERR_ENGINE_MISMATCH" in closed.value.rcvd.reason


def garbage_updates():
    real = update_inserting("hello")
    return [
        ("text frame", "hello"),
        ("unknown message type", bytes([7, 0])),
        ("unknown sync step", bytes([0, 9, 0])),
        ("length prefix past the end", bytes([0, 2, 50, 1, 2, 3])),
        ("trailing bytes", update_frame(real) + b"\x00"),
        ("garbage update", update_frame(b"\xff\xff\xff\xff\x0f\x01")),
        ("truncated update", update_frame(real[: len(real) // 2])),
        ("malformed awareness", awareness_frame(b"\x05\x01")),
        ("awareness state that is not JSON", awareness_frame(awareness_update(5, 1, "{nope"))),
        ("invalid state vector", sync_step1_frame(b"\x03\x01")),
        ("empty frame", b""),
    ]


GARBAGE = garbage_updates()


@pytest.mark.parametrize(("case", "frame"), GARBAGE, ids=[c[0] for c in GARBAGE])
async def test_malformed_frames_close_that_connection_with_4400_and_change_nothing(server, case,
                                                                                   frame):
    await server.edit("notes/wire", insert="seed", pos=0, engine="crdt")
    bystander, _ = await open_synced(server)
    ws, _ = await open_synced(server)
    await ws.send(frame)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4400, closed.value.rcvd
    assert "ERR_" in closed.value.rcvd.reason
    assert await server.text("notes/wire") == "seed"
    await bystander.send(update_frame(update_inserting("ok")))  # the room still works
    await asyncio.sleep(0.05)
    assert "ok" in await server.text("notes/wire")


async def test_an_oversize_frame_closes_with_1009(tmp_path):
    config = make_config(tmp_path, limits=Limits(max_message_bytes=100, max_ops_per_second=0))
    async with WeftServer(config) as server:
        ws, _ = await open_synced(server)
        await ws.send(update_frame(update_inserting("x" * 500)))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 1009


async def test_a_document_over_the_size_limit_closes_with_4413(tmp_path):
    config = make_config(tmp_path, limits=Limits(max_doc_bytes=200, max_ops_per_second=0))
    async with WeftServer(config) as server:
        await server.edit("notes/wire", insert="seed", pos=0, engine="crdt")
        ws, _ = await open_synced(server)
        await ws.send(update_frame(update_inserting("y" * 300)))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 4413
        assert await server.text("notes/wire") == "seed"


async def test_updates_over_the_rate_limit_close_with_a_retry_later_code(tmp_path):
    config = make_config(tmp_path, limits=Limits(max_ops_per_second=1, ops_burst=2))
    async with WeftServer(config) as server:
        ws, _ = await open_synced(server)
        for i in range(5):
            await ws.send(update_frame(update_inserting(str(i))))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 4529  # y-websocket reconnects later and resyncs
        calm, _ = await open_synced(server)  # others are unaffected
        await calm.send(update_frame(update_inserting("calm")))
