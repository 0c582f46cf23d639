"""Hooks: async functions an embedding app registers to see — or decide — what the server does.

::

    hooks = Hooks(timeout=2.0)

    @hooks.on("connect")
    async def check(req: ConnectRequest) -> ConnectDecision:
        if req.headers.get("X-User") is None:
            return Deny("log in first")
        return Allow(role="read" if req.doc and req.doc.startswith("archive/") else None)

    @hooks.on("change")
    async def index(event: ChangeEvent) -> None: ...

    server = WeftServer(config, hooks=hooks)     # or: server.hooks.on_change(index)

Events and when they fire:

* ``connect`` (:class:`ConnectRequest` → :class:`Allow` / :class:`Deny` / None) — awaited
  before a WebSocket session starts or a REST request is served, after the token was verified
  (an invalid token never reaches the hook).  Hooks run in registration order; each sees the
  grant the previous one left; the first :class:`Deny` wins.  **Fail closed:** a connect hook
  that raises, times out or returns anything else denies, with a reason saying so — a broken
  auth hook must not open every document.  ``/ot`` is asked once per connection with
  ``doc=None`` (ShareDB names documents per message; the token's pattern still applies to
  each — a hook changes only the role, never the pattern).  A deny closes a WebSocket with
  4403 after the handshake (y-websocket does not reconnect on 44xx) and answers REST with 403.
* ``load`` (:class:`LoadEvent` → ``str | None``) — awaited while a room loads, before any client
  sees the document.  A string seeds a *new* document (see :meth:`Hooks.on_load`).  A failing
  load hook is logged and counted, and the room loads unseeded (fail open: it decides content,
  not access).
* ``change`` (:class:`server.rooms.room.ChangeEvent`) — after a change is committed (durable),
  in commit order, only on the replica that committed it (remote changes relayed from other
  replicas do not fire, so a cluster fires each change once; for OT on Redis that is the replica
  whose compare-and-set succeeded — the document's home in home mode).  CRDT updates reach
  other clients *before* they are durable (see :mod:`server.rooms.adapters`); the hook still
  waits for durability.  A load hook's seed is not a change.
* ``store`` (:class:`StoreEvent`) — after a change's log records, or a compaction snapshot, are
  durably stored (on the replica that wrote them).
* ``meta_conflict`` (whatever the metadata module passes to :meth:`Hooks.emit`).

``change``, ``store`` and ``meta_conflict`` are notifications: :meth:`Hooks.emit` only appends
to a bounded queue (O(1), never awaits), so the fan-out path is never slowed.  One worker task
runs the queued events in emit order, each handler under the per-hook ``timeout``; a handler
that raises or times out is logged and counted in ``weft_hook_failures_total`` and the next
event runs — the edit is already durable and delivered, and events hold no room, so nothing is
lost or kept loaded.  If the queue is full the oldest event is dropped (counted in
``weft_hook_events_dropped_total``, logged at most every 5 s).

Sinks (:meth:`Hooks.add_sink`) see every notification *and* load event synchronously, at emit
time; the webhook (:mod:`server.hooks.webhook`) is one.

Server modules emit through ``ctx.rooms.hooks`` (None only when rooms were built without
hooks); the metadata module calls ``hooks.emit("meta_conflict", event)`` with an immutable
value (a frozen dataclass or a dict it no longer changes; the webhook sends it as JSON).
Use one :class:`Hooks` per server: the server binds its metrics to it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from server.auth import Grant
from server.errors import Forbidden
from server.hooks.events import Allow, ConnectDecision, ConnectRequest, Deny, LoadEvent, StoreEvent
from server.hooks.queue import DropOldestQueue
from server.metrics import Metrics

if TYPE_CHECKING:
    from server.rooms.room import ChangeEvent

log = logging.getLogger("weft.hooks")

EventName = Literal["connect", "load", "change", "store", "meta_conflict"]
EVENTS: tuple[EventName, ...] = ("connect", "load", "change", "store", "meta_conflict")
#: Events delivered through the queue (fire-and-forget), as opposed to awaited decisions.
NOTIFICATIONS = frozenset({"change", "store", "meta_conflict"})

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[[Any], Any]  # sync or async; an awaitable result is awaited
Sink = Callable[[str, Any], None]


class Hooks:
    """The hooks of one server (see the module docstring)."""

    def __init__(self, *, timeout: float = 5.0, queue_size: int = 10_000,
                 metrics: Metrics | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f"hook timeout must be > 0 seconds, got {timeout}")
        self.timeout = timeout
        self.metrics = metrics or Metrics()
        self._handlers: dict[str, list[Handler]] = {name: [] for name in EVENTS}
        self._sinks: list[Sink] = []
        self._queue: DropOldestQueue[tuple[str, Any]] = DropOldestQueue(
            queue_size, "hook", log, self._dropped)
        self._worker: asyncio.Task[None] | None = None
        self._pending = 0  # queued or running notifications
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- registration ----------------------------------------------------------------------

    def on(self, event: EventName) -> Callable[[F], F]:
        """Decorator: ``@hooks.on("change")`` registers the function for ``event``."""
        if event not in self._handlers:
            raise ValueError(f"unknown hook event {event!r}; expected one of {EVENTS}")

        def register(fn: F) -> F:
            self._handlers[event].append(fn)
            return fn

        return register

    def on_connect(
        self, fn: Callable[[ConnectRequest], Awaitable[ConnectDecision]]
    ) -> Callable[[ConnectRequest], Awaitable[ConnectDecision]]:
        return self.on("connect")(fn)

    def on_load(
        self, fn: Callable[[LoadEvent], Awaitable[str | None]]
    ) -> Callable[[LoadEvent], Awaitable[str | None]]:
        """Register a load hook; a returned string seeds a *new* document with that text.

        Seeding is applied and stored before the room goes live.  Supported for CRDT
        documents and for OT documents on the embedded store; ignored (with a warning) for OT
        documents on Redis, whose versions only the sequencer may assign.  Across replicas,
        two replicas loading the same new CRDT document at the same moment may both seed it
        (the text then appears twice): seed from one place (``server.edit``) when that matters.
        """
        return self.on("load")(fn)

    def on_change(
        self, fn: Callable[[ChangeEvent], Awaitable[None]]
    ) -> Callable[[ChangeEvent], Awaitable[None]]:
        return self.on("change")(fn)

    def on_store(
        self, fn: Callable[[StoreEvent], Awaitable[None]]
    ) -> Callable[[StoreEvent], Awaitable[None]]:
        return self.on("store")(fn)

    def on_meta_conflict(self, fn: Callable[[Any], Awaitable[None]]) -> Callable[[Any],
                                                                                  Awaitable[None]]:
        return self.on("meta_conflict")(fn)

    def add_sink(self, sink: Sink) -> None:
        """Call ``sink(event_name, event)`` synchronously for every notification and load.

        A sink must not block (the webhook only enqueues); exceptions are logged and counted.
        """
        self._sinks.append(sink)

    def wants(self, event: str) -> bool:
        """Is anyone listening?  Lets hot paths skip building events nobody reads."""
        return bool(self._sinks or self._handlers.get(event))

    # ---- notifications ---------------------------------------------------------------------

    def emit(self, event: str, payload: Any) -> None:
        """Queue a notification (``change``, ``store``, ``meta_conflict``); never awaits."""
        if event not in NOTIFICATIONS:
            raise ValueError(f"{event!r} is not a notification; expected one of "
                             f"{sorted(NOTIFICATIONS)}")
        self._to_sinks(event, payload)
        if self._handlers[event]:
            self._pending += 1
            self._idle.clear()
            self._queue.put((event, payload))

    def _to_sinks(self, event: str, payload: Any) -> None:
        for sink in self._sinks:
            try:
                sink(event, payload)
            except Exception:
                self.metrics.hook_failures_total[(event, "error")] += 1
                log.exception("hook sink for %r failed", event)

    def _dropped(self, item: tuple[str, Any]) -> None:
        self.metrics.hook_dropped_total[item[0]] += 1
        self._done()

    def _done(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._pending = 0
            self._idle.set()

    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="hooks")

    async def drain(self) -> None:
        """Wait until every queued notification was handled (tests, shutdown)."""
        await self._idle.wait()

    async def close(self, timeout: float = 5.0) -> None:
        """Run what is queued (for at most ``timeout`` seconds), then stop the worker."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except TimeoutError:
            log.warning("hooks: %d queued events not run at shutdown", len(self._queue))
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            event, payload = await self._queue.get()
            try:
                for handler in list(self._handlers[event]):
                    await self._call(event, handler, payload)
            finally:
                self._done()

    async def _call(self, event: str, handler: Handler, payload: Any) -> Any:
        """Run one handler under the timeout; re-raise its failure after counting it."""
        self.metrics.hook_calls_total[event] += 1
        try:
            result = handler(payload)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, self.timeout)
        except TimeoutError:
            self.metrics.hook_failures_total[(event, "timeout")] += 1
            log.error("%s hook %s timed out after %gs", event, _name(handler), self.timeout)
            if event in NOTIFICATIONS:
                return None
            raise
        except Exception:
            self.metrics.hook_failures_total[(event, "error")] += 1
            log.exception("%s hook %s failed", event, _name(handler))
            if event in NOTIFICATIONS:
                return None
            raise
        return result

    # ---- decisions -------------------------------------------------------------------------

    async def authorize(self, request: ConnectRequest) -> Grant:
        """Run the connect hooks; the resulting grant, or :class:`Forbidden` (fail closed)."""
        grant = request.grant
        for handler in self._handlers["connect"]:
            try:
                decision = await self._call("connect", handler, replace(request, grant=grant))
            except TimeoutError:
                raise Forbidden("access check timed out; denied") from None
            except Exception:
                raise Forbidden("access check failed; denied (see server log)") from None
            if isinstance(decision, Deny):
                raise Forbidden(decision.reason or "access denied")
            if isinstance(decision, Allow):
                if decision.role is not None:
                    grant = replace(grant, role=decision.role)
                if decision.user is not None:
                    grant = replace(grant, user=decision.user)
            elif decision is not None:
                self.metrics.hook_failures_total[("connect", "error")] += 1
                log.error("connect hook %s returned %r; expected Allow, Deny or None",
                          _name(handler), decision)
                raise Forbidden("access check failed; denied (see server log)")
        return grant

    @property
    def has_connect(self) -> bool:
        return bool(self._handlers["connect"])

    async def load(self, event: LoadEvent) -> str | None:
        """Run the load hooks; the first string returned (for a new document) seeds it."""
        self._to_sinks("load", event)
        seed: str | None = None
        for handler in self._handlers["load"]:
            try:
                result = await self._call("load", handler, event)
            except Exception:
                continue  # logged and counted; the room loads unseeded (fail open)
            if result is None:
                continue
            if not isinstance(result, str):
                log.error("load hook %s returned %r; expected a str or None", _name(handler),
                          type(result).__name__)
            elif not event.new:
                log.warning("load hook %s returned text for existing document %r; ignored",
                            _name(handler), event.doc)
            elif seed is None:
                seed = result
        return seed


def _name(fn: object) -> str:
    name: str = getattr(fn, "__qualname__", None) or repr(fn)
    return name
