"""ShareDB presence channels across replicas (what :class:`PresenceHub` adds with replicas).

ShareDB itself relays presence through its pub/sub (``$presence.<channel>``) and keeps no
presence state: a new subscriber's request (``pr``) is published, every member answers by
re-sending its presence.  Here the same, over the
:class:`~server.relay.presence.PresenceRelay` (topic ``("sharedb", channel)``):

* every frame a replica's hub sends to a channel (``p`` presence, ``pr`` request, the ``null``
  presences of a member that left) is also published, as encoded; a replica receiving one
  forwards the same bytes to its own members of the channel — a relayed ``pr`` makes them
  re-send their presence, which comes back the same way (no cache of values is needed);
* what ShareDB lacks: when a replica dies, nobody publishes its members' ``null`` presences.
  So each replica remembers which presences it relayed from whom (``src``, ``id``, ``pv``;
  not their values), every ``refresh`` seconds publishes a keepalive listing its members' live
  presences (``{"a": "weft-alive"}``, never sent to clients), and after ``timeout`` without
  one sends its members ``null`` presences for the silent ones — as a disconnect would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from server.protocols.sharedb_wire import encode
from server.relay.presence import PresenceMessage, PresenceRelay, Topic

log = logging.getLogger("weft.ot")

ALIVE = "weft-alive"  # the keepalive action: replica to replica only
PresenceKey = tuple[str, str]  # (src, presence id)


@dataclass(slots=True)
class _Seen:
    origin: str
    pv: int
    seen: float  # time.monotonic() of the last message or keepalive naming it


class ChannelRelay:
    """Relays one server's presence channels; ``deliver(channel, frame)`` reaches members."""

    def __init__(self, relay: PresenceRelay, deliver: Callable[[str, bytes], None],
                 refresh_seconds: float = 15.0, timeout_seconds: float = 30.0) -> None:
        self.relay = relay
        self.deliver = deliver
        self.refresh_seconds = refresh_seconds
        self.timeout_seconds = timeout_seconds
        self.local: dict[str, dict[PresenceKey, int]] = {}  # channel -> live local pv
        self.remote: dict[str, dict[PresenceKey, _Seen]] = {}  # channel -> relayed presences
        self._timer: asyncio.TimerHandle | None = None
        self._last_refresh = time.monotonic()

    @staticmethod
    def topic(channel: str) -> Topic:
        return ("sharedb", channel)

    def listen(self, channel: str) -> None:
        """This server has a member on ``channel`` now."""
        self.remote.setdefault(channel, {})
        self.relay.subscribe(self.topic(channel), self._on_message)
        if self._timer is None:
            period = min(self.refresh_seconds, self.timeout_seconds / 4)
            self._timer = asyncio.get_running_loop().call_later(period, self._tick)

    def forget(self, channel: str) -> None:
        """This server's last member left ``channel``."""
        self.relay.unsubscribe(self.topic(channel))
        self.remote.pop(channel, None)
        self.local.pop(channel, None)
        if not self.remote and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def published(self, channel: str, message: dict[str, Any], frame: bytes) -> None:
        """The hub sent ``frame`` (``message`` encoded) to its members: relay it."""
        if message.get("a") == "p":
            key = (str(message.get("src")), str(message.get("id")))
            live = self.local.setdefault(channel, {})
            if message.get("p") is None:
                live.pop(key, None)
            else:
                live[key] = message.get("pv") or 0
        self.relay.publish(self.topic(channel), frame)

    def _on_message(self, message: PresenceMessage) -> None:
        channel = message.topic[1]
        seen = self.remote.get(channel)
        if seen is None:
            return
        try:
            decoded = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            log.warning("presence frame from replica %s is not JSON", message.origin)
            return
        if not isinstance(decoded, dict):
            return
        action, now = decoded.get("a"), time.monotonic()
        if action == ALIVE:
            ids = decoded.get("ids")
            for item in ids if isinstance(ids, list) else ():
                if isinstance(item, list) and len(item) == 3 and isinstance(item[2], int):
                    entry = seen.get((str(item[0]), str(item[1])))
                    if entry is not None and entry.pv <= item[2]:
                        entry.seen, entry.origin = now, message.origin
            return
        if action == "p":
            key = (str(decoded.get("src")), str(decoded.get("id")))
            if decoded.get("p") is None:
                seen.pop(key, None)
            else:
                pv = decoded.get("pv")
                seen[key] = _Seen(message.origin, pv if isinstance(pv, int) else 0, now)
        self.deliver(channel, message.payload)

    def _tick(self) -> None:
        self._timer = None
        now = time.monotonic()
        if now - self._last_refresh >= self.refresh_seconds * 0.99:
            self._last_refresh = now
            for channel, live in self.local.items():
                if live:
                    ids = [[src, pid, pv] for (src, pid), pv in live.items()]
                    self.relay.publish(self.topic(channel),
                                       encode({"a": ALIVE, "ch": channel, "ids": ids}))
        for channel, seen in self.remote.items():
            for key, entry in list(seen.items()):
                if now - entry.seen >= self.timeout_seconds:
                    del seen[key]  # its replica went silent: tell members it is gone
                    self.deliver(channel, encode({"a": "p", "ch": channel, "src": key[0],
                                                  "id": key[1], "p": None, "pv": entry.pv + 1}))
        if self.remote:
            period = min(self.refresh_seconds, self.timeout_seconds / 4)
            self._timer = asyncio.get_running_loop().call_later(period, self._tick)
