"""A :class:`~server.store.base.Store` on Redis, shared by every replica of a deployment.

Keys per document (the ``{doc}`` hash tag keeps one document's keys in one Cluster slot, so
the Lua scripts below may touch them together):

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
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.errors import StorageError
from server.store.append_queue import Append, AppendQueue
from server.store.base import StoredDoc, StoredMeta
from server.store.cluster import connect_cluster, is_cluster_url
from server.store.history import (
    Checkpoint,
    HistoryBudget,
    HistoryRecord,
    StoredHistory,
    redundant,
    trim_point,
)


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


# KEYS: kind, log, version.  ARGV: kind, origin, author, payload...  Returns the new ids.
# OT records appended without the sequencer (server-side edits) still count in the version;
# CRDT records are counted the same way, which numbers them for history (field n).
_APPEND = _claim_kind("ARGV[1]") + """
local count = #ARGV - 3
local n = redis.call('INCRBY', KEYS[3], count) - count
local ids = {}
for i = 4, #ARGV do
  n = n + 1
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'o', ARGV[2], 'p', ARGV[i], 'a', ARGV[3],
                             'n', n)
end
return ids
"""

# The OT sequencer (ShareDB's submit loop): commit one OT record only at the expected version.
# KEYS: kind, log, version, fence, dedup.  ARGV: version, origin, payload, seq ('' = no dedup),
# fence ('' = no fencing: sequencer mode).  Returns {status, n}: {0, v} committed at v,
# {1, current} conflict, {2, v} this src/seq was committed already at v (a retried write whose
# reply was lost: never XADDed twice), {3, fence} refused: a newer home holds the document.
_OT_COMMIT = _claim_kind("'ot'") + """
if ARGV[5] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[5] then
  return {3, tonumber(redis.call('GET', KEYS[4]) or '0')}
end
if ARGV[4] ~= '' then
  local seen = redis.call('GET', KEYS[5])
  if seen then
    local colon = string.find(seen, ':', 1, true)
    if string.sub(seen, 1, colon - 1) == ARGV[4] then
      return {2, tonumber(string.sub(seen, colon + 1))}
    end
  end
end
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if current ~= tonumber(ARGV[1]) then
  return {1, current}
end
redis.call('SET', KEYS[3], current + 1)
redis.call('XADD', KEYS[2], '*', 'o', ARGV[2], 'p', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[5], ARGV[4] .. ':' .. current, 'PX', 86400000)
end
return {0, current}
"""

# OT compaction.  KEYS: kind, log, snap.  ARGV: snapshot, its version, keep_from.  Trims the
# records applied at versions < keep_from (the log is in version order: _OT_COMMIT appends at
# the counter) and stores the snapshot covering the last trimmed id; never moves backwards.
_OT_COMPACT = _claim_kind("'ot'") + """
local old = tonumber(redis.call('HGET', KEYS[3], 'v') or '-1')
if old >= tonumber(ARGV[2]) then
  return 0
