"""Server-side awareness (presence: cursors, user names) for one document, per connection.

Built on pycrdt's :class:`~pycrdt.Awareness`, which implements the y-protocols clock rules and
encoding.  What it lacks for a server, added here:

* **Validation first.** pycrdt's decoder trusts its input — a truncated update raises
  ``IndexError`` after the entries before it were applied, bad JSON raises after the same.  Here
  the whole update is decoded and checked (bounded varints, UTF-8, strict JSON: no ``NaN``,
  which a JavaScript peer's ``JSON.parse`` would throw on) before anything is applied, so a
  malformed update raises :class:`~crdt.errors.ProtocolError` and changes nothing.
* **Which connection controls which client ids**, so that when a connection closes the server
  can broadcast the removal of its users (as y-websocket's server does).
* **No presence of its own**: pycrdt's ``Awareness`` starts with a local state ``{}`` for the
  server's client id; a server must not appear as a user, so it is cleared.
* **Expiry without a task**: pycrdt expires silent clients from an anyio task; a pure core
  cannot start tasks, so :meth:`AwarenessRegistry.expire` does one pass when the caller asks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Hashable
from typing import Any

from pycrdt import Awareness, Doc

from crdt.errors import ProtocolError
from crdt.lib0 import DecodeError, check_count, read_var_string, read_var_uint

OUTDATED_TIMEOUT_MS = 30_000  # y-protocols' outdatedTimeout: a client renews every 15 s


def decode_awareness_update(update: bytes) -> list[tuple[int, int, Any]]:
    """Decode an awareness update into ``[(client_id, clock, state or None)]``, strictly."""
    if not isinstance(update, bytes):
        raise ProtocolError(f"an awareness update must be bytes, not {type(update).__name__}")
    entries: list[tuple[int, int, Any]] = []
    try:
        count, pos = read_var_uint(update, 0)
        check_count(update, pos, count, "awareness entries")
        for _ in range(count):
            client, pos = read_var_uint(update, pos)
            clock, pos = read_var_uint(update, pos)
            raw, pos = read_var_string(update, pos)
            entries.append((client, clock, _parse_state(raw, client)))
    except DecodeError as exc:
        raise ProtocolError(f"malformed awareness update: {exc}") from None
    if pos != len(update):
        raise ProtocolError(
            f"malformed awareness update: {len(update) - pos} unexpected bytes after the entries"
        )
    return entries


def _parse_state(raw: str, client: int) -> Any:
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:
        raise ProtocolError(
            f"awareness state of client {client} is not valid JSON: {exc}"
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class AwarenessRegistry:
    """The awareness states of one document's clients, and the connection each came through."""

    def __init__(self) -> None:
        self._awareness = Awareness(Doc())
        self._awareness.set_local_state(None)  # the server itself is nobody's collaborator
        self._by_connection: dict[Hashable, set[int]] = {}
        self._owner: dict[int, Hashable] = {}  # client id -> the connection that last spoke for it
        self._changed = False
        self._awareness.observe(self._on_event)

    @property
    def states(self) -> dict[int, Any]:
        """Current states by client id (a copy)."""
        return dict(self._awareness.states)

    def clients_of(self, connection: Hashable) -> frozenset[int]:
        return frozenset(self._by_connection.get(connection, ()))

    def owner_of(self, client: int) -> Hashable | None:
        """The connection that last spoke for ``client`` (None if none does)."""
        return self._owner.get(client)

    def update_for(self, clients: list[int]) -> bytes | None:
        """An awareness update with the current entries of ``clients`` it knows, if any."""
        known = [c for c in clients if c in self._awareness.meta]
        return self._awareness.encode_awareness_update(known) if known else None

    def apply(self, connection: Hashable, update: bytes) -> bool:
        """Apply an awareness update received on ``connection``; return whether it was news.

        ``False`` means every entry was stale (an older clock): nothing to forward.
        """
        decode_awareness_update(update)  # raises before anything is applied
        self._by_connection.setdefault(connection, set())
        self._changed = False
        self._awareness.apply_awareness_update(update, connection)
        return self._changed

    def remove_connection(self, connection: Hashable) -> bytes | None:
        """Forget a closed connection; return the awareness update announcing its users left."""
        clients = self._by_connection.pop(connection, set())
        for client in clients:
            self._owner.pop(client, None)
        present = [c for c in clients if c in self._awareness.states]
        if not present:
            return None
        self._awareness.remove_awareness_states(present, connection)
        return self._awareness.encode_awareness_update(present)

    def full_update(self) -> bytes | None:
        """An awareness update holding every current state (for newcomers and queryAwareness)."""
        clients = list(self._awareness.states)
        if not clients:
            return None
        return self._awareness.encode_awareness_update(clients)

    def expire(
        self, now_ms: int | None = None, timeout_ms: int = OUTDATED_TIMEOUT_MS
    ) -> bytes | None:
        """Remove clients silent for ``timeout_ms``; return the update announcing it, if any."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        meta = self._awareness.meta
        stale = [
            c for c in self._awareness.states if now - meta[c]["lastUpdated"] >= timeout_ms
        ]
        if not stale:
            return None
        self._awareness.remove_awareness_states(stale, "timeout")
        for client in stale:
            owner = self._owner.pop(client, None)
            if owner is not None:
                self._by_connection[owner].discard(client)
        return self._awareness.encode_awareness_update(stale)

    def _on_event(self, topic: str, event: tuple[dict[str, list[int]], Any]) -> None:
        if topic != "update":
            return
        changes, origin = event
        self._changed = True
        clients = self._by_connection.get(origin)
        if clients is None:  # our own removals (closed connection, timeout)
            return
        for client in (*changes["added"], *changes["updated"]):
            owner = self._owner.get(client)
            if owner != origin:  # a client id moved to this connection (e.g. a reconnect)
                if owner is not None:
                    self._by_connection[owner].discard(client)
                self._owner[client] = origin
                clients.add(client)
        for client in changes["removed"]:
            if self._owner.get(client) == origin:
                del self._owner[client]
            clients.discard(client)
