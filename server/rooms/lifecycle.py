"""A room's lifecycle as a table you can read (h11 style), not branches spread through code.

::

    LOADING ──loaded──► LIVE ──idle──► STORING ──stored──► UNLOADED
       │                 ▲  │             │
       └──load_failed──► │  └─failed──►   ├──rejoined──► LIVE   (a client came back: keep it)
                         │                └──store_failed──► LIVE (keep the data, retry later)
                         └──────────── UNLOADED on failed (storage broke: drop, reload later)

Invariants the table encodes:

* a room leaves the registry only in UNLOADED, and reaches UNLOADED only after every accepted
  change is durable (from STORING) or when it never held state (load failed) or when its
  in-memory state can no longer be trusted (a write failed: clients resync on reconnect);
* a client joining a STORING room turns it LIVE again instead of racing a fresh load of the same
  document — so an edit made while the room unloads is never lost.
"""

from __future__ import annotations

import enum


class RoomState(enum.Enum):
    LOADING = "loading"
    LIVE = "live"
    STORING = "storing"
    UNLOADED = "unloaded"


class RoomEvent(enum.Enum):
    LOADED = "loaded"
    LOAD_FAILED = "load_failed"
    IDLE = "idle"
    REJOINED = "rejoined"
    STORED = "stored"
    STORE_FAILED = "store_failed"
    FAILED = "failed"
    SHUTDOWN = "shutdown"


S, E = RoomState, RoomEvent

TRANSITIONS: dict[tuple[RoomState, RoomEvent], RoomState] = {
    (S.LOADING, E.LOADED): S.LIVE,
    (S.LOADING, E.LOAD_FAILED): S.UNLOADED,
    (S.LIVE, E.IDLE): S.STORING,
    (S.LIVE, E.SHUTDOWN): S.STORING,
    (S.LIVE, E.FAILED): S.UNLOADED,
    (S.STORING, E.REJOINED): S.LIVE,
    (S.STORING, E.STORED): S.UNLOADED,
    (S.STORING, E.STORE_FAILED): S.LIVE,
    (S.STORING, E.FAILED): S.UNLOADED,
    (S.STORING, E.SHUTDOWN): S.STORING,
}


class InvalidTransition(RuntimeError):
    """A bug: the room received an event its current state does not accept."""


def next_state(state: RoomState, event: RoomEvent) -> RoomState:
    """The state after ``event``; raise :class:`InvalidTransition` if the table forbids it."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"room in state {state.value} cannot take {event.value}") from None
