"""Hooks across real replicas sharing a real Redis.

Documented behaviour (server.hooks.core): change and store hooks fire only on the replica that
committed the change; a change relayed from another replica does not fire them, so a cluster
fires each change once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from server.client import CRDTClient, OTConnection
from server.hooks import StoreEvent
from server.rooms.room import ChangeEvent
from tests.replicas.conftest import RedisProcess, eventually, replica


def recorder(server: Any) -> list[ChangeEvent]:
    seen: list[ChangeEvent] = []

    async def record(event: ChangeEvent) -> None:
        seen.append(event)

    server.hooks.on_change(record)
    return seen


async def test_crdt_change_hooks_fire_only_on_the_committing_replica(
    redis_server: RedisProcess,
):
    async with replica(redis_server, "r1") as one, replica(redis_server, "r2") as two:
        seen_one, seen_two = recorder(one), recorder(two)
        writer = await CRDTClient.connect(one.url + "/crdt", "notes/x")
        reader = await CRDTClient.connect(two.url + "/crdt", "notes/x")
        writer.insert(0, "from r1 😀")
        await reader.wait_for(lambda t: t == "from r1 😀")
        reader.insert(0, "r2: ")
        await writer.wait_for(lambda t: t == "r2: from r1 😀")
        # The relay may show r2's edit on r1 before r2 has the write's reply: wait for it.
        await eventually(lambda: len(seen_two) >= 1)
        await one.hooks.drain()
        await two.hooks.drain()
        assert [(e.doc, e.author.startswith("crdt:")) for e in seen_one] == [("notes/x", True)]
        assert len(seen_two) == 1 and seen_two[0].author != seen_one[0].author
        await writer.close()
        await reader.close()


async def test_ot_change_and_store_hooks_fire_on_the_replica_that_committed_through_redis(
    redis_server: RedisProcess,
):
    async with replica(redis_server, "r1") as one, replica(redis_server, "r2") as two:
        seen_one, seen_two = recorder(one), recorder(two)
        stored: list[StoreEvent] = []
        one.hooks.on_store(_append_to(stored))
        a = await OTConnection.connect(one.url + "/ot")
        b = await OTConnection.connect(two.url + "/ot")
        doc_a = await a.open("notes", "ot", create_with="")
        doc_b = await b.open("notes", "ot")
        doc_a.insert(0, "abc")
        await doc_b.wait_for(lambda t: t == "abc")
        doc_b.insert(3, "!")
        await doc_a.wait_for(lambda t: t == "abc!")
        await one.hooks.drain()
        await two.hooks.drain()
        # r1 committed the create (v0) and "abc" (v1); r2 committed "!" (v2).
        assert [e.payloads[0].version for e in seen_one] == [0, 1]
        assert [e.payloads[0].version for e in seen_two] == [2]
        assert [(s.what, s.count) for s in stored] == [("records", 1), ("records", 1)]
        await a.close()
        await b.close()


def _append_to(events: list[Any]) -> Any:
    async def append(event: Any) -> None:
        events.append(event)

    return append


async def test_a_raising_hook_loses_no_edit_and_the_room_unloads_when_idle(
    redis_server: RedisProcess,
):
    async def broken(event: Any) -> None:
        raise RuntimeError("hook bug")

    async with (
        replica(redis_server, "r1", room_idle_seconds=0.2) as one,
        replica(redis_server, "r2", room_idle_seconds=0.2) as two,
    ):
        for name in ("change", "store", "load"):
            one.hooks.on(name)(broken)
        writer = await CRDTClient.connect(one.url + "/crdt", "notes/lossless")
        for i in range(10):
            writer.insert(len(writer.text), f"{i} ")
        expected = "".join(f"{i} " for i in range(10))
        await writer.close()
        await eventually(lambda: one.rooms.get("notes/lossless") is None)
        assert one.metrics.hook_failures_total[("change", "error")] >= 1
        assert await two.text("notes/lossless") == expected  # durable in Redis
        assert await one.text("notes/lossless") == expected  # and reloadable where it failed
        await asyncio.sleep(0)
