"""The floor: the least a y-websocket server can do, to show what this machine and harness allow.

Not a product and not a peer: a reference point.  One room per URL path; every sync update a
client sends is forwarded, frame as received, to the room's other sockets with
``websockets.broadcast`` and appended to an in-memory list; a client's sync step 1 is answered
with a step 2 holding all of the room's updates merged (pycrdt's ``merge_updates``, only then,
never on the forwarding path).  No decoding, no document, no durability, no awareness.

Its latency is the floor of the live suite on this machine: the load generator's own send and
receive costs plus the kernel's loopback and scheduling.  A server's p99 within a fraction of a
millisecond of the floor's has little left to win; a target set below the floor cannot be met
by any server here.

Run with Weft's venv: ``python floor_relay.py HOST PORT``.
"""

from __future__ import annotations

import asyncio
import sys

from pycrdt import merge_updates
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

SYNC, STEP1, STEP2, UPDATE = 0, 0, 1, 2
EMPTY_UPDATE = b"\x00\x00"


def _varuint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varuint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return n, pos
        shift += 7


class Room:
    __slots__ = ("sockets", "updates")

    def __init__(self) -> None:
        self.sockets: set[ServerConnection] = set()
        self.updates: list[bytes] = []

    def state(self) -> bytes:
        if len(self.updates) > 1:
            self.updates = [merge_updates(*self.updates)]
        return self.updates[0] if self.updates else EMPTY_UPDATE


ROOMS: dict[str, Room] = {}


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request else "/"
    room = ROOMS.setdefault(path, Room())
    room.sockets.add(ws)
    try:
        async for message in ws:
            if not isinstance(message, bytes) or len(message) < 2 or message[0] != SYNC:
                continue  # awareness and text frames: nothing the load generator needs
            kind = message[1]
            if kind == STEP1:
                state = room.state()
                await ws.send(bytes([SYNC, STEP2]) + _varuint(len(state)) + state)
            elif kind in (STEP2, UPDATE):
                n, pos = _read_varuint(message, 2)
                room.updates.append(message[pos:pos + n])
                others = [s for s in room.sockets if s is not ws]
                broadcast(others, bytes([SYNC, UPDATE]) + message[2:] if kind == STEP2
                          else message)
    except ConnectionClosed:
        pass
    finally:
        room.sockets.discard(ws)


async def main(host: str, port: int) -> None:
    async with serve(handler, host, port, compression=None, max_size=None,
                     ping_interval=None):
        await asyncio.Future()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with the bench extras
        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    else:
        uvloop.run(main(sys.argv[1], int(sys.argv[2])))
