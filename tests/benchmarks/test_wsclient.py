"""The generator's minimal WebSocket client, against a real ``websockets`` server on loopback."""

from __future__ import annotations

import asyncio
import struct

import pytest
from websockets.asyncio.server import ServerConnection, serve

from benchmarks.live.wsclient import OP_TEXT, HandshakeError, apply_mask, connect, encode_frame


def test_encode_frame_masks_the_payload_and_sets_lengths():
    for n in (0, 125, 126, 70000):
        payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
        frame = encode_frame(payload, mask=b"\x01\x02\x03\x04")
        assert frame[0] == 0x82
        assert frame[1] & 0x80
        size = frame[1] & 0x7F
        offset = 2
        if size == 126:
            size, offset = struct.unpack("!H", frame[2:4])[0], 4
        elif size == 127:
            size, offset = struct.unpack("!Q", frame[2:10])[0], 10
        assert size == n
        mask = frame[offset : offset + 4]
        assert apply_mask(frame[offset + 4 :], mask) == payload


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def test_client_exchanges_text_and_binary_messages_with_a_real_server():
    got: list[tuple[bytes, int]] = []
    async with serve(_echo, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        client = await connect("127.0.0.1", port, "/x", lambda p, o: got.append((p, o)))
        client.send(b"\x00\x01binary")
        client.send(b'{"a":"hs"}', OP_TEXT)
        client.send(b"y" * 100_000)
        for _ in range(100):
            if len(got) == 3:
                break
            await asyncio.sleep(0.02)
        await client.close()
    assert got == [(b"\x00\x01binary", 2), (b'{"a":"hs"}', OP_TEXT), (b"y" * 100_000, 2)]


async def test_client_answers_the_servers_pings():
    async def pinger(ws: ServerConnection) -> None:
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        await ws.send("pong seen")

    got: list[bytes] = []
    async with serve(pinger, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = await connect("127.0.0.1", port, "/", lambda p, o: got.append(p))
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        await client.close()
    assert got == [b"pong seen"]


async def test_a_refused_upgrade_is_a_handshake_error():
    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(HandshakeError, match="expected 101"):
            await connect("127.0.0.1", port, "/nope", lambda p, o: None, timeout=5)
    finally:
        server.close()
        await server.wait_closed()
