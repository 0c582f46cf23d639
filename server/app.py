"""The server: one asyncio process serving many documents over WebSocket and HTTP.

Run it with ``weft serve``, or embed it in an asyncio program::

    async with WeftServer(Config(port=0, data_dir=None)) as server:
        await server.edit("notes/a", insert="hello", pos=0, engine="crdt")
        print(await server.text("notes/a"))
        async with server.changes("notes/a") as changes:
            event = await changes.get()     # the same changes clients see

Hooks (connect/load/change/store decisions and notifications, the signed webhook) are in
:mod:`server.hooks`: ``WeftServer(config, hooks=Hooks(...))`` or ``server.hooks.on_change(fn)``.

Shutdown (``stop``, leaving the ``async with``, or SIGINT/SIGTERM under the CLI) stops
accepting connections, closes every WebSocket with 1001 (going away), stores and unloads every
room, then flushes and closes the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from meta.policies import MergeFn, Policy
from server.auth import OPEN_GRANT, Authenticator
from server.config import Config
from server.context import Context
from server.documents import Documents
from server.errors import BadMessage, WeftError, close_reason
from server.history import History
from server.hooks.core import Hooks
from server.hooks.events import ConnectRequest
from server.hooks.webhook import Webhook
from server.http.connection import connection_class, forget_handshake
from server.http.routes import HttpRoutes, doc_name, query_token
from server.metadata.service import build as build_meta
from server.metrics import Metrics
from server.protocols.sharedb import ShareDBSession
from server.protocols.yjs import YjsSession
from server.relay.base import Relay
from server.relay.local import LocalRelay
from server.relay.presence import LocalPresenceRelay, PresenceRelay
from server.rooms.registry import Rooms
from server.rooms.room import ChangeEvent, RoomSettings
from server.store.base import Store
from server.store.history import HistoryBudget
from server.store.memory import MemoryStore
from server.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from server.protocols.ot_home import Homes

log = logging.getLogger("weft.server")


def default_store(config: Config, metrics: Metrics) -> Store:
    budget = HistoryBudget(config.history_keep_versions, config.history_keep_seconds)
    if config.redis_url:
        from server.store.redis import RedisStore  # imported only when Redis is configured

        return RedisStore(config.redis_url, config.replica_id, history=budget)
    if config.data_dir is None:
        return MemoryStore(history=budget)
    return SQLiteStore(config.data_dir / "weft.sqlite3", commit_delay=config.commit_delay_seconds,
                       metrics=metrics, history=budget, synchronous=config.sqlite_synchronous)


def _where(url: str | None) -> str | None:
    """A Redis URL without its password, for logs."""
    if not url:
        return None
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    if "," in hosts:  # a Redis Cluster's seed nodes (server.store.cluster)
        return f"{parts.scheme}://{hosts}{parts.path}"
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


def default_relay(store: Store, config: Config, metrics: Metrics | None = None) -> Relay:
    """The Redis relay over a Redis store (log == relay); otherwise the in-process one."""
    if config.redis_url:
        from server.relay.redis import RedisRelay
        from server.store.redis import RedisStore

        if isinstance(store, RedisStore):
            return RedisRelay(store, metrics.relay_lag if metrics is not None else None)
    return LocalRelay(replica_id=config.replica_id)


def default_presence_relay(config: Config, replica_id: str) -> PresenceRelay:
    """Redis pub/sub when replicas share a Redis; otherwise in-process (reaching nobody)."""
    if config.redis_url:
        from server.relay.redis_presence import RedisPresenceRelay

        return RedisPresenceRelay(config.redis_url, replica_id)
    return LocalPresenceRelay(replica_id=replica_id)


class WeftServer:
    """A running Weft server (see the module docstring)."""

    def __init__(
        self, config: Config | None = None, *, store: Store | None = None,
        relay: Relay | None = None, hooks: Hooks | None = None,
        presence: PresenceRelay | None = None,
        meta_policies: dict[str, str | Policy | MergeFn] | None = None,
    ) -> None:
        self.config = config or Config()
        self.metrics = Metrics()
        # Hooks (server.hooks): pass a Hooks, or register on server.hooks before start().
        self.hooks = hooks or Hooks(timeout=self.config.hook_timeout_seconds)
        self.hooks.metrics = self.metrics
        self.webhook: Webhook | None = None
        if self.config.webhook_url:
            self.webhook = Webhook(self.config.webhook_url, self.config.webhook_secret or "",
                                   events=self.config.webhook_events, metrics=self.metrics,
                                   replica=self.config.replica_id)
            self.webhook.attach(self.hooks)
        self.store = store or default_store(self.config, self.metrics)
        self.relay = relay or default_relay(self.store, self.config, self.metrics)
        limits = self.config.limits
        settings = RoomSettings(
            max_doc_bytes=limits.max_doc_bytes,
            max_outgoing_bytes=limits.max_outgoing_bytes,
            idle_seconds=self.config.room_idle_seconds,
            compact_every=self.config.compact_every,
        )
        self.rooms = Rooms(self.store, self.relay, self.metrics, settings, hooks=self.hooks)
        self.auth = Authenticator(self.config.auth_secret)
        self.ctx = Context(self.config, self.metrics, self.auth, self.rooms)
        # Ephemeral presence (cursors) between replicas: never in the document log.
        self.presence = presence or default_presence_relay(self.config, self.relay.replica_id)
        self.ctx.shared["presence-relay"] = self.presence
        self.documents = Documents(self.ctx)
        self.routes = HttpRoutes(self.auth, self.metrics, self._health, self.documents.read,
                                 self.documents.edit, self.config.web_root)
        self.routes.room_states = self.rooms.states
        self.history_service = History(self.ctx)
        self.routes.history = self.history_service
        self.homes = self._ot_ordering()
        # Document metadata (server.metadata): policies per field name or glob pattern, e.g.
        # {"tags": lambda old, new: sorted({*old, *new}), "notes": "multi-value"}; more with
        # server.meta.policy(pattern, spec).
        self.meta = build_meta(self.config, self.store, self.relay, meta_policies,
                               lambda: self.hooks)
        self.ctx.shared["meta"] = self.meta
        self.routes.meta = self.meta
        self.routes.authorize = self.hooks.authorize
        self._server: Server | None = None
        self._stopped = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.hooks.start()
        if self.webhook is not None:
            await self.webhook.start()
        await self.store.open()
        await self.relay.start()
        await self.presence.start()
        if self.homes is not None:
            await self.homes.start()
        self._server = await serve(
            self._handle, self.config.host, self.config.port,
            process_request=self.routes.process_request,
            create_connection=connection_class(self.config.limits.max_http_body_bytes),
            max_size=self.config.limits.max_message_bytes or None,
            ping_interval=self.config.ping_interval,
            compression=None,  # deflate per connection would cost more than the fan-out
            server_header="Weft",
        )
        log.info("Weft serving on %s (data: %s, auth: %s)", self.url,
                 _where(self.config.redis_url) or self.config.data_dir or "memory",
                 "on" if self.auth.enabled else "off")

    async def stop(self) -> None:
        """Close connections (1001), store every room, close the store.  Idempotent."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close(close_connections=True)
        await server.wait_closed()
        await self.rooms.close()
        if self.homes is not None:
            await self.homes.close()
        await self.hooks.close()  # after the rooms' last store events
        if self.webhook is not None:
            await self.webhook.close()
        await self.presence.close()
        await self.relay.close()
        await self.store.close()
        self._stopped.set()
        log.info("Weft stopped")

    def _ot_ordering(self) -> Homes | None:
        """On Redis, OT rooms attach to the sequencer when loaded (also REST-only ones); in
        home mode, the :class:`~server.protocols.ot_home.Homes` that forwards to homes."""
        if self.config.ot_ordering not in ("sequencer", "home"):
            raise ValueError(f"ot_ordering must be 'sequencer' or 'home', got "
                             f"{self.config.ot_ordering!r}")
        from server.protocols import ot_replicas
        from server.store.redis import RedisStore

        if not isinstance(self.store, RedisStore):
            return None
        self.rooms.on_loaded = ot_replicas.attach
        if self.config.ot_ordering != "home":
            return None
        from server.protocols.ot_home import Homes

        return Homes(self.store)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not running")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    @property
    def url(self) -> str:
        host = self.config.host
        return f"ws://{f'[{host}]' if ':' in host else host}:{self.port}"

    def _health(self) -> dict[str, Any]:
        return {"rooms": len(self.rooms), "connections": sum(self.metrics.connections.values())}

    # ---- WebSocket routing -----------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        path = urlsplit(ws.request.path if ws.request else "/").path
        endpoint = "ot" if path == "/ot" else "crdt"
        self.metrics.connections[endpoint] += 1
        self.metrics.connections_total[endpoint] += 1
        try:
            await self._session(ws, path)
        except ConnectionClosed:
            pass
        except WeftError as exc:
            self.metrics.closes_total[exc.close_code] += 1
            self.metrics.errors_total[exc.code] += 1
            await ws.close(exc.close_code, close_reason(exc))
        except Exception:
            log.exception("connection to %s failed", path)
            await ws.close(1011, "internal error; see server log")
        finally:
            self.metrics.connections[endpoint] -= 1

    async def _session(self, ws: ServerConnection, path: str) -> None:
        request = ws.request
        raw_path = request.path if request else ""
        grant = self.auth.grant(query_token(raw_path))
        name = None if path == "/ot" else doc_name(path[len("/crdt/"):])
        if self.hooks.has_connect:
            headers = request.headers if request else {}
            grant = await self.hooks.authorize(ConnectRequest(
                "ot" if name is None else "crdt", name, raw_path, headers, grant))
        forget_handshake(ws)  # idle memory: the headers are not needed any more
        if name is None:
            await ShareDBSession(ws, self.ctx, grant).run()
            return
        if not name:
            raise BadMessage("the CRDT endpoint is /crdt/<document>")
        await YjsSession(ws, self.ctx, grant, name).run()

    # ---- embedding -------------------------------------------------------------------------

    async def text(self, doc: str) -> str:
        """The current text of ``doc``."""
        return await self.documents.text(doc)

    async def info(self, doc: str, after: str | None = None) -> dict[str, Any]:
        """``{"name", "engine", "text", "token"[, "version"]}`` for ``doc``.

        ``token`` is the state's causal token (:mod:`server.causal`); pass a token as ``after``
        to get a state at least that new (waits for this replica to catch up, bounded by
        ``Config.causal_wait_seconds``, else raises :class:`server.causal.NotCaughtUp`).
        """
        return await self.documents.read(doc, OPEN_GRANT, after)

    async def snapshot(self, doc: str, after: str | None = None) -> tuple[str, str]:
        """``(text, token)`` of one state of ``doc`` (at least as new as ``after``, if given)."""
        info = await self.info(doc, after)
        return info["text"], info["token"]

    async def edit(self, doc: str, *, pos: int, insert: str | None = None,
                   delete: int | None = None, engine: str | None = None,
                   author: str = "server", after: str | None = None) -> dict[str, Any]:
        """Insert ``insert`` or delete ``delete`` code points at ``pos``, as clients see it.

        Returns once the edit is durable and delivered.  ``engine`` creates a missing document.
        ``after`` (a causal token) makes the edit wait until the document covers it.
        """
        body: dict[str, Any] = {"pos": pos, "author": author}
        if insert is not None:
            body["insert"] = insert
        if delete is not None:
            body["delete"] = delete
        if engine is not None:
            body["engine"] = engine
        return await self.documents.edit(doc, OPEN_GRANT, body, after)

    # ---- history (server.history) ------------------------------------------------------------

    async def history(self, doc: str) -> dict[str, Any]:
        """The kept versions of ``doc``: ``{"oldest", "head", "versions": [{"version", "time",
        "author"}]}``; version n is the document after its first n logged changes."""
        return await self.history_service.versions(doc)

    async def text_at(self, doc: str, *, version: int | None = None,
                      at: str | float | None = None) -> str:
        """The text of ``doc`` at ``version`` or at time ``at`` (ISO 8601 or epoch seconds);
        raises :class:`server.history.HistoryCompacted` if that is no longer kept."""
        text: str = (await self.history_service.text_at(doc, version, at))["text"]
        return text

    async def restore(self, doc: str, version: int, *, author: str = "server") -> dict[str, Any]:
        """Bring ``doc`` back to ``version`` with one new (undoable) edit; clients see a change."""
        return await self.history_service.restore(doc, version, author)

    async def undo(self, doc: str, user: str) -> dict[str, Any]:
        """Undo ``user``'s latest own edit (others' later edits stay), as a new edit."""
        return await self.history_service.undo(doc, user)

    async def redo(self, doc: str, user: str) -> dict[str, Any]:
        """Redo ``user``'s latest undo, as a new edit."""
        return await self.history_service.redo(doc, user)

    @asynccontextmanager
    async def changes(self, doc: str, engine: str | None = None) -> AsyncIterator[
        asyncio.Queue[ChangeEvent]
    ]:
        """A queue of the document's committed changes (engine payloads) while open."""
        async with self.documents.changes(doc, engine) as queue:
            yield queue
