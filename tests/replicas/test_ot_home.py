"""OT ordering by conflict avoidance (``ot_ordering="home"``): each document's home replica
holds a fenced lease in Redis and commits its ops; the other replicas forward to it."""

from __future__ import annotations

import asyncio

import pytest
from orjson import loads
from redis.asyncio import Redis

from engines.ot_engine import OTEngine, OTSubmit
from server.app import WeftServer
from server.client import OTConnection, OTDoc
from server.lease import home_key
from server.protocols import ot_replicas
from server.protocols.ot_home import Homes
from server.store.redis import RedisStore, keys
from tests.replicas.conftest import RedisProcess, eventually, replica


def home_replica(redis: RedisProcess, name: str) -> WeftServer:
    return replica(redis, name, ot_ordering="home")


def homes(server: WeftServer) -> Homes:
    assert server.homes is not None
    return server.homes


async def _log(redis: RedisProcess, doc: str) -> list[dict]:
    probe = Redis.from_url(redis.url)
    try:
        entries = await probe.xrange(keys(doc)[1])
    finally:
        await probe.aclose()
    return [loads(f[b"p"]) for _, f in entries if b"p" in f]


async def _stored_text(redis: RedisProcess, doc: str) -> str:
    store = RedisStore(redis.url, "probe")
    await store.open()
    try:
        stored = await store.load(doc)
    finally:
        await store.close()
    assert stored is not None
    return OTEngine.load(stored.snapshot, stored.log).text



async def _write_acked(doc: OTDoc, acked: list[str], count: int) -> None:
    """Append ``count`` numbered pieces, one at a time, each recorded once acknowledged."""
    for _ in range(count):
        piece = f"<{len(acked)}>"
        doc.insert(len(doc.text or ""), piece)
        await doc.synced(timeout=30)
        acked.append(piece)

async def test_the_first_replica_to_open_a_document_is_its_home_and_others_forward(
    redis_server: RedisProcess,
):
    async with home_replica(redis_server, "a") as a, home_replica(redis_server, "b") as b:
        conn_a = await OTConnection.connect(a.url + "/ot")
        doc_a = await conn_a.open("notes", "fwd", create_with="")
        await eventually(lambda: homes(a).is_home("notes/fwd"))
        conn_b = await OTConnection.connect(b.url + "/ot")
        doc_b = await conn_b.open("notes", "fwd")
        await doc_b.wait_for(lambda t: t == "")

        async def write(doc, tag: str) -> None:
            for n in range(15):
                doc.insert(0, f"{tag}{n}😀 ")
                await doc.synced(timeout=20)

        await asyncio.gather(write(doc_a, "a"), write(doc_b, "b"))
        final = doc_a.text
        await doc_b.wait_for(lambda t: t == final, timeout=20)
        assert final is not None and final.count("😀") == 30
        assert not homes(b).is_home("notes/fwd")
        assert isinstance(b.store, RedisStore) and b.store.ot_commits == 0  # b never commits
        assert homes(b).counts["forwarded"] >= 15
        assert homes(a).counts["served"] >= 15
        assert [r["v"] for r in await _log(redis_server, "notes/fwd")] == list(range(31))
        await conn_a.close()
        await conn_b.close()


async def test_a_rest_edit_on_a_non_home_replica_is_forwarded(redis_server: RedisProcess):
    async with home_replica(redis_server, "a") as a, home_replica(redis_server, "b") as b:
        conn = await OTConnection.connect(a.url + "/ot")
        doc = await conn.open("notes", "rest", create_with="xy")
        await eventually(lambda: homes(a).is_home("notes/rest"))
        result = await b.edit("notes/rest", pos=1, insert="é")
        assert result["text"] == "xéy"
        await doc.wait_for(lambda t: t == "xéy")
        assert isinstance(b.store, RedisStore) and b.store.ot_commits == 0
        assert [r["v"] for r in await _log(redis_server, "notes/rest")] == [0, 1]
        await conn.close()


async def test_a_deposed_home_cannot_commit(redis_server: RedisProcess):
    async with home_replica(redis_server, "a") as a, home_replica(redis_server, "b") as b:
        conn = await OTConnection.connect(a.url + "/ot")
        await conn.open("notes", "fenced", create_with="abc")
        await eventually(lambda: homes(a).is_home("notes/fenced"))
        old_fence = homes(a).views["notes/fenced"].fence
        homes(a).halt()  # a stops renewing, but still believes it is home
        probe = Redis.from_url(redis_server.url)
        await probe.delete(home_key("notes/fenced"))  # as if the lease had expired
        await probe.aclose()
        taken = await homes(b).look("notes/fenced")
        assert (taken.holder, taken.fence) == ("b", old_fence + 1)

        room = a.rooms.get("notes/fenced")
        delivery = ot_replicas.Delivery(room, "s", None)
        with pytest.raises(ot_replicas.Fenced):
            await ot_replicas.commit_here(room, OTSubmit(["x"], 1, "s", 1), "s", delivery,
                                          fence=old_fence)
        assert [r["v"] for r in await _log(redis_server, "notes/fenced")] == [0]
        assert (room.engine.version, room.engine.text) == (1, "abc")
        await conn.close()


