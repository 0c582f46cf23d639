"""History across real replicas sharing a real Redis, for both engines: every replica reads the
same versions from the shared log, and undo/redo/restore made through one replica merge with
edits made through another."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from server.history import HistoryCompacted
from server.store.history import CHECKPOINTS, HistoryBudget
from server.store.redis import RedisStore, keys
from tests.history.editors import Editor
from tests.replicas.conftest import RedisProcess, eventually, replica

ENGINES = ("ot", "crdt")
DATA = Path(__file__).resolve().parents[1] / "data"


def trace_edits(txns: int) -> list[tuple[int, int, str]]:
    with gzip.open(DATA / "seph-blog1.json.gz") as f:
        trace = json.load(f)
    return [(p[0], p[1], p[2]) for t in trace["txns"][:txns] for p in t["patches"]]


async def converged(servers: list[Any], doc: str, expected: str) -> None:
    """Wait (bounded) until every replica's text of ``doc`` is ``expected``."""
    texts: set[str] = set()
    for _ in range(500):
        texts = {await s.text(doc) for s in servers}
        if texts == {expected}:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"replicas did not converge on {expected!r}: {texts!r}")


@pytest.mark.parametrize("engine", ENGINES)
async def test_text_at_every_version_matches_the_trace_prefix_on_every_replica(
        redis_server: RedisProcess, engine: str) -> None:
    async with replica(redis_server, "r1") as one, replica(redis_server, "r2") as two:
        servers = [one, two]
        expected = []
        text, token = "", None
        for i, (pos, ndel, ins) in enumerate(trace_edits(60)):
            server = servers[i % 2]  # alternate replicas, each edit after the previous one
            if ndel:
                state = await server.edit("h/trace", pos=pos, delete=ndel, author=f"u{i % 2}",
                                          engine=engine, after=token)
                text, token = text[:pos] + text[pos + ndel:], state["token"]
                expected.append(text)
            if ins:
                state = await server.edit("h/trace", pos=pos, insert=ins, author=f"u{i % 2}",
                                          engine=engine, after=token)
                text, token = text[:pos] + ins + text[pos:], state["token"]
                expected.append(text)
        for server in servers:
            history = await server.history("h/trace")
            head = history["head"]
            versions = list(range(head - len(expected) + 1, head + 1))
            assert [await server.text_at("h/trace", version=v) for v in versions] == expected


@pytest.mark.parametrize("engine", ENGINES)
async def test_undo_through_one_replica_keeps_a_concurrent_edit_made_through_another(
        redis_server: RedisProcess, engine: str) -> None:
    async with replica(redis_server, "r1") as one, replica(redis_server, "r2") as two:
        await one.edit("h/undo", pos=0, insert="hello 😀", engine=engine, author="alice")
        state = await one.edit("h/undo", pos=7, insert=" world", author="alice")
        await two.info("h/undo", after=state["token"])
        bob = await Editor.open(engine, two.url, "h/undo")
        await bob.wait_for("hello 😀 world")
        await bob.go_offline()
        bob.insert(6, "漢")  # concurrent with the undo below
        undone = await two.undo("h/undo", "alice")
        assert undone["text"] == "hello 😀"
        await bob.come_back()
        await converged([one, two], "h/undo", "hello 漢😀")
        await bob.wait_for("hello 漢😀")
        redone = await one.redo("h/undo", "alice")  # the stacks live in the shared log
        assert redone["text"] == "hello 漢😀 world"
        await converged([one, two], "h/undo", "hello 漢😀 world")
        await bob.wait_for("hello 漢😀 world")
        await bob.close()


@pytest.mark.parametrize("engine", ENGINES)
async def test_restore_through_one_replica_merges_with_an_edit_through_another(
        redis_server: RedisProcess, engine: str) -> None:
    async with replica(redis_server, "r1") as one, replica(redis_server, "r2") as two:
        await one.edit("h/restore", pos=0, insert="draft e\u0301", engine=engine, author="a")
        state = await one.edit("h/restore", pos=8, insert=" oops", author="a")
        old = (await one.history("h/restore"))["head"] - 1
        await two.info("h/restore", after=state["token"])
        bob = await Editor.open(engine, two.url, "h/restore")
        await bob.wait_for("draft e\u0301 oops")
        await bob.go_offline()
        bob.insert(0, "B ")
        restored = await one.restore("h/restore", old, author="carol")
        assert restored["text"] == "draft e\u0301"
        await bob.come_back()
        await converged([one, two], "h/restore", "B draft e\u0301")
        await bob.close()


async def relayed(server: Any, doc: str) -> None:
    """Wait until the replica's relay has read the whole log of ``doc`` (compaction snapshots
    cover what the relay has applied)."""
    store = server.store
    last = (await store.redis.xrevrange(keys(doc)[1], count=1))[0][0].decode()
    await eventually(lambda: store.positions.get(doc) == last)


@pytest.mark.parametrize("engine", ENGINES)
async def test_compaction_on_redis_keeps_the_budget_and_reports_older_versions_gone(
        redis_server: RedisProcess, engine: str) -> None:
    settings = {"history_keep_versions": 3, "compact_every": 10_000, "room_idle_seconds": 60}
    async with (replica(redis_server, "r1", **settings) as one,
                replica(redis_server, "r2", **settings) as two):
        await one.edit("h/compact", pos=0, insert="a", engine=engine, author="alice")
        for i in range(1, 8):
            state = await one.edit("h/compact", pos=i, insert="abcdefgh"[i], author="alice")
        room = one.rooms.get("h/compact")
        assert room is not None
        await relayed(one, "h/compact")
        await room.compact()
        for i in range(4):
            state = await one.edit("h/compact", pos=8 + i, insert=str(i), author="alice")
        await relayed(one, "h/compact")
        await room.compact()
        await two.info("h/compact", after=state["token"])
        history = await two.history("h/compact")
        head, oldest = history["head"], history["oldest"]
        assert 0 < oldest <= head - 3
        assert await two.text_at("h/compact", version=head) == "abcdefgh0123"
        assert await two.text_at("h/compact", version=head - 3) == "abcdefgh0"
        with pytest.raises(HistoryCompacted) as gone:
            await two.text_at("h/compact", version=oldest - 1)
        assert gone.value.http_status == 410 and gone.value.code == "ERR_HISTORY_COMPACTED"


async def test_the_redis_store_numbers_records_and_bounds_its_checkpoints(
        redis_server: RedisProcess) -> None:
    store = RedisStore(redis_server.url, "solo", history=HistoryBudget(keep_versions=1000))
    await store.open()
    try:
        for i in range(1, 41):  # compact after every record
            await store.append("d", "crdt", 0, [b"u%d" % i], author="alice")
            entries = await store.redis.xrevrange(keys("d")[1], count=3)
            store.positions["d"] = next(i for i, f in entries if b"p" in f).decode()
            await store.compact("d", "crdt", b"snap%d" % i, 0)
        history = await store.history("d")
    finally:
        await store.close()
    assert history is not None
    assert [(r.seq, r.author, r.data) for r in history.records] == [
        (i, "alice", b"u%d" % i) for i in range(1, 41)]
    assert all(r.time is not None for r in history.records)
    seqs = [c.seq for c in history.checkpoints]
    assert seqs[-1] == 40 and history.checkpoints[-1].data == b"snap40"
    assert len(seqs) <= CHECKPOINTS + 2
