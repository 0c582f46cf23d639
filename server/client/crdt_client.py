"""A Python CRDT client speaking the y-websocket protocol, over :class:`crdt.CrdtDocument`.

It behaves like npm ``y-websocket``'s provider: on connect it sends sync step 1 and its
awareness, answers the server's step 1 with step 2 (which is how edits made offline reach the
server), applies updates, and relays its own edits as update frames.  Frames are parsed and
built by :mod:`crdt.sync`, awareness by pycrdt's ``Awareness``.  Positions are code points::

    client = await CRDTClient.connect("ws://127.0.0.1:8765/crdt", "notes/a")
    client.insert(0, "hello")
    await client.wait_for(lambda text: "world" in text)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from pycrdt import Awareness
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from crdt.document import CrdtDocument
from crdt.sync import (
    FrameKind,
    awareness_frame,
    read_frame,
    sync_step1_frame,
    sync_step2_frame,
    update_frame,
)


class CRDTClient:
    """One Yjs document synced with one server document.

    Like a y-protocols peer, it renews its awareness state every ``renew_seconds`` (a new
    clock) while it has one: peers drop a state not renewed within 30 s.
    """

    renew_seconds = 15.0

    def __init__(self, url: str, doc_name: str, token: str | None = None,
                 document: CrdtDocument | None = None) -> None:
        self.url = f"{url.rstrip('/')}/{doc_name}" + (f"?token={token}" if token else "")
        self.doc = document or CrdtDocument()
        self.ws: ClientConnection | None = None
        self.synced = asyncio.Event()
        self.presence = Awareness(self.doc.ydoc)
        self.presence.set_local_state(None)
        self.permission_denied: list[str] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._renewer: asyncio.TimerHandle | None = None

    @classmethod
    async def connect(cls, url: str, doc_name: str, token: str | None = None,
                      wait_synced: bool = True) -> CRDTClient:
        client = cls(url, doc_name, token)
        await client.open(wait_synced=wait_synced)
        return client

    @property
    def text(self) -> str:
        return self.doc.text

    @property
    def awareness(self) -> dict[int, Any]:
        """The other clients' awareness states, by Yjs client id."""
        own = self.doc.client_id
        return {c: s for c, s in self.presence.states.items() if c != own}

    @property
    def connected(self) -> bool:
        return self.ws is not None and self._reader is not None and not self._reader.done()

    async def open(self, wait_synced: bool = True) -> None:
        """(Re)connect: sync both ways, then stream updates."""
        self.synced.clear()
        self.ws = await connect(self.url, compression=None)
        self._reader = asyncio.get_running_loop().create_task(self._read(self.ws))
        self._send(sync_step1_frame(self.doc.state_vector()))
        if self.presence.get_local_state() is not None:
            self._send_awareness()
        self._schedule_renewal()
        if wait_synced:
            await asyncio.wait_for(self.synced.wait(), 10)

    async def disconnect(self) -> None:
        """Go offline; edits made meanwhile are merged at the next :meth:`open`."""
        ws, self.ws = self.ws, None
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    close = disconnect

    def insert(self, pos: int, text: str) -> None:
        self._local(self.doc.insert(pos, text))

    def delete(self, pos: int, length: int) -> None:
        self._local(self.doc.delete(pos, length))

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        self.presence.set_local_state(state)
        self._send_awareness()

    async def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.text):
                self._changed.clear()
                await self._changed.wait()

    def _local(self, update: bytes) -> None:
        self._changed.set()
        if len(update) > 2:
            self._send(update_frame(update))

    def _schedule_renewal(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        self._renewer = asyncio.get_running_loop().call_later(self.renew_seconds, self._renew)

    def _renew(self) -> None:
        if self.ws is None:
            return
        state = self.presence.get_local_state()
        if state is not None:
            self.set_awareness(state)
        self._schedule_renewal()

    def _send_awareness(self) -> None:
        update = self.presence.encode_awareness_update([self.doc.client_id])
        self._send(awareness_frame(update))

    def _send(self, frame: bytes) -> None:
        ws = self.ws
        if ws is None:
            return  # offline: the next sync step 2 carries the edit
        with contextlib.suppress(Exception):
            ws.protocol.send_binary(frame)
            ws.send_data()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    self._handle(message)
        except ConnectionClosed:
            pass
        finally:
            if ws.close_code is not None:
                self.close_code, self.close_reason = ws.close_code, ws.close_reason
            self._changed.set()

    def _handle(self, message: bytes) -> None:
        frame = read_frame(message)
        kind = frame.kind
        if kind is FrameKind.SYNC_STEP1:
            self._send(sync_step2_frame(self.doc.diff(frame.payload)))
        elif kind is FrameKind.SYNC_STEP2 or kind is FrameKind.SYNC_UPDATE:
            self.doc.apply_update(frame.payload)
            if kind is FrameKind.SYNC_STEP2:
                self.synced.set()
        elif kind is FrameKind.AWARENESS:
            self.presence.apply_awareness_update(frame.payload, "server")
        elif kind is FrameKind.AUTH:
            self.permission_denied.append(frame.payload.decode(errors="replace"))
        self._changed.set()
