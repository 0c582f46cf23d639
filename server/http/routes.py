"""Plain HTTP on the WebSocket port: health, metrics, the REST API and the web client.

websockets calls :meth:`HttpRoutes.process_request` for every incoming request; returning a
``Response`` answers it as HTTP, returning None lets the WebSocket handshake go on (only for the
two WebSocket endpoints, and only for real upgrade requests).

Routes::

    GET  /healthz                      liveness: {"status": "ok", ...}
    GET  /metrics                      Prometheus text format
    GET  /api/docs/<name>              {"name", "engine", "text", "token"[, "version"]}
    POST /api/docs/<name>/edits        {"pos": n, "insert": "..."} | {"pos": n, "delete": n}
    GET  /api/docs/<name>/versions     kept versions: {"oldest", "head", "versions": [...]}
    GET  /api/docs/<name>?version=N    the text at version N (or ?at=ISO-8601 time); 410
                                       ERR_HISTORY_COMPACTED when older than the kept history
    POST /api/docs/<name>/restore      {"version": n[, "author"]}: a new edit back to version n
    POST /api/docs/<name>/undo|redo    {"user": "..."}: undo/redo that user's own last edit
    GET  /api/docs/<name>/meta         {"meta": {field: value}, "fields": {...}, "context"}
    PUT|PATCH /api/docs/<name>/meta    {field: value, "$context"?: token}  (server.metadata)
    GET  /  and  /<file>               web_client/dist (index.html for /), no path traversal
    WS   /ot                           ShareDB protocol (text-unicode documents)
    WS   /crdt/<name>                  Yjs sync protocol as y-websocket speaks it

Document names in URLs are percent-encoded; ``notes%2Fa`` and ``notes/a`` name the same
document.  The REST API honours the same tokens as the WebSockets (``Authorization: Bearer`` or
``?token=``).

Session guarantees (:mod:`server.causal`): every document response carries its causal token, in
the JSON (``token``) and in the ``X-Weft-Token`` header.  A request presenting one — ``?after=``
or ``X-Weft-After`` — is answered from a state at least that new: the replica waits (bounded by
``--causal-wait-seconds``) for its relay to catch up, else answers 503 ``ERR_NOT_CAUGHT_UP``
with ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import http
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from server.auth import Authenticator, Grant
from server.errors import BadMessage, ClientError, WeftError
from server.hooks.events import ConnectRequest
from server.http.connection import WeftConnection
from server.metadata import wire as meta_wire
from server.metadata.service import MetaService
from server.metrics import Metrics

if TYPE_CHECKING:
    from server.history import History

log = logging.getLogger("weft.http")

MAX_NAME_LENGTH = 512

ReadDoc = Callable[[str, Grant, str | None], Awaitable[dict[str, Any]]]
EditDoc = Callable[[str, Grant, dict[str, Any], str | None], Awaitable[dict[str, Any]]]


def response(status: int, body: bytes, content_type: str, **headers: str) -> Response:
    hdrs = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            *headers.items(),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, hdrs, body)


def json_response(status: int, payload: Any, **headers: str) -> Response:
    return response(status, orjson.dumps(payload), "application/json", **headers)


def doc_response(payload: dict[str, Any]) -> Response:
    """A document's state, its causal token also in a header (for clients that skip the body)."""
    token = payload.get("token")
    return json_response(200, payload, **({"X-Weft-Token": token} if token else {}))


def error_response(exc: WeftError) -> Response:
    # 503s (storage, shutting down, not caught up) are worth retrying soon.
    retry = {"Retry-After": "1"} if exc.http_status == 503 else {}
    return json_response(exc.http_status, {"error": exc.as_dict()}, **retry)


