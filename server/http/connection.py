"""A websockets ``ServerConnection`` that accepts HTTP request bodies and stays small when idle.

**Request bodies.**  websockets parses the opening request itself and refuses any request body
(a WebSocket handshake has none), yet the REST API wants ``POST /api/docs/<name>/edits`` with a
JSON body on the same port.  This subclass reads the first request's head, and when it
announces a body (``Content-Length``), takes the body off the stream and hands websockets the
head without it.  ``process_request`` then finds the body on :attr:`WeftConnection.http_body`.
Only the first request of a connection is inspected; websockets answers one HTTP request per
connection (``Connection: close``), so there is no keep-alive stream to follow.

**Idle memory** (the issue's budget: 10 KB per idle connection).  A server holds thousands of
mostly idle connections, so what each one keeps matters more than speed here:

* The first-request state lives in one small object, dropped once the head has gone through
  (and this class adds a single attribute to websockets' ~27: past 30, CPython stops sharing
  the attribute-name table between instances and every connection pays ~1.3 KB for its own).
* No keepalive task per connection: websockets would run one (a task, a coroutine frame, a
  sleep timer — about 1.5 KB each).  :class:`Keepalive` pings every connection of the server
  from one task instead, with websockets' semantics (a ping every ``ping_interval``; no pong
  within ``ping_timeout`` fails the connection with 1011 "keepalive ping timeout").
* :func:`forget_handshake` drops the handshake's request and response headers once the
  session has read them (about 2.5 KB of strings per connection).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import struct
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.protocol import State

MAX_HEAD_BYTES = 16 * 1024
# What a connection's handshake headers become once forgotten (shared: nobody writes to it).
NO_HEADERS = Headers()
# Timers fire a little early or late; a ping sent one round ago counts as one round old.
CLOCK_SLACK = 0.05

log = logging.getLogger("weft.http")


class _FirstRequest:
    """What is known about the connection's first HTTP request while it is being read."""

    __slots__ = ("body", "body_error", "body_needed", "head", "received", "stripped_head")

    def __init__(self) -> None:
        # None once the head went through to websockets.
        self.head: bytes | None = b""
        self.body_needed = 0
        self.received = bytearray()
        self.stripped_head = b""
        self.body: bytes | None = None
        self.body_error: str | None = None


class WeftConnection(ServerConnection):
    """ServerConnection with request-body support, a shared keepalive and a small footprint."""

    # Set per server through :func:`connection_class`.
    max_http_body = 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # None once the first request's head went through without a body (every WebSocket).
        self._first: _FirstRequest | None = _FirstRequest()
        # Futures waiting for the write buffer to drain: appended, removed and iterated only,
        # so a list does (an empty deque costs ~600 bytes per connection, a list 56).
        if isinstance(self.drain_waiters, collections.deque) and not self.drain_waiters:
            self.drain_waiters = []  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # The queue of received frames is empty most of a connection's life: keep no deque
        # block allocated while it is (see EmptyingDeque).
        frames = getattr(self.recv_messages, "frames", None)
        queue = getattr(frames, "queue", None)
        if frames is not None and isinstance(queue, collections.deque) and not queue:
            frames.queue = EmptyingDeque()

    @property
    def http_body(self) -> bytes | None:
        """The first request's body (REST calls), None when it had none."""
        return self._first.body if self._first is not None else None

    @property
    def http_body_error(self) -> str | None:
        """Why the body was refused (over ``max_http_body``), None when it was not."""
        return self._first.body_error if self._first is not None else None

    def start_keepalive(self) -> None:
        if self.ping_interval is not None:
            Keepalive.of(self.server, self.ping_interval, self.ping_timeout).start()

    def data_received(self, data: bytes) -> None:
        first = self._first
        if first is None or first.head is None:  # past the first request: WebSocket traffic
            super().data_received(data)
            return
        if first.body_needed:
            self._take_body(first, data)
            return
        first.head += data
        end = first.head.find(b"\r\n\r\n")
        if end < 0:
            if len(first.head) > MAX_HEAD_BYTES:
                self._pass_through(first.head)  # let websockets reject the oversize head
            return
        head, rest = first.head[: end + 4], first.head[end + 4 :]
        length = _content_length(head)
        if length is None or length == 0:
            self._first = None
            super().data_received(head + rest)
            return
        if length > self.max_http_body:
            first.body_error = f"request body over {self.max_http_body} bytes"
            self._pass_through(_strip_content_length(head))
            return
        first.stripped_head = _strip_content_length(head)
        first.body_needed = length
        self._take_body(first, rest)

    def _take_body(self, first: _FirstRequest, data: bytes) -> None:
        first.received += data[: first.body_needed - len(first.received)]
        if len(first.received) >= first.body_needed:
            first.body = bytes(first.received)
            first.body_needed = 0
            self._pass_through(first.stripped_head)

    def _pass_through(self, data: bytes) -> None:
        if self._first is not None:
            self._first.head = None
            self._first.received = bytearray()
        super().data_received(data)


