"""The OT endpoint: one ShareDB-protocol session per WebSocket connection.

npm ``sharedb``'s ``Connection`` connects as is (``new ShareDB.Connection(ws)`` with
``ot-text-unicode`` registered).  A session handles one message at a time, in order; each
request gets exactly one reply — the result, or the request echoed with ``error`` (never
silence).  An exception while handling one message is reported to that request and logged; it
never ends the connection or the server.

Ordering guarantees (what the client's OT logic relies on):

* an op is acknowledged only after it is durable, and every committed op reaches each
  subscriber in commit order (the room's delivery pipeline);
* state sent to a newcomer (fetch/subscribe) covers only durable ops, and a subscriber joins
  the room in the same step, so it misses no later op (:meth:`Room.after_durable`);
* a submitter that is not subscribed receives the ops it was transformed over before its ack,
  as ShareDB's agent sends them;
* monotonic reads across replicas: a fetch/subscribe at version ``v`` (a client that has a
  snapshot) made to a replica whose engine is behind ``v`` waits until it reaches ``v``, at
  most ``Config.causal_wait_seconds``, then fails with ``ERR_NOT_CAUGHT_UP`` (retryable) rather
  than answer from an older state (:mod:`server.causal`).

Documents are named ``<collection>/<id>`` in the server-wide namespace shared with the CRDT
endpoint and the REST API; the engine is fixed per document (see :mod:`server.rooms.registry`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import broadcast
from websockets.exceptions import ConnectionClosed

from engines.interface import EngineError
from server import causal
from server.auth import Grant
from server.context import Context
from server.errors import (
    BadMessage,
    RateLimited,
    ServerError,
    StorageError,
    UnsupportedAction,
    WeftError,
    close_reason,
    from_engine_error,
)
from server.limits import TokenBucket
from server.metadata import wire as meta_wire
from server.protocols import ot_docs, ot_replicas
from server.protocols.sharedb_presence import PresenceHub, PresenceState
from server.protocols.sharedb_wire import (
    DEFAULT_TYPE_URI,
    PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
    QUERY_ACTIONS,
    check_request,
    decode,
    doc_name,
    encode,
    error_reply,
    snapshot_data,
)
from server.relay.base import RelayMessage
from server.rooms.room import Room

log = logging.getLogger("weft.ot")

Reply = dict[str, Any] | None
Handler = Callable[[dict[str, Any]], Awaitable[Reply]]


class _DocPeer:
    """This session's subscription to one document, as the room's peer."""

    __slots__ = ("collection", "doc_id", "room", "session")

    def __init__(self, session: ShareDBSession, room: Room, collection: str, doc_id: str) -> None:
        self.session, self.room, self.collection, self.doc_id = session, room, collection, doc_id

    @property
    def ws(self) -> Connection:
        return self.session.ws

    def drop(self, error: WeftError) -> None:
        self.session.drop(error)


def presence_hub(ctx: Context) -> PresenceHub:
    hub = ctx.shared.get("sharedb-presence")
    if hub is None:
        relay, config = ctx.shared.get("presence-relay"), ctx.config
        hub = ctx.shared["sharedb-presence"] = PresenceHub(
            ctx.metrics, relay, config.presence_refresh_seconds, config.presence_timeout_seconds)
    return hub


# Action → handler method name: one table for all sessions (a dict of bound methods per
# connection cost ~1.5 KB of idle memory each).
ACTIONS: dict[str, str] = {
    "hs": "_handshake", "f": "_fetch", "s": "_subscribe", "u": "_unsubscribe", "bf": "_bulk",
    "bs": "_bulk", "bu": "_bulk", "op": "_op", "nf": "_snapshot", "nt": "_snapshot",
    "p": "_presence", "ps": "_presence", "pu": "_presence", "pr": "_presence", "pp": "_ping",
    "meta": "_meta",
}


class ShareDBSession:
    """One OT client connection."""

    def __init__(self, ws: Connection, ctx: Context, grant: Grant) -> None:
        self.ws = ws
        self.ctx = ctx
        self.grant = grant
        self.src = secrets.token_hex(8)
        self.subscriptions: dict[str, _DocPeer] = {}
        limits = ctx.config.limits
        self.bucket = TokenBucket(limits.max_ops_per_second, limits.ops_burst)
        self.presence = PresenceState(presence_hub(ctx), self)
        self._closing: asyncio.Task[None] | None = None
        self.meta = meta_wire.Follower(ctx.shared["meta"]) if "meta" in ctx.shared else None

    # ---- connection ------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async for message in self.ws:
                self.ctx.metrics.received(len(message))
                if self._closing is not None:
                    break
                await self.handle(message)
        except ConnectionClosed:
            pass
        finally:
            self.close()
            if self._closing is not None:  # finish our close before websockets sends 1000
                await self._closing

    def close(self) -> None:
        """Leave every room and presence channel (idempotent)."""
        for peer in self.subscriptions.values():
            peer.room.leave(peer)
        self.subscriptions.clear()
        self.presence.leave_all()
        if self.meta is not None:
            self.meta.close()

    def send(self, message: dict[str, Any]) -> None:
        """Queue one message without waiting (replies must not reorder with broadcasts)."""
        frame = encode(message)
        broadcast([self.ws], frame, text=True)
        self.ctx.metrics.sent(len(frame))

    def drop(self, error: WeftError) -> None:
        if self._closing is not None:
            return
        self.ctx.metrics.closes_total[error.close_code] += 1
        self.close()
        self._closing = self.ws.loop.create_task(
            self.ws.close(error.close_code, close_reason(error))
        )

    async def handle(self, message: str | bytes) -> None:
        """Answer one frame: a reply or an error reply, whatever happens."""
        try:
            request = decode(message)
        except BadMessage as exc:
            self._count(exc)
            self.send({"error": exc.as_dict()})
            return
        try:
            check_request(request)
            action = request.get("a")
            method = ACTIONS.get(action) if isinstance(action, str) else None
            handler: Handler | None = getattr(self, method) if method else None
            if handler is None:
                if action in QUERY_ACTIONS:
                    raise UnsupportedAction(
                        "queries are not supported: fetch or subscribe documents by id"
                    )
                raise BadMessage(f"Invalid or unknown message: action {action!r}")
            reply = await handler(request)
        except EngineError as exc:
            self._error(request, from_engine_error(exc))
        except StorageError as exc:
            if request.get("a") != "op":
                self._error(request, exc)
                return
            # An op the store could not take (Redis/SQLite down): an error reply would make the
            # client roll back and drop its edit.  Closing with "try again later" keeps the op
            # pending in the client, which resubmits it on reconnect (src/seq dedup makes a
            # resubmission of an op that did commit harmless).
            self._count(exc)
            self.drop(exc)
        except WeftError as exc:
            self._error(request, exc)
        except Exception:
            log.exception("OT request %r failed", request.get("a"))
            self._error(request, ServerError("internal error handling the request; see log"))
        else:
            if reply is not None:
                self.send(reply)

    def _error(self, request: dict[str, Any], exc: WeftError) -> None:
        self._count(exc)
        self.send(error_reply(request, exc))

    def _count(self, exc: WeftError) -> None:
        self.ctx.metrics.errors_total[exc.code] += 1

    # ---- handshake, ping, presence --------------------------------------------------------

    async def _handshake(self, request: dict[str, Any]) -> Reply:
        client_id = request.get("id")
        if isinstance(client_id, str) and 0 < len(client_id) <= 128:
            self.src = client_id  # a reconnecting client keeps its id, so resubmits dedupe
        return {"a": "hs", "protocol": PROTOCOL_MAJOR, "protocolMinor": PROTOCOL_MINOR,
                "id": self.src, "type": DEFAULT_TYPE_URI}

    async def _meta(self, request: dict[str, Any]) -> Reply:
        """Document metadata, a Weft extension (:mod:`server.metadata.wire`)."""
        collection, doc_id, name = self._names(request)
        if not self.bucket.take():
            raise RateLimited("too many requests on this connection; slow down and resend")
        return await meta_wire.sharedb_request(self.ctx.shared, self.meta, self.send, self.grant,
                                               request, collection, doc_id, name)

    async def _ping(self, request: dict[str, Any]) -> Reply:
        return {"a": "pp"}

    async def _presence(self, request: dict[str, Any]) -> Reply:
        action, channel = request["a"], request.get("ch")
        if not isinstance(channel, str):
            raise BadMessage("Invalid presence channel: expected a non-empty string")
        self.grant.check(channel, write=False)
        if action == "ps":
            return self.presence.subscribe(request)
        if action == "pu":
            return self.presence.unsubscribe(request)
        if action == "pr":
            return self.presence.request(request)
        reply = self.presence.submit(request)
        return {**reply, "a": "p"}

    # ---- documents -------------------------------------------------------------------------

    def _names(self, request: dict[str, Any]) -> tuple[str, str, str]:
        collection, doc_id = request.get("c"), request.get("d")
        if not isinstance(collection, str) or not isinstance(doc_id, str):
            raise BadMessage("Invalid collection or id: both 'c' and 'd' are required")
        return collection, doc_id, doc_name(collection, doc_id)

    async def _fetch(self, request: dict[str, Any]) -> Reply:
        collection, doc_id, name = self._names(request)
        await self._read(collection, doc_id, name, request.get("v"), subscribe=False,
                         respond=lambda result: self.send(
                             {"a": "f", "c": collection, "d": doc_id, **result}))
        return None

    async def _subscribe(self, request: dict[str, Any]) -> Reply:
        collection, doc_id, name = self._names(request)
        await self._read(collection, doc_id, name, request.get("v"), subscribe=True,
                         respond=lambda result: self.send(
                             {"a": "s", "c": collection, "d": doc_id, **result}))
        return None

    async def _unsubscribe(self, request: dict[str, Any]) -> Reply:
        collection, doc_id, name = self._names(request)
        peer = self.subscriptions.pop(name, None)
        if peer is not None:
            peer.room.leave(peer)
        return {"a": "u", "c": collection, "d": doc_id}

    async def _read(
        self, collection: str, doc_id: str, name: str, version: int | None, *, subscribe: bool,
        respond: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Send a document's state (snapshot, or the ops since ``version``) and maybe join.

        Returns the reply fields: ``{"data": snapshot}`` or ``{}`` when ops were sent.  With
        ``respond`` they are also handed to it in the same step as the ops are sent and the
        room joined, so the reply reaches the client before any later op: sent afterwards, a
        later op could overtake it and the client would ignore the op, then take the older
        snapshot and stop there.
        """
        self.grant.check(name, write=False)
        async with self.ctx.rooms.use(name, "ot") as room:
            replicated = ot_replicas.sequencer(room) is not None
            if replicated:
                ot_replicas.attach(room)
                await self._catch_up(room, version)

            def capture() -> tuple[Any, list[dict[str, Any]]]:
                engine = room.require_engine()
                if version is None:
                    return snapshot_data(*ot_docs.snapshot(engine)), []
                return None, [ot_docs.op_frame(collection, doc_id, c)
                              for c in ot_docs.ops_since(engine, version)]

            # One server: the state captured now is sent once everything before it is durable
            # (see module docstring).  Replicas: captured again when sent.  There every op in
            # the engine is already committed in Redis, and ops relayed from other replicas
            # are fanned out as they arrive, not through the room's delivery pipeline: state
            # captured before the wait would miss one fanned out meanwhile (to the old
            # subscription, or to nobody), and the client would stop at that version.
            state, ops = capture()  # raises now: a bad or compacted version gets its error
            peer = _DocPeer(self, room, collection, doc_id) if subscribe else None
            failed: list[Exception] = []

            def deliver() -> None:
                nonlocal state, ops
                if replicated:
                    try:
                        state, ops = capture()
                    except (EngineError, WeftError) as exc:  # compacted or failed meanwhile
                        failed.append(exc)
                        return
                for op in ops:
                    self.send(op)
                if respond is not None:
                    respond({} if state is None else {"data": state})
                if peer is not None:
                    old = self.subscriptions.pop(name, None)
                    if old is not None:
                        old.room.leave(old)
                    self.subscriptions[name] = peer
                    room.join(peer)

            await room.after_durable(deliver)
            if failed:
                raise failed[0]
        return {} if state is None else {"data": state}

    async def _catch_up(self, room: Room, version: Any) -> None:
        """Wait (bounded) until this replica's engine reaches the client's ``version``."""
        if type(version) is not int or ot_docs.version(room.require_engine()) >= version:
            return  # nothing to wait for (a bad version is reported by ops_since)
        # Read what the engine lacks from the log now rather than wait for the relay (an empty
        # "snapshot" message makes ot_replicas catch up from the log).
        ot_replicas.on_remote(room, RelayMessage(room.name, room.kind, "snapshot", ()))
        bound = self.ctx.config.causal_wait_seconds
        try:
            waited = await causal.wait_until(room, causal.CausalToken("ot", version=version),
                                             bound)
        except causal.NotCaughtUp:
            self.ctx.metrics.causal_wait("ot", "timeout", bound)
            raise
        self.ctx.metrics.causal_wait("ot", "waited", waited)

    async def _bulk(self, request: dict[str, Any]) -> Reply:
        """``bf``/``bs``/``bu``: the client batches requests for several docs after reconnecting."""
        action, collection, ids = request["a"], request.get("c"), request["b"]
        if not isinstance(collection, str):
            raise BadMessage("Invalid collection: bulk requests need 'c'")
        if action == "bu":
            for doc_id in ids:
                await self._unsubscribe({"c": collection, "d": doc_id})
            return {"a": "bu", "c": collection, "b": ids}
        if isinstance(ids, dict):
            # From known versions: ops are sent, the reply only echoes the ids; a failure
            # fails the whole request, as in ShareDB (the client has no per-doc slot for it).
            for doc_id, version in ids.items():
                await self._read(collection, doc_id, doc_name(collection, doc_id), version,
                                 subscribe=action == "bs")
            return {"a": action, "c": collection, "b": ids}
        data: dict[str, Any] = {}
        for doc_id in ids:
            name = doc_name(collection, doc_id)
            try:
                result = await self._read(collection, doc_id, name, None,
                                          subscribe=action == "bs")
            except EngineError as exc:
                data[doc_id] = {"error": from_engine_error(exc).as_dict()}
            except WeftError as exc:
                self._count(exc)
                data[doc_id] = {"error": exc.as_dict()}
            else:
                data[doc_id] = result["data"]
        return {"a": action, "c": collection, "data": data}

    async def _snapshot(self, request: dict[str, Any]) -> Reply:
        """``nf``/``nt``: read-only snapshot requests; only the current version is kept."""
        name = self._names(request)[2]
        self.grant.check(name, write=False)
        async with self.ctx.rooms.use(name, "ot") as room:
            version, text = ot_docs.snapshot(room.require_engine())
        wanted = request.get("v") if request["a"] == "nf" else request.get("ts")
        if wanted is not None and not (request["a"] == "nf" and wanted == version):
            raise UnsupportedAction(
                f"historic snapshots are not kept; only the current version ({version}) "
                "can be fetched (pass v: null)"
            )
        return {"a": request["a"], "id": request.get("id"), "v": version,
                "data": text, "type": snapshot_data(version, text)["type"]}

    # ---- ops -------------------------------------------------------------------------------

    async def _op(self, request: dict[str, Any]) -> Reply:
        collection, doc_id, name = self._names(request)
        self.grant.check(name, write=True)
        if not self.bucket.take():
            raise RateLimited(
                f"more than {self.ctx.config.limits.max_ops_per_second:g} ops/s on this "
                "connection; slow down and resubmit"
            )
        src = request.get("src") or self.src
        if not isinstance(src, str):
            raise BadMessage("Invalid src: expected a string")
        seq = request.get("seq")
        async with self.ctx.rooms.use(name, "ot") as room:
            change = ot_docs.submission(request, src, seq)
            peer = self.subscriptions.get(name)
            base = request.get("v")

            def on_durable(effects: Any) -> None:
                # The ack goes out here, in commit order: a later op's broadcast must not
                # overtake it (the client would see a version it has not reached).  The ack
                # goes before this op's broadcast too: a client that subscribed while the op
                # was in flight is among the peers the broadcast reaches, and must not get its
                # own op as someone else's before the ack.
                ack = ot_docs.ack(effects, src, seq)
                if peer is None and base is not None and room.engine is not None:
                    for missed in ot_docs.ops_between(room.engine, base, ack["v"]):
                        self.send(ot_docs.op_frame(collection, doc_id, missed))
                self.send({"a": "op", "c": collection, "d": doc_id, **ack})
                for committed in effects.broadcast:
                    frame = encode(ot_docs.op_frame(collection, doc_id, committed))
                    room.fanout(frame, exclude=peer, text=True)

            author = self.grant.user or src  # the token's user, else the client's id
            if ot_replicas.sequencer(room) is not None:  # replicas: Redis sequences the ops
                room.check_growth(ot_docs.growth(change))
                await ot_replicas.commit(room, change, self.grant.user or src, on_durable)
                return None
            _, done = room.change(
                lambda engine: ot_docs.apply(engine, change, author),
                author=author, growth=ot_docs.growth(change), on_durable=on_durable,
            )
            await done
        return None
