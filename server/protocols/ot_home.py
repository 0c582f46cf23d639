"""OT ordering by conflict avoidance (``--ot-ordering home``): each document has a home replica
that orders its ops; the other replicas forward their clients' submits to it.

**Lease.**  The home holds the document's lease (:mod:`server.lease`: a TTL key renewed every
second, and a fencing token that grows with every new holder).  Every replica that has the
document open looks at the lease once per :data:`~server.lease.RENEW_SECONDS` (the
:class:`Homes` keeper); whoever finds it free takes it, so the first replica to open a document
becomes its home and, when the home dies, a replica still serving the document takes over
within the TTL plus one tick.  The home commits with the same step as the sequencer mode
(:func:`~server.protocols.ot_replicas.commit_here`) plus its fence: Redis refuses the record
once a newer home exists, so a deposed home (paused, partitioned, or just slow to notice) can
never fork the log.  The version compare-and-set stays too, so the log is in version order
even if two replicas believed they were home.

**Forwarding channel.**  One request stream per document, ``weft:{doc}:fwd``, read by whoever
holds the lease, from the stream id recorded atomically when the lease was taken.  Why a
per-document stream rather than one per requester or per home: requesters need not know who the
home is (the lease may move while a request is on its way), a new home needs one read to see
every request sent to it, and a blocked ``XREAD`` covers all of a replica's homed documents
at once (as the relay does for the logs).  Requests carry ``(src, seq)`` and are idempotent
(the commit script and the engine deduplicate), so resending is always safe.

**Replies.**  Success needs none: the committed record reaches the requester through its relay
(log == relay), and the requester's :class:`~server.protocols.ot_replicas.Delivery` acks the
client when its engine applies that record — so the ack never overtakes earlier ops and is
sent only after the home committed to Redis.  Errors and "already committed at v" go to the
requester's reply stream ``weft:{doc}:rep:<replica>``.

**Failover.**  A requester resends a pending submit when the lease changes hands (its keeper
saw a new fence) or after :data:`FORWARD_TIMEOUT`; if the lease is free or its own, it commits
the submit itself.  A resubmission the old home had committed is acknowledged from the log.

Limits: a requester whose room unloads stops tracking the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from orjson import dumps, loads
from redis.exceptions import RedisError

from engines.interface import Effects, EngineError
from engines.ot_engine import OTAck, OTSubmit
from server.errors import ClientError, StorageError, WeftError, from_engine_error
from server.lease import RENEW_SECONDS, Lease, Leases, request_key
from server.protocols import ot_docs, ot_replicas
from server.protocols.ot_replicas import Change, Delivery, Fenced
from server.relay.streams import StreamReads, reads_for
from server.rooms.lifecycle import RoomState
from server.rooms.room import Room
from server.store.redis import RedisStore, connect, text

log = logging.getLogger("weft.ot_home")

#: Resend a forwarded submit after this long without an answer (lease changes resend at once).
FORWARD_TIMEOUT = 2.0
#: Resends before a submit fails (about MAX_FORWARDS * FORWARD_TIMEOUT at worst).
MAX_FORWARDS = 12
BLOCK_MS = 1000
STREAM_TTL_MS = 60_000
STREAM_MAXLEN = 1000


def reply_key(doc: str, replica: str) -> str:
    return f"weft:{{{doc}}}:rep:{replica}"


def encode_change(change: Change) -> bytes:
    if isinstance(change, ot_docs.Create):
        return dumps({"create": change.text, "src": change.src, "seq": change.seq})
    return dumps({"op": change.op, "v": change.version, "src": change.src, "seq": change.seq})


def decode_change(raw: bytes) -> Change:
    data = loads(raw)
    if "create" in data:
        return ot_docs.Create(data["create"], data.get("src"), data.get("seq"))
    return OTSubmit(data["op"], data["v"], data.get("src"), data.get("seq"))


@dataclass(slots=True)
class _Forward:
    """A submit sent to the home, waiting for its record (or an error/duplicate reply)."""

    reply: asyncio.Future[dict[bytes, bytes]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class Homes:
    """This replica's side of home mode: lease keeper, request server, forwarder."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.replica_id = store.replica_id
        self.leases = Leases(store.redis, self.replica_id)
        self.rooms: dict[str, Room] = {}
        self.views: dict[str, Lease] = {}  # the last look at each tracked document's lease
        self.serving: dict[str, str] = {}  # doc -> request stream position (we are home)
        self.replies: dict[str, str] = {}  # doc -> our reply stream position
        self.pending: dict[str, dict[str, _Forward]] = {}
        self._moved: dict[str, asyncio.Future[None]] = {}
        self.counts: Counter[str] = Counter()  # forwarded, served, resent, took_over
        self.wake_key = f"weft:replica:{self.replica_id}:homewake"
        self._redis: Any = None
        self._reads: StreamReads | None = None
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._serving_tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        ot_replicas.route_through(self.store, self)
        # Its own connection: a blocked XREAD must not hold up commits.
        self._redis = connect(self.store.url, retries=0, socket_timeout=BLOCK_MS / 1000 + 5)
        self._reads = reads_for(self._redis)  # one XREAD; one per slot on a Redis Cluster
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._keep(), name="weft-home-keeper"),
                       loop.create_task(self._read(), name="weft-home-reader")]

    def halt(self) -> None:
        """Stop renewing and serving *without* releasing the leases — what a crashed process
        does (for tests); submits through this replica then fail or get fenced."""
        self._closed = True
        for task in self._tasks:
            task.cancel()

    async def close(self) -> None:
        """Stop, and give every lease up so other replicas take over at once."""
        held = [(d, v.fence) for d, v in self.views.items() if v.holder == self.replica_id]
        was_closed, self._closed = self._closed, True
        for task in [*self._tasks, *self._serving_tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._serving_tasks, return_exceptions=True)
        if not was_closed:
            for doc, fence in held:
                with contextlib.suppress(StorageError):
                    await self.leases.release(doc, fence)
        ot_replicas.route_through(self.store, None)
        if self._redis is not None:
            with contextlib.suppress(RedisError):
                await self._redis.delete(self.wake_key)
            if self._reads is not None:
                await self._reads.aclose()
            await self._redis.aclose()

    def track(self, room: Room) -> None:
        """Take part in ``room``'s lease from now on (called when the room attaches)."""
        self.rooms[room.name] = room
        self._kick.set()

    def is_home(self, doc: str) -> bool:
        view = self.views.get(doc)
        return view is not None and view.holder == self.replica_id

    # ---- the lease keeper ------------------------------------------------------------------

    async def _keep(self) -> None:
        while not self._closed:
            self._kick.clear()
            for doc, room in list(self.rooms.items()):
                try:
                    if room.state is RoomState.UNLOADED or room.engine is None:
                        await self._untrack(doc, room)
                    else:
                        await self.look(doc)
                except (StorageError, RedisError) as exc:
                    log.warning("home lease of %r: %s", doc, exc)
                except Exception:  # a bug for one document must not let every lease lapse
                    log.exception("home lease of %r", doc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), RENEW_SECONDS)

    async def _untrack(self, doc: str, room: Room) -> None:
        if self.rooms.get(doc) is not room:
            return
        del self.rooms[doc]
        view = self.views.pop(doc, None)
        self.serving.pop(doc, None)
        self.replies.pop(doc, None)
        if view is not None and view.holder == self.replica_id:
            await self.leases.release(doc, view.fence)

    async def look(self, doc: str) -> Lease:
        """Take, renew or just read ``doc``'s lease, and act on any change of holder."""
        lease = await self.leases.acquire(doc)
        old = self.views.get(doc)
        self.views[doc] = lease
        if doc not in self.replies:
            self.replies[doc] = await self._last_id(reply_key(doc, self.replica_id))
        if lease.holder == self.replica_id:
            if lease.taken is not None:
                self.serving[doc] = lease.taken
                self.counts["took_over"] += old is not None and old.holder != self.replica_id
            elif doc not in self.serving:
                self.serving[doc] = await self._last_id(request_key(doc))
        else:
            self.serving.pop(doc, None)
        if old is None or (old.holder, old.fence) != (lease.holder, lease.fence):
            moved = self._moved.pop(doc, None)
            if moved is not None and not moved.done():
                moved.set_result(None)  # pending forwards resend to the new home
            self._wake()
        return lease

    async def _last_id(self, key: str) -> str:
        latest: Any = await self.store.redis.xrevrange(key, count=1)
        return text(latest[0][0]) if latest else "0-0"

    # ---- submits (forwarder) ---------------------------------------------------------------

    async def submit(self, room: Room, change: Change, author: str,
                     delivery: Delivery) -> Effects:
        """Commit here if this replica is home, else forward to the home and wait for the
        record; resend on a lease change or a timeout (see the module docstring)."""
        doc = room.name
        if isinstance(change, OTSubmit) and change.version == -1:  # "at the version I see"
            version = ot_docs.version(room.require_engine())
            change = OTSubmit(change.op, version, change.src, change.seq)
        for _ in range(MAX_FORWARDS):
            if delivery.effects is not None:
                return delivery.effects
            if self._closed:
                raise StorageError(f"replica {self.replica_id} is shutting down; resubmit")
            view = self.views.get(doc)
            if view is None or view.holder is None:
                view = await self.look(doc)
            if view.holder == self.replica_id:
                try:
                    return await ot_replicas.commit_here(room, change, author, delivery,
                                                         fence=view.fence)
                except Fenced:
                    await self.look(doc)
                    continue
            effects = await self._forward(room, change, author, delivery)
            if effects is not None:
                return effects
            self.counts["resent"] += 1
        raise ClientError(f"Op submit failed: the home of {doc!r} did not commit it after "
                          f"{MAX_FORWARDS} attempts", code="ERR_MAX_SUBMIT_RETRIES_EXCEEDED")

    async def _forward(self, room: Room, change: Change, author: str,
                       delivery: Delivery) -> Effects | None:
        """One attempt: the effects once committed, None to try again."""
        doc = room.name
        key = secrets.token_hex(8)
        forward = _Forward()
        self.pending.setdefault(doc, {})[key] = forward
        moved = self._moved.get(doc)
        if moved is None or moved.done():
            moved = self._moved[doc] = asyncio.get_running_loop().create_future()
        try:
            try:
                await self.store.redis.xadd(
                    request_key(doc),
                    {"r": self.replica_id, "k": key, "c": encode_change(change), "a": author},
                    maxlen=STREAM_MAXLEN, approximate=True)
                await self.store.redis.pexpire(request_key(doc), STREAM_TTL_MS)
            except RedisError as exc:
                raise StorageError(f"cannot forward a submit of {doc!r}: {exc}") from exc
            self.counts["forwarded"] += 1
            waiters: set[asyncio.Future[Any]] = {delivery.waiter, forward.reply, moved}
            await asyncio.wait(waiters, timeout=FORWARD_TIMEOUT,
                               return_when=asyncio.FIRST_COMPLETED)
            if delivery.effects is not None:
                return delivery.effects
            if not forward.reply.done():
                return None
            reply = forward.reply.result()
            if reply.get(b"s") == b"dup":
                return await ot_replicas.settle_duplicate(room, change, delivery,
                                                          int(reply[b"v"]))
            raise ClientError(text(reply.get(b"m", b"the home refused the op")),
                              code=text(reply.get(b"e", b"ERR_OT_OP_NOT_APPLIED")))
        finally:
            pending = self.pending.get(doc)
            if pending is not None:
                pending.pop(key, None)
                if not pending:
                    del self.pending[doc]

    # ---- the reader: requests (as home) and replies (as requester) ---------------------------

    def _wake(self) -> None:
        if self._redis is None or self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._send_wake())
        self._serving_tasks.add(task)
        task.add_done_callback(self._serving_tasks.discard)

    async def _send_wake(self) -> None:
        with contextlib.suppress(RedisError):
            await self._redis.xadd(self.wake_key, {"w": "1"}, maxlen=16, approximate=False)

    async def _read(self) -> None:
        reads = self._reads
        if reads is None:
            return  # not started
        wake_id, backoff = "0-0", 0.05  # not "$": see RedisRelay._wake_id
        while not self._closed:
            streams: dict[Any, Any] = {self.wake_key: wake_id}
            requests = {request_key(d): d for d in self.serving}
            replies = {reply_key(d, self.replica_id): d for d in self.replies}
            for key, doc in requests.items():
                streams[key] = self.serving[doc]
            for key, doc in replies.items():
                streams[key] = self.replies[doc]
            try:
                result: Any = await reads.xread(streams, count=100, block=BLOCK_MS)
            except RedisError as exc:
                log.warning("home reader: Redis read failed (retrying): %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)
                continue
            backoff = 0.05
            for stream, entries in result or ():
                name = text(stream)
                if name == self.wake_key:
                    wake_id = text(entries[-1][0])
                elif name in requests:
                    self._on_requests(requests[name], entries)
                elif name in replies:
                    self._on_replies(replies[name], entries)

    def _on_requests(self, doc: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        if doc not in self.serving:
            return
        for entry_id, fields in entries:
            self.serving[doc] = text(entry_id)
            task = asyncio.get_running_loop().create_task(self._serve(doc, fields))
            self._serving_tasks.add(task)
            task.add_done_callback(self._serving_tasks.discard)

    def _on_replies(self, doc: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for entry_id, fields in entries:
            self.replies[doc] = text(entry_id)
            forward = self.pending.get(doc, {}).get(text(fields.get(b"k", b"")))
            if forward is not None and not forward.reply.done():
                forward.reply.set_result(fields)

    async def _serve(self, doc: str, fields: dict[bytes, bytes]) -> None:
        """Commit one forwarded submit as the home; reply only on an error or a duplicate."""
        room, view = self.rooms.get(doc), self.views.get(doc)
        if room is None or view is None or view.holder != self.replica_id:
            return  # not home (any more): the requester resends to the new one
        requester, key = text(fields.get(b"r", b"")), text(fields.get(b"k", b""))
        author = text(fields.get(b"a", b""))
        reply: dict[str, str | int] | None = None
        try:
            change = decode_change(fields[b"c"])
            delivery = Delivery(room, author, None)  # every subscriber here gets the op
            effects = await ot_replicas.commit_here(room, change, author, delivery,
                                                    fence=view.fence)
            self.counts["served"] += 1
            if not effects.persist:  # committed before: tell the requester at which version
                acks = [r for r in effects.reply if isinstance(r, OTAck)]
                reply = {"s": "dup", "v": acks[0].version if acks else 0}
        except Fenced:
            await self.look(doc)
            return
        except EngineError as exc:
            error = from_engine_error(exc)
            reply = {"s": "err", "e": error.code, "m": error.message}
        except ClientError as exc:
            reply = {"s": "err", "e": exc.code, "m": exc.message}
        except (WeftError, KeyError, TypeError, ValueError) as exc:
            log.warning("cannot serve a forwarded submit of %r: %s", doc, exc)
            return  # the requester resends after its timeout
        if reply is not None and requester:
            target = reply_key(doc, requester)
            with contextlib.suppress(RedisError):
                await self.store.redis.xadd(target, {"k": key, **reply},  # type: ignore[dict-item]
                                            maxlen=STREAM_MAXLEN, approximate=True)
                await self.store.redis.pexpire(target, STREAM_TTL_MS)