def doc_name(raw: str) -> str:
    """Decode and check a document name taken from a URL path."""
    name = unquote(raw, errors="strict")
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadMessage(f"document name must be 1..{MAX_NAME_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise BadMessage("document name must not contain control characters")
    return name


def query_token(path: str) -> str | None:
    values = parse_qs(urlsplit(path).query).get("token")
    return values[-1] if values else None


def request_after(request: Request) -> str | None:
    """The causal token a request wants its answer to cover (``?after=`` or ``X-Weft-After``)."""
    values = parse_qs(urlsplit(request.path).query).get("after")
    return values[-1] if values else request.headers.get("X-Weft-After") or None


def request_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return query_token(request.path)


class HttpRoutes:
    """Answers every non-WebSocket request."""

    def __init__(
        self,
        auth: Authenticator,
        metrics: Metrics,
        health: Callable[[], dict[str, Any]],
        read_doc: ReadDoc,
        edit_doc: EditDoc,
        web_root: Path | None,
    ) -> None:
        self.auth = auth
        self.metrics = metrics
        self.health = health
        self.read_doc = read_doc
        self.edit_doc = edit_doc
        self.web_root = web_root.resolve() if web_root else None
        self.room_states: Callable[[], dict[str, int]] = dict
        self.meta: MetaService | None = None  # document metadata (set by the app)
        self.history: History | None = None  # document history (set by the app)
        # The connect hooks (server.hooks): may change the grant or raise Forbidden (403).
        self.authorize: Callable[[ConnectRequest], Awaitable[Grant]] | None = None

    async def process_request(self, connection: Any, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        method = getattr(request, "method", "GET")
        try:
            if path == "/ot" or path.startswith("/crdt/"):
                if request.headers.get("Upgrade", "").lower() == "websocket":
                    return None
                return response(426, b"this endpoint speaks WebSocket\n", "text/plain",
                                Upgrade="websocket")
            if path.startswith("/api/"):
                return await self._api(connection, request, method, path)
            if method not in ("GET", "HEAD"):
                return response(405, b"method not allowed\n", "text/plain", Allow="GET")
            if path == "/healthz":
                return json_response(200, {"status": "ok", **self.health()})
            if path == "/metrics":
                text = self.metrics.render(self.room_states())
                return response(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
            return self._static(path)
        except WeftError as exc:
            if not isinstance(exc, ClientError):
                log.error("HTTP %s %s failed: %s", method, path, exc)
            return error_response(exc)
        except Exception:
            log.exception("HTTP %s %s failed", method, path)
            return json_response(500, {"error": {"code": "ERR_INTERNAL",
                                                 "message": "internal error; see server log"}})

    async def _api(self, connection: Any, request: Request, method: str, path: str) -> Response:
        rest = path[len("/api/docs/"):] if path.startswith("/api/docs/") else None
        if not rest:
            return json_response(404, {"error": {"code": "ERR_NOT_FOUND",
                                                 "message": "try /api/docs/<name>"}})
        grant = self.auth.grant(request_token(request))
        if rest.endswith("/meta") and self.meta is not None:
            if method not in ("GET", "HEAD", "PUT", "PATCH"):
                return response(405, b"GET, PUT or PATCH metadata\n", "text/plain",
                                Allow="GET, PUT, PATCH")
            name = doc_name(rest[: -len("/meta")])
            grant = await self._hooks(request, name, grant, method)
            body = None if method in ("GET", "HEAD") else self._json_body(connection)
            return json_response(200, await meta_wire.http_request(self.meta, method, name,
                                                                   grant, body))
        if self.history is not None:
            answer = await self._history_api(connection, request, method, rest, grant)
            if answer is not None:
                return answer
        if rest.endswith("/edits"):
            if method != "POST":
                return response(405, b"POST edits\n", "text/plain", Allow="POST")
            name = doc_name(rest[: -len("/edits")])
            grant = await self._hooks(request, name, grant, method)
            body = self._json_body(connection)
            return doc_response(await self.edit_doc(name, grant, body, request_after(request)))
        if method not in ("GET", "HEAD"):
            return response(405, b"GET a document\n", "text/plain", Allow="GET")
        name = doc_name(rest)
        grant = await self._hooks(request, name, grant, method)
        return doc_response(await self.read_doc(name, grant, request_after(request)))

    async def _history_api(self, connection: Any, request: Request, method: str, rest: str,
                           grant: Grant) -> Response | None:
        """``GET <doc>/versions``, ``GET <doc>?version=N|?at=T``, ``POST <doc>/restore
        {"version"[, "author"]}``, ``POST <doc>/undo|redo {"user"}``; None: not a history
        request."""
        history = self.history
        if history is None:
            return None
        base, _, action = rest.rpartition("/")
        if base and action in ("versions", "restore", "undo", "redo"):
            expected = "GET" if action == "versions" else "POST"
            if method != expected and not (expected == "GET" and method == "HEAD"):
                return response(405, f"{expected} {action}\n".encode(), "text/plain",
                                Allow=expected)
            name = doc_name(base)
            grant = await self._hooks(request, name, grant, method)
            if action == "versions":
                return json_response(200, await history.versions(name, grant))
            body = self._json_body(connection)
            if action == "restore":
                version = body.get("version")
                if type(version) is not int:
                    raise BadMessage(f"'version' must be an integer, got {version!r}")
                author = grant.author(body.get("author"), "server")
                return doc_response(await history.restore(name, version, author, grant))
            call = history.undo if action == "undo" else history.redo
            user = body.get("user")
            if grant.user is not None:
                user = grant.author(user, grant.user)  # a token may undo only its own user's edits
            return doc_response(await call(name, user, grant))  # type: ignore[arg-type]
        query = parse_qs(urlsplit(request.path).query)
        if method in ("GET", "HEAD") and ("version" in query or "at" in query):
            name = doc_name(rest)
            grant = await self._hooks(request, name, grant, method)
            raw = query.get("version", [None])[-1]
            try:
                version = None if raw is None else int(raw)
            except ValueError:
                raise BadMessage(f"?version= must be an integer, got {raw!r}") from None
            at = query.get("at", [None])[-1]
            return json_response(200, await history.text_at(name, version, at, grant))
        return None

    async def _hooks(self, request: Request, name: str, grant: Grant, method: str) -> Grant:
        if self.authorize is None:
            return grant
        return await self.authorize(
            ConnectRequest("rest", name, request.path, request.headers, grant, method))

    @staticmethod
    def _json_body(connection: Any) -> dict[str, Any]:
        if isinstance(connection, WeftConnection) and connection.http_body_error:
            raise ClientError(connection.http_body_error, code="ERR_BODY_TOO_LARGE")
        body = getattr(connection, "http_body", None)
        if not body:
            raise BadMessage('expected a JSON body like {"pos": 0, "insert": "text"}')
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadMessage(f"request body is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise BadMessage("request body must be a JSON object")
        return payload

    def _static(self, path: str) -> Response:
        """Serve a file of the built web client; never anything outside its directory."""
        root = self.web_root
        if root is None or not (root / "index.html").is_file():
            if path == "/":
                return response(200, b"Weft server is running. The web client is not built "
                                b"(web_client/dist). Endpoints: /ot, /crdt/<doc>, /api/docs/"
                                b"<doc>, /healthz, /metrics\n", "text/plain; charset=utf-8")
            return response(404, b"not found\n", "text/plain")
        relative = unquote(path).lstrip("/") or "index.html"
        if "\x00" in relative:
            return response(404, b"not found\n", "text/plain")
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return response(404, b"not found\n", "text/plain")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        return response(200, target.read_bytes(), ctype, **{"Cache-Control": "no-cache"})
