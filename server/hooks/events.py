"""What hooks receive and what a connect hook answers: small immutable values.

The change event is the rooms' own :class:`server.rooms.room.ChangeEvent` (``doc``, ``kind``,
``payloads``, ``author``, ``remote``) — the same value :meth:`WeftServer.changes` queues — so
an app sees one shape whichever way it follows changes.  Its payloads are engine payloads:
:class:`engines.ot_engine.OTCommitted` (``version``, ``op``, ``src``, ``seq``) for OT, the Yjs
update bytes for CRDT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from server.auth import Grant, Role

#: Which door a connection came through: the two WebSocket endpoints or the REST API.
Endpoint = Literal["ot", "crdt", "rest"]


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """A connection (WebSocket) or request (REST) asking for access, after token checks.

    ``doc`` is the document for ``/crdt/<doc>`` and the REST API; None for ``/ot``, whose
    ShareDB connection names documents later, per message (the grant's pattern still applies
    to each of them).  ``grant`` is what the token allows (everything when auth is off).
    """

    endpoint: Endpoint
    doc: str | None
    path: str
    headers: Mapping[str, str]
    grant: Grant
    method: str = "GET"


@dataclass(frozen=True, slots=True)
class Allow:
    """Let the connection in; ``role`` replaces the token's role when given."""

    role: Role | None = None
    # Names the user the connection speaks for (author of its edits); None keeps the token's.
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Deny:
    """Refuse: WebSockets are closed with 4403 and ``reason``; REST answers 403."""

    reason: str = "access denied"


#: A connect hook returns one of these; None means "no objection" (Allow()).
ConnectDecision = Allow | Deny | None


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """Something became durable: log ``records`` of a change, or a compacted ``snapshot``.

    ``count`` is the number of records (1 for a snapshot); ``upto`` the last log sequence
    number the snapshot covers (0 for records).
    """

    doc: str
    kind: str
    what: Literal["records", "snapshot"]
    count: int
    author: str = ""
    upto: int = 0


@dataclass(frozen=True, slots=True)
class LoadEvent:
    """A room is loading ``doc``; ``new`` when the store has never seen it.

    A load hook may return a string to seed a new document with that text (see
    :meth:`server.hooks.core.Hooks.on_load` for where seeding is supported).
    """

    doc: str
    kind: str
    new: bool
