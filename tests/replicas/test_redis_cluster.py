"""Replicas on a real Redis Cluster (three primaries on loopback), named by ``redis+cluster://``.

Every document keeps its keys in one slot (``weft:{doc}:…``), so the store's scripts and
transactions run unchanged; what a cluster changes is the readers' ``XREAD`` over many
documents, which the cluster refuses across slots and :mod:`server.relay.streams` splits per
slot.  The documents used here are picked so their slots lie on different primaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from orjson import loads
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ResponseError

from server.app import WeftServer
from server.cli import build_parser, config_from_args
from server.client import CRDTClient, OTConnection
from server.errors import StorageError
from server.relay.redis import RedisRelay
from server.relay.streams import DirectReads, SlotReads
from server.store.cluster import seed_nodes
from server.store.redis import RedisStore, keys, meta_key
from tests.replicas.conftest import eventually
from tests.server.conftest import make_config

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
requires_cluster = pytest.mark.skipif(REDIS_SERVER is None or REDIS_CLI is None,
                                      reason="redis-server / redis-cli are not installed")


def _free_cluster_port(rng: random.Random) -> int:
    """A port free on 127.0.0.1 whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = rng.randrange(20000, 45000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    assert REDIS_CLI is not None
    done = subprocess.run([REDIS_CLI, "-p", str(port), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    return done.stdout


class Cluster:
    """Cluster-enabled ``redis-server`` processes: ``primaries`` with the slots split evenly,
    each with ``replicas`` replicas (three primaries and none by default)."""

    def __init__(self, directory: Path, primaries: int = 3, replicas: int = 0,
                 node_timeout_ms: int = 5000) -> None:
        self.directory = directory
        self.primaries, self.replicas, self.node_timeout_ms = primaries, replicas, node_timeout_ms
        self.ports = self._pick_ports()
        self.processes: list[subprocess.Popen[bytes]] = []

    def _pick_ports(self) -> list[int]:
        rng = random.Random()
        ports: list[int] = []
        while len(ports) < self.primaries * (1 + self.replicas):
            port = _free_cluster_port(rng)
            if port not in ports:
                ports.append(port)
        return ports

    @property
    def url(self) -> str:
        """Every node as a seed: a client started after one died still finds the others."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self, timeout: float = 30.0, attempts: int = 3) -> None:
        """Start and join the nodes; on new ports if one dies at once (another test took its
        port between our check and its bind)."""
        for attempt in range(attempts):
            try:
                self._start(timeout)
                return
            except RuntimeError:
                self.stop()
                if attempt == attempts - 1:
                    raise
                self.ports = self._pick_ports()

    def _start(self, timeout: float) -> None:
        assert REDIS_SERVER is not None
        for port in self.ports:
            home = self.directory / str(port)  # a directory each: the AOF's name is fixed
            home.mkdir(exist_ok=True)
            self.processes.append(subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                 "--cluster-node-timeout", str(self.node_timeout_ms), "--appendonly", "yes",
                 "--appendfsync", "always", "--save", "",
                 "--dir", str(home), "--protected-mode", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while "PONG" not in _cli(port, "ping"):
                self._check(deadline, f"node {port} did not start")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        _cli(self.ports[0], "--cluster", "create", *nodes, "--cluster-replicas",
             str(self.replicas), "--cluster-yes", timeout=timeout)
        for port in self.ports:
            while "cluster_state:ok" not in _cli(port, "cluster", "info"):
                self._check(deadline, f"node {port} did not reach cluster_state:ok")
            while "master_link_status:down" in _cli(port, "info", "replication"):
                self._check(deadline, f"replica {port} did not sync with its primary")

    def _check(self, deadline: float, message: str) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.05)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.wait(timeout=10)
        self.processes.clear()

    def slot(self, doc: str) -> int:
        """``doc``'s slot, as the cluster computes it (``CLUSTER KEYSLOT``)."""
        return int(_cli(self.ports[0], "cluster", "keyslot", keys(doc)[1]))

    def owner(self, doc: str) -> int:
        """The port of the primary holding ``doc``'s keys."""
        slot = self.slot(doc)
        for line in _cli(self.ports[0], "cluster", "nodes").splitlines():
            fields = line.split()
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            for span in fields[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return port
        raise LookupError(f"no node holds slot {slot}")

    def spread(self, prefix: str) -> list[str]:
        """One document name per primary: ``prefix``-n names whose slots are on each node."""
        found: dict[int, str] = {}
        for n in range(200):
            doc = f"{prefix}-{n}"
            found.setdefault(self.owner(doc), doc)
            if len(found) == self.primaries:
                return [found[port] for port in self.ports if port in found]
        raise LookupError("could not place a document on every node")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server / redis-cli are not installed")
    running = Cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


def cluster_replica(cluster: Cluster, name: str, **overrides: object) -> WeftServer:
    config = make_config(None, redis_url=cluster.url, replica_id=name, **overrides)
    return WeftServer(config)


@contextlib.asynccontextmanager
async def replicas(cluster: Cluster, *names: str, **overrides: object
                   ) -> AsyncIterator[list[WeftServer]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(cluster_replica(cluster, n, **overrides))
               for n in names]


async def _ot_versions(cluster: Cluster, doc: str) -> list[int]:
    store = RedisStore(cluster.url, "probe")
    await store.open()
    try:
        entries = await store.redis.xrange(keys(doc)[1])
    finally:
        await store.close()
    return [loads(f[b"p"])["v"] for _, f in entries if b"p" in f]


# ---- the URL ---------------------------------------------------------------------------------

def test_a_cluster_url_names_its_seed_nodes():
    first, others = seed_nodes("redis+cluster://user:pw@10.0.0.1:7000,10.0.0.2:7001/0?x=1")
    assert first == "redis://user:pw@10.0.0.1:7000?x=1"
    assert others == [("10.0.0.2", 7001)]
    assert seed_nodes("rediss+cluster://h:7000")[0] == "rediss://h:7000"


def test_a_cluster_url_with_a_database_other_than_0_is_refused():
    with pytest.raises(ValueError, match="only database 0"):
        seed_nodes("redis+cluster://127.0.0.1:7000/3")


def test_a_cluster_url_on_the_command_line_selects_cluster_clients_and_split_reads():
    args = build_parser().parse_args(
        ["serve", "--redis", "redis+cluster://127.0.0.1:1,127.0.0.1:2", "--replica-id", "c"])
    server = WeftServer(config_from_args(args))
    assert isinstance(server.store, RedisStore)
    assert isinstance(server.store.redis, RedisCluster)
    assert isinstance(server.relay, RedisRelay) and isinstance(server.relay.reads, SlotReads)


def test_a_plain_redis_url_keeps_the_single_xread():
    server = WeftServer(config_from_args(build_parser().parse_args(
        ["serve", "--redis", "redis://127.0.0.1:1/0"])))
    assert isinstance(server.relay, RedisRelay) and isinstance(server.relay.reads, DirectReads)


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_cluster_with_no_reachable_seed_is_a_storage_error_not_a_crash():
    store = RedisStore(f"redis+cluster://127.0.0.1:{_dead_port()}", "nobody")
    store.redis.retries = 0  # type: ignore[union-attr]  # (a few seconds of backoff otherwise)
    with pytest.raises(StorageError, match="cannot reach Redis"):
        await store.open()
    await store.close()


# ---- the cluster -----------------------------------------------------------------------------

@requires_cluster
async def test_a_replica_starts_while_its_first_seed_node_is_down(cluster: Cluster):
    url = f"redis+cluster://127.0.0.1:{_dead_port()},127.0.0.1:{cluster.ports[1]}"
    store = RedisStore(url, "seeds")
    await store.open()
    try:
        await store.append("notes/seeds", "crdt", 1, [b"x"])
        assert (await store.load("notes/seeds")) is not None
        await store.delete("notes/seeds")
    finally:
        await store.close()


@requires_cluster
async def test_the_cluster_refuses_one_xread_across_slots_which_is_why_reads_are_split(
    cluster: Cluster,
):
    a = "notes/crossslot-0"
    b = next(d for d in (f"notes/crossslot-{n}" for n in range(1, 200))
             if cluster.owner(d) == cluster.owner(a) and cluster.slot(d) != cluster.slot(a))
    probe = Redis(port=cluster.owner(a))  # the node holding both documents
    try:
        with pytest.raises(ResponseError, match="don't hash to the same slot"):
            await probe.xread({keys(a)[1]: "0-0", keys(b)[1]: "0-0"}, block=10)
    finally:
        await probe.aclose()


@requires_cluster
async def test_slot_reads_pick_up_a_stream_added_to_a_slot_already_read_and_never_repeat(
    cluster: Cluster,
):
    doc = "notes/slotreads"
    log, meta = keys(doc)[1], meta_key(doc)  # one slot
    wake = "weft:replica:slotreads:wake"
    store = RedisStore(cluster.url, "slotreads")
    await store.open()
    reads = SlotReads(store.redis)  # type: ignore[arg-type]
    try:
        first = asyncio.ensure_future(reads.xread({wake: "0-0", log: "0-0"}, 10, 30_000))
        await asyncio.sleep(0.2)
        woke = await store.redis.xadd(wake, {"w": "1"})
        assert [name for name, _ in await asyncio.wait_for(first, 10)] == [wake]
        # The read of the log alone is still blocked; now the meta stream joins its slot.
        second = asyncio.ensure_future(
            reads.xread({wake: woke, log: "0-0", meta: "0-0"}, 10, 30_000))
        await asyncio.sleep(0.2)
        await store.redis.xadd(meta, {"o": "x", "p": b"m"})
        got = await asyncio.wait_for(second, 10)  # not after the 30 s block
        assert [name for name, _ in got] == [meta]
        meta_id = got[0][1][-1][0]
        # Both reads of the log (old key set and new) see this entry; it is handed over once.
        entry = await store.redis.xadd(log, {"o": "x", "p": b"l"})
        seen: list[bytes] = []
        position = "0-0"
        for _ in range(3):
            result = await reads.xread({wake: woke, log: position, meta: meta_id}, 10, 300)
            for name, entries in result:
                assert name == log
                seen += [e[0] for e in entries]
                position = entries[-1][0].decode()
        assert seen == [entry]
    finally:
        await reads.aclose()
        await store.redis.delete(wake)
        await store.delete(doc)
        await store.close()


@requires_cluster
async def test_crdt_edits_through_three_replicas_converge_on_documents_on_every_node(
    cluster: Cluster,
):
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    docs = cluster.spread("notes/crdt")
    assert len({cluster.owner(d) for d in docs}) == 3
    async with replicas(cluster, "c1", "c2", "c3") as servers:
        assert all(isinstance(s.relay, RedisRelay) and isinstance(s.relay.reads, SlotReads)
                   for s in servers)
        clients = {(s.config.replica_id, d): await CRDTClient.connect(s.url + "/crdt", d)
                   for s in servers for d in docs}
        for round_ in range(10):
            for (name, _), client in clients.items():  # every replica edits every document
                client.insert(rng.randint(0, len(client.text)), f"{name}:{round_}é😀 ")
        for doc in docs:
            mine = [c for (_, d), c in clients.items() if d == doc]
            await mine[0].wait_for(lambda t: t.count("😀") == 30, timeout=20)
            final = mine[0].text
            for client in mine:
                await client.wait_for(lambda t, f=final: t == f, timeout=20)
            for server in servers:
                room = server.rooms.get(doc)
                await eventually(lambda r=room, f=final: r.engine.text == f)
        for client in clients.values():
            await client.close()


@requires_cluster
async def test_the_ot_sequencer_commits_in_version_order_on_every_node(cluster: Cluster):
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    docs = cluster.spread("ot")
    rounds = 10
    async with replicas(cluster, "o1", "o2", "o3") as servers:
        conns = [await OTConnection.connect(s.url + "/ot") for s in servers]
        opened = {(i, d): await conn.open("notes", d, create_with="start ")
                  for i, conn in enumerate(conns) for d in docs}
        for doc in opened.values():
            await doc.wait_for(lambda t: t is not None)
        for round_ in range(rounds):
            for (i, _), doc in opened.items():
                text = doc.text or ""
                gaps = [0, *(j + 1 for j, ch in enumerate(text) if ch == " ")]
                doc.insert(rng.choice(gaps), f"{i}:{round_}é😀 ")
            await asyncio.gather(*(doc.synced(timeout=20) for doc in opened.values()))
        total = len(servers) * rounds
        for name in docs:
            mine = [doc for (_, d), doc in opened.items() if d == name]
            await mine[0].wait_for(lambda t: t is not None and t.count("😀") == total, timeout=20)
            final = mine[0].text
            for doc in mine:
                await doc.wait_for(lambda t, f=final: t == f, timeout=20)
            assert await _ot_versions(cluster, f"notes/{name}") == list(range(total + 1))
            rooms = [s.rooms.get(f"notes/{name}") for s in servers]
            await eventually(lambda rs=rooms: {r.engine.version for r in rs} == {total + 1})
        for conn in conns:
            await conn.close()


@requires_cluster
async def test_a_replica_opening_a_document_later_loads_snapshot_and_log(cluster: Cluster):
    doc = cluster.spread("notes/later")[1]
    async with replicas(cluster, "early", compact_every=1000, history_keep_versions=0) as [early]:
        writer = await CRDTClient.connect(early.url + "/crdt", doc)
        for i in range(23):
            writer.insert(len(writer.text), f"{i} ")
        expected = "".join(f"{i} " for i in range(23))
        room = early.rooms.get(doc)
        await eventually(lambda: room.engine.text == expected)
        await room.flush()
        store = early.store
        assert isinstance(store, RedisStore)
        # The snapshot covers what the relay has read (its position): wait until that is all.
        last = (await store.redis.xrevrange(keys(doc)[1], count=1))[0][0].decode()
        await eventually(lambda: store.positions.get(doc) == last)
        await room.flush(compact=True)
        assert await store.snapshot(doc) is not None  # compacted into a snapshot
        assert await store.redis.xlen(keys(doc)[1]) < 23  # and the log trimmed
        writer.insert(0, ">")  # a record after the snapshot
        expected = ">" + expected
        async with replicas(cluster, "late") as [late]:
            reader = await CRDTClient.connect(late.url + "/crdt", doc)
            await reader.wait_for(lambda t: t == expected, timeout=20)
            writer.insert(0, "!")  # and the late replica follows from there
            await reader.wait_for(lambda t: t == "!" + expected, timeout=20)
            await reader.close()
        await writer.close()


@requires_cluster
async def test_home_mode_forwards_to_homes_on_every_node(cluster: Cluster):
    docs = cluster.spread("home")
    async with replicas(cluster, "h1", "h2", ot_ordering="home") as [one, two]:
        first = await OTConnection.connect(one.url + "/ot")
        second = await OTConnection.connect(two.url + "/ot")
        for name in docs:  # h1 opens first: it becomes every document's home
            doc = await first.open("notes", name, create_with="")
            await doc.wait_for(lambda t: t == "")
            await eventually(lambda n=name: one.homes is not None
                             and one.homes.is_home(f"notes/{n}"))
        remote = [await second.open("notes", name) for name in docs]
        for doc in remote:
            await doc.wait_for(lambda t: t == "")
        for n in range(5):
            for doc in remote:
                doc.insert(0, f"{n}😀 ")
            await asyncio.gather(*(doc.synced(timeout=20) for doc in remote))
        for name, doc in zip(docs, remote, strict=True):
            assert doc.text is not None and doc.text.count("😀") == 5
            assert await _ot_versions(cluster, f"notes/{name}") == list(range(6))
        assert two.homes is not None and two.homes.counts["forwarded"] >= 15
        assert isinstance(two.store, RedisStore) and two.store.ot_commits == 0
        await first.close()
        await second.close()


@requires_cluster
async def test_metadata_written_on_one_replica_reaches_listeners_on_another(cluster: Cluster):
    docs = cluster.spread("notes/meta")
    async with replicas(cluster, "m1", "m2") as [one, two]:
        seen: dict[str, dict] = {}
        stops = [await one.meta.listen(doc, lambda d, view, changed: seen.__setitem__(d, view))
                 for doc in docs]
        for doc in docs:
            await two.meta.write(doc, {"title": f"t-{doc}"})
        await eventually(lambda: all(seen.get(d, {}).get("meta") == {"title": f"t-{d}"}
                                     for d in docs))
        assert meta_key(docs[0]) in one.relay.watched  # type: ignore[attr-defined]
        for stop in stops:
            stop()


@requires_cluster
@pytest.mark.xfail(strict=False, reason=(
    "known flaky since 2026-11-23 (failed 5 of 17 runs, also with that day's CRDT changes "
    "reverted): after the failover an OT op relayed through the promoted primary sometimes "
    "never reaches the other replica's subscriber within 30 s; the CRDT half always passes."))
async def test_a_primary_failover_loses_no_acknowledged_edit_and_replicas_resume(
    tmp_path: Path,
):
    cluster = Cluster(tmp_path, primaries=3, replicas=1, node_timeout_ms=1000)
    cluster.start()
    try:
        crdt_doc = "notes/failover"
        victim = cluster.owner(crdt_doc)
        ot_name = next(n for n in (f"failover-{i}" for i in range(200))
                       if cluster.owner(f"notes/{n}") == victim)
        async with replicas(cluster, "f1", "f2") as [one, two]:
            a = await CRDTClient.connect(one.url + "/crdt", crdt_doc)
            b = await CRDTClient.connect(two.url + "/crdt", crdt_doc)
            first = await OTConnection.connect(one.url + "/ot")
            second = await OTConnection.connect(two.url + "/ot")
            ot_a = await first.open("notes", ot_name, create_with="x")
            ot_b = await second.open("notes", ot_name)
            a.insert(0, "before ")
            await b.wait_for(lambda t: t == "before ")
            await ot_b.wait_for(lambda t: t == "x")
            await asyncio.sleep(0.5)  # replication is asynchronous: let the replica catch up
            process = cluster.processes[cluster.ports.index(victim)]
            process.kill()
            await asyncio.to_thread(process.wait, 10)
            # Written while the primary is dead and before its replica is promoted: the
            # stores retry (with backoff) until the new primary takes the write.
            a.insert(0, "during ")
            ot_b.insert(0, "y")
            await b.wait_for(lambda t: t == "during before ", timeout=30)
            await ot_b.synced(timeout=30)
            await ot_a.wait_for(lambda t: t == "yx", timeout=30)
            assert await _ot_versions(cluster, f"notes/{ot_name}") == [0, 1]
            for closing in (a, b, first, second):
                await closing.close()
    finally:
        cluster.stop()
