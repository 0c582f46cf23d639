"""A :class:`~server.store.base.Store` on Redis, shared by every replica of a deployment.

Keys per document (the ``{doc}`` hash tag keeps one document's keys in one Cluster slot, so
the Lua scripts below may touch them together):

* ``weft:{doc}:kind`` — which engine merges the document (claimed by the first append);
* ``weft:{doc}:log`` — a Redis Stream of engine records, fields ``o`` (origin replica id) and
  ``p`` (payload); the stream id is the record's number, assigned by Redis, so replicas
  appending concurrently never collide (the room's own ``first_seq`` is ignored);
* ``weft:{doc}:v`` — an OT document's version: the sequencer's compare-and-set target
  (:meth:`RedisStore.ot_commit`; see :mod:`server.protocols.ot_replicas`);
* ``weft:{doc}:snap`` — a hash: ``data`` (snapshot bytes) and ``id`` (the last stream id the
  snapshot covers).  Each compaction also appends a marker entry (field ``s``: the covered
  id) to the log, so a replica reading behind the trim point learns that it missed records
  and merges the snapshot instead (see :mod:`server.relay.redis`).

The log is also the relay (:mod:`server.relay.redis` reads the same streams), so a record is
published exactly when it is durable.  ``positions`` is shared with that relay: for every open
document, the last stream id whose record this replica's engine has applied.  Compaction uses
it instead of the room's ``upto_seq`` — the snapshot covers every record up to that id and
perhaps a few later ones (CRDT updates are idempotent, so re-applying those on load is
harmless).  The snapshot script refuses to move the covered id backwards, so two replicas
compacting concurrently never trim records the surviving snapshot lacks.

Durability is Redis's: run it with ``appendonly yes`` (and ``appendfsync always`` if an
acknowledged write must survive a power cut, not just a restart).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.errors import StorageError
from server.store.base import StoredDoc


# Every write script starts by claiming the document's engine (KEYS[1]) and refusing the other.
def _claim_kind(kind: str) -> str:
    """Lua that records ``kind`` (a Lua expression) on first write and refuses a mismatch."""
    return f"""
redis.call('SET', KEYS[1], {kind}, 'NX')
local stored = redis.call('GET', KEYS[1])
if stored ~= {kind} then
  return redis.error_reply('KIND document is a ' .. stored .. ' document, not ' .. {kind})
end
"""


# KEYS: kind, log, version.  ARGV: kind, origin, payload...  Returns the new stream ids.
# OT records appended without the sequencer (server-side edits) still count in the version.
_APPEND = _claim_kind("ARGV[1]") + """
if ARGV[1] == 'ot' then
  redis.call('INCRBY', KEYS[3], #ARGV - 2)
end
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'o', ARGV[2], 'p', ARGV[i])
end
return ids
"""

# The OT sequencer (ShareDB's submit loop): commit one OT record only at the expected version.
# KEYS: kind, log, version.  ARGV: version, origin, payload.  Returns -1 when committed, else
# the current version (the caller catches up, transforms and retries).
_OT_COMMIT = _claim_kind("'ot'") + """
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if current ~= tonumber(ARGV[1]) then
  return current
end
redis.call('SET', KEYS[3], current + 1)
redis.call('XADD', KEYS[2], '*', 'o', ARGV[2], 'p', ARGV[3])
return -1
"""

# KEYS: kind, log, snap.  ARGV: kind, snapshot, covered id, covered ms, covered seq.
_COMPACT = _claim_kind("ARGV[1]") + """
local old = redis.call('HGET', KEYS[3], 'id')
if old then
  local dash = string.find(old, '-', 1, true)
  local ms, seq = tonumber(string.sub(old, 1, dash - 1)), tonumber(string.sub(old, dash + 1))
  local new_ms, new_seq = tonumber(ARGV[4]), tonumber(ARGV[5])
  if ms > new_ms or (ms == new_ms and seq >= new_seq) then
    return 0
  end
