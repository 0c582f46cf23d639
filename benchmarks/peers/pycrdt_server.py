"""pycrdt-websocket's WebsocketServer behind a ``websockets`` server (one room per URL path).

Run with the peers' own venv (``.bench-peers/pycrdt-venv``), not Weft's:
``python pycrdt_server.py HOST PORT``.  The small adapter gives websockets' connection the
``Channel`` shape pycrdt-websocket expects (``path``, ``send``, ``recv``, async iteration).
"""

import asyncio
import sys

from pycrdt.websocket import WebsocketServer
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
        try:
            await self._ws.send(message)
        except ConnectionClosed:
            pass

    async def recv(self) -> bytes:
        message = await self._ws.recv()
        return message if isinstance(message, bytes) else message.encode()


async def main(host: str, port: int) -> None:
    async with WebsocketServer() as server:

        async def handler(ws: ServerConnection) -> None:
            await server.serve(Channel(ws))

        async with serve(handler, host, port, compression=None, max_size=None):
            print(f"pycrdt-websocket listening on {host}:{port}", flush=True)
            await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
