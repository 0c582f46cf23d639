"""OT documents served by several replicas at once: Redis sequences the ops (ShareDB's submit
loop), every replica's engine applies them in version order."""

from __future__ import annotations

import asyncio
import random

import pytest
from orjson import loads
from redis.asyncio import Redis

from engines.ot_engine import OTSubmit
from server.client import OTConnection
from server.errors import ClientError
from server.protocols import ot_replicas
from server.store.redis import OTCommit, RedisStore, keys
from tests.replicas.conftest import RedisProcess, eventually, replica


async def _logged_versions(redis: RedisProcess, doc: str) -> list[int]:
    probe = Redis.from_url(redis.url)
    try:
        entries = await probe.xrange(keys(doc)[1])
    finally:
        await probe.aclose()
    return [loads(f[b"p"])["v"] for _, f in entries if b"p" in f]


async def _edit_concurrently(redis_server: RedisProcess, names: list[str], doc_id: str,
                             rounds: int) -> None:
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    servers = [replica(redis_server, name) for name in names]
    for server in servers:
        await server.__aenter__()
    try:
        conns = [await OTConnection.connect(s.url + "/ot") for s in servers]
        docs = [await c.open("notes", doc_id, create_with="start ") for c in conns]
        for doc in docs:
            await doc.wait_for(lambda t: t is not None)
        for round_ in range(rounds):
            for i, doc in enumerate(docs):
                text = doc.text or ""  # insert between words, so each stays whole
                gaps = [0, *(j + 1 for j, ch in enumerate(text) if ch == " ")]
                doc.insert(rng.choice(gaps), f"{i}:{round_}é😀 ")
            # Every replica's op of this round is in flight at once: they race in Redis.
            await asyncio.gather(*(doc.synced(timeout=20) for doc in docs))
        for doc in docs:
            await doc.synced(timeout=20)
        total = len(names) * rounds
        for doc in docs:
            await doc.wait_for(lambda t: t is not None and t.count("😀") == total, timeout=20)
        final = docs[0].text
        assert final is not None
        for doc in docs:
            await doc.wait_for(lambda t: t == final, timeout=20)
        for i in range(len(names)):  # every acknowledged op exactly once
            for round_ in range(rounds):
                assert final.count(f"{i}:{round_}é😀 ") == 1
        rooms = [s.rooms.get(f"notes/{doc_id}") for s in servers]
        await eventually(lambda: len({r.engine.version for r in rooms}) == 1)
        assert {r.engine.text for r in rooms} == {final}
        versions = await _logged_versions(redis_server, f"notes/{doc_id}")
        assert versions == list(range(total + 1))  # the create, then one record per op
        assert rooms[0].engine.version == total + 1
        stores = [s.store for s in servers]
        assert all(isinstance(st, RedisStore) for st in stores)
        conflicts = sum(st.ot_conflicts for st in stores)  # type: ignore[attr-defined]
        commits = sum(st.ot_commits for st in stores)  # type: ignore[attr-defined]
        print(f"commits {commits} conflicts {conflicts} "
              f"retries/op {conflicts / max(1, commits):.2f}")
        assert commits == total + 1
        assert conflicts > 0
        for conn in conns:
            await conn.close()
    finally:
        for server in reversed(servers):
            await server.__aexit__(None, None, None)


async def test_two_replicas_editing_one_ot_document_converge(redis_server: RedisProcess):
    await _edit_concurrently(redis_server, ["a", "b"], "two", rounds=30)


async def test_three_replicas_editing_one_ot_document_converge(redis_server: RedisProcess):
    await _edit_concurrently(redis_server, ["a", "b", "c"], "three", rounds=30)


async def test_a_replica_opening_an_ot_document_later_sees_every_op(redis_server: RedisProcess):
    async with replica(redis_server, "w") as one:
        conn = await OTConnection.connect(one.url + "/ot")
        doc = await conn.open("notes", "later", create_with="x")
        doc.insert(1, "y")
        await doc.synced()
        async with replica(redis_server, "v") as two:
            other = await OTConnection.connect(two.url + "/ot")
            seen = await other.open("notes", "later")
            await seen.wait_for(lambda t: t == "xy")
            seen.insert(0, "<")
            await doc.wait_for(lambda t: t == "<xy")
            await other.close()
        await conn.close()


async def test_a_submit_that_keeps_losing_the_race_fails_clearly_and_changes_nothing(
    redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch,
):
    async with replica(redis_server, "slow") as one:
        conn = await OTConnection.connect(one.url + "/ot")
        await conn.open("notes", "race", create_with="abc")
        room = one.rooms.get("notes/race")
        store = one.store
        assert isinstance(store, RedisStore)

        async def always_behind(doc: str, version: int, record: bytes, **_: object) -> OTCommit:
            return OTCommit("conflict", version + 1)  # another replica always got there first

        monkeypatch.setattr(store, "ot_commit", always_behind)
        with pytest.raises(ClientError) as caught:
            await ot_replicas.commit(room, OTSubmit(["x"], 1, "s", 1), "s")
        assert caught.value.code == "ERR_MAX_SUBMIT_RETRIES_EXCEEDED"
        assert "20" in str(caught.value)
        assert (room.engine.version, room.engine.text) == (1, "abc")
        await conn.close()


