"""A deliberately minimal WebSocket client for the load generator.

Why not the ``websockets`` client: a receiver in the live suite gets every other editor's edit,
so 20 editors on one document at 80 keystrokes/s means ~30,000 frames a second to take in.
The generator must not be the bottleneck, and per-message overhead of a full client (futures,
queues, UTF-8 validation, assembling) adds up.  Here a frame is parsed straight out of the
receive buffer and handed to a callback, and outgoing frames can be built (and masked) ahead
of time, so sending a pre-generated Yjs update is one ``transport.write``.

What it does: RFC 6455 handshake over plain TCP on loopback, unmasked server frames of any
size (fragments reassembled), answers pings, answers a close, masks everything it sends.  What
it does not: TLS, extensions (none are offered, so no compression), redirects.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import socket
import struct
from collections.abc import Callable
from typing import cast

_c_apply_mask: Callable[[bytes, bytes], bytes] | None
try:  # the C helper that ships with websockets; pure Python below otherwise
    from websockets.speedups import apply_mask as _c_apply_mask
except ImportError:  # pragma: no cover - websockets always ships it on CPython wheels
    _c_apply_mask = None

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

OnMessage = Callable[[bytes, int], None]


class HandshakeError(ConnectionError):
    """The server did not answer the upgrade with 101 and the right accept key."""


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` (RFC 6455 §5.3)."""
    if _c_apply_mask is not None:
        return bytes(_c_apply_mask(data, mask))
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


def encode_frame(payload: bytes, opcode: int = OP_BINARY, mask: bytes | None = None) -> bytes:
    """One final, masked client frame.  ``mask`` defaults to fresh random bytes."""
    if mask is None:
        mask = random.getrandbits(32).to_bytes(4, "big")
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + apply_mask(payload, mask)


class WSClient(asyncio.Protocol):
    """One client connection; ``on_message(payload, opcode)`` is called for each message."""

    def __init__(self, host: str, path: str, on_message: OnMessage) -> None:
        self.host = host
        self.path = path
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.open = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self._key = base64.b64encode(os.urandom(16))
        self._buf = bytearray()
        self._handshaken = False
        self._fragments: list[bytes] = []
        self._frag_opcode = 0
        self.bytes_in = 0
        self.frames_in = 0

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tr = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        sock = tr.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        tr.write(request.encode())

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        buf = self._buf
        buf += data
        if not self._handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            try:
                self._check_handshake(head)
            except HandshakeError as exc:
                if not self.open.done():
                    self.open.set_exception(exc)
                self._abort()
                return
            self._handshaken = True
            if not self.open.done():
                self.open.set_result(None)
        self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or ConnectionError("connection closed before handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- frames -----------------------------------------------------------------------------
    def _check_handshake(self, head: str) -> None:
        status, _, rest = head.partition("\r\n")
        if " 101 " not in status + " ":
            raise HandshakeError(f"{self.path}: expected 101, got {status!r}")
        want = base64.b64encode(hashlib.sha1(self._key + GUID).digest()).decode()
        for line in rest.split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-accept" and value.strip() == want:
                return
        raise HandshakeError(f"{self.path}: missing or wrong Sec-WebSocket-Accept")

    def _parse(self) -> None:
        buf = self._buf
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            n = b1 & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            mask = b""
            if b1 & 0x80:  # servers must not mask, but accept it
                mask = bytes(buf[start : start + 4])
                start += 4
            end = start + n
            if end > size:
                break
            payload = bytes(buf[start:end])
            if mask:
                payload = apply_mask(payload, mask)
            pos = end
            self.frames_in += 1
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
        if pos:
            del buf[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY):
            if fin:
                self.on_message(payload, opcode)
            else:
                self._fragments = [payload]
                self._frag_opcode = opcode
        elif opcode == OP_CONT:
            self._fragments.append(payload)
            if fin:
                message = b"".join(self._fragments)
                self._fragments = []
                self.on_message(message, self._frag_opcode)
        elif opcode == OP_PING:
            self.send(payload, OP_PONG)
        elif opcode == OP_CLOSE:
            self.send(payload[:2], OP_CLOSE)
            self._abort()

    # -- sending ----------------------------------------------------------------------------
    def send(self, payload: bytes, opcode: int = OP_BINARY) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(payload, opcode))

    def send_frame(self, frame: bytes) -> None:
        """Write a frame already built (and masked) by :func:`encode_frame`."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    async def close(self, timeout: float = 2.0) -> None:
        """Send a normal close and wait (bounded) for the server to end the connection."""
        if self.transport is None or self.transport.is_closing():
            return
        self.send(struct.pack("!H", 1000), OP_CLOSE)
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            self._abort()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(
    host: str, port: int, path: str, on_message: OnMessage, timeout: float = 10.0
) -> WSClient:
    """Open a connection and finish the handshake (bounded by ``timeout``)."""
    loop = asyncio.get_running_loop()

    async def _go() -> WSClient:
        _, proto = await loop.create_connection(
            lambda: WSClient(f"{host}:{port}", path, on_message), host, port
        )
        await proto.open
        return proto

    return await asyncio.wait_for(_go(), timeout)
