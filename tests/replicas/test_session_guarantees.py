"""Session guarantees across replicas: monotonic reads with causal tokens, consistent prefix.

A "lagging" replica is made by holding its relay reader (:class:`RelayGate`): its Redis
``XREAD`` waits at a gate, so changes committed through the other replica stay in the stream
until the test releases it.  Waits are printed (``pytest -s``) for the report.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect

from crdt.document import CrdtDocument
from crdt.sync import FrameKind, read_frame, sync_step1_frame, sync_step2_frame
from engines.crdt_engine import CRDTEngine
from server import causal
from server.app import WeftServer
from server.client import CRDTClient, OTConnection
from server.relay.redis import RedisRelay
from tests.replicas.conftest import RedisProcess, eventually, replica
from tests.server.raw import RawOT
from tests.server.test_causal_tokens import call


class RelayGate:
    """Holds a replica's relay reader before its next ``XREAD`` until released."""

    def __init__(self, server: WeftServer) -> None:
        relay = server.relay
        assert isinstance(relay, RedisRelay)
        self.relay = relay
        self.open = asyncio.Event()
        self.open.set()
        self.parked = asyncio.Event()
        real = relay.redis.xread

        async def gated(*args: Any, **kwargs: Any) -> Any:
            if not self.open.is_set():
                self.parked.set()
                await self.open.wait()
            return await real(*args, **kwargs)

        relay.redis.xread = gated  # type: ignore[method-assign]

    async def hold(self) -> None:
        """Close the gate and wait until the reader is parked at it (nothing more delivered)."""
        self.open.clear()
        self.parked.clear()
        await self.relay._send_wake()  # the blocked read returns; the next one parks
        await asyncio.wait_for(self.parked.wait(), 10)

    def release(self) -> None:
        self.open.set()


# ---- monotonic reads over REST ----------------------------------------------------------------


async def test_a_rest_read_with_a_token_from_a_fast_replica_waits_for_a_lagging_one(
    redis_server: RedisProcess,
):
    doc = "notes/mono-crdt"
    async with replica(redis_server, "fast") as fast, replica(redis_server, "slow") as slow:
        await fast.edit(doc, insert="one ", pos=0, engine="crdt")
        async with slow.changes(doc):  # the slow replica has the document open
            room = slow.rooms.get(doc)
            await eventually(lambda: room.engine.text == "one ")
            gate = RelayGate(slow)
            await gate.hold()
            token = (await fast.edit(doc, insert="two ", pos=4))["token"]
            started = time.perf_counter()
            reading = asyncio.create_task(call(slow, f"/api/docs/{doc}?after={token}"))
            await asyncio.sleep(0.3)
            assert not reading.done() and room.engine.text == "one "  # it waits
            released = time.perf_counter()
            gate.release()
            status, headers, body = await asyncio.wait_for(reading, 10)
            done = time.perf_counter()
    assert (status, body["text"]) == (200, "one two ")
    assert causal.covers(causal.decode(headers["X-Weft-Token"]), causal.decode(token))
    print(f"CRDT REST read on lagging replica: {done - started:.3f} s total, "
          f"{(done - released) * 1000:.1f} ms after the relay was released")


async def test_a_rest_read_of_an_ot_document_catches_up_from_the_log(redis_server: RedisProcess):
    async with replica(redis_server, "fast") as fast, replica(redis_server, "slow") as slow:
        conn = await OTConnection.connect(fast.url + "/ot")
        writer = await conn.open("notes", "mono-ot", create_with="one ")
        await writer.synced()
        async with slow.changes("notes/mono-ot"):  # opened through REST only: not attached
            gate = RelayGate(slow)
            await gate.hold()
            writer.insert(4, "two ")
            await writer.synced()
            token = causal.ot_token(writer.version)
            started = time.perf_counter()
            status, _, body = await call(slow, f"/api/docs/notes%2Fmono-ot?after={token}")
            took = time.perf_counter() - started
            gate.release()
        await conn.close()
    assert (status, body["text"], body["token"]) == (200, "one two ", token)
    print(f"OT REST read on a replica whose relay is held: {took * 1000:.1f} ms (log catch-up)")


async def test_a_replica_without_the_document_open_answers_at_once(redis_server: RedisProcess):
    async with replica(redis_server, "fast") as fast, replica(redis_server, "slow") as slow:
        token = (await fast.edit("notes/cold", insert="abc", pos=0, engine="crdt"))["token"]
        status, _, body = await call(slow, f"/api/docs/notes/cold?after={token}")
        assert (status, body["text"]) == (200, "abc")
        assert slow.metrics.causal_waits_total["rest", "immediate"] == 1


