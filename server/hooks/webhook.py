"""The signed webhook: POST each chosen event as JSON to one URL, off the hot path.

Body (UTF-8 JSON)::

    {"id": "<delivery id, the same on every retry>", "event": "change", "time": 1763900000.1,
     "replica": "r1" | null, "data": {...the event, see below...}}

Headers: ``X-Weft-Signature: sha256=<hex HMAC-SHA256 of the exact body under the secret>``,
``X-Weft-Event``, ``X-Weft-Delivery`` (the id: receivers dedupe retries with it).  A receiver
recomputes the HMAC over the raw body and compares in constant time.

``data`` is the event as JSON: dataclass fields by name, bytes as base64 (a CRDT change's
``payloads`` are base64 Yjs updates; an OT change's are ``{"version", "op", "src", "seq"}``).

Delivery: :meth:`Webhook.offer` (a hook sink, called at emit time) only appends the event to
a bounded queue (it is encoded later, by the sending task); when the queue is full the oldest
event is dropped (``weft_webhook_deliveries_total{result="dropped"}`` and a log line).  One
task sends the events one at a time, in order.  2xx is success; network errors, timeouts, 408,
429 and 5xx are retried up to ``max_attempts`` times with exponential backoff
(``backoff * 2**n`` capped at ``max_backoff``, "equal jitter": a random delay between half and
all of it, so many replicas do not retry in lockstep); other statuses fail at once.  A failed
event is logged and counted (``result="failed"``) and the next one goes.  The HTTP client is
the stdlib's asyncio streams: one short request per attempt (``Connection: close``); https URLs
use the default TLS context.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from server.hooks.core import Hooks
from server.hooks.queue import DropOldestQueue
from server.metrics import Metrics

log = logging.getLogger("weft.webhook")

WEBHOOK_EVENTS = ("change", "store", "load", "meta_conflict")
RETRY_STATUSES = frozenset({408, 429})
MAX_RESPONSE_HEAD = 64 * 1024


def sign(secret: str, body: bytes) -> str:
    """The ``X-Weft-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    raise TypeError(f"cannot send {type(obj).__name__} in a webhook")


def encode_event(delivery_id: str, event: str, payload: Any, replica: str | None,
                 at: float) -> bytes:
    return orjson.dumps({"id": delivery_id, "event": event, "time": at, "replica": replica,
                         "data": payload}, default=_default)


@dataclass(frozen=True, slots=True)
class _Delivery:
    event: str
    payload: Any  # events are immutable values; encoded by the sending task, not at emit
    at: float


class DeliveryError(Exception):
    """One attempt failed; ``retry`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Webhook:
    """POSTs events to ``url`` (see the module docstring)."""

    def __init__(
        self, url: str, secret: str, *, events: Iterable[str] = ("change",),
        metrics: Metrics | None = None, replica: str | None = None, queue_size: int = 1000,
        max_attempts: int = 5, backoff: float = 0.5, max_backoff: float = 30.0,
        timeout: float = 10.0, rng: Callable[[], float] = random.random,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http(s)://host[:port]/path, got {url!r}")
        if not secret:
            raise ValueError("a webhook needs a secret to sign its bodies (--webhook-secret)")
        self.events = frozenset(events)
        unknown = self.events - set(WEBHOOK_EVENTS)
        if unknown or not self.events:
            raise ValueError(f"webhook events must be among {WEBHOOK_EVENTS}, got "
                             f"{sorted(self.events)}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.url = url
        self._secret = secret
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._host_header = parts.netloc.rpartition("@")[2]
        self.metrics = metrics or Metrics()
        self.replica = replica
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._rng = rng
        self._queue: DropOldestQueue[_Delivery] = DropOldestQueue(
            queue_size, "webhook", log, self._dropped)
        self._worker: asyncio.Task[None] | None = None
        self._busy = False

    def attach(self, hooks: Hooks) -> None:
        hooks.add_sink(self.offer)

    def offer(self, event: str, payload: Any) -> None:
        """Queue ``event`` if this webhook sends it (O(1); encoding happens off this path)."""
        if event in self.events:
            self._queue.put(_Delivery(event, payload, time.time()))

    def _dropped(self, _: _Delivery) -> None:
        self.metrics.webhook_deliveries_total["dropped"] += 1

    @property
    def pending(self) -> int:
        return len(self._queue) + self._busy

    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="webhook")

    async def close(self, timeout: float = 5.0) -> None:
        """Keep delivering for up to ``timeout`` seconds, then stop (undelivered are logged)."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.pending:
            log.warning("webhook: %d events not delivered at shutdown", self.pending)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            delivery = await self._queue.get()
            self._busy = True
            try:
                await self._deliver(delivery)
            finally:
                self._busy = False

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        full = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return full / 2 + self._rng() * full / 2

    async def _deliver(self, delivery: _Delivery) -> None:
        delivery_id = uuid.uuid4().hex
        try:
            body = encode_event(delivery_id, delivery.event, delivery.payload, self.replica,
                                delivery.at)
        except TypeError as exc:
            self.metrics.webhook_deliveries_total["failed"] += 1
            log.error("webhook: cannot encode a %s event: %s", delivery.event, exc)
            return
        for attempt in range(1, self.max_attempts + 1):
            self.metrics.webhook_attempts_total += 1
            try:
                await asyncio.wait_for(self._post(delivery_id, delivery.event, body),
                                       self.timeout)
            except (DeliveryError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                retry = exc.retry if isinstance(exc, DeliveryError) else True
                reason = str(exc) or type(exc).__name__
                if retry and attempt < self.max_attempts:
                    wait = self.delay(attempt)
                    log.info("webhook %s (%s) attempt %d failed: %s; retrying in %.2fs",
                             delivery_id, delivery.event, attempt, reason, wait)
                    await asyncio.sleep(wait)
                    continue
                self.metrics.webhook_deliveries_total["failed"] += 1
                log.error("webhook %s (%s) to %s failed after %d attempt(s): %s", delivery_id,
                          delivery.event, self.url, attempt, reason)
                return
            self.metrics.webhook_deliveries_total["delivered"] += 1
            return

    async def _post(self, delivery_id: str, event: str, body: bytes) -> None:
        """One attempt: a POST over a fresh connection; raises unless the status is 2xx."""
        context = ssl.create_default_context() if self._tls else None
        reader, writer = await asyncio.open_connection(self._host, self._port, ssl=context)
        try:
            head = (
                f"POST {self._target} HTTP/1.1\r\n"
                f"Host: {self._host_header}\r\n"
                "User-Agent: Weft-Webhook/1\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"X-Weft-Event: {event}\r\n"
                f"X-Weft-Delivery: {delivery_id}\r\n"
                f"X-Weft-Signature: {sign(self._secret, body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                raise DeliveryError("connection closed before a response", retry=True)
            status = _status(status_line)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if 200 <= status < 300:
            return
        retry = status >= 500 or status in RETRY_STATUSES
        raise DeliveryError(f"receiver answered HTTP {status}", retry=retry)


def _status(line: bytes) -> int:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise DeliveryError(f"not an HTTP response: {line[:80]!r}", retry=True)
    return int(parts[1])
