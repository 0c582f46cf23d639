"""History operations on behalf of the REST API and embedding apps.

Each operation reads the document's kept history from the store — the store is shared by every
replica, so the answer is the same whichever replica is asked — and rebuilds a
:class:`~engines.history.Timeline` from it.  Restore, undo and redo then commit one ordinary
edit through the room, exactly as a REST edit does (:func:`server.documents.server_change`):
stored, then broadcast to ShareDB / Yjs clients as any other op or update, so connected
clients simply see a change.

Before reading, the room's pending writes are flushed (so the store holds every edit this
replica accepted); before committing, the engine must cover the history's head (on replicas,
records another replica wrote may still be on their way through the relay: waited for,
bounded).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from orjson import JSONDecodeError, loads

from engines.history import (
    ERR_HISTORY_COMPACTED,
    ERR_NOTHING_TO_UNDO,
    ERR_VERSION_UNKNOWN,
    REDO,
    RESTORE,
    UNDO,
    Source,
    Timeline,
    build,
    commit,
    diff,
    tagged,
    undo_op,
)
from engines.interface import EngineError
from server.auth import OPEN_GRANT, Grant
from server.context import Context
from server.documents import describe, follow_relay, server_change
from server.errors import BadMessage, ClientError, DocNotFound, StorageError
from server.rooms.room import Room
from server.store.history import StoredHistory

#: How long a history edit waits for this replica's engine to reach the history's head.
COVER_WAIT_SECONDS = 5.0


class HistoryCompacted(ClientError):
    """The requested version (or time) is older than the history the budget keeps."""

    code = ERR_HISTORY_COMPACTED
    http_status = 410


class VersionNotFound(ClientError):
    """The requested version does not exist (yet)."""

    code = ERR_VERSION_UNKNOWN
    http_status = 404


class NothingToUndo(ClientError):
    """The user has no edit (or undo) left to undo (or redo) in the kept history."""

    code = ERR_NOTHING_TO_UNDO
    http_status = 409


_ERRORS: dict[str, type[ClientError]] = {
    ERR_HISTORY_COMPACTED: HistoryCompacted,
    ERR_VERSION_UNKNOWN: VersionNotFound,
    ERR_NOTHING_TO_UNDO: NothingToUndo,
}


def _client_error(exc: EngineError) -> ClientError:
    return _ERRORS.get(exc.code, ClientError)(str(exc), code=exc.code)


def source(stored: StoredHistory) -> Source:
    """Pick the base of the kept history: the empty document when the log reaches back to its
    first record, else the oldest checkpoint the kept records follow without a gap."""
    records = [(r.seq, r.time, r.author, r.data) for r in stored.records]
    if stored.kind == "ot":  # OT numbers are in the records and checkpoints themselves
        first_v = _ot_version(records[0][3]) if records else None
        if first_v == 0:
            return Source("ot", None, 0, None, records)
        for checkpoint in stored.checkpoints:
            v = _ot_version(checkpoint.data)
            if first_v is None or (v is not None and v >= first_v):
                return Source("ot", checkpoint.data, v or 0, checkpoint.time, records)
        if stored.checkpoints:
            last = stored.checkpoints[-1]
            return Source("ot", last.data, _ot_version(last.data) or 0, last.time, records)
        return Source("ot", None, 0, None, records)
    first = records[0][0] if records else None
    if first == 1 or (not stored.checkpoints and records):
        return Source(stored.kind, None, 0, None, records)
    chosen = stored.checkpoints[-1] if stored.checkpoints else None
    if first is not None:
        for checkpoint in stored.checkpoints:
            if checkpoint.seq is not None and checkpoint.seq >= first - 1:
                chosen = checkpoint
                break
    if chosen is None:
        return Source(stored.kind, None, 0, None, records)
    base_seq = chosen.seq or 0
    later = [r for r in records if r[0] is None or r[0] > base_seq]
    return Source(stored.kind, chosen.data, base_seq, chosen.time, later)


def _ot_version(data: bytes) -> int | None:
    """The ``v`` of an OT record or snapshot."""
    try:
        v = loads(data).get("v")
    except (JSONDecodeError, AttributeError):
        return None
    return v if type(v) is int else None


def parse_time(value: object) -> float:
    """An ISO 8601 time (naive: UTC) or seconds since the epoch, as seconds since the epoch."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise BadMessage(f"'at' must be an ISO 8601 time like 2026-01-31T12:00:00Z or "
                             f"seconds since the epoch, got {value!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    raise BadMessage(f"'at' must be an ISO 8601 string or a number, got {value!r}")


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def _user(value: object, what: str = "user") -> str:
    if not isinstance(value, str) or not value:
        raise BadMessage(f"{what!r} must be a non-empty string naming whose edits to undo")
    return value


