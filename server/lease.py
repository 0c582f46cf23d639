"""Per-document leases with fencing tokens in Redis: who is a document's *home* replica.

A lease is ``weft:{doc}:home`` = ``"<replica> <fence>"`` with a TTL (:data:`TTL_MS`), renewed
by its holder every :data:`RENEW_SECONDS`.  Taking a free lease increments
``weft:{doc}:fence``, so every holder in a document's history has a larger fence than the one
before.  The TTL alone cannot stop a paused or partitioned ex-holder from acting on a lease it
no longer has (its clock and ours disagree about "expired"); the fence can: every write the
holder makes is a Redis script that first compares its fence with the counter
(:meth:`~server.store.redis.RedisStore.ot_commit`), so once a successor exists the old holder's
writes are refused, whatever it believes.  (Kleppmann's argument against lease-only locks,
with Redis as both the lock service and the fenced storage, so the check is atomic.)

The acquire script also returns the last id of the document's request stream (``fwd``) at the
moment the lease was taken: a new home serves requests from there on; requests sent earlier
were addressed to a previous home and their senders resend them (see
:mod:`server.protocols.ot_home`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from server.errors import StorageError
from server.store.redis import Client, fence_key, text

#: Lease lifetime.  A dead home's documents move after at most this long plus one renew tick.
TTL_MS = 3000
#: How often a holder renews (and a non-holder looks for a free lease).
RENEW_SECONDS = 1.0

# KEYS: home, fence, fwd.  ARGV: replica, ttl ms.  Takes the lease if free (new fence), renews
# it if ours; returns {holder, fence, last request id when taken ('' otherwise)}.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held then
  local space = string.find(held, ' ', 1, true)
  local holder, fence = string.sub(held, 1, space - 1), string.sub(held, space + 1)
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  return {holder, fence, ''}
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. fence, 'PX', ARGV[2])
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local last_id = '0-0'
if #last > 0 then last_id = last[1][1] end
return {ARGV[1], tostring(fence), last_id}
"""

# KEYS: home.  ARGV: "replica fence".  Deletes the lease only if it still is this holder's.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def home_key(doc: str) -> str:
    return f"weft:{{{doc}}}:home"


def request_key(doc: str) -> str:
    """The stream of submits forwarded to ``doc``'s home (read by whoever holds the lease)."""
    return f"weft:{{{doc}}}:fwd"


@dataclass(frozen=True, slots=True)
class Lease:
    """One look at a document's lease: ``holder`` (None: free) and its ``fence``; ``taken``
    is the request stream id from which a holder that just took it serves (else None)."""

    holder: str | None
    fence: int
    taken: str | None = None


class Leases:
    """Acquire, renew and release home leases for one replica."""

    def __init__(self, redis: Client, replica_id: str, ttl_ms: int = TTL_MS) -> None:
        self.redis = redis
        self.replica_id = replica_id
        self.ttl_ms = ttl_ms
        self._acquire: Any = redis.register_script(_ACQUIRE)
        self._release: Any = redis.register_script(_RELEASE)

    async def acquire(self, doc: str) -> Lease:
        """Take ``doc``'s lease if free, renew it if ours; either way say who holds it."""
        try:
            holder, fence, taken = await self._acquire(
                keys=[home_key(doc), fence_key(doc), request_key(doc)],
                args=[self.replica_id, self.ttl_ms])
        except RedisError as exc:
            raise StorageError(f"cannot take the home lease of {doc!r}: {exc}") from exc
        return Lease(text(holder), int(fence), text(taken) or None)

    async def release(self, doc: str, fence: int) -> None:
        """Give the lease up (clean shutdown, room unloaded) so another replica takes it now."""
        try:
            await self._release(keys=[home_key(doc)], args=[f"{self.replica_id} {fence}"])
        except RedisError as exc:
            raise StorageError(f"cannot release the home lease of {doc!r}: {exc}") from exc