async def test_a_lagging_replica_answers_not_caught_up_after_the_bound(redis_server: RedisProcess):
    doc = "notes/bound"
    async with (
        replica(redis_server, "fast") as fast,
        replica(redis_server, "slow", causal_wait_seconds=0.3) as slow,
    ):
        await fast.edit(doc, insert="a", pos=0, engine="crdt")
        async with slow.changes(doc):
            gate = RelayGate(slow)
            await gate.hold()
            token = (await fast.edit(doc, insert="b", pos=1))["token"]
            status, headers, body = await call(slow, f"/api/docs/{doc}?after={token}")
            gate.release()
            assert (status, body["error"]["code"]) == (503, "ERR_NOT_CAUGHT_UP")
            assert headers["Retry-After"] == "1"
            status, _, body = await call(slow, f"/api/docs/{doc}?after={token}")  # the retry
            assert (status, body["text"]) == (200, "ab")


# ---- monotonic reads over the protocols -------------------------------------------------------


async def test_a_sharedb_subscribe_at_a_newer_version_gets_no_older_state(
    redis_server: RedisProcess,
):
    async with (
        replica(redis_server, "fast") as fast,
        replica(redis_server, "slow", causal_wait_seconds=0.3) as slow,
    ):
        conn = await OTConnection.connect(fast.url + "/ot")
        writer = await conn.open("notes", "sub", create_with="a")
        await writer.synced()
        watcher = await RawOT.open(slow.url + "/ot")  # the slow replica has the room attached
        assert "error" not in await watcher.rpc({"a": "s", "c": "notes", "d": "sub"})
        gate = RelayGate(slow)
        await gate.hold()
        for i in range(3):
            writer.insert(0, str(i))
        await writer.synced()
        seen = writer.version  # what the client saw through the fast replica
        client = await RawOT.open(slow.url + "/ot")
        for action in ("f", "s"):
            reply = await client.rpc({"a": action, "c": "notes", "d": "sub", "v": seen})
            assert "error" not in reply, reply
        # The npm client's reconnect path: a bulk subscribe with the versions it has.
        reply = await client.rpc({"a": "bs", "c": "notes", "b": {"sub": seen}})
        assert "error" not in reply, reply
        assert slow.rooms.get("notes/sub").engine.version >= seen
        ahead = await client.rpc({"a": "f", "c": "notes", "d": "sub", "v": seen + 50})
        assert ahead["error"]["code"] == "ERR_NOT_CAUGHT_UP"
        gate.release()
        for raw in (watcher, client):
            await raw.close()
        await conn.close()


