"""Weft's pure CRDT core: a Yjs text document over pycrdt, and the Yjs sync protocol.

No I/O here: bytes and values in, bytes and values out.  Modules, one job each:

* :mod:`crdt.document` — :class:`CrdtDocument`, code-point edits and safe remote updates;
* :mod:`crdt.positions` — the code-point to UTF-8 index behind it;
* :mod:`crdt.updates` — the structural check of Yjs update bytes;
* :mod:`crdt.sync` — frames of the y-websocket protocol, server and client reactions;
* :mod:`crdt.awareness` — presence per connection;
* :mod:`crdt.lib0` — bounds-checked readers of lib0's binary encoding;
* :mod:`crdt.errors` — the error tree (all ``ValueError``), and Rust-panic detection.
"""

from crdt.awareness import AwarenessRegistry
from crdt.document import EMPTY_UPDATE, CrdtDocument
from crdt.errors import CrdtError, PositionError, ProtocolError, TextError, UpdateError
from crdt.sync import Frame, FrameKind, Reaction, SyncClient, SyncServer, read_frame

__all__ = [
    "EMPTY_UPDATE",
    "AwarenessRegistry",
    "CrdtDocument",
    "CrdtError",
    "Frame",
    "FrameKind",
    "PositionError",
    "ProtocolError",
    "Reaction",
    "SyncClient",
    "SyncServer",
    "TextError",
    "UpdateError",
    "read_frame",
]