class History:
    """Document history operations (see the module docstring)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def _timeline(self, room: Room) -> Timeline:
        await room.flush()
        history = getattr(room.store, "history", None)
        if history is None:
            raise StorageError(f"the store {type(room.store).__name__} keeps no history")
        stored: StoredHistory | None = await history(room.name)
        if stored is None:
            raise DocNotFound(f"document {room.name!r} does not exist")
        try:
            return build(source(stored))
        except EngineError as exc:
            raise StorageError(f"history of {room.name!r} cannot be read: {exc}") from exc

    async def versions(self, name: str, grant: Grant = OPEN_GRANT) -> dict[str, Any]:
        """``{"name", "engine", "oldest", "head", "versions": [{"version", "time", "author"}]}``
        — every kept version, oldest first (``oldest`` is the checkpoint they start from)."""
        grant.check(name, write=False)
        async with self.ctx.rooms.use(name, None, create=False) as room:
            timeline = await self._timeline(room)
            return {
                "name": name, "engine": room.kind, "oldest": timeline.base_version,
                "head": timeline.head_version,
                "versions": [
                    {"version": timeline.base_version, "time": _iso(timeline.base_time),
                     "author": None},
                    *({"version": e.number, "time": _iso(e.time), "author": e.author}
                      for e in timeline.entries),
                ],
            }

    async def text_at(self, name: str, version: int | None = None, at: object = None,
                      grant: Grant = OPEN_GRANT) -> dict[str, Any]:
        """``{"name", "engine", "version", "text"}`` as the document was at ``version`` or at
        time ``at``; :class:`HistoryCompacted` (410) when that is older than the kept history."""
        grant.check(name, write=False)
        if (version is None) == (at is None):
            raise BadMessage("give exactly one of 'version' (a number) or 'at' (a time)")
        async with self.ctx.rooms.use(name, None, create=False) as room:
            timeline = await self._timeline(room)
            try:
                if version is None:
                    version = timeline.version_at(parse_time(at))
                text = timeline.text_at(version)
            except EngineError as exc:
                raise _client_error(exc) from exc
            return {"name": name, "engine": room.kind, "version": version, "text": text}

    async def restore(self, name: str, version: int, author: str = "server",
                      grant: Grant = OPEN_GRANT) -> dict[str, Any]:
        """Make the text what it was at ``version`` with one new edit (by ``restore:<author>``)
        that merges with concurrent edits and can be undone; returns the new state."""
        grant.check(name, write=True)
        async with self.ctx.rooms.use(name, None, create=False) as room:
            timeline = await self._timeline(room)
            try:
                target = timeline.text_at(version)
            except EngineError as exc:
                raise _client_error(exc) from exc
            op = diff(timeline.head_text, target)
            await self._commit(room, timeline, op, tagged(RESTORE, author))
            return {**describe(room), "restored": version}

    async def undo(self, name: str, user: str, grant: Grant = OPEN_GRANT) -> dict[str, Any]:
        """Undo ``user``'s latest edit not yet undone, keeping everyone else's later edits."""
        return await self._undo(name, _user(user), UNDO, grant)

    async def redo(self, name: str, user: str, grant: Grant = OPEN_GRANT) -> dict[str, Any]:
        """Redo ``user``'s latest undo not yet redone."""
        return await self._undo(name, _user(user), REDO, grant)

    async def _undo(self, name: str, user: str, action: str, grant: Grant) -> dict[str, Any]:
        grant.check(name, write=True)
        async with self.ctx.rooms.use(name, None, create=False) as room:
            timeline = await self._timeline(room)
            try:
                op = undo_op(timeline, user, action)
            except EngineError as exc:
                raise _client_error(exc) from exc
            await self._commit(room, timeline, op, tagged(action, user))
            return describe(room)

    async def _commit(self, room: Room, timeline: Timeline, op: list[Any], author: str) -> None:
        await self._cover(room, timeline)
        growth = sum(len(c.encode("utf-8", "surrogatepass")) for c in op if isinstance(c, str))
        head_version, head_text = timeline.head_version, timeline.head_text
        try:
            await server_change(room, lambda e: commit(e, op, head_version, author, head_text),
                                growth, author)
        except EngineError as exc:
            raise _client_error(exc) from exc

    async def _cover(self, room: Room, timeline: Timeline) -> None:
        """Wait (bounded) until the room's engine holds every change the timeline holds."""
        follow_relay(room)  # REST-only rooms on replicas: let relayed records reach the engine
        deadline = time.monotonic() + COVER_WAIT_SECONDS
        while not timeline.covered_by(room.require_engine()):
            if time.monotonic() > deadline:
                raise StorageError(f"this replica has not caught up with {room.name!r} within "
                                   f"{COVER_WAIT_SECONDS}s; retry")
            await asyncio.sleep(0.01)