end
redis.call('HSET', KEYS[3], 'data', ARGV[2], 'id', ARGV[3])
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[4] .. '-' .. (tonumber(ARGV[5]) + 1))
redis.call('XADD', KEYS[2], '*', 's', ARGV[3])
return 1
"""


def keys(doc: str) -> tuple[str, str, str]:
    """The kind, log and snapshot keys of ``doc`` (one hash tag: one Cluster slot)."""
    return f"weft:{{{doc}}}:kind", f"weft:{{{doc}}}:log", f"weft:{{{doc}}}:snap"


def version_key(doc: str) -> str:
    """The OT version counter of ``doc`` (the sequencer's compare-and-set target)."""
    return f"weft:{{{doc}}}:v"


def parse_id(stream_id: str) -> tuple[int, int]:
    """``"ms-seq"`` as a tuple that orders like Redis orders stream ids."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def connect(url: str, *, retries: int = 8, socket_timeout: float = 5.0) -> Redis:
    """A client that reconnects by itself: a Redis restart costs retries, not errors.

    ``socket_timeout`` bounds every reply; a blocking read must block for less than it.
    """
    return Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        health_check_interval=0,
        socket_connect_timeout=2.0,
        socket_timeout=socket_timeout,
    )


class RedisStore:
    """Redis-backed :class:`~server.store.base.Store` (see the module docstring)."""

    def __init__(self, url: str, replica_id: str | None = None) -> None:
        self.url = url
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self.redis: Redis = connect(url)
        # doc -> last stream id this replica's engine has applied (advanced by the relay).
        self.positions: dict[str, str] = {}
        self._append: Any = None
        self._ot_commit: Any = None
        # OT sequencer counters: commits accepted, and refused because another replica was first.
        self.ot_commits = 0
        self.ot_conflicts = 0
        self._compact: Any = None
        self._closed = False

    async def open(self) -> None:
        self._append = self.redis.register_script(_APPEND)
        self._ot_commit = self.redis.register_script(_OT_COMMIT)
        self._compact = self.redis.register_script(_COMPACT)
        try:
            await self.redis.ping()
        except RedisError as exc:
            raise StorageError(f"cannot reach Redis at {self.url}: {exc}") from exc

    async def close(self) -> None:
        """Every accepted write already is in Redis (writes are awaited); just disconnect."""
        if not self._closed:
            self._closed = True
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

    async def append(self, doc: str, kind: str, first_seq: int, records: Sequence[bytes]) -> None:
        """Append ``records`` (numbered by Redis; ``first_seq`` is ignored) as this replica's."""
        if not records:
            return
        kind_key, log_key, _ = keys(doc)
        try:
            await self._append(keys=[kind_key, log_key, version_key(doc)],
                               args=[kind, self.replica_id, *records])
        except ResponseError as exc:
            message = str(exc).removeprefix("KIND ")
            raise StorageError(f"append {doc!r}: {message}") from exc
        except RedisError as exc:
            raise StorageError(f"append {doc!r}: Redis write failed: {exc}") from exc

    async def ot_commit(self, doc: str, version: int, record: bytes) -> int | None:
        """Append the OT ``record`` if the document is at ``version``; None when committed,
        else the document's current version in Redis (nothing was written)."""
        kind_key, log_key, _ = keys(doc)
        try:
            result = await self._ot_commit(keys=[kind_key, log_key, version_key(doc)],
                                           args=[version, self.replica_id, record])
        except ResponseError as exc:
            raise StorageError(f"append {doc!r}: {str(exc).removeprefix('KIND ')}") from exc
        except RedisError as exc:
            raise StorageError(f"append {doc!r}: Redis write failed: {exc}") from exc
        if int(result) < 0:
            self.ot_commits += 1
            return None
        self.ot_conflicts += 1
        return int(result)

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
        try:
            await self._compact(keys=[kind_key, log_key, snap_key],
                                args=[kind, snapshot, covered, ms, seq])
        except ResponseError as exc:
            raise StorageError(f"compact {doc!r}: {str(exc).removeprefix('KIND ')}") from exc
        except RedisError as exc:
            raise StorageError(f"compact {doc!r}: Redis write failed: {exc}") from exc

    async def kind_of(self, doc: str) -> str | None:
        try:
            kind = await self.redis.get(keys(doc)[0])
        except RedisError as exc:
            raise StorageError(f"cannot read {doc!r}: {exc}") from exc
        return None if kind is None else text(kind)

    async def delete(self, doc: str) -> None:
        try:
            await self.redis.delete(*keys(doc), version_key(doc))
        except RedisError as exc:
            raise StorageError(f"delete {doc!r}: {exc}") from exc
        self.positions.pop(doc, None)
