"""Raw protocol connections for tests that send exact (and malformed) frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect


class RawOT:
    """A bare ShareDB-protocol connection: send dicts or raw text, read replies."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.src = ""

    @classmethod
    async def open(cls, url: str, client_id: str | None = None, **kwargs: Any) -> RawOT:
        raw = cls(await connect(url, **kwargs))
        reply = await raw.rpc({"a": "hs", "id": client_id, "protocol": 1, "protocolMinor": 2})
        raw.src = reply["id"]
        return raw

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else orjson.dumps(message).decode())

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        try:
            return orjson.loads(frame)
        except orjson.JSONDecodeError:  # lone surrogates echoed back: JS parses these too
            return json.loads(frame)

    async def rpc(self, message: dict[str, Any] | str, timeout: float = 5) -> dict[str, Any]:
        await self.send(message)
        return await self.recv(timeout)

    async def close(self) -> None:
        await self.ws.close()
