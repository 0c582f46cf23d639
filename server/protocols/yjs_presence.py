"""Yjs awareness across replicas: what :mod:`server.protocols.yjs` adds when several replicas
serve one document.

Each replica keeps the awareness of a document in the room's
:class:`~crdt.awareness.AwarenessRegistry` and relays it through the
:class:`~server.relay.presence.PresenceRelay` (topic ``("yjs", document)``):

* a local client's awareness frame that was news is published as received; a replica
  receiving it applies it to its registry as if a connection named after the origin replica
  (:class:`Replica`) had sent it and, if it is news there too, forwards the same bytes to its
  own clients (no re-encoding).  Holding remote states in the registry is what makes a
  newcomer see them at once (the sync server's opening frames carry every state) and what
  makes y-websocket providers' echoes of them stale rather than news (a provider re-sends every
  awareness change it applies, whoever made it);
* a replica that starts serving a document asks the others for their states (a
  query-awareness frame; each answers with its own clients' states);
* a closing connection's removal is published like any update;
* every ``refresh`` seconds each replica re-publishes its own clients' states (same clocks: a
  heartbeat, news for nobody).  A :class:`~crdt.remote_awareness.RemoteAwareness` per document
  records when each remote state was last heard, and states silent for ``timeout`` are removed
  — so a replica that died without publishing removals loses its users after at most
  ``timeout`` + one check period, and a removal lost in transit is repaired the same way.

A replica listens to a document's topic while at least one of its Yjs connections is open on
it; when the last one closes it forgets the remote states (nobody here needs them, and nothing
keeps them fresh).  Timing uses a loop timer, armed while some document is served here.

Known limit (as with one y-websocket server): a client that reconnects through another replica
keeps its clock, so a removal published late by the replica it left hides it until its next
renewal (at most 15 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from crdt.errors import ProtocolError
from crdt.remote_awareness import RemoteAwareness
from crdt.sync import FrameKind, SyncServer, awareness_frame, query_awareness_frame, read_frame
from server.relay.presence import LocalPresenceRelay, PresenceMessage, PresenceRelay, Topic
from server.rooms.room import Room

log = logging.getLogger("weft.crdt")


@dataclass(frozen=True, slots=True)
class Replica:
    """The registry "connection" speaking for the clients of another replica."""

    origin: str


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sync(room: Room) -> SyncServer | None:
    return room.presence if isinstance(room.presence, SyncServer) else None


class YjsPresence:
    """Awareness relaying for every Yjs document this replica serves."""

    def __init__(self, relay: PresenceRelay, refresh_seconds: float = 15.0,
                 timeout_seconds: float = 30.0) -> None:
        if refresh_seconds <= 0 or timeout_seconds < 1.5 * refresh_seconds:
            raise ValueError(  # a heartbeat comes every refresh + one check period at worst
                f"presence timeout ({timeout_seconds}s) must be at least 1.5 times the "
                f"refresh period ({refresh_seconds}s), which must be positive")
        self.relay = relay
        self.active = not relay.solo  # a lone replica has nobody to tell: no work at all
        self.refresh_seconds = refresh_seconds
        self.timeout_ms = int(timeout_seconds * 1000)
        self.rooms: dict[str, Room] = {}
        self.sessions: dict[str, int] = {}
        self.remote: dict[str, RemoteAwareness] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._last_refresh = time.monotonic()

    @staticmethod
    def topic(doc: str) -> Topic:
        return ("yjs", doc)

    # ---- local connections ---------------------------------------------------------------

    def join(self, room: Room) -> None:
        """A local connection opened ``room`` (after the sync server's opening frames)."""
        if not self.active:
            return
        name = room.name
        self.rooms[name] = room
        self.sessions[name] = self.sessions.get(name, 0) + 1
        if name not in self.remote:
            self.remote[name] = RemoteAwareness(self.timeout_ms)
            self.relay.subscribe(self.topic(name), self._on_message)
            self.relay.publish(self.topic(name), query_awareness_frame())
        self._arm()

    def leave(self, room: Room, removals: tuple[bytes, ...]) -> None:
        """A local connection closed; ``removals`` announce its clients are gone."""
        if not self.active:
            return
        name = room.name
        for frame in removals:
            self.relay.publish(self.topic(name), frame)
        left = self.sessions.get(name, 0) - 1
        if left > 0:
            self.sessions[name] = left
            return
        self.sessions.pop(name, None)
        self.rooms.pop(name, None)
        cache = self.remote.pop(name, None)
        self.relay.unsubscribe(self.topic(name))
        sync = _sync(room)
        if cache is not None and sync is not None:  # stale from now on: forget them
            for origin in set(cache.present.values()):
                sync.awareness.remove_connection(Replica(origin))
        if not self.rooms and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def published(self, room: Room, frame: bytes) -> None:
        """A local client's awareness frame that was news: tell the other replicas."""
        if self.active:
            self.relay.publish(self.topic(room.name), frame)

    # ---- other replicas --------------------------------------------------------------------

    def _on_message(self, message: PresenceMessage) -> None:
        name = message.topic[1]
        room, cache = self.rooms.get(name), self.remote.get(name)
        sync = _sync(room) if room is not None else None
        if room is None or cache is None or sync is None:
            return
        try:
            frame = read_frame(message.payload)
            if frame.kind is FrameKind.QUERY_AWARENESS:
                self._publish_local(room)
                return
            if frame.kind is not FrameKind.AWARENESS:
                return
            news = sync.awareness.apply(Replica(message.origin), frame.payload)
        except ProtocolError as exc:  # a peer replica's bug: never forward garbage
            log.warning("presence frame from replica %s for %r rejected: %s",
                        message.origin, name, exc)
            return
        cache.heard(message.origin, frame.payload, _now_ms())
        if news:
            room.fanout(frame.raw)

    def _publish_local(self, room: Room) -> None:
        """Publish the states of this replica's own clients (not those relayed to it)."""
        sync = _sync(room)
        if sync is None:
            return
        registry = sync.awareness
        own = [c for c in registry.states if not isinstance(registry.owner_of(c), Replica)]
        update = registry.update_for(own)
        if update is not None:
            self.relay.publish(self.topic(room.name), awareness_frame(update))

    # ---- refresh and expiry ----------------------------------------------------------------

    def _arm(self) -> None:
        if self._timer is None:
            period = min(self.refresh_seconds, self.timeout_ms / 4000)
            self._timer = asyncio.get_running_loop().call_later(period, self._tick)

    def _tick(self) -> None:
        self._timer = None
        refresh = time.monotonic() - self._last_refresh >= self.refresh_seconds * 0.99
        if refresh:
            self._last_refresh = time.monotonic()
        now = _now_ms()
        for name, room in list(self.rooms.items()):
            if refresh:
                self._publish_local(room)
            sync = _sync(room)
            for origin, removal in self.remote[name].expire(now).items():
                if sync is not None and sync.awareness.apply(Replica(origin), removal):
                    room.fanout(awareness_frame(removal))
        if self.rooms:
            self._arm()


def yjs_presence(shared: dict[str, object], refresh_seconds: float = 15.0,
                 timeout_seconds: float = 30.0) -> YjsPresence:
    """The server's :class:`YjsPresence` (created on first use over its presence relay)."""
    glue = shared.get("yjs-presence")
    if not isinstance(glue, YjsPresence):
        relay = shared.get("presence-relay")
        if not isinstance(relay, PresenceRelay):
            relay = shared["presence-relay"] = LocalPresenceRelay()
        glue = shared["yjs-presence"] = YjsPresence(relay, refresh_seconds, timeout_seconds)
    return glue