end
local keep_from, last, start = tonumber(ARGV[3]), nil, '-'
while true do
  local batch = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', 200)
  if #batch == 0 then break end
  local stop = false
  for _, entry in ipairs(batch) do
    local fields, payload = entry[2], nil
    for i = 1, #fields, 2 do
      if fields[i] == 'p' then payload = fields[i + 1] end
    end
    if payload then
      local v = tonumber(string.match(payload, '^{"v":(%d+)'))
      if v == nil or v >= keep_from then stop = true break end
    end
    last = entry[1]
  end
  if stop then break end
  start = '(' .. batch[#batch][1]
end
if last == nil then
  return 0
end
redis.call('HSET', KEYS[3], 'data', ARGV[1], 'id', last, 'v', ARGV[2])
local dash = string.find(last, '-', 1, true)
redis.call('XTRIM', KEYS[2], 'MINID', string.sub(last, 1, dash - 1) .. '-' ..
           (tonumber(string.sub(last, dash + 1)) + 1))
redis.call('XADD', KEYS[2], '*', 's', last)
return 1
"""

# KEYS: kind, log, snap, hist.  ARGV: kind, snapshot, covered id, covered ms, covered seq,
# keep history ('1'/'0'), trim ms, trim seq ('', '': trim nothing), now (ms), then the ids of
# redundant checkpoints to drop.  With history kept, the replaced snapshot becomes a checkpoint
# and the log is trimmed only up to the trim id (a checkpoint), dropping older checkpoints.
_COMPACT = _claim_kind("ARGV[1]") + """
local function before(id, ms, seq)
  local dash = string.find(id, '-', 1, true)
  local a, b = tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
  return a < ms or (a == ms and b < seq)
end
local old = redis.call('HMGET', KEYS[3], 'id', 'data', 'n', 't')
if old[1] and not before(old[1], tonumber(ARGV[4]), tonumber(ARGV[5])) then
  return 0
end
local n = ''
local entry = redis.call('XRANGE', KEYS[2], ARGV[3], ARGV[3])
if #entry == 1 then
  local f = entry[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'n' then n = f[i + 1] end
  end
end
if ARGV[6] == '1' and old[1] then
  redis.call('HSET', KEYS[4], 'd:' .. old[1], old[2], 'n:' .. old[1], old[3] or '',
             't:' .. old[1], old[4] or '')
end
redis.call('HSET', KEYS[3], 'data', ARGV[2], 'id', ARGV[3], 'n', n, 't', ARGV[9])
if ARGV[7] ~= '' then
  local ms, seq = tonumber(ARGV[7]), tonumber(ARGV[8])
  redis.call('XTRIM', KEYS[2], 'MINID', ms .. '-' .. (seq + 1))
  for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
    local id = string.sub(field, 3)
    if before(id, ms, seq) or id == ARGV[3] then
      redis.call('HDEL', KEYS[4], field)
    end
  end
end
for i = 10, #ARGV do
  redis.call('HDEL', KEYS[4], 'd:' .. ARGV[i], 'n:' .. ARGV[i], 't:' .. ARGV[i])
end
redis.call('XADD', KEYS[2], '*', 's', ARGV[3])
return 1
"""


def keys(doc: str) -> tuple[str, str, str]:
    """The kind, log and snapshot keys of ``doc`` (one hash tag: one Cluster slot)."""
    return f"weft:{{{doc}}}:kind", f"weft:{{{doc}}}:log", f"weft:{{{doc}}}:snap"


def history_key(doc: str) -> str:
    """The checkpoints of ``doc`` kept for history (see the module docstring)."""
    return f"weft:{{{doc}}}:hist"


def meta_key(doc: str) -> str:
    """The metadata log of ``doc``: a Stream of records, fields ``o`` (origin) and ``p``."""
    return f"weft:{{{doc}}}:meta"


def version_key(doc: str) -> str:
    """The OT version counter of ``doc`` (the sequencer's compare-and-set target)."""
    return f"weft:{{{doc}}}:v"


def fence_key(doc: str) -> str:
    """The fencing counter of ``doc``'s home lease (:mod:`server.lease`)."""
    return f"weft:{{{doc}}}:fence"


def dedup_key(doc: str, src: str) -> str:
    """The last ``seq:version`` committed for ``src`` on ``doc`` (idempotent commits)."""
    return f"weft:{{{doc}}}:seq:{src}"


class OTCommit(NamedTuple):
    """What :meth:`RedisStore.ot_commit` did: ``status`` is ``"committed"`` (at ``version``),
    ``"conflict"`` (Redis is at ``version``), ``"duplicate"`` (this src/seq was committed at
    ``version`` already) or ``"fenced"`` (a newer home holds fence ``version``)."""

    status: str
    version: int


_COMMIT_STATUS = ("committed", "conflict", "duplicate", "fenced")


def parse_id(stream_id: str) -> tuple[int, int]:
    """``"ms-seq"`` as a tuple that orders like Redis orders stream ids."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


#: A single Redis or a Redis Cluster: every command the store sends touches one document's
#: keys (one slot), so both clients take the same calls.
Client = Redis | RedisCluster


def _checkpoint(n: bytes | None, t: bytes | None, data: bytes) -> Checkpoint:
    return Checkpoint(int(n) if n else None, int(t) / 1000 if t else None, data)


def connect(url: str, *, retries: int = 8, socket_timeout: float = 5.0,
            name: str | None = None) -> Client:
    """A client that reconnects by itself: a Redis restart costs retries, not errors.

    ``socket_timeout`` bounds every reply; a blocking read must block for less than it.
    ``name`` is set on every (re)connection (``CLIENT SETNAME``), so an operator's
    ``CLIENT LIST`` shows which replica holds which connection.  A ``redis+cluster://`` URL
    gives a Redis Cluster client (:mod:`server.store.cluster`).
    """
    if name is not None:  # Redis refuses names with spaces or control characters
        name = "".join(ch if "!" <= ch <= "~" else "_" for ch in name)
    if is_cluster_url(url):
        return connect_cluster(url, retries=retries, socket_timeout=socket_timeout, name=name)
    return Redis.from_url(
        url,
        client_name=name,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        health_check_interval=0,
        socket_connect_timeout=2.0,
        socket_timeout=socket_timeout,
    )


def _append_error(doc: str, exc: BaseException) -> StorageError:
    """The error of one refused append: the other engine's document, or Redis failing."""
    if isinstance(exc, ResponseError):
        return StorageError(f"append {doc!r}: {str(exc).removeprefix('KIND ')}")
    return StorageError(f"append {doc!r}: Redis write failed: {exc}")


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
        self._append: Any = None
        self._ot_commit: Any = None
        # OT sequencer counters: commits accepted, and refused because another replica was first.
        self.ot_commits = 0
        self.ot_conflicts = 0
        self._compact: Any = None
        self._ot_compact: Any = None
        self._closed = False
        # Every append goes through one writer: each document's log keeps the order its room
        # made the changes in, and a burst is one round trip (see server.store.append_queue).
        # On a Cluster one writer per document, so a slot failing over stalls only its own.
        self._appends = AppendQueue(self._send_appends)
        self._doc_appends: dict[str, AppendQueue] = {}

    async def open(self) -> None:
        self._append = self.redis.register_script(_APPEND)
        self._ot_commit = self.redis.register_script(_OT_COMMIT)
        self._compact = self.redis.register_script(_COMPACT)
        self._ot_compact = self.redis.register_script(_OT_COMPACT)
        try:
            await self.redis.ping()
        except RedisError as exc:
            raise StorageError(f"cannot reach Redis at {self.url}: {exc}") from exc

    async def close(self) -> None:
        """Send the appends still queued, then disconnect."""
        if not self._closed:
            self._closed = True
            await self._appends.close()
            for queue in list(self._doc_appends.values()):
                await queue.close()
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
        """:meth:`append` without a coroutine: queue now (in order), return the future."""
        if not records:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        if not isinstance(self.redis, RedisCluster):
            return self._appends.put(doc, kind, tuple(records), author)
        queue = self._doc_appends.get(doc)
        if queue is None:
            if len(self._doc_appends) >= 1024:  # forget idle writers of documents gone quiet
                self._doc_appends = {d: q for d, q in self._doc_appends.items() if q.busy}
            queue = self._doc_appends[doc] = AppendQueue(self._send_in_order)
        return queue.put(doc, kind, tuple(records), author)

    async def _send_appends(self, batch: Sequence[Append]) -> None:
        """One batch on a single Redis: one pipeline (in order on one connection, one round
        trip)."""
        # EVALSHA straight into the pipeline: registering the script with the pipeline would
        # cost a SCRIPT EXISTS round trip per batch.  A Redis that lost its script cache (a
        # restart) answers NOSCRIPT: those appends go again through the script object, which
        # loads it — still in order, as nothing later of theirs was written.
        sha = self._append.sha
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for item in batch:
                    pipe.evalsha(sha, 3, *self._append_keys(item.doc), item.kind,
                                 self.replica_id, item.author, *item.records)
                results = await pipe.execute(raise_on_error=False)
        except RedisError as exc:
            raise StorageError(f"append: Redis write failed: {exc}") from exc
        retry = [item for item, result in zip(batch, results, strict=True)
                 if isinstance(result, NoScriptError)]
        for item, result in zip(batch, results, strict=True):
            if not isinstance(result, NoScriptError):
                item.settle(_append_error(item.doc, result) if isinstance(result, Exception)
                            else None)
        if retry:
            await self._send_in_order(retry)

    async def _send_in_order(self, items: Sequence[Append]) -> None:
        for item in items:
            try:
                await self._append(keys=self._append_keys(item.doc),
                                   args=[item.kind, self.replica_id, item.author, *item.records])
            except RedisError as exc:
                item.settle(_append_error(item.doc, exc))
            else:
                item.settle(None)

    @staticmethod
    def _append_keys(doc: str) -> list[str]:
        kind_key, log_key, _ = keys(doc)
        return [kind_key, log_key, version_key(doc)]

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
                await self._trim_point(doc, covered, now)
            await self._compact(keys=[kind_key, log_key, snap_key, history_key(doc)],
                                args=[kind, snapshot, covered, ms, seq,
                                      "1" if self.budget.enabled else "0",
                                      *(trim if trim is not None else ("", "")),
                                      int(now * 1000), *(f"{a}-{b}" for a, b in drop)])
        except ResponseError as exc:
            raise StorageError(f"compact {doc!r}: {str(exc).removeprefix('KIND ')}") from exc
        except RedisError as exc:
            raise StorageError(f"compact {doc!r}: Redis write failed: {exc}") from exc

    async def _trim_point(self, doc: str, covered: str, now: float
                          ) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
        """The checkpoint up to which the budget lets compaction trim the log (or None), and
        the checkpoints that are redundant after that."""
        fields: Any = await self.redis.hkeys(history_key(doc))
        checkpoints = [parse_id(text(f)[2:]) for f in fields if text(f).startswith("d:")]
        current: Any = await self.redis.hget(keys(doc)[2], "id")  # becomes a checkpoint too
        if current:
            checkpoints.append(parse_id(text(current)))
        entries: Any = await self.redis.xrange(keys(doc)[1])
        records = [(parse_id(text(i)), parse_id(text(i))[0] / 1000) for i, f in entries
                   if b"p" in f]
        candidates = [*checkpoints, parse_id(covered)]
        cut = trim_point(self.budget, candidates, records, now)
        if cut is not None:
            candidates = [c for c in candidates if c >= cut]
            records = [r for r in records if r[0] > cut]
        return cut, redundant(candidates, records)

    async def history(self, doc: str) -> StoredHistory | None:
        """Kept records and checkpoints (records of old data have no number: ``seq`` None)."""
        kind_key, log_key, snap_key = keys(doc)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(kind_key)
                pipe.hgetall(snap_key)
                pipe.hgetall(history_key(doc))
                pipe.xrange(log_key)
                kind, snap, hist, entries = await pipe.execute()
        except RedisError as exc:
            raise StorageError(f"cannot read the history of {doc!r}: {exc}") from exc
        if kind is None:
            return None
        found: list[tuple[tuple[int, int], Checkpoint]] = []
        for field, data in hist.items():
            name = text(field)
            if name.startswith("d:"):
                cid = name[2:]
                found.append((parse_id(cid), _checkpoint(hist.get(f"n:{cid}".encode()),
                                                         hist.get(f"t:{cid}".encode()), data)))
        found.sort(key=lambda item: item[0])
        checkpoints = [c for _, c in found]
        if snap:
            checkpoints.append(_checkpoint(snap.get(b"n"), snap.get(b"t"), snap[b"data"]))
        records = tuple(
            HistoryRecord(int(f[b"n"]) if f.get(b"n") else None,
                          parse_id(text(i))[0] / 1000, text(f.get(b"a", b"")), f[b"p"])
            for i, f in entries if b"p" in f
        )
        return StoredHistory(text(kind), tuple(checkpoints), records)

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
