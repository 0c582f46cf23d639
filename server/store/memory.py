"""An in-memory store: the same contract as SQLite, gone when the process ends.

For tests, benchmarks that must not measure a disk, and embedding apps that keep documents
elsewhere.  Writes still yield to the loop once, so callers cannot come to rely on a write
completing synchronously.  ``fail_next`` lets tests inject storage failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from server.errors import StorageError
from server.store.base import StoredDoc


@dataclass(slots=True)
class _Doc:
    kind: str
    snapshot: bytes | None = None
    snapshot_seq: int = 0
    log: dict[int, bytes] = field(default_factory=dict)


class MemoryStore:
    """Dictionary-backed :class:`~server.store.base.Store`."""

    def __init__(self) -> None:
        self.docs: dict[str, _Doc] = {}
        # Names of operations ("load", "append", "compact") whose next call raises StorageError.
        self.fail_next: set[str] = set()
        self.closed = False

    async def open(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    def _maybe_fail(self, op: str, doc: str) -> None:
        if self.closed:
            raise StorageError("store is closed")
        if op in self.fail_next:
            self.fail_next.discard(op)
            raise StorageError(f"injected failure: {op} {doc!r}")

    async def load(self, doc: str) -> StoredDoc | None:
        await asyncio.sleep(0)
        self._maybe_fail("load", doc)
        stored = self.docs.get(doc)
        if stored is None:
            return None
        seqs = sorted(s for s in stored.log if s > stored.snapshot_seq)
        last = seqs[-1] if seqs else stored.snapshot_seq
        return StoredDoc(stored.kind, stored.snapshot, tuple(stored.log[s] for s in seqs), last + 1)

    def _claim(self, doc: str, kind: str) -> _Doc:
        stored = self.docs.setdefault(doc, _Doc(kind))
        if stored.kind != kind:
            raise StorageError(f"document {doc!r} is a {stored.kind} document, not {kind}")
        return stored

    async def append(self, doc: str, kind: str, first_seq: int, records: Sequence[bytes]) -> None:
        await asyncio.sleep(0)
        self._maybe_fail("append", doc)
        if not records:
            return
        stored = self._claim(doc, kind)
        for i, record in enumerate(records):
            if first_seq + i in stored.log:
                raise StorageError(f"append {doc!r}: seq {first_seq + i} already written")
            stored.log[first_seq + i] = record

    async def compact(self, doc: str, kind: str, snapshot: bytes, upto_seq: int) -> None:
        await asyncio.sleep(0)
        self._maybe_fail("compact", doc)
        stored = self._claim(doc, kind)
        stored.snapshot, stored.snapshot_seq = snapshot, upto_seq
        for seq in [s for s in stored.log if s <= upto_seq]:
            del stored.log[seq]

    async def kind_of(self, doc: str) -> str | None:
        stored = self.docs.get(doc)
        return None if stored is None else stored.kind

    async def delete(self, doc: str) -> None:
        await asyncio.sleep(0)
        self.docs.pop(doc, None)
