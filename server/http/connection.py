"""A websockets ``ServerConnection`` that also accepts HTTP requests with a body.

websockets parses the opening request itself and refuses any request body (a WebSocket
handshake has none), yet the REST API wants ``POST /api/docs/<name>/edits`` with a JSON body on
the same port.  This subclass reads the first request's head, and when it announces a body
(``Content-Length``), takes the body off the stream and hands websockets the head without it.
``process_request`` then finds the body on :attr:`WeftConnection.http_body`.

Only the first request of a connection is inspected; websockets answers one HTTP request per
connection (``Connection: close``), so there is no keep-alive stream to follow.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.server import ServerConnection

MAX_HEAD_BYTES = 16 * 1024


class WeftConnection(ServerConnection):
    """ServerConnection with request-body support and per-connection limits."""

    # Set per server through :func:`connection_class`.
    max_http_body = 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http_body: bytes | None = None
        self.http_body_error: str | None = None
        self._head: bytes | None = b""
        self._body_needed = 0
        self._body = bytearray()
        self._stripped_head = b""

    def data_received(self, data: bytes) -> None:
        if self._head is None:  # past the first request: plain WebSocket traffic
            super().data_received(data)
            return
        if self._body_needed:
            self._take_body(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD_BYTES:
                self._pass_through(self._head)  # let websockets reject the oversize head
            return
        head, rest = self._head[: end + 4], self._head[end + 4 :]
        length = _content_length(head)
        if length is None or length == 0:
            self._pass_through(head + rest)
            return
        if length > self.max_http_body:
            self.http_body_error = f"request body over {self.max_http_body} bytes"
            self._pass_through(_strip_content_length(head))
            return
        self._stripped_head = _strip_content_length(head)
        self._body_needed = length
        self._take_body(rest)

    def _take_body(self, data: bytes) -> None:
        self._body += data[: self._body_needed - len(self._body)]
        if len(self._body) >= self._body_needed:
            self.http_body = bytes(self._body)
            self._body_needed = 0
            self._pass_through(self._stripped_head)

    def _pass_through(self, data: bytes) -> None:
        self._head = None
        super().data_received(data)


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
