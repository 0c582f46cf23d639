"""Blocking reads of many streams at once, on a single Redis or a Redis Cluster.

The relay (:mod:`server.relay.redis`) and the home-mode reader
(:mod:`server.protocols.ot_home`) each loop on one ``XREAD BLOCK`` over the streams of every
open document plus a per-replica wake stream.  A single Redis serves that as one command, and
:class:`DirectReads` sends exactly that command.  Redis Cluster refuses a multi-key command
whose keys lie in different slots (``CROSSSLOT``, even when one node holds both), and one
document's keys share a slot, so :class:`SlotReads` splits the read per slot: one blocked
``XREAD`` per slot, concurrently, each on its own connection to the slot's primary.

**Reads outlive calls.**  :meth:`SlotReads.xread` returns as soon as *one* slot's read does;
the others stay blocked and are picked up by the next call when they return (cancelling a
blocked read would cost its connection).  The caller's loop stays the same as on one Redis:
build ``{stream: last id}``, read, handle.  A read started by an earlier call may be for an
older id (the caller advanced meanwhile through another read) or an older set of keys (a
document opened in a slot already being read): its entries at or before the caller's current
id are dropped, and a read for keys no longer asked for is simply not re-issued, so nothing is
handled twice and positions never move back.  A new key in a slot already being read is read
by a second, concurrent read for the new key set; the superseded one returns within the block
time.  The wake stream needs no per-slot copies: it is one more key, in its own slot's read.

Cost: one connection and one blocked read per slot holding open documents (plus the wake
stream) per reader, instead of one: thousands of open documents mean thousands of connections
per replica.  Bounding that to one per node needs a doorbell that crosses slots, which a
stream cannot be: e.g. the write scripts ``SPUBLISH`` to the document's shard channel, one
``SSUBSCRIBE`` connection per node hears them, and non-blocking ``XREAD`` s fetch the rung
documents (with a periodic sweep for bells lost while disconnected).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from server.store.redis import Client, parse_id, text

#: Extra wait, beyond the block time, for a slot's read to come back before giving up a call.
GRACE_SECONDS = 2.0


class StreamReads(Protocol):
    """``XREAD`` over ``{stream: last id}``: ``[(stream, [(id, fields), ...]), ...]``."""

    async def xread(self, streams: dict[Any, Any], count: int, block: int) -> Any: ...

    async def aclose(self) -> None:
        """Stop any read still in flight (before the client itself is closed)."""
        ...


class DirectReads:
    """One Redis: one ``XREAD`` for every stream, exactly as before the cluster support."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    async def xread(self, streams: dict[Any, Any], count: int, block: int) -> Any:
        return await self.client.xread(streams, count=count, block=block)

    async def aclose(self) -> None:
        return None


class SlotReads:
    """Redis Cluster: one concurrent ``XREAD`` per slot (see the module docstring)."""

    def __init__(self, client: RedisCluster) -> None:
        self.client = client
        # The key set of each read in flight -> its task (at most a few per slot).
        self._reads: dict[frozenset[str], asyncio.Task[Any]] = {}

    async def xread(self, streams: dict[Any, Any], count: int, block: int) -> Any:
        wanted = {text(k): text(v) for k, v in streams.items()}
        await self.client.initialize()  # the slot map (a no-op once known)
        groups: dict[int, dict[str, str]] = {}
        for key, last in wanted.items():
            groups.setdefault(self.client.keyslot(key), {})[key] = last
        loop = asyncio.get_running_loop()
        for group in groups.values():
            if frozenset(group) not in self._reads:
                self._reads[frozenset(group)] = loop.create_task(
                    self._read(group, count, block), name="weft-slot-xread")
        deadline = loop.time() + block / 1000 + GRACE_SECONDS
        while self._reads:
            done, _ = await asyncio.wait(set(self._reads.values()),
                                         timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                return []
            found = self._collect(done, wanted)
            if found or loop.time() >= deadline:
                return found
            for group in groups.values():  # re-issue what came back empty or stale
                if frozenset(group) not in self._reads:
                    self._reads[frozenset(group)] = loop.create_task(
                        self._read({k: wanted[k] for k in group}, count, block),
                        name="weft-slot-xread")
        return []

    def _collect(self, done: set[asyncio.Task[Any]], wanted: dict[str, str]) -> list[Any]:
        """The still-wanted, not yet seen entries of the finished reads; a read's error is
        raised (the caller backs off; entries of other reads are read again, not lost)."""
        for keyset, task in list(self._reads.items()):
            if task in done:
                del self._reads[keyset]
        error: BaseException | None = None
        found: dict[str, list[Any]] = {}
        floors = {k: parse_id(v) for k, v in wanted.items() if v != "$"}
        for task in done:
            if task.cancelled():
                continue
            if task.exception() is not None:
                error = error or task.exception()
                continue
            for stream, entries in task.result() or ():
                name = text(stream)
                if name not in wanted:
                    continue  # no longer read
                floor = floors.get(name, (-1, -1))
                fresh = [e for e in entries if parse_id(text(e[0])) > floor]
                if fresh:  # two reads of one stream may both have returned the same entries
                    found.setdefault(name, []).extend(fresh)
                    floors[name] = parse_id(text(fresh[-1][0]))
        if error is not None:
            raise error
        return [[name, entries] for name, entries in found.items()]

    async def _read(self, group: dict[str, str], count: int, block: int) -> Any:
        """One blocked ``XREAD`` of one slot's streams, sent straight to that slot's node
        (naming the node spares redis-py a ``COMMAND GETKEYS`` round trip per read)."""
        node = self.client.get_node_from_key(next(iter(group)))
        return await self.client.execute_command(
            "XREAD", "COUNT", count, "BLOCK", block, "STREAMS", *group, *group.values(),
            target_nodes=node)

    async def aclose(self) -> None:
        tasks = list(self._reads.values())
        self._reads.clear()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)


def reads_for(client: Client) -> StreamReads:
    """How to read many streams at once through ``client``."""
    if isinstance(client, RedisCluster):
        return SlotReads(client)
    return DirectReads(client)
