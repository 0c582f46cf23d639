"""One connected editor for either engine (ShareDB or y-websocket Python client), able to edit
while offline so its edit is truly concurrent with whatever the server commits meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.exceptions import ConnectionClosed

from server.client import CRDTClient, OTConnection


class Editor:
    def __init__(self, kind: str, url: str, doc: str) -> None:
        self.kind, self.url, self.doc = kind, url, doc
        self.conn: Any = None
        self.ot_doc: Any = None

    @classmethod
    async def open(cls, kind: str, url: str, doc: str) -> Editor:
        editor = cls(kind, url, doc)
        if kind == "ot":
            editor.conn = await OTConnection.connect(url + "/ot")
            collection, _, doc_id = doc.partition("/")
            editor.ot_doc = await editor.conn.open(collection, doc_id)
            await editor.ot_doc.wait_for(lambda t: t is not None)
        else:
            editor.conn = await CRDTClient.connect(url + "/crdt", doc)
        return editor

    @property
    def text(self) -> str:
        return str(self.ot_doc.text if self.kind == "ot" else self.conn.text)

    def insert(self, pos: int, text: str) -> None:
        (self.ot_doc if self.kind == "ot" else self.conn).insert(pos, text)

    async def wait_for(self, expected: str, timeout: float = 10) -> None:
        target = self.ot_doc if self.kind == "ot" else self.conn
        await target.wait_for(lambda t: t == expected, timeout=timeout)

    async def go_offline(self) -> None:
        if self.kind == "ot":
            with contextlib.suppress(ConnectionClosed):
                await self.conn.ws.close()
            for _ in range(500):
                if not self.conn.connected:
                    return
                await asyncio.sleep(0.01)
            raise TimeoutError("the OT connection did not close")
        await self.conn.disconnect()

    async def come_back(self) -> None:
        """Reconnect: the offline edit is resubmitted (OT, transformed by the server) or merged
        (CRDT sync)."""
        if self.kind == "ot":
            await self.conn.reconnect()
            await self.ot_doc.synced(timeout=10)
        else:
            await self.conn.open()

    async def close(self) -> None:
        await self.conn.close()