class EmptyingDeque:
    """The part of :class:`collections.deque` websockets' frame queue uses, holding no memory
    while empty: a deque keeps a 64-slot block (~600 bytes) even when it has nothing in it."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: collections.deque[Any] | None = None

    def __len__(self) -> int:
        return 0 if self._items is None else len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(()) if self._items is None else iter(self._items)

    def append(self, item: Any) -> None:
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)

    def extendleft(self, items: Iterable[Any]) -> None:
        if self._items is None:
            self._items = collections.deque()
        self._items.extendleft(items)

    def popleft(self) -> Any:
        if self._items is None:
            raise IndexError("pop from an empty deque")
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item


def forget_handshake(ws: ServerConnection) -> None:
    """Drop the opening handshake's headers once nobody needs them (the path is kept).

    Call after the session has read what it needs from ``ws.request`` (auth, hooks); objects
    that already hold the headers keep them.
    """
    if ws.request is not None:
        ws.request.headers = NO_HEADERS
    if ws.response is not None:
        ws.response.headers = NO_HEADERS


class Keepalive:
    """One task that pings every open connection of a server, instead of one task each.

    Every ``interval`` seconds each open connection without an unanswered keepalive ping gets
    one; a ping still unanswered ``timeout`` seconds after it was sent fails its connection
    with 1011 "keepalive ping timeout", as websockets' own keepalive does.  Checks happen on
    the rounds, so a dead peer is noticed after ``timeout`` rounded up to whole intervals
    (the defaults, 20 s and 20 s, give websockets' timing).  The connections are the server's
    own list (``Server.connections``): nothing is stored per connection.
    """

    def __init__(self, server: Server, interval: float, timeout: float | None) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.interval = interval
        self.timeout = timeout
        # Connections with an unanswered keepalive ping: (payload, when it was sent).
        self._waiting: dict[ServerConnection, tuple[bytes, float]] = {}
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, server: Server, interval: float, timeout: float | None) -> Keepalive:
        keepalive = _KEEPALIVES.get(server)
        if keepalive is None:
            keepalive = _KEEPALIVES[server] = cls(server, interval, timeout)
        return keepalive

    def start(self) -> None:
        """Make sure the pinging task runs (it ends when the server has no connection)."""
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._run(), name="weft keepalive")

    async def _run(self) -> None:
        while self.server.all_connections:
            await asyncio.sleep(self.interval)
            self.check()
            self.ping_all()

    def check(self) -> None:
        """Forget answered pings; fail the connections whose ping is overdue."""
        now = self.loop.time()
        for ws, (data, sent) in list(self._waiting.items()):
            if ws.protocol.state is not State.OPEN or data not in ws.pending_pings:
                del self._waiting[ws]  # answered, or closing anyway
            elif self.timeout is not None and now - sent + CLOCK_SLACK >= self.timeout:
                del self._waiting[ws]
                self.loop.create_task(_fail_keepalive(ws))

    def ping_all(self) -> None:
        for ws in self.server.connections:
            if ws in self._waiting:
                continue
            try:
                self._waiting[ws] = (_ping(ws), self.loop.time())
            except Exception:  # a broken connection: websockets closes it on its own
                log.debug("keepalive ping failed", exc_info=True)


# The keepalive of each running server.
_KEEPALIVES: weakref.WeakKeyDictionary[Server, Keepalive] = weakref.WeakKeyDictionary()


def _ping(ws: ServerConnection) -> bytes:
    """Send a ping the way ``Connection.ping()`` does, without a coroutine."""
    data = struct.pack("!I", random.getrandbits(32))
    while data in ws.pending_pings:
        data = struct.pack("!I", random.getrandbits(32))
    ws.pending_pings[data] = (ws.loop.create_future(), ws.loop.time())
    ws.protocol.send_ping(data)
    ws.send_data()
    return data


async def _fail_keepalive(ws: ServerConnection) -> None:
    try:
        async with ws.send_context():
            ws.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
    except Exception:  # already closing or closed: nothing left to do
        log.debug("closing after a keepalive timeout failed", exc_info=True)


def connection_class(max_http_body: int) -> type[WeftConnection]:
    """A subclass bound to one server's body limit (websockets wants a class, not a factory)."""
    return type("WeftConnection", (WeftConnection,), {"max_http_body": max_http_body})


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


def _strip_content_length(head: bytes) -> bytes:
    lines = head.split(b"\r\n")
    kept = [
        line for line in lines
        if line.partition(b":")[0].strip().lower() != b"content-length" or not line
    ]
    return b"\r\n".join(kept)
