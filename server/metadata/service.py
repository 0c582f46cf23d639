"""Document metadata on the server: read, write, store, relay and broadcast (the I/O around
the pure :mod:`meta` core).

Writes go one way whatever their source (REST, ShareDB or y-websocket clients, the embedding
API): the replica loads the document's metadata log from the store, stamps the write with its
hybrid logical clock, appends the record (``Store.meta_append``), merges it, tells local
listeners (connected clients that asked for metadata) and reports conflicts.  Records reach
other replicas through the store (a shared Redis stream, ``weft:{doc}:meta``) and, for live
broadcast, the Redis relay's reader (:meth:`server.relay.redis.RedisRelay.watch`).  The merge is
state-based — every replica may apply every record, in any order, any number of times — so the
relay needs no ordering and a replica that replays the whole log is harmless.

Reads always load the log from the store: metadata is small, and the store is the one place
every replica's writes meet.  A record whose timestamp is more than ``max_drift_ms`` ahead of
this replica's clock is held back — neither merged nor adopted into the clock — and counted in
:attr:`MetaService.refused` (it is merged by a later read once real time has caught up).
Such a replica sees its own write meanwhile; the others do not — the price of not letting one
bad clock drag every replica's clock into the future.

Conflicts (concurrent writes met on one field) go to ``on_meta_conflict(doc, conflict)`` and
``hooks.emit("meta_conflict", payload)`` when a replica first discovers them: at a write,
a load, or a relayed record.  At least once per replica that discovers them — several replicas
may report one conflict, and a restarted replica may report it again; the payload's ``hlcs``
identify it, ``replica`` says who reported it.

A write that finds :attr:`MetaService.compact_after` records replaces them with one snapshot
record (``Store.meta_compact``), so loads stay bounded; records held back are never replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from meta.errors import ClockDriftError, MetaError
from meta.hlc import HybridClock, offset_clock
from meta.policies import MergeFn, Policy, PolicyTable
from meta.register import decode_token
from meta.state import Conflict, DocMeta, Write, decode_record
from server.auth import OPEN_GRANT, Grant
from server.errors import ClientError, StorageError
from server.store.base import Store

log = logging.getLogger("weft.meta")

COMPACT_AFTER = 64
MAX_REMEMBERED = 10_000

# (doc, view, changed fields) -> None; called for every change merged on this replica.
MetaListener = Callable[[str, dict[str, Any], list[str]], None]
ConflictCallback = Callable[[str, Conflict], Any]


def client_error(exc: MetaError) -> ClientError:
    """The server error (HTTP 400 / an error reply) for a refused metadata input."""
    return ClientError(str(exc), code=exc.code)


class MetaService:
    """Metadata of every document this replica serves (see the module docstring)."""

    def __init__(self, store: Store, relay: Any, clock: HybridClock,
                 policies: PolicyTable | None = None,
                 hooks: Callable[[], Any] | None = None) -> None:
        self.store = store
        self.relay = relay
        self.clock = clock
        self.policies = policies or PolicyTable()
        # Optional seam: called with (doc, Conflict) when concurrent writes meet on a field.
        self.on_meta_conflict: ConflictCallback | None = None
        self._hooks = hooks or (lambda: None)
        self.listeners: dict[str, list[MetaListener]] = {}
        self.cache: dict[str, DocMeta] = {}  # documents with listeners: merged state
        self._locks: dict[str, list[Any]] = {}  # doc -> [lock, users]
        self._held: set[str] = set()  # encoded timestamps refused for drift (log once each)
        # Conflicts already reported by this replica, oldest first (bounded).
        self._reported: dict[tuple[str, str, frozenset[str]], None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refused = 0
        self.conflicts = 0
        self.writes = 0
        self.compactions = 0
        # Compact a document's metadata log into one record once a write finds this many.
        self.compact_after = COMPACT_AFTER

    # ---- configuration ---------------------------------------------------------------------

    def policy(self, pattern: str, spec: str | Policy | MergeFn) -> Policy:
        """Set the policy of a field name or glob pattern (``"tags"``, ``"x-*"``)."""
        try:
            return self.policies.set(pattern, spec)
        except MetaError as exc:
            raise client_error(exc) from exc

    # ---- reads and writes ------------------------------------------------------------------

    async def read(self, doc: str, grant: Grant = OPEN_GRANT) -> dict[str, Any]:
        """``{"name", "meta": {field: value}, "fields": {...}, "context": token}``."""
        grant.check(doc, write=False)
        state = await self._load(doc)
        return {"name": doc, **state.view()}

    async def get(self, doc: str) -> dict[str, Any]:
        """Just ``{field: value}`` (multi-value fields: the list of siblings)."""
        meta: dict[str, Any] = (await self.read(doc))["meta"]
        return meta

    async def write(self, doc: str, changes: Any, *, context: str | None = None,
                    replace: bool = False, grant: Grant = OPEN_GRANT) -> dict[str, Any]:
        """Write ``{field: value}`` (``None`` deletes); returns the merged view.

        ``context`` is a token from an earlier read: the write then supersedes only what that
        read saw (multi-value siblings written since stay).  ``replace`` deletes every field
        not named (HTTP PUT).  Bad input raises a :class:`ClientError` and changes nothing.
        """
        grant.check(doc, write=True)
        try:
            vector = None if context is None else decode_token(context)
        except MetaError as exc:
            raise client_error(exc) from exc
        async with self._lock(doc):
            state, merged = await self._load_log(doc)
            if replace and isinstance(changes, dict):
                changes = {**{n: None for n in state.view()["meta"]}, **changes}
            try:
                write = state.make_write(self.clock, changes, vector)
            except MetaError as exc:
                raise client_error(exc) from exc
            await self.store.meta_append(doc, write.encode())
            self.writes += 1
            _, conflicts = state.apply(write)
            self._remember(doc, write)
            if len(merged) >= self.compact_after:  # the new record stays; its copy is harmless
                await self._compact(doc, state, merged)
        self._report(doc, conflicts)
        return {"name": doc, **state.view()}

    @contextlib.asynccontextmanager
    async def _lock(self, doc: str) -> AsyncIterator[None]:
        """One write per document at a time on this replica (each sees the previous one)."""
        entry = self._locks.get(doc)
        if entry is None:
            entry = self._locks[doc] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[doc]

    async def _load(self, doc: str) -> DocMeta:
        return (await self._load_log(doc))[0]

    async def _load_log(self, doc: str) -> tuple[DocMeta, list[str]]:
        """The merged state, and the ids of the records fully merged into it (what a
        compaction may replace: never a record held back or unreadable)."""
        stored = await self.store.meta_load(doc)
        state = DocMeta(self.policies)
        merged: list[str] = []
        for record_id, data in zip(stored.ids, stored.records, strict=True):
            writes, complete = self._admit(doc, data)
            for write in writes:
                self._report(doc, state.apply(write)[1])
            if complete:
                merged.append(record_id)
        cached = self.cache.get(doc)
        if cached is not None:  # catch listeners up on anything the relay has not brought
            for name, register in state.fields.items():
                for version in register:
                    self._merge_cached(doc, cached, name, version)
        return state, merged

    def _admit(self, doc: str, data: bytes) -> tuple[list[Write], bool]:
        """Decode a stored or relayed record and adopt its timestamps.

        Returns the writes accepted, and whether that is all of them: a write too far ahead
        is held back (not merged, not adopted; a later load retries it), a corrupt record
        skipped.
        """
        try:
            writes = decode_record(data)
        except MetaError as exc:
            log.error("corrupt metadata record for %r skipped: %s", doc, exc)
            return [], False
        accepted: list[Write] = []
        for write in writes:
            try:
                self.clock.observe(write.ts)
            except ClockDriftError as exc:
                self.refused += 1
                key = f"{doc}\n{write.ts.encode()}"
                if key not in self._held and len(self._held) < 10_000:
                    self._held.add(key)
                    log.warning("metadata write for %r held back: %s", doc, exc)
            else:
                accepted.append(write)
        return accepted, len(accepted) == len(writes)

    async def _compact(self, doc: str, state: DocMeta, merged: list[str]) -> None:
        """Replace the merged records with one snapshot record (bounded reads)."""
        try:
            await self.store.meta_compact(doc, state.snapshot(), merged)
        except StorageError as exc:  # the write itself succeeded; compaction can wait
            log.warning("could not compact the metadata log of %r: %s", doc, exc)
        else:
            self.compactions += 1

    # ---- live changes ----------------------------------------------------------------------

    async def listen(self, doc: str, listener: MetaListener) -> Callable[[], None]:
        """Call ``listener(doc, view, changed)`` on every change merged here; returns the
        function that stops listening.  Other replicas' writes arrive through the relay."""
        if doc not in self.listeners:
            state = await self._load(doc)  # before any listener: loading tells nobody
            if doc not in self.listeners:  # (another listen may have run meanwhile)
                self.listeners[doc] = []
                self.cache[doc] = state
                watch = getattr(self.relay, "watch", None)
                if callable(watch):
                    watch(meta_key(doc), lambda origin, data: self._on_relay(doc, origin, data))
        self.listeners[doc].append(listener)

        def stop() -> None:
            listeners = self.listeners.get(doc)
            if listeners is None or listener not in listeners:
                return
            listeners.remove(listener)
            if not listeners:
                del self.listeners[doc]
                self.cache.pop(doc, None)
                unwatch = getattr(self.relay, "unwatch", None)
                if callable(unwatch):
                    unwatch(meta_key(doc))

        return stop

    def _on_relay(self, doc: str, origin: str, data: bytes) -> None:
        if origin == getattr(self.relay, "replica_id", None):
            return  # our own write: already merged and told
        for write in self._admit(doc, data)[0]:
            self._remember(doc, write)

    def _remember(self, doc: str, write: Write) -> None:
        """Merge a write into the listened state; tell listeners and report conflicts."""
        cached = self.cache.get(doc)
        if cached is None:
            return
        changed, conflicts = cached.apply(write)
        if changed:
            self._tell(doc, cached, changed)
        self._report(doc, conflicts)

    def _merge_cached(self, doc: str, cached: DocMeta, name: str, version: Any) -> None:
        before = cached.fields.get(name, ())
        after = cached.policies.for_field(name).merge(before, (version,))
        if after != before:
            cached.fields[name] = after
            self._tell(doc, cached, [name])

    def _tell(self, doc: str, state: DocMeta, changed: list[str]) -> None:
        view = {"name": doc, **state.view()}
        for listener in list(self.listeners.get(doc, ())):
            try:
                listener(doc, view, changed)
            except Exception:
                log.exception("metadata listener for %r failed", doc)

    def _report(self, doc: str, conflicts: list[Conflict]) -> None:
        """Call the conflict seams: ``on_meta_conflict`` and ``hooks.emit`` when present."""
        for conflict in conflicts:
            key = (doc, conflict.field, frozenset(conflict.hlcs))
            if key in self._reported:
                continue
            self._reported[key] = None
            if len(self._reported) > MAX_REMEMBERED:
                del self._reported[next(iter(self._reported))]
            self.conflicts += 1
            payload = {"doc": doc, "field": conflict.field, "policy": conflict.policy,
                       "values": list(conflict.values), "kept": conflict.kept,
                       "hlcs": list(conflict.hlcs), "replica": self.clock.node}
            if self.on_meta_conflict is not None:
                self._call(doc, self.on_meta_conflict, doc, conflict)
            emit = getattr(self._hooks(), "emit", None)
            if callable(emit):
                self._call(doc, emit, "meta_conflict", payload)

    def _call(self, doc: str, fn: Callable[..., Any], *args: Any) -> None:
        """Call an app callback; await it in the background if it is async; never raise."""
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception:
            log.exception("metadata conflict callback failed for %r", doc)


def meta_key(doc: str) -> str:
    """The Redis stream of ``doc``'s metadata log (same hash tag as its other keys)."""
    return f"weft:{{{doc}}}:meta"


def build(config: Any, store: Store, relay: Any,
          rules: dict[str, str | Policy | MergeFn] | None = None,
          hooks: Callable[[], Any] | None = None) -> MetaService:
    """The service a :class:`~server.app.WeftServer` runs, from its config.

    The HLC node id is the relay's replica id (every record names the replica that wrote it);
    ``config.clock_offset_ms`` skews the physical clock (testing only).
    """
    node = str(getattr(relay, "replica_id", "") or "local").replace(".", "_")
    clock = HybridClock(node, offset_clock(config.clock_offset_ms),
                        max_drift_ms=config.meta_max_drift_ms)
    return MetaService(store, relay, clock, PolicyTable(config.meta_default_policy, rules), hooks)