async def test_killing_the_home_moves_the_lease_and_loses_no_acknowledged_op(
    redis_server: RedisProcess,
):
    async with home_replica(redis_server, "b") as b:
        a = home_replica(redis_server, "a")
        await a.__aenter__()
        conn_a = await OTConnection.connect(a.url + "/ot")
        await conn_a.open("notes", "failover", create_with="")
        await eventually(lambda: homes(a).is_home("notes/failover"))
        fence = homes(a).views["notes/failover"].fence
        conn_b = await OTConnection.connect(b.url + "/ot")
        doc_b = await conn_b.open("notes", "failover")
        await doc_b.wait_for(lambda t: t == "")
        acked: list[str] = []

        async def write(count: int) -> None:
            await _write_acked(doc_b, acked, count)

        await write(5)
        # "Kill" a: its lease is neither renewed nor released, it serves no more requests,
        # its clients are gone.  Submits already sent to it must be resent to the new home.
        await conn_a.close()
        homes(a).halt()
        await write(10)
        assert homes(b).is_home("notes/failover")
        assert homes(b).views["notes/failover"].fence > fence
        assert homes(b).counts["resent"] >= 1
        text = await _stored_text(redis_server, "notes/failover")
        for piece in acked:
            assert text.count(piece) == 1
        assert [r["v"] for r in await _log(redis_server, "notes/failover")] == list(range(16))
        await conn_b.close()
        await a.__aexit__(None, None, None)


async def test_kill_9_of_the_home_process_loses_no_acknowledged_op(
    redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch,
):
    from tests.replicas.processes import start_replicas

    monkeypatch.setenv("WEFT_OT_ORDERING", "home")  # inherited by the replica processes
    a, b = await start_replicas(redis_server, ["a", "b"])
    probe = Redis.from_url(redis_server.url)
    try:
        conn_a = await OTConnection.connect(a.url + "/ot")
        await conn_a.open("notes", "kill9", create_with="")

        async def holder() -> bytes:
            return (await probe.get(home_key("notes/kill9")) or b"").split(b" ")[0]

        for _ in range(500):  # bounded: the home lease is taken within a keeper tick
            if await holder() == b"a":
                break
            await asyncio.sleep(0.01)
        assert await holder() == b"a"
        conn_b = await OTConnection.connect(b.url + "/ot")
        doc_b = await conn_b.open("notes", "kill9")
        await doc_b.wait_for(lambda t: t == "")
        acked: list[str] = []

        async def write(count: int) -> None:
            await _write_acked(doc_b, acked, count)

        writing = asyncio.get_running_loop().create_task(write(40))
        await eventually(lambda: len(acked) >= 10, timeout=30)
        await a.kill()  # SIGKILL while b's client keeps submitting through a
        await asyncio.wait_for(writing, 60)
        assert await holder() == b"b"
        text = await _stored_text(redis_server, "notes/kill9")
        for piece in acked:
            assert text.count(piece) == 1
        assert doc_b.text == text
        await conn_b.close()
    finally:
        await probe.aclose()
        await asyncio.gather(a.stop(), b.stop())


async def test_a_resubmitted_forwarded_op_is_acknowledged_again_not_committed_twice(
    redis_server: RedisProcess,
):
    async with home_replica(redis_server, "a") as a, home_replica(redis_server, "b") as b:
        conn = await OTConnection.connect(a.url + "/ot")
        await conn.open("notes", "dup", create_with="ab")
        await eventually(lambda: homes(a).is_home("notes/dup"))
        async with b.changes("notes/dup"):  # b has the room open, without a client
            room = b.rooms.get("notes/dup")
            op = OTSubmit([1, "x"], 1, "client", 7)
            first = await ot_replicas.commit(room, op, "client")
            again = await ot_replicas.commit(room, op, "client")  # e.g. resent after reconnect
        assert first.reply == again.reply  # the same ack: committed at version 1
        assert first.persist and not again.persist
        assert [r["v"] for r in await _log(redis_server, "notes/dup")] == [0, 1]
        assert await b.text("notes/dup") == "axb"
        await conn.close()
