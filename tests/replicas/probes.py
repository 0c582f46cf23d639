"""Looking inside replicas and Redis from a test: a room's engine, the log's origins."""

from __future__ import annotations

from collections import Counter
from typing import Any

from redis.asyncio import Redis

from engines.interface import Engine
from server.app import WeftServer
from server.store.redis import keys
from tests.replicas.conftest import RedisProcess


def engine_of(server: WeftServer, doc: str) -> Engine:
    """The engine of ``doc``'s open room on ``server`` (fails if the room is not open)."""
    room = server.rooms.get(doc)
    assert room is not None and room.engine is not None, f"{doc!r} is not open there"
    return room.engine


def ot_version(server: WeftServer, doc: str) -> int:
    version: int = getattr(engine_of(server, doc), "version")  # noqa: B009 (OT engines only)
    return version


async def log_origins(redis: RedisProcess, doc: str) -> Counter[str]:
    """How many records of ``doc``'s log each replica appended (compaction markers aside)."""
    probe = Redis.from_url(redis.url)
    try:
        entries: Any = await probe.xrange(keys(doc)[1])
    finally:
        await probe.aclose()
    return Counter(f[b"o"].decode() for _, f in entries if b"p" in f)
