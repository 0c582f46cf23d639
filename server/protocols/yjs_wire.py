"""The y-websocket frame format (y-protocols ``sync``, ``awareness``, ``auth``), no I/O.

A frame is ``varUint(messageType)`` then:

* 0 sync: ``varUint(step)`` then ``varUint8Array(payload)`` — step 0 carries a state vector,
  steps 1 (sync step 2) and 2 (update) carry a Yjs update;
* 1 awareness: ``varUint8Array(update)``, the update being ``varUint(n)`` then n times
  ``varUint(clientID) varUint(clock) varString(stateJSON)`` (``"null"``: the client left);
* 2 auth: ``varUint(0)`` (permission denied) then ``varString(reason)``;
* 3 query awareness: nothing more.

Parsing is bounds-checked (``crdt.lib0``) so a truncated or garbage frame raises
:class:`BadFrame` before anything is applied.  The relay path needs no re-encoding: an update
frame is forwarded byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from crdt.lib0 import DecodeError, check_count, read_var_bytes, read_var_string, read_var_uint
from server.errors import ClientError

MSG_SYNC, MSG_AWARENESS, MSG_AUTH, MSG_QUERY_AWARENESS = 0, 1, 2, 3
SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE = 0, 1, 2


class BadFrame(ClientError):
    """A frame that is not valid y-websocket protocol; the connection is closed with 4400."""

    code = "ERR_FRAME_INVALID"
    close_code = 4400


@dataclass(frozen=True, slots=True)
class Frame:
    """A parsed frame: ``kind`` is "step1", "step2", "update", "awareness", "auth" or
    "query_awareness"; ``payload`` the state vector, update or awareness update."""

    kind: str
    payload: bytes


_SYNC_KINDS = {SYNC_STEP1: "step1", SYNC_STEP2: "step2", SYNC_UPDATE: "update"}


def parse(frame: bytes) -> Frame:
    """Classify one binary frame; raise :class:`BadFrame` saying what is wrong."""
    try:
        msg_type, pos = read_var_uint(frame, 0)
        if msg_type == MSG_SYNC:
            step, pos = read_var_uint(frame, pos)
            kind = _SYNC_KINDS.get(step)
            if kind is None:
                raise BadFrame(f"unknown sync step {step}; expected 0, 1 or 2")
            payload, pos = read_var_bytes(frame, pos)
        elif msg_type == MSG_AWARENESS:
            kind = "awareness"
            payload, pos = read_var_bytes(frame, pos)
        elif msg_type == MSG_AUTH:
            return Frame("auth", frame[pos:])
        elif msg_type == MSG_QUERY_AWARENESS:
            return Frame("query_awareness", b"")
        else:
            raise BadFrame(f"unknown message type {msg_type}; expected 0 (sync), 1 (awareness), "
                           "2 (auth) or 3 (query awareness)")
    except DecodeError as exc:
        raise BadFrame(f"truncated or malformed frame: {exc}") from None
    if pos != len(frame):
        raise BadFrame(f"{len(frame) - pos} unexpected bytes after the message")
    return Frame(kind, payload)


def _var_uint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def _var_bytes(data: bytes) -> bytes:
    return _var_uint(len(data)) + data


def sync_frame(step: int, payload: bytes) -> bytes:
    return bytes((MSG_SYNC, step)) + _var_bytes(payload)


def update_frame(update: bytes) -> bytes:
    return sync_frame(SYNC_UPDATE, update)


def awareness_frame(update: bytes) -> bytes:
    return bytes((MSG_AWARENESS,)) + _var_bytes(update)


def permission_denied_frame(reason: str) -> bytes:
    return bytes((MSG_AUTH, 0)) + _var_bytes(reason.encode())


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client: int
    clock: int
    state: str  # JSON text; "null" means the client left


def parse_awareness(update: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update; raise :class:`BadFrame` if malformed."""
    try:
        count, pos = read_var_uint(update, 0)
        check_count(update, pos, count, "awareness entries")
        entries = []
        for _ in range(count):
            client, pos = read_var_uint(update, pos)
            clock, pos = read_var_uint(update, pos)
            state, pos = read_var_string(update, pos)
            entries.append(AwarenessEntry(client, clock, state))
    except DecodeError as exc:
        raise BadFrame(f"malformed awareness update: {exc}") from None
    if pos != len(update):
        raise BadFrame(f"{len(update) - pos} unexpected bytes after the awareness update")
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    parts = [_var_uint(len(entries))]
    for e in entries:
        parts += [_var_uint(e.client), _var_uint(e.clock), _var_bytes(e.state.encode())]
    return b"".join(parts)
