"""A :class:`~server.store.base.Store` on Redis, shared by every replica of a deployment.

Keys per document (the ``{doc}`` hash tag keeps one document's keys in one Cluster slot, so
the Lua scripts of :mod:`server.store.redis_scripts` may touch them together):

* ``weft:{doc}:kind`` — which engine merges the document (claimed by the first append);
* ``weft:{doc}:log`` — a Redis Stream of engine records, fields ``o`` (origin replica id) and
  ``p`` (payload); the stream id is the record's number, assigned by Redis, so replicas
  appending concurrently never collide (the room's own ``first_seq`` is ignored).  Records
  appended by :meth:`RedisStore.append` also carry ``a`` (author) and ``n`` (the record's
  number in the document's log, counted in ``weft:{doc}:v``: the version it makes, for
  history); the stream id's milliseconds are every record's time;
* ``weft:{doc}:v`` — an OT document's version: the sequencer's compare-and-set target
  (:meth:`RedisStore.ot_commit`; see :mod:`server.protocols.ot_replicas`);
* ``weft:{doc}:seq:<src>`` — ``"<seq>:<version>"`` of the last OT op committed for ShareDB
  client ``src`` (a day's TTL): a retried commit script whose first run succeeded (reply lost
  with the connection) reports a duplicate instead of appending the record twice;
* ``weft:{doc}:home``, ``weft:{doc}:fence``, ``weft:{doc}:fwd``, ``weft:{doc}:rep:<replica>``
  — OT home mode: the home lease and its fencing counter (:mod:`server.lease`), the stream of
  submits forwarded to the home and each requester's reply stream
  (:mod:`server.protocols.ot_home`).  :meth:`RedisStore.ot_commit` with a fence refuses to
  append once the counter has moved past it;
* ``weft:{doc}:snap`` — a hash: ``data`` (snapshot bytes) and ``id`` (the last stream id the
  snapshot covers).  Each compaction also appends a marker entry (field ``s``: the covered
  id) to the log, so a replica reading behind the trim point learns that it missed records
  and merges the snapshot instead (see :mod:`server.relay.redis`).  OT snapshots
  (:meth:`RedisStore.ot_compact`) also hold ``v``, the version they are at; the records
  before the last ``compact_every`` are trimmed, the newer ones kept for replicas behind.
* ``weft:{doc}:hist`` — with a :class:`~server.store.history.HistoryBudget`, the snapshots of
  earlier compactions (checkpoints): fields ``d:<id>``, ``n:<id>``, ``t:<id>`` (data, record
  number and time in ms of the snapshot covering stream id ``<id>``).  :meth:`compact` then
  trims the log only up to the newest checkpoint the budget no longer needs.

* ``weft:{doc}:meta`` — the document's metadata log (:mod:`server.metadata`): a Stream of
  records (``o`` origin, ``p`` payload), read whole on load and followed by the relay's reader
  (:meth:`~server.relay.redis.RedisRelay.watch`); merging it is order-independent.

The log is also the relay (:mod:`server.relay.redis` reads the same streams), so a record is
published exactly when it is durable.  ``positions`` is shared with that relay: for every open
document, the last stream id whose record this replica's engine has applied.  Compaction uses
it instead of the room's ``upto_seq`` — the snapshot covers every record up to that id and
perhaps a few later ones (CRDT updates are idempotent, so re-applying those on load is
harmless).  The snapshot script refuses to move the covered id backwards, so two replicas
compacting concurrently never trim records the surviving snapshot lacks.

On a Redis Cluster (a ``redis+cluster://`` URL, :mod:`server.store.cluster`) every command
here stays within one document's slot, so nothing below changes.

Durability is Redis's: run it with ``appendonly yes`` (and ``appendfsync always`` if an
acknowledged write must survive a power cut, not just a restart).

Modules: this one is the store (loads, compaction, the OT sequencer, metadata, deletes);
the key names are in :mod:`server.store.redis_keys`, the Lua scripts in
:mod:`server.store.redis_scripts`, connecting in :mod:`server.store.redis_client`, the
batched append path in :mod:`server.store.redis_appends` and the history reads in
:mod:`server.store.redis_history`.  Names other modules import from here stay importable here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.exceptions import RedisError, ResponseError

from server.errors import StorageError
from server.store.base import StoredDoc, StoredMeta
from server.store.history import HistoryBudget, StoredHistory
from server.store.redis_appends import RedisAppends
from server.store.redis_client import Client, connect
from server.store.redis_history import history_trim_point, read_history
from server.store.redis_keys import (
    dedup_key,
    fence_key,
    history_key,
    keys,
    meta_key,
    parse_id,
    text,
    version_key,
)
from server.store.redis_scripts import COMPACT, OT_COMMIT, OT_COMPACT

# Re-exported: the relay, the lease, OT home mode and the tests import these from here.
__all__ = [
    "Client",
    "OTCommit",
    "RedisStore",
    "connect",
    "dedup_key",
    "fence_key",
    "history_key",
    "keys",
    "meta_key",
    "parse_id",
    "text",
    "version_key",
]


class OTCommit(NamedTuple):
    """What :meth:`RedisStore.ot_commit` did: ``status`` is ``"committed"`` (at ``version``),
    ``"conflict"`` (Redis is at ``version``), ``"duplicate"`` (this src/seq was committed at
    ``version`` already) or ``"fenced"`` (a newer home holds fence ``version``)."""

    status: str
    version: int


_COMMIT_STATUS = ("committed", "conflict", "duplicate", "fenced")


class RedisStore:
    """Redis-backed :class:`~server.store.base.Store` (see the module docstring)."""

    def __init__(self, url: str, replica_id: str | None = None,
                 history: HistoryBudget | None = None) -> None:
        self.url = url
        self.budget = history or HistoryBudget()
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self.redis: Client = connect(url, name=f"weft:{self.replica_id}:store")
        # doc -> last stream id this replica's engine has applied (advanced by the relay).
        self.positions: dict[str, str] = {}
        self._ot_commit: Any = None
        # OT sequencer counters: commits accepted, and refused because another replica was first.
        self.ot_commits = 0
        self.ot_conflicts = 0
        self._compact: Any = None
        self._ot_compact: Any = None
        self._closed = False
        self._appends = RedisAppends(self.redis, self.replica_id)

    async def open(self) -> None:
        self._appends.open()
        self._ot_commit = self.redis.register_script(OT_COMMIT)
        self._compact = self.redis.register_script(COMPACT)
        self._ot_compact = self.redis.register_script(OT_COMPACT)
        try:
            await self.redis.ping()
        except RedisError as exc:
            raise StorageError(f"cannot reach Redis at {self.url}: {exc}") from exc

    async def close(self) -> None:
        """Send the appends still queued, then disconnect."""
        if not self._closed:
            self._closed = True
            await self._appends.close()
            await self.redis.aclose()

    async def load(self, doc: str) -> StoredDoc | None:
        kind_key, log_key, snap_key = keys(doc)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(kind_key)
                pipe.hgetall(snap_key)
                pipe.xrange(log_key)
                kind, snap, entries = await pipe.execute()
        except RedisError as exc:
            raise StorageError(f"cannot load {doc!r}: {exc}") from exc
        if kind is None:
            return None
        covered = text(snap[b"id"]) if snap else "0-0"
        floor = parse_id(covered)
        later = [(text(i), f) for i, f in entries if parse_id(text(i)) > floor]
        records = tuple(f[b"p"] for _, f in later if b"p" in f)  # skip snapshot markers
        self.positions[doc] = later[-1][0] if later else covered
        return StoredDoc(text(kind), snap[b"data"] if snap else None, records, len(records) + 1)

    async def snapshot(self, doc: str) -> tuple[str, bytes] | None:
        """The stored snapshot and the stream id it covers (None: never compacted)."""
        try:
            snap: dict[Any, Any] = await self.redis.hgetall(keys(doc)[2])
        except RedisError as exc:
            raise StorageError(f"cannot read the snapshot of {doc!r}: {exc}") from exc
        return (text(snap[b"id"]), snap[b"data"]) if snap else None

    async def append(self, doc: str, kind: str, first_seq: int, records: Sequence[bytes],
                     author: str = "") -> None:
        """Append ``records`` (numbered by Redis; ``first_seq`` is ignored) as this replica's."""
        await self.append_nowait(doc, kind, first_seq, records, author)

    def append_nowait(self, doc: str, kind: str, first_seq: int, records: Sequence[bytes],
                      author: str = "") -> asyncio.Future[None]:
        """:meth:`append` without a coroutine: queue now (in order), return the future.

        Refused once :meth:`close` has begun, as :class:`~server.store.sqlite.SQLiteStore`
        refuses it: the client would otherwise reconnect and write after the store closed.
        """
        if self._closed:
            raise StorageError("store is closed; the write was not accepted")
        if not records:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return self._appends.put(doc, kind, tuple(records), author)

    async def ot_commit(self, doc: str, version: int, record: bytes, *, src: str | None = None,
                        seq: object = None, fence: int | None = None) -> OTCommit:
        """Append the OT ``record`` if the document is at ``version`` (and, with ``fence``, if
        that fence still holds the document); see :class:`OTCommit`.  With an int ``seq`` and
        a ``src`` the write is idempotent: a retry of a commit that succeeded reports
        ``duplicate`` instead of appending the record again."""
        kind_key, log_key, _ = keys(doc)
        dedup = src is not None and type(seq) is int
        try:
            result = await self._ot_commit(
                keys=[kind_key, log_key, version_key(doc), fence_key(doc),
                      dedup_key(doc, src if dedup else "")],  # type: ignore[arg-type]
                args=[version, self.replica_id, record, seq if dedup else "",
                      "" if fence is None else fence])
        except ResponseError as exc:
            raise StorageError(f"append {doc!r}: {str(exc).removeprefix('KIND ')}") from exc
        except RedisError as exc:
            raise StorageError(f"append {doc!r}: Redis write failed: {exc}") from exc
        outcome = OTCommit(_COMMIT_STATUS[int(result[0])], int(result[1]))
        if outcome.status == "committed":
            self.ot_commits += 1
        elif outcome.status == "conflict":
            self.ot_conflicts += 1
        return outcome

    async def ot_compact(self, doc: str, snapshot: bytes, version: int, keep_from: int) -> bool:
        """Store the OT ``snapshot`` (at ``version``) and trim the records applied before
        ``keep_from``; False when a newer snapshot is stored or nothing is old enough."""
        kind_key, log_key, snap_key = keys(doc)
        try:
            done = await self._ot_compact(keys=[kind_key, log_key, snap_key],
                                          args=[snapshot, version, keep_from])
        except ResponseError as exc:
            raise StorageError(f"compact {doc!r}: {str(exc).removeprefix('KIND ')}") from exc
        except RedisError as exc:
            raise StorageError(f"compact {doc!r}: Redis write failed: {exc}") from exc
        return bool(done)

    async def ot_records(self, doc: str, newest: int | None = None) -> list[bytes]:
        """OT records still in the log, oldest first (compaction markers skipped): only the
        last ``newest`` entries or so when given (a replica that knows how far behind it is),
        else all of them.  The caller filters by version and falls back to all on a gap."""
        try:
            if newest is None:
                entries: Any = await self.redis.xrange(keys(doc)[1])
            else:  # a few more than asked: compaction markers take entries too
                latest: Any = await self.redis.xrevrange(keys(doc)[1], count=newest + 4)
                entries = latest[::-1]
        except RedisError as exc:
            raise StorageError(f"cannot read the log of {doc!r}: {exc}") from exc
        return [f[b"p"] for _, f in entries if b"p" in f]

    async def compact(self, doc: str, kind: str, snapshot: bytes, upto_seq: int) -> None:
        """Store ``snapshot`` as covering this replica's position; trim the log up to it.

        Read synchronously on entry (before any await), so it matches the snapshot the room
        took in the same step.  Without a position (document not open here) the log is kept.
        """
        covered = self.positions.get(doc)
        if covered is None:
            return
        ms, seq = parse_id(covered)
        kind_key, log_key, snap_key = keys(doc)
        now = time.time()
        try:
            trim, drop = ((ms, seq), []) if not self.budget.enabled else \
                await history_trim_point(self.redis, self.budget, doc, covered, now)
            await self._compact(keys=[kind_key, log_key, snap_key, history_key(doc)],
                                args=[kind, snapshot, covered, ms, seq,
                                      "1" if self.budget.enabled else "0",
                                      *(trim if trim is not None else ("", "")),
                                      int(now * 1000), *(f"{a}-{b}" for a, b in drop)])
        except ResponseError as exc:
            raise StorageError(f"compact {doc!r}: {str(exc).removeprefix('KIND ')}") from exc
        except RedisError as exc:
            raise StorageError(f"compact {doc!r}: Redis write failed: {exc}") from exc

    async def history(self, doc: str) -> StoredHistory | None:
        """Kept records and checkpoints (records of old data have no number: ``seq`` None)."""
        return await read_history(self.redis, doc)

    async def kind_of(self, doc: str) -> str | None:
        try:
            kind = await self.redis.get(keys(doc)[0])
        except RedisError as exc:
            raise StorageError(f"cannot read {doc!r}: {exc}") from exc
        return None if kind is None else text(kind)

    async def meta_append(self, doc: str, record: bytes) -> None:
        """XADD to ``weft:{doc}:meta``: durable and, for the relay's reader, relayed."""
        try:
            await self.redis.xadd(meta_key(doc), {"o": self.replica_id, "p": record})
        except RedisError as exc:
            raise StorageError(f"cannot store metadata of {doc!r}: {exc}") from exc

    async def meta_load(self, doc: str) -> StoredMeta:
        try:
            entries: Any = await self.redis.xrange(meta_key(doc))
        except RedisError as exc:
            raise StorageError(f"cannot load metadata of {doc!r}: {exc}") from exc
        kept = [(text(i), f[b"p"]) for i, f in entries if b"p" in f]
        return StoredMeta(tuple(p for _, p in kept), tuple(i for i, _ in kept))

    async def meta_compact(self, doc: str, snapshot: bytes, ids: Sequence[str]) -> None:
        """XADD the snapshot and XDEL exactly ``ids`` in one MULTI (readers following the
        stream skip deleted entries; entries other replicas added meanwhile stay)."""
        key = meta_key(doc)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(key, {"o": self.replica_id, "p": snapshot})
                if ids:
                    pipe.xdel(key, *ids)
                await pipe.execute()
        except RedisError as exc:
            raise StorageError(f"cannot compact metadata of {doc!r}: {exc}") from exc

    async def delete(self, doc: str) -> None:
        try:
            await self.redis.delete(*keys(doc), version_key(doc), fence_key(doc),
                                    history_key(doc), meta_key(doc))
        except RedisError as exc:
            raise StorageError(f"delete {doc!r}: {exc}") from exc
        self.positions.pop(doc, None)
