"""Metadata on the wire: the REST resource and one message for each WebSocket protocol.

Every transport carries the same JSON request and answer, so a client library needs one codec:

* request: ``{"set": {field: value, ...}, "context": token?, "id": any?}`` writes (``null``
  deletes a field); without ``set`` it reads.  Either way the connection then receives every
  later change of that document's metadata (``"changed": [fields]``, no ``id``) until it
  sends ``{"unfollow": true}`` or closes.
* answer: ``{"id"?, "meta": {field: value}, "fields": {field: {"policy", "value" | "values",
  "hlc", "siblings"?}}, "context": token}`` or ``{"id"?, "error": {"code", "message"}}``.

ShareDB: a message with action ``"meta"`` plus ``c``/``d`` naming the document — the npm
client sends it with ``connection.send(...)`` and sees answers on its ``'receive'`` event (it
ignores unknown actions otherwise).  y-websocket: message type :data:`YJS_META` followed by the
JSON as a y-protocols ``varString``; a provider handles it by registering
``provider.messageHandlers[100]`` (the provider only logs unknown types).  Neither client gets
a metadata message it did not ask for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from pycrdt import Decoder, write_var_uint

from server.auth import Grant
from server.errors import BadMessage, ServerError, UnsupportedAction, WeftError
from server.metadata.service import MetaService

log = logging.getLogger("weft.meta")

YJS_META = 100  # y-websocket: 0 sync, 1 awareness, 2 auth, 3 query awareness

Send = Callable[[dict[str, Any]], None]


async def answer(service: MetaService, doc: str, grant: Grant, request: dict[str, Any]) -> \
        dict[str, Any]:
    """Read or write ``doc``'s metadata as ``request`` asks; the answer (errors raise)."""
    changes = request.get("set")
    context = request.get("context")
    if context is not None and not isinstance(context, str):
        raise BadMessage("'context' must be the token string a metadata read returned")
    if changes is None:
        view = await service.read(doc, grant)
    else:
        view = await service.write(doc, changes, context=context, grant=grant)
    view.pop("name", None)
    return view


class Follower:
    """One connection's metadata subscriptions: forwards changes until closed."""

    def __init__(self, service: MetaService) -> None:
        self.service = service
        self._stops: dict[str, Callable[[], None]] = {}
        self.closed = False

    async def follow(self, doc: str, send: Send, extra: dict[str, Any]) -> None:
        if doc in self._stops or self.closed:
            return

        def listener(_: str, view: dict[str, Any], changed: list[str]) -> None:
            body = {k: v for k, v in view.items() if k != "name"}
            send({**extra, **body, "changed": changed})

        stop = await self.service.listen(doc, listener)
        if self.closed or doc in self._stops:
            stop()
            return
        self._stops[doc] = stop

    def unfollow(self, doc: str) -> None:
        stop = self._stops.pop(doc, None)
        if stop is not None:
            stop()

    def close(self) -> None:
        self.closed = True
        for stop in self._stops.values():
            stop()
        self._stops.clear()


# ---- y-websocket framing ------------------------------------------------------------------


def is_yjs_meta(frame: bytes) -> bool:
    return len(frame) > 0 and frame[0] == YJS_META


def decode_yjs(frame: bytes) -> dict[str, Any]:
    """The JSON request inside a y-websocket metadata frame; :class:`BadMessage` if malformed."""
    try:
        decoder = Decoder(frame[1:])
        raw = decoder.read_message()
        if raw is None or decoder.length != 0:
            raise ValueError("length prefix does not match the frame")
        request = orjson.loads(raw)
    except (ValueError, IndexError, RuntimeError) as exc:
        raise BadMessage(f"metadata frame must carry a JSON object as a varString: {exc}") \
            from None
    if not isinstance(request, dict):
        raise BadMessage("metadata frame must carry a JSON object")
    return request


def encode_yjs(message: dict[str, Any]) -> bytes:
    payload = orjson.dumps(message)
    return bytes([YJS_META]) + write_var_uint(len(payload)) + payload


