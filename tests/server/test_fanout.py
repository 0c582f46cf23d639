"""Fan-out coalescing (server.rooms.fanout): frames fanned out in one loop tick reach each
peer in order, in as few writes as possible, never echoed to their sender."""

from __future__ import annotations

import asyncio

from pycrdt import Doc, Text
from websockets.asyncio.client import connect

from crdt.sync import FrameKind, read_frame, sync_step1_frame, update_frame
from server.rooms.fanout import encode, write_frames


def typed_updates(count: int) -> list[bytes]:
    doc: Doc = Doc()
    text = doc.get("text", type=Text)
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text.insert(len(str(text)), f"<{i}>")
    doc.unobserve(sub)
    return updates


async def synced(url: str):
    ws = await connect(url, compression=None)
    await ws.send(sync_step1_frame(b"\x00"))
    while read_frame(await ws.recv()).kind is not FrameKind.SYNC_STEP2:
        pass
    return ws


async def updates_received(ws, count: int) -> list[bytes]:
    out: list[bytes] = []
    while len(out) < count:
        frame = read_frame(await asyncio.wait_for(ws.recv(), 5))
        if frame.kind is FrameKind.SYNC_UPDATE:
            out.append(frame.payload)
    return out


async def test_a_burst_of_updates_reaches_every_other_peer_in_order(server):
    url = f"{server.url}/crdt/fanout/burst"
    a, b, c = [await synced(url) for _ in range(3)]
    updates = typed_updates(60)
    for u in updates:  # no awaiting in between: many frames land in one server tick
        await a.send(update_frame(u))
    assert await updates_received(b, 60) == updates
    assert await updates_received(c, 60) == updates
    await a.send(update_frame(typed_updates(1)[0]))  # a sees no echo of its own updates
    await updates_received(b, 1)
    assert not any(read_frame(f).kind is FrameKind.SYNC_UPDATE
                   for f in [m async for m in _pending(a)])
    for ws in (a, b, c):
        await ws.close()


async def _pending(ws):
    while True:
        try:
            yield await asyncio.wait_for(ws.recv(), 0.2)
        except TimeoutError:
            return


class _Transport:
    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []

    def writelines(self, chunks: list[bytes]) -> None:
        self.calls.append(list(chunks))


async def test_frames_for_one_peer_go_out_in_one_write(server):
    url = f"{server.url}/crdt/fanout/one-write"
    ws = await synced(url)
    (conn,) = [c for c in server._server.connections]
    real, fake = conn.transport, _Transport()
    conn.transport = fake
    try:
        frames = [(b"a", False), (b"bb", False), (b"ccc", True)]
        write_frames(conn, frames, [encode(data, text) for data, text in frames])
    finally:
        conn.transport = real
    assert len(fake.calls) == 1
    wire = b"".join(fake.calls[0])
    assert wire == b"\x82\x01a" + b"\x82\x02bb" + b"\x81\x03ccc"
    await ws.close()
