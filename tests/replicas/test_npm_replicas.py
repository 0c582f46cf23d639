"""Real npm clients (``y-websocket`` + ``yjs``, ``sharedb``) and Python clients spread over
three replicas, all editing the same documents at once: everyone converges, nothing is lost.

The npm clients are the protocol references (tests/npm); they insert at the start of the text
(a JS editor counts UTF-16 units, and a position computed from a text that changed meanwhile
could split a surrogate pair) while the Python clients insert between tokens anywhere, so the
replicas merge concurrent inserts both at one spot and all over the text.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from server.app import WeftServer
from server.client import CRDTClient, OTConnection
from tests.replicas.conftest import RedisProcess, replica
from tests.replicas.probes import engine_of, ot_version
from tests.replicas.processes import start_replicas
from tests.replicas.typists import boundaries
from tests.server.node_driver import NODE, NodeClient

pytestmark = [pytest.mark.npm,
              pytest.mark.skipif(NODE is None, reason="node is not installed")]

ROUNDS = 25
StartNode = Callable[..., Awaitable[NodeClient]]


@pytest.fixture
async def three(redis_server: RedisProcess) -> AsyncIterator[list[WeftServer]]:
    servers = [replica(redis_server, f"npm{i}") for i in range(3)]
    for server in servers:
        await server.start()
    try:
        yield servers
    finally:
        for server in servers:
            await server.stop()


def _token(who: str, round_: int) -> str:
    return f"[{who}.{round_}é😀世] "


def _check_tokens(final: str, names: list[str]) -> None:
    for name in names:
        for round_ in range(ROUNDS):
            assert final.count(_token(name, round_)) == 1, (name, round_, final)
    assert final.count("[") == len(names) * ROUNDS


async def test_yjs_providers_and_python_clients_on_three_replicas_converge(
    three: list[WeftServer], npm: StartNode,
) -> None:
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    doc = "npm/crdt"
    providers = [await npm("yws_client.js", three[i].url + "/crdt", doc) for i in (0, 2)]
    for provider in providers:
        await provider.call("wait_synced")
    pythons = [await CRDTClient.connect(three[i].url + "/crdt", doc) for i in (1, 2)]

    async def node_round(i: int, round_: int) -> None:
        await providers[i].call("insert", index=0, text=_token(f"js{i}", round_))

    for round_ in range(ROUNDS):
        for i, client in enumerate(pythons):
            client.insert(rng.choice(boundaries(client.text)), _token(f"py{i}", round_))
        await asyncio.gather(*(node_round(i, round_) for i in range(len(providers))))
        await asyncio.sleep(rng.random() * 0.02)

    names = ["js0", "js1", "py0", "py1"]
    await pythons[0].wait_for(lambda t: t.count("[") == len(names) * ROUNDS, timeout=20)
    final = pythons[0].text
    _check_tokens(final, names)
    for client in pythons:
        await client.wait_for(lambda t: t == final, timeout=20)
    for provider in providers:
        await provider.call("wait_text", text=final, timeout=20)
    for server in three:
        assert engine_of(server, doc).text == final
    for client in pythons:
        await client.close()


async def test_sharedb_clients_and_python_clients_on_three_replicas_converge(
    three: list[WeftServer], npm: StartNode,
) -> None:
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    collection, doc_id = "npm", "ot"
    doc = f"{collection}/{doc_id}"
    conns = [await OTConnection.connect(three[i].url + "/ot") for i in (1, 2)]
    pythons = [await conns[0].open(collection, doc_id, create_with="")]
    pythons.append(await conns[1].open(collection, doc_id))
    clients = []
    for i in (0, 2):
        client = await npm("sharedb_client.js", three[i].url + "/ot")
        await client.call("connect")
        await client.call("subscribe", doc=doc)
        clients.append(client)

    async def node_round(i: int, round_: int) -> None:
        await clients[i].call("insert", doc=doc, pos=0, text=_token(f"js{i}", round_))

    for round_ in range(ROUNDS):
        for i, ot in enumerate(pythons):
            ot.insert(rng.choice(boundaries(ot.text or "")), _token(f"py{i}", round_))
        await asyncio.gather(*(node_round(i, round_) for i in range(len(clients))))
        await asyncio.sleep(rng.random() * 0.02)

    for ot in pythons:
        await ot.synced(timeout=20)
    for client in clients:
        await client.call("wait_idle", timeout=20)
    names = ["js0", "js1", "py0", "py1"]
    await pythons[0].wait_for(lambda t: t is not None and t.count("[") == len(names) * ROUNDS,
                              timeout=20)
    final = pythons[0].text
    assert final is not None
    _check_tokens(final, names)
    for ot in pythons:
        await ot.wait_for(lambda t: t == final, timeout=20)
    for client in clients:
        await client.call("wait_text", doc=doc, text=final, timeout=20)
    assert {engine_of(server, doc).text for server in three} == {final}
    # One version everywhere (the Python clients compose edits made while an op is in flight,
    # so there may be fewer ops than edits).
    assert len({ot_version(server, doc) for server in three}) == 1
    for conn in conns:
        await conn.close()


async def test_npm_clients_of_a_crashed_replica_resync_when_it_comes_back(
    redis_server: RedisProcess, npm: StartNode,
) -> None:
    """``kill -9`` the replica a y-websocket provider and a sharedb client use; they keep
    editing offline; the replica restarts (same address, state from Redis) and both resend
    what it lacks — the provider by itself, the sharedb client on ``reconnect``."""
    victim = (await start_replicas(redis_server, ["npm-victim"]))[0]
    try:
        async with replica(redis_server, "npm-steady") as steady:
            provider = await npm("yws_client.js", victim.url + "/crdt", "crash/crdt")
            await provider.call("wait_synced")
            python_crdt = await CRDTClient.connect(steady.url + "/crdt", "crash/crdt")
            sharedb = await npm("sharedb_client.js", victim.url + "/ot")
            await sharedb.call("connect")
            await sharedb.call("create", doc="crash/ot", text="")
            await sharedb.call("subscribe", doc="crash/ot")
            conn = await OTConnection.connect(steady.url + "/ot")
            python_ot = await conn.open("crash", "ot")
            await python_ot.wait_for(lambda t: t is not None)

            async def edit_all(round_: int) -> None:
                await provider.call("insert", index=0, text=_token("js", round_))
                await sharedb.call("insert", doc="crash/ot", pos=0, text=_token("js", round_))
                python_crdt.insert(0, _token("py", round_))
                python_ot.insert(0, _token("py", round_))

            for round_ in range(ROUNDS):
                if round_ == ROUNDS // 3:
                    await victim.kill()  # no close frames: both npm clients are offline now
                if round_ == 2 * ROUNDS // 3:
                    await victim.start()  # y-websocket reconnects by itself
                    await sharedb.call("reconnect")
                    await sharedb.call("subscribe", doc="crash/ot")
                await edit_all(round_)
                await asyncio.sleep(0.01)

            await sharedb.call("wait_idle", timeout=20)
            await python_ot.synced(timeout=20)
            names = ["js", "py"]
            await python_crdt.wait_for(lambda t: t.count("[") == 2 * ROUNDS, timeout=20)
            await python_ot.wait_for(lambda t: t is not None and t.count("[") == 2 * ROUNDS,
                                     timeout=20)
            for final in (python_crdt.text, python_ot.text or ""):
                _check_tokens(final, names)
            await provider.call("wait_text", text=python_crdt.text, timeout=20)
            await sharedb.call("wait_text", doc="crash/ot", text=python_ot.text, timeout=20)
            await python_crdt.close()
            await conn.close()
    finally:
        await victim.stop()