def error_answer(request: dict[str, Any], exc: WeftError) -> dict[str, Any]:
    out: dict[str, Any] = {"error": exc.as_dict()}
    if "id" in request:
        out["id"] = request["id"]
    return out


def service_of(shared: dict[str, Any]) -> MetaService:
    """The server's metadata service (``Context.shared["meta"]``), or an error reply."""
    service = shared.get("meta")
    if not isinstance(service, MetaService):
        raise UnsupportedAction("document metadata is not enabled on this server")
    return service


async def sharedb_request(shared: dict[str, Any], follower: Follower | None, send: Send,
                          grant: Grant, request: dict[str, Any], collection: str,
                          doc_id: str, name: str) -> dict[str, Any]:
    """Answer a ShareDB ``{"a": "meta", "c", "d", ...}`` message (and follow the doc)."""
    service = service_of(shared)
    head: dict[str, Any] = {"a": "meta", "c": collection, "d": doc_id}
    grant.check(name, write=False)
    if request.get("unfollow") is True:
        if follower is not None:
            follower.unfollow(name)
        return {**head, "id": request.get("id"), "unfollow": True}
    if follower is not None:  # first: a change racing this request still reaches the client
        await follower.follow(name, send, head)
    body = await answer(service, name, grant, request)
    if "id" in request:
        head = {**head, "id": request["id"]}
    return {**head, **body}


class YjsMeta:
    """Metadata frames of one y-websocket connection: answered in arrival order, off the
    synchronous frame handler (reads and writes wait for the store)."""

    def __init__(self, service: MetaService, send_frame: Callable[[bytes], None], grant: Grant,
                 doc: str) -> None:
        self.service = service
        self.send_frame = send_frame
        self.grant = grant
        self.doc = doc
        self.follower = Follower(service)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, message: dict[str, Any]) -> None:
        if not self.follower.closed:
            self.send_frame(encode_yjs(message))

    def receive(self, frame: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, frame: bytes) -> None:
        async with self._lock:
            request: dict[str, Any] = {}
            try:
                request = decode_yjs(frame)
                self.grant.check(self.doc, write=False)
                if request.get("unfollow") is True:
                    self.follower.unfollow(self.doc)
                    self.send({"id": request.get("id"), "unfollow": True})
                    return
                await self.follower.follow(self.doc, self.send, {})
                reply = await answer(self.service, self.doc, self.grant, request)
                if "id" in request:
                    reply["id"] = request["id"]
            except WeftError as exc:
                reply = error_answer(request, exc)
            except Exception:
                log.exception("metadata request on %r failed", self.doc)
                reply = error_answer(request, ServerError("internal error; see server log"))
            self.send(reply)

    def close(self) -> None:
        self.follower.close()
        for task in self._tasks:
            task.cancel()


async def http_request(service: MetaService, method: str, doc: str, grant: Grant,
                       body: dict[str, Any] | None) -> dict[str, Any]:
    """``GET`` reads; ``PATCH`` writes the named fields; ``PUT`` also deletes the others.

    The body is ``{field: value}``; a ``"$context"`` key carries the token of an earlier read
    (a multi-value write then resolves exactly the siblings that read showed).
    """
    if method in ("GET", "HEAD"):
        return await service.read(doc, grant)
    if body is None:
        raise BadMessage('expected a JSON object like {"title": "Notes"}')
    changes = dict(body)
    context = changes.pop("$context", None)
    if context is not None and not isinstance(context, str):
        raise BadMessage('"$context" must be the token string a metadata read returned')
    if not changes and method == "PATCH":
        raise BadMessage('PATCH needs at least one field, like {"title": "Notes"}')
    if not changes:  # PUT {}: delete every field
        current = (await service.read(doc, grant))["meta"]
        if not current:
            return await service.read(doc, grant)
        changes = {name: None for name in current}
    return await service.write(doc, changes, context=context, replace=method == "PUT",
                               grant=grant)
