"""The Yjs sync protocol as the npm ``y-websocket`` provider speaks it, without I/O.

A frame (one WebSocket message) is ``[messageType: varUint][body]``:

* ``0`` sync — ``[0: step1][state vector: varUint8Array]``, ``[1: step2][update: varUint8Array]``
  or ``[2: update][update: varUint8Array]`` (y-protocols/sync.js);
* ``1`` awareness — ``[awareness update: varUint8Array]`` (y-protocols/awareness.js);
* ``2`` auth — ``[0: permission denied][reason: varString]`` (y-protocols/auth.js), sent by
  servers only;
* ``3`` query awareness — no body: "send me every awareness state" (y-websocket.js).

The provider opens with step 1 and its awareness state, answers the server's step 1 with
step 2, and sends each local transaction as an update frame.  A server answers step 1 with
step 2 and sends its own step 1 when the connection opens (y-protocols' client-server model).

pycrdt ships the encoders used below (``create_sync_message``, ``create_update_message``,
``create_awareness_message``, ``write_message``, the message-type enums) but its reading side is
not fit for a server: ``YMessageType`` lacks auth and query-awareness; ``handle_sync_message``
reads the sync type as a byte, trusts length prefixes (its ``Decoder`` silently truncates a
short payload and raises ``IndexError`` inside a varint; ``read_message`` relies on an
``assert``), ignores unknown types, and applies updates straight to a ``Doc`` — no validation,
nothing persisted first.  So :func:`read_frame` parses strictly and :class:`SyncServer` only
*says* what to do; the caller applies updates through the engine, which validates and persists.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Protocol

from pycrdt import (
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    write_message,
)

from crdt.awareness import AwarenessRegistry
from crdt.document import CrdtDocument
from crdt.errors import ProtocolError, UpdateError
from crdt.lib0 import DecodeError, read_var_bytes, read_var_string, read_var_uint
from crdt.updates import EMPTY_UPDATE, decode_state_vector


class MessageType(IntEnum):
    """First varUint of every frame (pycrdt's ``YMessageType`` has only the first two)."""

    SYNC = YMessageType.SYNC.value
    AWARENESS = YMessageType.AWARENESS.value
    AUTH = 2
    QUERY_AWARENESS = 3


class FrameKind(Enum):
    SYNC_STEP1 = "sync-step1"
    SYNC_STEP2 = "sync-step2"
    SYNC_UPDATE = "sync-update"
    AWARENESS = "awareness"
    AUTH = "auth"
    QUERY_AWARENESS = "query-awareness"


_SYNC_KINDS: dict[int, FrameKind] = {
    YSyncMessageType.SYNC_STEP1.value: FrameKind.SYNC_STEP1,
    YSyncMessageType.SYNC_STEP2.value: FrameKind.SYNC_STEP2,
    YSyncMessageType.SYNC_UPDATE.value: FrameKind.SYNC_UPDATE,
}
PERMISSION_DENIED = 0  # the only auth message y-protocols defines


@dataclass(frozen=True, slots=True)
class Frame:
    """A parsed frame: its kind, its payload, and the bytes as received (for forwarding).

    ``payload`` is the state vector (step 1), the update (step 2, update), the awareness update,
    the UTF-8 reason (auth), or ``b""`` (query awareness).  Updates are *not* decoded here.
    """

    kind: FrameKind
    payload: bytes
    raw: bytes


def read_frame(frame: bytes) -> Frame:
    """Parse one frame, or raise :class:`ProtocolError` saying what is wrong with it."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise ProtocolError(f"a Yjs frame must be bytes, not {type(frame).__name__}")
    data = bytes(frame)
    try:
        message_type, pos = read_var_uint(data, 0)
        if message_type == MessageType.SYNC:
            sync_type, pos = read_var_uint(data, pos)
            kind = _SYNC_KINDS.get(sync_type)
            if kind is None:
                raise ProtocolError(
                    f"unknown sync message type {sync_type} "
                    "(expected 0 step 1, 1 step 2 or 2 update)"
                )
            payload, pos = read_var_bytes(data, pos)
            if kind is FrameKind.SYNC_STEP1:
                decode_state_vector(payload)
        elif message_type == MessageType.AWARENESS:
            kind = FrameKind.AWARENESS
            payload, pos = read_var_bytes(data, pos)
        elif message_type == MessageType.QUERY_AWARENESS:
            kind, payload = FrameKind.QUERY_AWARENESS, b""
        elif message_type == MessageType.AUTH:
            kind = FrameKind.AUTH
            auth_type, pos = read_var_uint(data, pos)
            if auth_type != PERMISSION_DENIED:
                raise ProtocolError(f"unknown auth message type {auth_type} (expected 0)")
            reason, pos = read_var_string(data, pos)
            payload = reason.encode()
        else:
            raise ProtocolError(
                f"unknown message type {message_type} "
                "(expected 0 sync, 1 awareness, 2 auth or 3 query awareness)"
            )
    except DecodeError as exc:
        raise ProtocolError(f"malformed Yjs frame: {exc}") from None
    except UpdateError as exc:
        raise ProtocolError(f"malformed sync step 1: {exc}") from None
    if pos != len(data):
        raise ProtocolError(f"malformed Yjs frame: {len(data) - pos} unexpected trailing bytes")
    return Frame(kind, payload, data)


# -- encoders ---------------------------------------------------------------------------------


def sync_step1_frame(state_vector: bytes) -> bytes:
    return bytes((MessageType.SYNC, YSyncMessageType.SYNC_STEP1)) + write_message(state_vector)


def sync_step2_frame(update: bytes) -> bytes:
    return bytes((MessageType.SYNC, YSyncMessageType.SYNC_STEP2)) + write_message(update)


def update_frame(update: bytes) -> bytes:
    return create_update_message(update)


def awareness_frame(update: bytes) -> bytes:
    return create_awareness_message(update)


def query_awareness_frame() -> bytes:
    return bytes((MessageType.QUERY_AWARENESS,))


def permission_denied_frame(reason: str) -> bytes:
    # Not pycrdt's Encoder.write_var_string: it prefixes the length in code points, not bytes.
    return bytes((MessageType.AUTH, PERMISSION_DENIED)) + write_message(reason.encode())


def as_update_frame(frame: Frame) -> bytes:
    """The frame to forward for a received step 2 or update: an update frame, same payload.

    A step 2 is re-labelled rather than re-encoded (only the second byte differs), so peers
    never mistake someone else's step 2 for the answer to their own step 1.
    """
    if frame.kind is FrameKind.SYNC_UPDATE:
        return frame.raw
    if frame.kind is FrameKind.SYNC_STEP2:
        return bytes((MessageType.SYNC, YSyncMessageType.SYNC_UPDATE)) + frame.raw[2:]
    raise ProtocolError(f"a {frame.kind.value} frame carries no document update")


# -- server side ------------------------------------------------------------------------------


class SyncSource(Protocol):
    """What the server needs from a document to answer sync requests (CrdtDocument has it)."""

    def state_vector(self) -> bytes: ...

    def diff(self, state_vector: bytes | None = None) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Reaction:
    """What the caller must do about one received frame, in this order.

    1. ``update`` (if not ``None``): apply it to the document through the engine, which
       validates and persists it; if that raises, send nothing and report the error.
    2. ``reply``: send these frames to the sender.
    3. ``broadcast``: send these frames to every *other* connection of the document — only if
       step 1 succeeded and (for updates) the engine reported news.
    """

    frame: Frame
    update: bytes | None = None
    reply: tuple[bytes, ...] = ()
    broadcast: tuple[bytes, ...] = ()


class SyncServer:
    """The server's side of the protocol for one document: frames in, reactions out.

    Pure: it holds the awareness registry but never touches sockets or the document's state
    (document updates are handed back to the caller, which applies them through the engine).
    """

    def __init__(self, document: SyncSource) -> None:
        self.document = document
        self.awareness = AwarenessRegistry()

    def open(self, connection: Hashable) -> tuple[bytes, ...]:
        """Frames to send a new connection: the server's step 1, and who is present."""
        frames = [sync_step1_frame(self.document.state_vector())]
        states = self.awareness.full_update()
        if states is not None:
            frames.append(awareness_frame(states))
        return tuple(frames)

    def receive(self, connection: Hashable, data: bytes) -> Reaction:
        """React to one frame; raise :class:`ProtocolError` (nothing changed) if malformed."""
        frame = read_frame(data)
        kind = frame.kind
        if kind is FrameKind.SYNC_UPDATE or kind is FrameKind.SYNC_STEP2:
            if frame.payload == EMPTY_UPDATE:  # a step 2 with nothing new: no work at all
                return Reaction(frame)
            return Reaction(frame, update=frame.payload, broadcast=(as_update_frame(frame),))
        if kind is FrameKind.SYNC_STEP1:
            return Reaction(frame, reply=(sync_step2_frame(self.document.diff(frame.payload)),))
        if kind is FrameKind.AWARENESS:
            news = self.awareness.apply(connection, frame.payload)
            return Reaction(frame, broadcast=(frame.raw,) if news else ())
        if kind is FrameKind.QUERY_AWARENESS:
            states = self.awareness.full_update()
            return Reaction(frame, reply=(awareness_frame(states),) if states is not None else ())
        return Reaction(frame)  # auth: only ever sent by servers; nothing to do

    def close(self, connection: Hashable) -> tuple[bytes, ...]:
        """Frames to broadcast to the remaining connections when ``connection`` closes."""
        removal = self.awareness.remove_connection(connection)
        return (awareness_frame(removal),) if removal is not None else ()


# -- client side ------------------------------------------------------------------------------


class SyncClient:
    """A Python peer of a Yjs server (what y-websocket's provider does), for one CrdtDocument.

    Updates received are applied to the document directly; local edits are sent with
    :func:`update_frame`.  ``synced`` turns true once the server's step 2 has been applied.
    """

    def __init__(self, document: CrdtDocument) -> None:
        self.document = document
        self.synced = False

    def hello(self) -> bytes:
        """The first frame on a new connection: this document's step 1."""
        return create_sync_message(self.document.ydoc)

    def receive(self, data: bytes) -> tuple[bytes, ...]:
        """Handle one frame from the server; return the frames to answer with."""
        frame = read_frame(data)
        if frame.kind is FrameKind.SYNC_STEP1:
            return (sync_step2_frame(self.document.diff(frame.payload)),)
        if frame.kind is FrameKind.SYNC_STEP2 or frame.kind is FrameKind.SYNC_UPDATE:
            self.document.apply_update(frame.payload)
            if frame.kind is FrameKind.SYNC_STEP2:
                self.synced = True
        return ()
