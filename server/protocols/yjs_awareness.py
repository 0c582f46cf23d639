"""A room's awareness table: the latest presence of every Yjs client, and who owns it.

Kept so a newcomer receives everyone's presence at once, and so a connection that closes
without saying goodbye (a killed tab) has its clients announced as gone — what y-websocket's
own server does with ``controlledIds``.  A client ID belongs to the connection that first
sent an update for it; states are JSON text kept as received (never parsed).

The acceptance rule is y-protocols' ``applyAwarenessUpdate``: a newer clock wins; at an equal
clock, only a removal ("null") wins.
"""

from __future__ import annotations

from server.protocols.yjs_wire import AwarenessEntry, encode_awareness, parse_awareness


class AwarenessTable:
    def __init__(self) -> None:
        self.entries: dict[int, AwarenessEntry] = {}
        self.owners: dict[int, object] = {}

    def apply(self, update: bytes, owner: object) -> None:
        """Record an awareness update sent by ``owner`` (raises BadFrame if malformed)."""
        for entry in parse_awareness(update):
            current = self.entries.get(entry.client)
            if current is not None and not (
                current.clock < entry.clock
                or (current.clock == entry.clock and entry.state == "null"
                    and current.state != "null")
            ):
                continue
            self.entries[entry.client] = entry
            if entry.state == "null":
                self.owners.pop(entry.client, None)
            else:
                self.owners.setdefault(entry.client, owner)

    def snapshot(self) -> bytes | None:
        """An awareness update holding every present client, or None if there are none."""
        live = [e for e in self.entries.values() if e.state != "null"]
        return encode_awareness(live) if live else None

    def remove_owner(self, owner: object) -> bytes | None:
        """Mark ``owner``'s clients as gone; the update to broadcast, or None."""
        gone = [client for client, who in self.owners.items() if who is owner]
        if not gone:
            return None
        removed = []
        for client in gone:
            del self.owners[client]
            entry = self.entries[client]
            removed.append(AwarenessEntry(client, entry.clock + 1, "null"))
            self.entries[client] = removed[-1]
        return encode_awareness(removed)
