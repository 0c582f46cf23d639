"""pycrdt-websocket's WebsocketServer behind a ``websockets`` server (one room per URL path).

Run with the peers' own venv (``.bench-peers/pycrdt-venv``), not Weft's:
``python pycrdt_server.py HOST PORT``.  The small adapter gives websockets' connection the
``Channel`` shape pycrdt-websocket expects (``path``, ``send``, ``recv``, async iteration).

One fix: in pycrdt-websocket 0.16.5, clients that join a new room at the same moment race in
``start_room`` (the second start raises "YRoom already running" and that client is never
served), so room creation is serialized with a lock.  Nothing else is changed.
"""

import asyncio
import contextlib
import logging
import sys

import anyio
from pycrdt.websocket import WebsocketServer, YRoom
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


class Channel:
    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws
        self.path = ws.request.path if ws.request else "/"

    def __aiter__(self) -> "Channel":
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(message)

    async def recv(self) -> bytes:
        message = await self._ws.recv()
        return message if isinstance(message, bytes) else message.encode()


class SerializedRooms(WebsocketServer):
    def __init__(self) -> None:
        super().__init__()
        self._rooms_lock = anyio.Lock()

    async def get_room(self, name: str) -> YRoom:
        async with self._rooms_lock:
            return await super().get_room(name)


async def main(host: str, port: int) -> None:
    async with SerializedRooms() as server:

        async def handler(ws: ServerConnection) -> None:
            await server.serve(Channel(ws))

        async with serve(handler, host, port, compression=None, max_size=None):
            print(f"pycrdt-websocket listening on {host}:{port}", flush=True)
            await asyncio.Future()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