async def _step2(ws: Any, timeout: float) -> bytes:
    """The payload of the next sync step 2 frame (other frames are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = read_frame(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if frame.kind is FrameKind.SYNC_STEP2:
            return frame.payload


async def test_a_yjs_client_with_a_newer_state_vector_gets_step2_once_the_replica_caught_up(
    redis_server: RedisProcess,
):
    doc = "notes/yjs-mono"
    async with replica(redis_server, "fast") as fast, replica(redis_server, "slow") as slow:
        await fast.edit(doc, insert="one ", pos=0, engine="crdt")
        async with slow.changes(doc):
            room = slow.rooms.get(doc)
            gate = RelayGate(slow)
            await gate.hold()
            seen = await CRDTClient.connect(fast.url + "/crdt", doc)  # sees "two" via fast
            seen.insert(4, "two ")
            await eventually(lambda: fast.rooms.get(doc).engine.text == "one two ")
            await seen.close()
            async with connect(f"{slow.url}/crdt/{doc}") as ws:  # reconnects to the slow one
                await ws.send(sync_step1_frame(seen.doc.state_vector()))
                with pytest.raises(TimeoutError):
                    await _step2(ws, 0.3)  # not answered from the older state
                released = time.perf_counter()
                gate.release()
                await _step2(ws, 10)
                took = time.perf_counter() - released
                assert room.engine.text == "one two "  # answered from a state that covers it
    assert slow.metrics.causal_waits_total["crdt", "waited"] == 1
    print(f"y-websocket step 2 on lagging replica: {took * 1000:.1f} ms after relay release")


async def test_a_yjs_client_vector_counting_its_own_unsent_edits_is_answered_after_them(
    redis_server: RedisProcess,
):
    doc = "notes/yjs-own"
    async with replica(redis_server, "only", causal_wait_seconds=0.5) as only:
        await only.edit(doc, insert="base", pos=0, engine="crdt")
        offline = CrdtDocument()
        offline.apply_update(only.rooms.get(doc).engine.snapshot())
        offline.insert(4, " mine")  # an edit made offline, not sent yet
        async with connect(f"{only.url}/crdt/{doc}") as ws:
            server_step1 = read_frame(await ws.recv())
            assert server_step1.kind is FrameKind.SYNC_STEP1
            started = time.perf_counter()
            await ws.send(sync_step1_frame(offline.state_vector()))
            await ws.send(sync_step2_frame(offline.diff(server_step1.payload)))
            await _step2(ws, 10)  # answered once its own edit arrived
            own = time.perf_counter() - started
        assert only.metrics.causal_waits_total["crdt", "waited"] == 1
        ghost = CrdtDocument()
        ghost.insert(0, "never sent")
        async with connect(f"{only.url}/crdt/{doc}") as ws:
            await ws.send(sync_step1_frame(ghost.state_vector()))
            started = time.perf_counter()
            await _step2(ws, 10)  # answered anyway after the bound: never refused
            assert time.perf_counter() - started >= 0.4
        assert only.metrics.causal_waits_total["crdt", "timeout"] == 1
        assert await only.text(doc) == "base mine"
    print(f"y-websocket step 2 for a vector counting its own unsent edit: {own * 1000:.1f} ms")


# ---- consistent prefix ------------------------------------------------------------------------


async def test_ot_subscribers_on_another_replica_receive_ops_in_commit_order(
    redis_server: RedisProcess,
):
    async with replica(redis_server, "a") as one, replica(redis_server, "b") as two:
        conns = [await OTConnection.connect(s.url + "/ot") for s in (one, two)]
        docs = [await c.open("notes", "order", create_with="") for c in conns]
        for doc in docs:
            await doc.wait_for(lambda t: t is not None)
        watcher = await RawOT.open(two.url + "/ot")
        reply = await watcher.rpc({"a": "s", "c": "notes", "d": "order"})
        start = reply["data"]["v"]
        for round_ in range(15):
            for i, doc in enumerate(docs):
                doc.insert(0, f"{i}{round_} ")
        for doc in docs:
            await doc.synced(timeout=20)
        final = max(doc.version for doc in docs)
        versions: list[int] = []
        while not versions or versions[-1] < final - 1:
            message = await watcher.recv(timeout=10)
            if message.get("a") == "op":
                versions.append(message["v"])
        assert versions == list(range(start, final))
        await watcher.close()
        for conn in conns:
            await conn.close()


def _causal_chain(rng: random.Random, length: int) -> tuple[list[bytes], list[str]]:
    """Updates by three clients where each one structurally depends on the one before (it
    inserts right next to the previous insertion), and the text after each prefix."""
    writers = [CrdtDocument(client_id=n + 1) for n in range(3)]
    reference = CrdtDocument(client_id=99)
    updates: list[bytes] = []
    texts = [""]
    pos, size = 0, 0
    for i in range(length):
        writer = rng.choice(writers)
        writer.apply_update(reference.diff(writer.state_vector()))
        piece = rng.choice(["a", "é", "😀", "中文", "x̃"]) + str(i)
        at = pos + size if i and rng.random() < 0.5 else pos  # after it, or before it
        updates.append(writer.insert(at, piece))
        pos, size = at, len(piece)
        reference.apply_update(updates[-1])
        texts.append(reference.text)
    return updates, texts


def test_crdt_updates_applied_out_of_order_show_only_causal_prefixes():
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    updates, texts = _causal_chain(rng, 14)
    for _ in range(30):
        order = list(range(len(updates)))
        rng.shuffle(order)
        engine = CRDTEngine.load()
        applied: set[int] = set()
        previous = causal.decode(causal.crdt_token(engine.token))
        for index in order:
            engine.apply(updates[index], "relay")
            applied.add(index)
            prefix = 0
            while prefix in applied:
                prefix += 1
            # Visible: exactly the longest prefix whose every predecessor arrived.
            assert engine.text == texts[prefix], (seed, order)
            token = causal.decode(causal.crdt_token(engine.token))
            assert causal.covers(token, previous)  # tokens only grow
            previous = token
        assert engine.text == texts[-1]


# ---- relay lag metric -------------------------------------------------------------------------


async def test_metrics_report_relay_lag_per_document_and_origin(redis_server: RedisProcess):
    async with replica(redis_server, "fast") as fast, replica(redis_server, "slow") as slow:
        reader = await CRDTClient.connect(slow.url + "/crdt", "notes/lag")
        writer = await CRDTClient.connect(fast.url + "/crdt", "notes/lag")
        writer.insert(0, "x")
        await reader.wait_for(lambda t: t == "x")
        status, _, body = await asyncio.to_thread(_get_text, slow, "/metrics")
        assert status == 200
        assert 'weft_relay_lag_seconds{doc="notes/lag",origin="fast"} ' in body
        assert 'weft_relay_lag_by_origin_seconds_count{origin="fast"} 1' in body
        await reader.close()
        await writer.close()
        await eventually(lambda: slow.rooms.get("notes/lag") is None)
        assert ("notes/lag", "fast") not in slow.metrics.relay_lag.last  # closed: series gone


def _get_text(server: WeftServer, path: str) -> tuple[int, dict, str]:
    url = server.url.replace("ws://", "http://") + path
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, dict(response.headers), response.read().decode()
