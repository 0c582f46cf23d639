"""History on the Redis store: reading kept records and checkpoints, and where to trim.

With a :class:`~server.store.history.HistoryBudget`, compaction keeps earlier snapshots as
checkpoints in ``weft:{doc}:hist`` and trims the log only up to the newest checkpoint the
budget no longer needs (the layout is in :mod:`server.store.redis`).  These reads are apart
from :class:`~server.store.redis.RedisStore` because they are the one place that decodes the
checkpoint hash and turns stream ids into the history's times and versions.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from server.errors import StorageError
from server.store.history import (
    Checkpoint,
    HistoryBudget,
    HistoryRecord,
    StoredHistory,
    redundant,
    trim_point,
)
from server.store.redis_client import Client
from server.store.redis_keys import history_key, keys, parse_id, text


async def read_history(redis: Client, doc: str) -> StoredHistory | None:
    """Kept records and checkpoints (records of old data have no number: ``seq`` None)."""
    kind_key, log_key, snap_key = keys(doc)
    try:
        async with redis.pipeline(transaction=True) as pipe:
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


async def history_trim_point(redis: Client, budget: HistoryBudget, doc: str, covered: str,
                             now: float
                             ) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
    """The checkpoint up to which the budget lets compaction trim the log (or None), and
    the checkpoints that are redundant after that.  Redis errors propagate (the caller's
    compaction turns them into a :class:`StorageError`)."""
    fields: Any = await redis.hkeys(history_key(doc))
    checkpoints = [parse_id(text(f)[2:]) for f in fields if text(f).startswith("d:")]
    current: Any = await redis.hget(keys(doc)[2], "id")  # becomes a checkpoint too
    if current:
        checkpoints.append(parse_id(text(current)))
    entries: Any = await redis.xrange(keys(doc)[1])
    records = [(parse_id(text(i)), parse_id(text(i))[0] / 1000) for i, f in entries
               if b"p" in f]
    candidates = [*checkpoints, parse_id(covered)]
    cut = trim_point(budget, candidates, records, now)
    if cut is not None:
        candidates = [c for c in candidates if c >= cut]
        records = [r for r in records if r[0] > cut]
    return cut, redundant(candidates, records)


def _checkpoint(n: bytes | None, t: bytes | None, data: bytes) -> Checkpoint:
    return Checkpoint(int(n) if n else None, int(t) / 1000 if t else None, data)
