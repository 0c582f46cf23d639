"""Yjs sync messages as y-websocket and Hocuspocus frame them, and pre-generated updates.

y-websocket (Weft's CRDT endpoint, ``@y/websocket-server``, pycrdt-websocket) sends
``[messageType][payload]`` per WebSocket message: type 0 is sync (sub-type 0 step 1 with a
state vector, 1 step 2 with an update, 2 update), 1 awareness.  Hocuspocus multiplexes many
documents over one socket, so every message starts with the document name (a lib0 varString),
and a client must send an Auth message (type 2, sub-type 0 = token) before anything else is
processed; its own extra types (SyncStatus 8, ...) are ignored here.

Updates are made before the run with pycrdt: one ``Doc`` per editor, one transaction per
keystroke, each inserting that keystroke's marker after the editor's previous one (an editor
types a contiguous run of text).  The bytes are exactly what a Yjs client sends, and they
depend only on the editor's own earlier updates, so they stay valid whatever others type.
"""

from __future__ import annotations

from pycrdt import Doc, Text, TransactionEvent, merge_updates

from benchmarks.live.markers import marker
from benchmarks.live.wsclient import encode_frame

SYNC, AWARENESS, AUTH = 0, 1, 2
STEP1, STEP2, UPDATE = 0, 1, 2
EMPTY_STATE_VECTOR = b"\x00"
EMPTY_UPDATE = b"\x00\x00"


def varuint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varuint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a lib0 varuint at ``pos``; return (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varuint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def varbytes(b: bytes) -> bytes:
    return varuint(len(b)) + b


class Framing:
    """y-websocket framing: no per-message prefix (the document is the URL path)."""

    hocuspocus = False

    def __init__(self, doc: str) -> None:
        self.doc = doc
        self.prefix = b""

    def hello(self) -> list[bytes]:
        """Messages a fresh, empty client sends on connect: sync step 1."""
        return [self.prefix + bytes([SYNC, STEP1]) + varbytes(EMPTY_STATE_VECTOR)]

    def update(self, update: bytes) -> bytes:
        return self.prefix + bytes([SYNC, UPDATE]) + varbytes(update)

    def step2(self, update: bytes) -> bytes:
        return self.prefix + bytes([SYNC, STEP2]) + varbytes(update)

    def strip(self, message: bytes) -> bytes:
        """The message without its document prefix."""
        return message

    def updates_in(self, message: bytes) -> list[bytes]:
        """The Yjs updates a server message carries (sync step 2 or update), else []."""
        body = self.strip(message)
        if len(body) < 2 or body[0] != SYNC or body[1] not in (STEP2, UPDATE):
            return []
        n, pos = read_varuint(body, 2)
        return [body[pos : pos + n]]

    def is_sync_step1(self, message: bytes) -> bool:
        body = self.strip(message)
        return len(body) >= 2 and body[0] == SYNC and body[1] == STEP1

    def is_sync_reply(self, message: bytes) -> bool:
        """A step-2 answer: the server has the client in the document's room."""
        body = self.strip(message)
        return len(body) >= 2 and body[0] == SYNC and body[1] == STEP2


class HocuspocusFraming(Framing):
    """Hocuspocus framing: every message starts with the document name; auth comes first."""

    hocuspocus = True
    SYNC_REPLY = 4  # Hocuspocus's "step 2 that asks for no step 1 back"

    def __init__(self, doc: str) -> None:
        super().__init__(doc)
        self.prefix = varbytes(doc.encode())

    def hello(self) -> list[bytes]:
        auth = self.prefix + bytes([AUTH, 0]) + varbytes(b"")
        return [auth, *super().hello()]

    def strip(self, message: bytes) -> bytes:
        try:
            n, pos = read_varuint(message, 0)
        except ValueError:
            return b""
        body = message[pos + n :]
        if body[:1] == bytes([self.SYNC_REPLY]):
            return bytes([SYNC]) + body[1:]
        return body


def framing_for(protocol: str, doc: str) -> Framing:
    if protocol == "hocuspocus":
        return HocuspocusFraming(doc)
    if protocol == "yws":
        return Framing(doc)
    raise ValueError(f"not a Yjs protocol: {protocol!r} (expected 'yws' or 'hocuspocus')")


def generate_updates(editor: int, count: int) -> list[bytes]:
    """``count`` Yjs updates: editor ``editor`` typing its markers 0..count-1 in a row."""
    doc: Doc = Doc()
    text = doc.get("text", type=Text)
    updates: list[bytes] = []

    def capture(event: TransactionEvent) -> None:
        updates.append(event.update)

    sub = doc.observe(capture)
    pos = 0
    for seq in range(count):
        m = marker(editor, seq)
        with doc.transaction():
            text.insert(pos, m)
        pos += len(m)
    doc.unobserve(sub)
    if len(updates) != count:
        raise RuntimeError(f"expected {count} updates from pycrdt, got {len(updates)}")
    return updates


def prebuilt_frames(framing: Framing, updates: list[bytes]) -> list[bytes]:
    """Masked WebSocket frames ready to write, one per update."""
    return [encode_frame(framing.update(u)) for u in updates]


def merge(updates: list[bytes]) -> bytes:
    """One update equivalent to all of ``updates``."""
    return merge_updates(*updates)


def text_of(updates: list[bytes]) -> str:
    """The text a client has after applying ``updates`` (used only after the run)."""
    doc: Doc = Doc()
    text = doc.get("text", type=Text)
    for u in updates:
        doc.apply_update(u)
    return str(text)