async def test_rest_edits_of_an_ot_document_go_through_the_sequencer(redis_server: RedisProcess):
    async with replica(redis_server, "a") as a, replica(redis_server, "b") as b:
        conn = await OTConnection.connect(a.url + "/ot")
        doc = await conn.open("notes", "rest", create_with="")

        async def client_writes() -> None:
            for n in range(10):
                doc.insert(0, f"c{n} ")
                await doc.synced(timeout=20)

        async def rest_writes(server) -> None:
            for n in range(10):
                await server.edit("notes/rest", pos=0, insert=f"r{server.config.replica_id}{n} ")

        await asyncio.gather(client_writes(), rest_writes(a), rest_writes(b))
        assert await _logged_versions(redis_server, "notes/rest") == list(range(31))
        final = await b.text("notes/rest")
        await doc.wait_for(lambda t: t == final, timeout=20)
        assert sorted(final.split()) == sorted(
            [f"c{n}" for n in range(10)] + [f"r{r}{n}" for r in "ab" for n in range(10)])
        await conn.close()


async def test_an_ot_room_opened_only_through_rest_follows_other_replicas(
    redis_server: RedisProcess,
):
    async with replica(redis_server, "a") as a, replica(redis_server, "b") as b:
        conn = await OTConnection.connect(a.url + "/ot")
        doc = await conn.open("notes", "follow", create_with="x")
        async with b.changes("notes/follow") as changes:  # keeps b's room open, no client
            doc.insert(1, "yz")
            await doc.synced()
            event = await asyncio.wait_for(changes.get(), 10)
            assert event.doc == "notes/follow"
            assert b.rooms.get("notes/follow").engine.text == "xyz"
            assert (await b.info("notes/follow"))["version"] == 2
        await conn.close()


async def test_the_ot_log_is_compacted_and_a_replica_loads_from_the_snapshot(
    redis_server: RedisProcess,
):
    async with replica(redis_server, "a", compact_every=10) as a:
        conn = await OTConnection.connect(a.url + "/ot")
        doc = await conn.open("notes", "compact", create_with="")
        for n in range(60):
            doc.insert(0, f"{n} ")
            await doc.synced()
        probe = Redis.from_url(redis_server.url)
        for _ in range(200):  # compaction runs in the background: wait for it, bounded
            covered = int((await probe.hget(keys("notes/compact")[2], "v")) or 0)
            if covered == 60:
                break
            await asyncio.sleep(0.01)
        await probe.aclose()
        assert covered == 60  # after the 60th of 61 commits (the create and 60 ops)
        versions = await _logged_versions(redis_server, "notes/compact")
        assert versions == list(range(50, 61))  # the last compact_every records are kept
        async with replica(redis_server, "b") as b:
            other = await OTConnection.connect(b.url + "/ot")
            seen = await other.open("notes", "compact")
            await seen.wait_for(lambda t: t == doc.text)
            seen.insert(0, "new ")
            await doc.wait_for(lambda t: t is not None and t.startswith("new 59 "))
            await other.close()
        await conn.close()


async def test_a_retried_commit_is_not_appended_twice(redis_server: RedisProcess):
    store = RedisStore(redis_server.url, "r")
    await store.open()
    try:
        record = b'{"v":0,"op":["a"],"src":"s","seq":1,"a":"s"}'
        first = await store.ot_commit("notes/retry", 0, record, src="s", seq=1)
        again = await store.ot_commit("notes/retry", 0, record, src="s", seq=1)
        assert (first.status, first.version) == ("committed", 0)
        assert (again.status, again.version) == ("duplicate", 0)
        assert await _logged_versions(redis_server, "notes/retry") == [0]
    finally:
        await store.close()


async def test_a_replica_left_behind_the_trim_point_reloads_its_room(redis_server: RedisProcess):
    async with replica(redis_server, "a", compact_every=5) as a, replica(redis_server, "b") as b:
        conn = await OTConnection.connect(a.url + "/ot")
        doc = await conn.open("notes", "behind", create_with="")
        late = await OTConnection.connect(b.url + "/ot")
        seen = await late.open("notes", "behind")
        await seen.wait_for(lambda t: t == "")
        room = b.rooms.get("notes/behind")
        handler = b.relay.handlers.pop("notes/behind")  # b's relay stops reading this log
        for n in range(30):
            doc.insert(0, f"{n} ")
            await doc.synced()
        b.relay.handlers["notes/behind"] = handler  # it reads on: the records are trimmed
        b.relay._wake()
        await eventually(lambda: b.rooms.get("notes/behind") is not room)  # failed, unloaded
        assert "compacted past version" in str(room._failed)
        again = await OTConnection.connect(b.url + "/ot")
        fresh = await again.open("notes", "behind")
        await fresh.wait_for(lambda t: t == doc.text)
        for c in (conn, late, again):
            await c.close()
