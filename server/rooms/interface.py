"""What a room shares with the rest of the server: the connections it serves, the change events
it emits, and the settings it runs with.

Kept apart from :mod:`server.rooms.room` so the modules a room is built from
(:mod:`server.rooms.changes`, :mod:`server.rooms.fanout`) can name these without importing
the room itself.  All three are re-exported by :mod:`server.rooms.room` and
:mod:`server.rooms`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.asyncio.connection import Connection

from server.errors import WeftError


class Peer(Protocol):
    """A connection as a room sees it: where frames go, and how to drop it."""

    @property
    def ws(self) -> Connection | None: ...

    def drop(self, error: WeftError) -> None:
        """Close the connection with the error's close code and reason (never raises)."""
        ...


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A committed change, as embedding apps and relays see it (engine payloads, not frames)."""

    doc: str
    kind: str
    payloads: tuple[Any, ...]
    author: str
    remote: bool = False


Listener = Callable[[ChangeEvent], None]


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """The parts of the server config a room needs."""

    max_doc_bytes: int
    max_outgoing_bytes: int
    idle_seconds: float
    compact_every: int
