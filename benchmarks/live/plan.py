"""What a load-generator process is asked to do (picklable, sent to spawned workers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

PROTOCOLS = ("yws", "hocuspocus", "sharedb")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one server replica listens and how documents map to WebSocket paths.

    ``yws``: one socket per document at ``prefix + name`` (Weft ``/crdt/``, y-websocket and
    pycrdt-websocket ``/``).  ``hocuspocus`` and ``sharedb``: every document over the same path.
    """

    host: str
    port: int
    protocol: str
    prefix: str = "/"
    collection: str = "docs"

    def path(self, doc: str) -> str:
        if self.protocol == "yws":
            return self.prefix + quote(doc, safe="")
        return self.prefix


@dataclass(frozen=True, slots=True)
class EditorSpec:
    index: int  # global editor id: the marker's editor field
    doc: str
    replica: int = 0  # which endpoint it connects to
    record: bool = False  # keep received updates to rebuild its text after the run


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    endpoints: tuple[Endpoint, ...]
    editors: tuple[EditorSpec, ...]
    editors_per_doc: dict[str, int]
    rate: float  # keystrokes per second per editor
    keystrokes: int  # per editor; 0 = connect and stay idle
    connect_timeout: float = 20.0
    drain_timeout: float = 10.0
    connect_concurrency: int = 64
    extra: dict[str, str] = field(default_factory=dict)
