"""When each awareness state heard from *other* replicas was last refreshed, for expiry.

A replica applies its peers' relayed awareness updates to the document's
:class:`~crdt.awareness.AwarenessRegistry` like any client's (so newcomers get them, and a
client echoing them back is stale, not news).  What the registry cannot tell is whether a
remote state is still alive: replicas re-publish their clients' states periodically with the
*same* clocks (heartbeats), which y-protocols' rules ignore.  This table records, per client,
the newest clock heard, whether it is a removal, from which replica, and when it was last
heard; :meth:`RemoteAwareness.expire` names the states nobody refreshed within ``timeout_ms``
— how the users of a replica that died (and never published their removals) disappear, as
y-protocols expires a silent peer after its 30 s ``outdatedTimeout``.

Pure: no clock of its own (callers pass ``now_ms``), no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from crdt.awareness import OUTDATED_TIMEOUT_MS, decode_awareness_update


@dataclass(slots=True)
class Heard:
    clock: int
    present: bool  # False: a removal (kept as a tombstone until it is old)
    origin: str
    seen_ms: int


def _var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_awareness_update(entries: list[tuple[int, int, Any]]) -> bytes:
    """Encode ``[(client, clock, state or None)]`` as y-protocols' ``encodeAwarenessUpdate``."""
    out = bytearray(_var_uint(len(entries)))
    for client, clock, state in entries:
        raw = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
        out += _var_uint(client) + _var_uint(clock) + _var_uint(len(raw)) + raw
    return bytes(out)


class RemoteAwareness:
    """One document's awareness entries heard from other replicas, by Yjs client id."""

    def __init__(self, timeout_ms: int = OUTDATED_TIMEOUT_MS) -> None:
        self.timeout_ms = timeout_ms
        self._heard: dict[int, Heard] = {}

    @property
    def present(self) -> dict[int, str]:
        """Clients heard as present, and the replica each was heard from."""
        return {c: h.origin for c, h in self._heard.items() if h.present}

    def heard(self, origin: str, update: bytes, now_ms: int) -> None:
        """Record an awareness update relayed from replica ``origin``.

        An entry with a newer clock, or the same clock (a heartbeat), refreshes the client;
        a ``null`` state marks it removed.  Raises :class:`~crdt.errors.ProtocolError`
        (nothing recorded) if the update is malformed.
        """
        for client, clock, state in decode_awareness_update(update):
            entry = self._heard.get(client)
            if entry is None or clock > entry.clock:
                self._heard[client] = Heard(clock, state is not None, origin, now_ms)
            elif clock == entry.clock:
                if state is None:
                    entry.present = False
                if entry.present:
                    entry.seen_ms, entry.origin = now_ms, origin

    def expire(self, now_ms: int) -> dict[str, bytes]:
        """Forget states not refreshed within the timeout; return their removals by origin.

        A removal has the same clock and a ``null`` state, which y-protocols peers (and the
        registry) read as "gone".  Tombstones older than the timeout are forgotten too.
        """
        removed: dict[str, list[tuple[int, int, Any]]] = {}
        for client, entry in list(self._heard.items()):
            if now_ms - entry.seen_ms < self.timeout_ms:
                continue
            if entry.present:
                removed.setdefault(entry.origin, []).append((client, entry.clock, None))
                entry.present, entry.seen_ms = False, now_ms  # a tombstone for one period
            else:
                del self._heard[client]
        return {origin: encode_awareness_update(entries) for origin, entries in removed.items()}

    def __len__(self) -> int:
        return len(self._heard)
