"""A Python OT client speaking ShareDB's protocol, over the sans-I/O :class:`ot.client.Client`.

For tests, benchmarks and Python apps.  It does what npm ``sharedb``'s client does for
``text-unicode`` documents: handshake, subscribe (or create), local edits applied at once with
one op in flight per document, acks, remote ops transformed past pending edits, channel
presence, and reconnecting with the same ``src`` so a resent op is deduplicated::

    conn = await OTConnection.connect("ws://127.0.0.1:8765/ot")
    doc = await conn.open("notes", "a", create_with="")
    doc.insert(0, "hello")          # local at once; sent in the background
    await doc.synced()              # until the server acknowledged everything
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ot.client import Client, Submission
from ot.text_op import Op
from server.protocols.sharedb_wire import TEXT_UNICODE_URI

#: ShareDB's code for "the ops needed to catch this version up are no longer kept".
HISTORY_GONE = "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND"


class OTClientError(Exception):
    """The server answered a request with an error (``code`` is ShareDB's)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")


class OTDoc:
    """One subscribed document: local text, version, edits in flight."""

    def __init__(self, conn: OTConnection, collection: str, doc_id: str) -> None:
        self.conn, self.collection, self.id = conn, collection, doc_id
        self.client: Client | None = None  # None until the document exists
        self.errors: list[OTClientError] = []
        # Hard rollbacks so far: pending edits dropped after the server refused them.
        self.rollbacks = 0
        self.listeners: list[Callable[[Op | None, bool], None]] = []
        self._changed = asyncio.Event()

    @property
    def text(self) -> str | None:
        return None if self.client is None else self.client.text

    @property
    def version(self) -> int:
        return 0 if self.client is None else self.client.version

    def _client(self) -> Client:
        if self.client is None:
            raise OTClientError({"code": "ERR_DOC_DOES_NOT_EXIST",
                                 "message": f"{self.collection}/{self.id} is not created"})
        return self.client

    def insert(self, pos: int, text: str) -> None:
        self._send(self._client().insert(pos, text))

    def delete(self, pos: int, length: int) -> None:
        self._send(self._client().delete(pos, length))

    def edit(self, op: Op) -> None:
        self._send(self._client().edit(op))

    async def synced(self, timeout: float = 10) -> None:
        """Wait until every local edit is acknowledged."""
        async with asyncio.timeout(timeout):
            while self.client is not None and self.client.pending:
                self._changed.clear()
                await self._changed.wait()

    async def wait_for(self, predicate: Callable[[str | None], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.text):
                self._changed.clear()
                await self._changed.wait()

    def _send(self, submission: Submission | None) -> None:
        # Offline (the socket dropped): the op stays outstanding and reconnect() resends it,
        # so an edit made while disconnected is kept instead of raising after it was applied.
        if submission is not None and self.conn.connected:
            self.conn.send({"a": "op", "c": self.collection, "d": self.id, "v": submission.version,
                            "src": submission.src, "seq": submission.seq, "op": submission.op})

    def _notify(self, op: Op | None, local: bool) -> None:
        self._changed.set()
        for listener in self.listeners:
            listener(op, local)

    def _on_op(self, message: dict[str, Any]) -> None:
        client = self.client
        if "error" in message:
            self.errors.append(OTClientError(message["error"]))
            if (client is not None and message.get("src") == client.src
                    and message.get("seq") == getattr(client.state, "seq", None)):
                self.conn.rollback_soon(self)  # our in-flight op was refused
            self._changed.set()
            return
        if "create" in message:
            if client is None:
                self.client = Client(message["create"].get("data") or "", message["v"] + 1,
                                     self.conn.src)
                self._notify(None, False)
            return
        if client is None:
            return
        if "op" not in message:  # an acknowledgement
            if message.get("src") == client.src:
                self._send(client.receive_ack(message["v"]))
                self._notify(None, True)
            return
        applied = client.receive_op(message["op"], message["v"], message.get("src"),
                                    message.get("seq"))
        if applied is None:
            self._send(client.flush())
        self._notify(applied, False)

    def _ingest(self, data: dict[str, Any] | None) -> None:
        if data is not None and data.get("type") is not None and self.client is None:
            self.client = Client(data.get("data") or "", data["v"], self.conn.src)
            self._notify(None, False)


class OTConnection:
    """One WebSocket to the OT endpoint, multiplexing documents and presence channels."""

    def __init__(self, url: str, ws: ClientConnection) -> None:
        self.url = url
        self.ws = ws
        self.src: str | None = None
        self.docs: dict[tuple[str, str], OTDoc] = {}
        self.presence: dict[str, dict[str, Any]] = {}  # channel -> presence id -> value
        self._waiters: dict[tuple[Any, ...], asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._presence_seq = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(cls, url: str, token: str | None = None) -> OTConnection:
        conn = cls(url if token is None else f"{url}?token={token}", await connect(
            url if token is None else f"{url}?token={token}", compression=None))
        await conn._start()
        return conn

    async def _start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read())
        reply = await self.request({"a": "hs", "id": self.src, "protocol": 1,
                                    "protocolMinor": 2}, ("hs",))
        self.src = reply["id"]
        for doc in self.docs.values():
            if doc.client is not None:
                doc.client.src = self.src

    @property
    def connected(self) -> bool:
        """Whether the socket is open (edits made while it is not are resent on reconnect)."""
        return self.ws.protocol.state is State.OPEN

    def send(self, message: dict[str, Any]) -> None:
        self.ws.protocol.send_text(orjson.dumps(message))
        self.ws.send_data()

    async def request(self, message: dict[str, Any], key: tuple[Any, ...],
                      timeout: float = 10) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[key] = future
        self.send(message)
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise OTClientError(reply["error"])
        return reply

    async def open(self, collection: str, doc_id: str, create_with: str | None = None) -> OTDoc:
        """Subscribe to a document; create it with ``create_with`` if it does not exist."""
        doc = self.docs.get((collection, doc_id)) or OTDoc(self, collection, doc_id)
        self.docs[(collection, doc_id)] = doc
        reply = await self.request({"a": "s", "c": collection, "d": doc_id},
                                   ("s", collection, doc_id))
        doc._ingest(reply.get("data"))
        if doc.client is None and create_with is not None:
            try:
                await self.request({"a": "op", "c": collection, "d": doc_id, "v": 0,
                                    "src": self.src, "seq": 0,
                                    "create": {"type": TEXT_UNICODE_URI, "data": create_with}},
                                   ("create", collection, doc_id))
                doc.client = doc.client or Client(create_with, 1, self.src)
            except OTClientError as exc:
                if exc.code != "ERR_DOC_ALREADY_CREATED":
                    raise
                await doc.wait_for(lambda text: text is not None)
        return doc

    async def reconnect(self) -> None:
        """Open a new socket with the same ``src``, catch every document up, resend."""
        with contextlib.suppress(ConnectionClosed):
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        self.ws = await connect(self.url, compression=None)
        await self._start()
        for (collection, doc_id), doc in self.docs.items():
            message: dict[str, Any] = {"a": "s", "c": collection, "d": doc_id}
            if doc.client is not None:
                message["v"] = doc.client.version
            try:
                reply = await self.request(message, ("s", collection, doc_id))
            except OTClientError as exc:
                if exc.code != HISTORY_GONE or doc.client is None:
                    raise
                # The ops since our version were compacted away, so our pending edits cannot
                # be transformed any more: like ShareDB's hard rollback, drop them (reported
                # in ``doc.errors``) and start again from the current document.
                doc.errors.append(exc)
                await self._hard_rollback(doc)
                continue
            doc._ingest(reply.get("data"))
            if doc.client is not None:
                doc._send(doc.client.resend())
        for channel in self.presence:
            await self.subscribe_presence(channel)

    def rollback_soon(self, doc: OTDoc) -> None:
        task = asyncio.get_running_loop().create_task(self._rollback_quietly(doc))
        self._tasks.add(task)  # keep a reference until done (the loop holds only a weak one)
        task.add_done_callback(self._tasks.discard)

    async def _rollback_quietly(self, doc: OTDoc) -> None:
        # If the connection dropped meanwhile, reconnect() resends the pending op instead.
        with contextlib.suppress(OTClientError, TimeoutError, ConnectionClosed):
            await self._hard_rollback(doc)

    async def _hard_rollback(self, doc: OTDoc) -> None:
        """ShareDB's hard rollback: drop the pending edits and take the server's current text
        (a fresh subscribe), rather than wait forever for an op the server refused."""
        reply = await self.request({"a": "s", "c": doc.collection, "d": doc.id},
                                   ("s", doc.collection, doc.id))
        dropped, doc.client = doc.client, None
        doc._ingest(reply.get("data"))
        if doc.client is not None and dropped is not None:
            # Never reuse a seq: the server deduplicates resubmissions by src/seq, so a new
            # op numbered like a committed one would be taken for it.
            doc.client._seq = dropped._seq
        doc.rollbacks += 1
        doc._notify(None, False)

    async def subscribe_presence(self, channel: str) -> None:
        self.presence.setdefault(channel, {})
        self._presence_seq += 1
        await self.request({"a": "ps", "ch": channel, "seq": self._presence_seq},
                           ("ps", channel))

    def submit_presence(self, channel: str, presence_id: str, value: Any, pv: int) -> None:
        self.send({"a": "p", "ch": channel, "id": presence_id, "p": value, "pv": pv})

    async def ping(self) -> None:
        await self.request({"a": "pp"}, ("pp",))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.ws.close()

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                self._dispatch(orjson.loads(raw))

    def _dispatch(self, message: dict[str, Any]) -> None:
        action = message.get("a")
        key: tuple[Any, ...] = (action,)
        if action in ("s", "f", "u"):
            key = (action, message.get("c"), message.get("d"))
        elif action in ("ps", "pu"):
            key = (action, message.get("ch"))
        elif action == "op":
            doc = self.docs.get((message.get("c"), message.get("d")))  # type: ignore[arg-type]
            create_key = ("create", message.get("c"), message.get("d"))
            if (create_key in self._waiters and message.get("src") == self.src
                    and message.get("seq") == 0 and "op" not in message):
                key = create_key  # the create's ack, or its error echo
            elif doc is not None:
                doc._on_op(message)
                return
        elif action == "p":
            if message.get("src") != self.src and "error" not in message:
                channel = self.presence.setdefault(message.get("ch", ""), {})
                if message.get("p") is None:
                    channel.pop(message.get("id", ""), None)
                else:
                    channel[message.get("id", "")] = message.get("p")
            return
        waiter = self._waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
