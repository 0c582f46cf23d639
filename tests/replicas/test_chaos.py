"""Failures while people type, both engines: a replica crashes (``kill -9``), freezes
(``SIGSTOP``), loses its Redis connections (``CLIENT KILL``), or Redis itself restarts.

Each test types concurrently through several replicas, injects the failure mid-typing, keeps
typing, and then checks the promises of DESIGN.md ("Multi-leader promises"): every client and
every replica reaches the same text, and nothing is lost — the stronger property that every
token any client typed (acknowledged or not) is there exactly once.  OT clients resubmit their
unacknowledged op on reconnect (deduplicated by ``src``/``seq``); CRDT clients re-send what the
server lacks through sync step 1/2.  Acknowledged OT tokens are reported in failure messages.
Two OT edge cases close the file: reconnecting to a replica whose relay lags (monotonic reads),
and reconnecting after the ops the client needs were compacted away (hard rollback).

Replicas that must crash or freeze are real ``weft serve`` subprocesses
(:mod:`tests.replicas.processes`); the others run in-process for speed.  Redis is a real
``redis-server`` with ``appendfsync always``.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis

from server.app import WeftServer
from server.protocols import ot_replicas
from server.relay.base import RelayMessage
from server.relay.redis import RedisRelay
from server.store.redis import RedisStore
from tests.replicas.conftest import RedisProcess, eventually, replica
from tests.replicas.probes import engine_of, ot_version
from tests.replicas.processes import start_replicas
from tests.replicas.typists import OtTypist, Typist, converge, make_typist, type_for

ENGINES = ["crdt", "ot"]


def _rng() -> random.Random:
    seed = random.randrange(1 << 30)
    print("seed", seed)
    return random.Random(seed)


async def _typists(engine: str, doc: str, urls: Sequence[str]) -> list[Typist]:
    typists = []
    for i, url in enumerate(urls):  # sequential: the first one creates an OT document
        typist = make_typist(engine, f"t{i}", doc)
        await typist.connect(url)
        typists.append(typist)
    return typists


async def _fresh_text(engine: str, doc: str, url: str, final: str) -> None:
    """A new client of the replica at ``url`` sees ``final`` (the replica converged too)."""
    probe = make_typist(engine, "probe", doc)
    await probe.connect(url)
    try:
        await probe.wait_text(lambda t: t == final, 15)
    finally:
        await probe.disconnect()


async def _stored_text(redis: RedisProcess, doc: str) -> str:
    """What a replica that was not running loads from Redis alone."""
    async with replica(redis, "loader") as loader:
        return await loader.text(doc)


@pytest.mark.parametrize("engine", ENGINES)
async def test_clients_of_a_replica_killed_mid_typing_reconnect_elsewhere_and_lose_nothing(
    redis_server: RedisProcess, engine: str,
) -> None:
    rng = _rng()
    doc = f"chaos/kill-{engine}"
    replicas = await start_replicas(redis_server, ["k0", "k1", "k2"])
    typists: list[Typist] = []
    try:
        typists = await _typists(engine, doc, [r.url for r in replicas])
        victim = replicas[0]

        def live() -> str | None:
            return next(r.url for r in replicas if r.running)

        in_flight: list[str] = []

        async def crash() -> None:
            await asyncio.sleep(0.25 + rng.random() * 0.25)
            # Edits the victim's client has just sent (or queued): unacknowledged for sure.
            in_flight.extend(typists[0].type_token(rng) for _ in range(3))
            await victim.kill()

        await asyncio.gather(
            crash(), *(type_for(t, rng, 40, 0.015, live) for t in typists))
        assert not victim.running
        assert typists[0].reconnects >= 1  # its client moved to another replica
        final = await converge(typists, reconnect_to=lambda: live() or victim.url)
        assert all(final.count(token) == 1 for token in in_flight)
        for survivor in replicas[1:]:
            await _fresh_text(engine, doc, survivor.url, final)
        await victim.start()  # same id and port: it loads everything from Redis
        await _fresh_text(engine, doc, victim.url, final)
        assert await _stored_text(redis_server, doc) == final
        print(engine, "tokens", sum(len(t.typed) for t in typists), "acked (OT)",
              sum(len(t.acked) for t in typists), "reconnect errors",
              [e for t in typists for e in t.reconnect_errors])
    finally:
        for typist in typists:
            await typist.disconnect()
        await asyncio.gather(*(r.stop() for r in replicas))


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_frozen_replica_catches_up_after_sigcont(redis_server: RedisProcess,
                                                         engine: str) -> None:
    rng = _rng()
    doc = f"chaos/stop-{engine}"
    replicas = await start_replicas(redis_server, ["s0", "s1"])
    typists: list[Typist] = []
    try:
        async with replica(redis_server, "s2") as in_process:
            urls = [r.url for r in replicas] + [in_process.url]
            typists = await _typists(engine, doc, urls)
            frozen = replicas[0]

            def nowhere() -> str | None:
                return None  # nobody drops here: a frozen server keeps its sockets

            async def freeze() -> None:
                await asyncio.sleep(0.1)
                frozen.signal(signal.SIGSTOP)
                await asyncio.sleep(1.5)  # the others type on; its clients' frames queue up
                frozen.signal(signal.SIGCONT)

            await asyncio.gather(
                freeze(), *(type_for(t, rng, 60, 0.02, nowhere) for t in typists))
            assert all(t.connected for t in typists)
            final = await converge(typists, reconnect_to=lambda: rng.choice(urls))
            await _fresh_text(engine, doc, frozen.url, final)
            assert await _stored_text(redis_server, doc) == final
    finally:
        for typist in typists:
            await typist.disconnect()
        await asyncio.gather(*(r.stop() for r in replicas))


async def _kill_redis_clients(redis: RedisProcess, replica_id: str) -> int:
    """``CLIENT KILL`` every Redis connection the replica named itself on; returns how many."""
    admin = Redis.from_url(redis.url)
    try:
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c.get("name", "").startswith(f"weft:{replica_id}:")]
        for client_id in ids:
            await admin.execute_command("CLIENT", "KILL", "ID", client_id)
        return len(ids)
    finally:
        await admin.aclose()


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_replica_whose_redis_connections_are_killed_reconnects_and_catches_up(
    redis_server: RedisProcess, engine: str,
) -> None:
    rng = _rng()
    doc = f"chaos/clientkill-{engine}"
    servers = [replica(redis_server, f"c{i}") for i in range(3)]
    typists: list[Typist] = []
    for server in servers:
        await server.start()
    try:
        typists = await _typists(engine, doc, [s.url for s in servers])
        relay = servers[0].relay
        assert isinstance(relay, RedisRelay)
        killed: list[int] = []

        async def cut() -> None:
            for _ in range(3):  # several times: while idle-blocked and while busy
                await asyncio.sleep(0.2 + rng.random() * 0.2)
                killed.append(await _kill_redis_clients(redis_server, "c0"))

        await asyncio.gather(cut(), *(type_for(t, rng, 50, 0.02, lambda: None)
                                      for t in typists))
        assert min(killed) >= 2  # at least the store's and the relay's connections
        final = await converge(typists, reconnect_to=lambda: rng.choice(servers).url)
        assert relay.reconnects >= 1
        await _same_engines(servers, doc, final)
        assert await _stored_text(redis_server, doc) == final
    finally:
        for typist in typists:
            await typist.disconnect()
        for server in servers:
            await server.stop()


async def _same_engines(servers: Sequence[WeftServer], doc: str, final: str) -> None:
    """Every replica holds ``final`` (loading the document where nobody has it open)."""
    for server in servers:
        text = None
        for _ in range(500):  # bounded: the relay may still be applying the last records
            text = await server.text(doc)
            if text == final:
                break
            await asyncio.sleep(0.01)
        assert text == final, server.config.replica_id


# 0.5 s: within the store's retry window (writes wait, nobody is dropped); 6 s: past it
# (writes fail, rooms fail and drop their clients, who reconnect and resend once Redis is back).
@pytest.mark.parametrize("outage", [0.5, 6.0])
@pytest.mark.parametrize("engine", ENGINES)
async def test_redis_restarting_mid_typing_loses_nothing_acknowledged(
    redis_server: RedisProcess, engine: str, outage: float,
) -> None:
    rng = _rng()
    doc = f"chaos/redis-{engine}"
    servers = [replica(redis_server, f"r{i}") for i in range(3)]
    typists: list[Typist] = []
    for server in servers:
        await server.start()
    try:
        typists = await _typists(engine, doc, [s.url for s in servers])
        urls = [s.url for s in servers]

        def any_replica() -> str | None:
            return rng.choice(urls)  # a room that failed a write dropped its clients

        async def restart() -> None:
            await asyncio.sleep(0.2 + rng.random() * 0.2)
            await redis_server.stop()
            await asyncio.sleep(outage)
            await redis_server.start()

        await asyncio.gather(restart(), *(type_for(t, rng, 50, 0.02 + outage / 50,
                                                   any_replica) for t in typists))
        final = await converge(typists, reconnect_to=lambda: rng.choice(urls))
        await _same_engines(servers, doc, final)
        assert await _stored_text(redis_server, doc) == final
        assert all(isinstance(s.store, RedisStore) for s in servers)
        # An op the store could not take closes the connection (try again later) instead of an
        # error reply, so OT clients resubmit rather than roll back: nothing typed is dropped.
        assert sum(getattr(t, "rollbacks", 0) for t in typists) == 0
        print(engine, outage, "reconnects", [t.reconnects for t in typists],
              "acked (OT)", sum(len(t.acked) for t in typists))
    finally:
        for typist in typists:
            await typist.disconnect()
        for server in servers:
            await server.stop()


async def test_an_ot_client_moving_to_a_lagging_replica_is_not_sent_back_in_time(
    redis_server: RedisProcess,
) -> None:
    """Monotonic reads: the replica a client reconnects to may not have applied the newest
    ops yet (its relay lags); the client must still resume from the version it had."""
    async with replica(redis_server, "ahead") as ahead, replica(redis_server, "behind") as behind:
        writer = make_typist("ot", "w", "lag/ot")
        mover = make_typist("ot", "m", "lag/ot")
        watcher = make_typist("ot", "z", "lag/ot")
        await writer.connect(ahead.url)
        await mover.connect(ahead.url)
        await watcher.connect(behind.url)  # the document is open (and relayed) there
        rng = random.Random(0)
        writer.type_token(rng)
        await converge([writer, mover, watcher])

        relay = behind.relay
        assert isinstance(relay, RedisRelay)
        handler = relay.handlers["lag/ot"]
        held: list[RelayMessage] = []
        relay.handlers["lag/ot"] = held.append  # "behind" hears nothing for a while
        for _ in range(3):
            writer.type_token(rng)
            await writer.synced()
        await mover.wait_text(lambda t: t == writer.text, 10)
        await eventually(lambda: len(held) == 3)  # relayed to "behind", not applied there
        assert len(engine_of(behind, "lag/ot").text) < len(mover.text)

        async def release() -> None:
            await asyncio.sleep(0.5)
            relay.handlers["lag/ot"] = handler
            for message in held:
                handler(message)

        releasing = asyncio.get_running_loop().create_task(release())
        try:
            assert isinstance(mover, OtTypist) and mover.conn is not None
            seen = mover.text
            mover.conn.url = behind.url + "/ot"
            await mover.conn.reconnect()  # no retry: the first answer must be right
            assert mover.text == seen
            mover.type_token(rng)
            await converge([writer, mover, watcher])
        finally:
            await releasing
            for typist in (writer, mover, watcher):
                await typist.disconnect()


async def test_an_ot_client_offline_past_the_kept_history_rolls_back_and_edits_on(
    redis_server: RedisProcess,
) -> None:
    """A replica that loads a compacted document has no ops from before its snapshot, so a
    client that went offline earlier cannot resume: like ShareDB's client it drops its
    unacknowledged edit (reported, never silently), takes the current text, and its next
    edits — with fresh ``seq`` numbers, not taken for the dropped one — are committed."""
    async with replica(redis_server, "old", compact_every=2) as old:
        offline = make_typist("ot", "off", "past/ot")
        online = make_typist("ot", "on", "past/ot")
        await offline.connect(old.url)
        await online.connect(old.url)
        rng = random.Random(1)
        offline.type_token(rng)
        await converge([offline, online])
        acked = set(offline.acked)
        await offline.disconnect()
        lost = offline.type_token(rng)  # never sent
        for _ in range(8):
            online.type_token(rng)
            await online.synced()
        async with replica(redis_server, "new") as new:  # loads snapshot + recent log
            await offline.connect(new.url)
            assert isinstance(offline, OtTypist) and offline.ot is not None
            assert offline.rollbacks == 1
            assert [e.code for e in offline.ot.errors] == ["ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND"]
            assert lost in offline.uncertain and lost not in online.text
            for _ in range(3):
                offline.type_token(rng)
            final = await converge([offline, online])
            assert lost not in final and acked <= offline.acked
            await offline.disconnect()
            await online.disconnect()


async def test_an_op_relayed_while_an_ot_catch_up_is_reading_the_log_is_not_lost(
    redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with replica(redis_server, "fast") as fast, replica(redis_server, "slow") as slow:
        writer = make_typist("ot", "w", "race/ot")
        reader = make_typist("ot", "r", "race/ot")
        await writer.connect(fast.url)
        await reader.connect(slow.url)
        rng = random.Random(2)
        writer.type_token(rng)
        await converge([writer, reader])

        store, relay, room = slow.store, slow.relay, slow.rooms.get("race/ot")
        assert isinstance(store, RedisStore) and isinstance(relay, RedisRelay) and room
        read_log = store.ot_records
        gate = asyncio.Event()

        async def slow_read(doc: str, newest: int | None = None) -> list[bytes]:
            records = await read_log(doc, newest)
            await gate.wait()  # the log was read; the catch-up has not applied it yet
            return records

        monkeypatch.setattr(store, "ot_records", slow_read)
        ot_replicas.catch_up_soon(room)  # e.g. scheduled by a gap or a commit in flight
        await asyncio.sleep(0.05)
        delivered = relay.delivered["race/ot"]
        writer.type_token(rng)  # committed through "fast", relayed to "slow" meanwhile
        await writer.synced()
        await eventually(lambda: relay.delivered["race/ot"] > delivered)
        gate.set()
        await eventually(lambda: ot_version(slow, "race/ot") == ot_version(fast, "race/ot"),
                         timeout=3)
        await writer.disconnect()
        await reader.disconnect()
