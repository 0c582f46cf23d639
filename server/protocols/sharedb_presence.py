"""ShareDB presence: channels (``connection.getPresence(ch)``) shared by every OT connection.

Wire actions (npm ``sharedb`` ``lib/agent.js``, ``lib/client/presence/*``):

* ``ps``/``pu`` — subscribe/unsubscribe a channel; replied with ``{a, ch, seq}``.  Subscribing
  also asks the channel's other members to re-send their presence (``pr``).
* ``p`` — a local presence value (``id``, ``p``, ``pv``) for a channel: forwarded with the
  sender's ``src`` to the channel's other subscribers and echoed to the sender as its ack.
* ``pr`` — ask the channel's other members to re-send their presence.

Document presence (``connection.getDocPresence``, messages carrying ``t``) needs the document
type to transform cursors through ops; ``text-unicode`` has no ``transformPresence``, so it is
refused with ShareDB's ``ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE``, as ShareDB itself does.  Channel
presence carries any JSON the app likes (e.g. code-point cursors it transforms itself).

When a member leaves a channel or disconnects, its non-null presences are broadcast as ``null``
so the others drop its cursors (ShareDB does the same when a presence stream ends).

With replicas, everything the hub sends to a channel also goes to the other replicas' members
(:mod:`server.protocols.sharedb_presence_relay`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Protocol

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import broadcast
from websockets.protocol import State

from server.errors import ClientError, UnsupportedAction
from server.metrics import Metrics
from server.protocols.sharedb_presence_relay import ChannelRelay
from server.protocols.sharedb_wire import encode
from server.relay.presence import PresenceRelay


class PresenceMember(Protocol):
    """A connection as presence channels see it."""

    src: str

    @property
    def ws(self) -> Connection: ...


class PresenceHub:
    """Channel membership of every OT connection of this server."""

    def __init__(self, metrics: Metrics, relay: PresenceRelay | None = None,
                 refresh_seconds: float = 15.0, timeout_seconds: float = 30.0) -> None:
        self.metrics = metrics
        self.members: defaultdict[str, set[PresenceMember]] = defaultdict(set)
        self.replicas = (None if relay is None or relay.solo else
                         ChannelRelay(relay, self.deliver, refresh_seconds, timeout_seconds))

    def subscribe(self, channel: str, member: PresenceMember) -> None:
        if channel not in self.members and self.replicas is not None:
            self.replicas.listen(channel)
        self.members[channel].add(member)

    def unsubscribe(self, channel: str, member: PresenceMember) -> None:
        members = self.members.get(channel)
        if members is not None:
            members.discard(member)
            if not members:
                del self.members[channel]
                if self.replicas is not None:
                    self.replicas.forget(channel)

    def publish(self, channel: str, message: dict[str, Any], exclude: PresenceMember) -> None:
        frame = encode(message)
        self.deliver(channel, frame, exclude)
        if self.replicas is not None:
            self.replicas.published(channel, message, frame)

    def deliver(self, channel: str, frame: bytes, exclude: PresenceMember | None = None) -> None:
        """Send an encoded frame to this server's members of ``channel`` but ``exclude``."""
        targets = [
            m.ws for m in self.members.get(channel, ())
            if m is not exclude and m.ws.protocol.state is State.OPEN
        ]
        if targets:
            broadcast(targets, frame, text=True)
            self.metrics.sent(len(frame), len(targets))


class PresenceState:
    """One connection's presence: its channels and the last presence it sent on each."""

    def __init__(self, hub: PresenceHub, member: PresenceMember) -> None:
        self.hub = hub
        self.member = member
        self.channels: set[str] = set()
        # channel -> presence id -> last presence version sent with a non-null value
        self.sent: dict[str, dict[str, int]] = {}

    def subscribe(self, request: dict[str, Any]) -> dict[str, Any]:
        channel = request["ch"]
        self.hub.subscribe(channel, self.member)
        self.channels.add(channel)
        self.hub.publish(channel, {"a": "pr", "ch": channel}, exclude=self.member)
        return {"a": "ps", "ch": channel, "seq": request.get("seq")}

    def unsubscribe(self, request: dict[str, Any]) -> dict[str, Any]:
        channel = request["ch"]
        self._clear(channel)
        self.hub.unsubscribe(channel, self.member)
        self.channels.discard(channel)
        return {"a": "pu", "ch": channel, "seq": request.get("seq")}

    def _clear(self, channel: str) -> None:
        """Broadcast ``null`` for every presence this connection has on ``channel``."""
        for presence_id, pv in self.sent.pop(channel, {}).items():
            self.hub.publish(
                channel,
                {"a": "p", "ch": channel, "src": self.member.src, "id": presence_id,
                 "p": None, "pv": pv + 1},
                exclude=self.member,
            )

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        """Forward a presence update; return the ack for the sender."""
        if request.get("t") is not None or request.get("c") is not None:
            raise UnsupportedAction(
                f"Type does not support presence: {request.get('t') or 'text-unicode'} "
                "(use connection.getPresence(channel) with code-point cursors instead)",
                code="ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE",
            )
        channel, presence_id = request["ch"], request["id"]
        if request.get("pv") is None:
            raise ClientError("Invalid presence version: expected an integer >= 0",
                              code="ERR_MESSAGE_BADLY_FORMED")
        message = {
            "a": "p", "ch": channel, "src": self.member.src, "id": presence_id,
            "p": request.get("p"), "pv": request["pv"],
        }
        if message["p"] is None:
            self.sent.get(channel, {}).pop(presence_id, None)
        else:
            self.sent.setdefault(channel, {})[presence_id] = request["pv"]
        self.hub.publish(channel, message, exclude=self.member)
        return message

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        self.hub.publish(request["ch"], {"a": "pr", "ch": request["ch"]}, exclude=self.member)
        return {"a": "pr"}

    def leave_all(self) -> None:
        """Tell every channel this connection's presences are gone (disconnect)."""
        for channel in list(self.sent):
            self._clear(channel)
        for channel in self.channels:
            self.hub.unsubscribe(channel, self.member)
        self.channels.clear()
