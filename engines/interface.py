"""The one interface through which the server, the benchmark harness and embedding apps drive
a document, whatever engine merges it.

Why an interface at all: the OT and CRDT engines must be compared on exactly the same work, and
the server must not care which engine a room holds.  Everything here is pure (no I/O): an engine
call *returns* :class:`Effects` and the caller carries them out in one fixed order — persist,
then reply to the sender, then broadcast/relay — so that an acknowledged edit is always durable.

Payload types differ per engine (OT speaks ops with versions, CRDT speaks Yjs update bytes); the
wire adapters in ``server/protocols`` translate them to frames.  What is shared is the shape of
the calls and of their results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self, runtime_checkable


class EngineError(Exception):
    """Base class for every error an engine raises on bad client input.

    ``code`` is a stable machine-readable identifier (``ERR_…``) the wire adapters forward to the
    client; the message says what was wrong and what was expected.  Raising one of these leaves
    the document unchanged.
    """

    code: str = "ERR_ENGINE"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


@dataclass(frozen=True, slots=True)
class Effects:
    """What the caller must do after an engine accepted a change, in this order.

    * ``persist`` — records to append to the document's durable log (opaque bytes the same
      engine's :meth:`Engine.load` understands);
    * ``reply`` — engine payloads for the sender only (e.g. the OT acknowledgement);
    * ``broadcast`` — engine payloads for every other client of the document, here and on other
      replicas (e.g. the committed OT op, or the CRDT update as received).

    An empty ``Effects`` means the change was a no-op (e.g. a duplicate or an empty update).
    """

    persist: tuple[bytes, ...] = ()
    reply: tuple[Any, ...] = ()
    broadcast: tuple[Any, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.persist or self.reply or self.broadcast)


NO_EFFECTS = Effects()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A self-contained picture of a document, enough to reopen it without its log."""

    kind: str
    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """A document merged by one engine.

    Positions and lengths on this interface are Unicode code points, whatever the engine uses
    inside.  ``author`` names who made a change (a connection or user id) for history and hooks.
    """

    kind: ClassVar[str]  # "ot" or "crdt": recorded with the document, never mixed

    @classmethod
    def load(cls, snapshot: bytes | None = None, log: Iterable[bytes] = ()) -> Self:
        """Open a document from its last snapshot (or nothing) plus the log records after it."""
        ...

    def apply(self, change: Any, author: str = "") -> Effects:
        """Merge what a client sent; raise :class:`EngineError` (document untouched) if invalid."""
        ...

    def newcomer_state(self, since: Any = None) -> Any:
        """What a client joining (or rejoining, with what it already has) must receive."""
        ...

    @property
    def text(self) -> str:
        """The current text."""
        ...

    @property
    def token(self) -> bytes:
        """A compact causal token for the current state (OT version or CRDT state vector)."""
        ...

    def insert(self, pos: int, text: str, author: str = "server") -> Effects:
        """A server-side insertion at a code-point position (what the REST API and apps use)."""
        ...

    def delete(self, pos: int, length: int, author: str = "server") -> Effects:
        """A server-side deletion of ``length`` code points at ``pos``."""
        ...

    def snapshot(self) -> bytes:
        """Encode the whole current state; ``load(snapshot)`` gives an equal document."""
        ...
