"""No replication loops: each change reaches each other replica, and each client, exactly once.

The Redis Stream of a document is both its log and its relay; every entry names its origin
replica.  Counting at three levels proves nothing echoes: the log holds one record per edit
(nobody re-appends what it heard), every replica's relay hands each *other* replica's record to
its room once and skips its own, and every client receives each other client's edit once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from crdt.sync import FrameKind, read_frame
from server.app import WeftServer
from server.client import CRDTClient, OTConnection
from server.relay.redis import RedisRelay
from tests.replicas.conftest import RedisProcess, eventually, replica
from tests.replicas.probes import engine_of, log_origins, ot_version

EDITS_PER_CLIENT = 12


class CountingCRDTClient(CRDTClient):
    """Counts the update frames it receives (each one is another client's edit)."""

    updates_received = 0

    def _handle(self, message: bytes) -> None:
        if read_frame(message).kind is FrameKind.SYNC_UPDATE:
            self.updates_received += 1
        super()._handle(message)


async def _check_relays(servers: Sequence[WeftServer], doc: str, origins: Counter[str]) -> None:
    total = sum(origins.values())
    for server in servers:
        relay = server.relay
        assert isinstance(relay, RedisRelay)
        def counted(r: RedisRelay = relay) -> bool:
            return r.delivered[doc] + r.skipped_own[doc] == total

        try:
            await eventually(counted)
        except TimeoutError:
            raise AssertionError(f"{relay.replica_id}: delivered {relay.delivered[doc]} + own "
                                 f"{relay.skipped_own[doc]} != {total} records") from None
        own = origins[relay.replica_id]
        assert relay.delivered[doc] == total - own, relay.replica_id
        assert relay.skipped_own[doc] == own, relay.replica_id


async def _servers(redis: RedisProcess, prefix: str) -> list[WeftServer]:
    servers = [replica(redis, f"{prefix}{i}") for i in range(3)]
    for server in servers:
        await server.start()
    return servers


async def test_each_crdt_update_is_delivered_once_to_each_other_replica_and_client(
    redis_server: RedisProcess,
) -> None:
    doc = "loops/crdt"
    servers = await _servers(redis_server, "y")
    try:
        clients = [CountingCRDTClient(s.url + "/crdt", doc) for s in servers]
        for client in clients:
            await client.open()
        for i in range(EDITS_PER_CLIENT):
            for n, client in enumerate(clients):
                client.insert(0, f"{n}.{i}é😀 ")
        expected_len = len(clients) * EDITS_PER_CLIENT
        for client in clients:
            await client.wait_for(lambda t: t.count("😀") == expected_len)
        final = clients[0].text
        for client in clients:
            await client.wait_for(lambda t: t == final)

        origins = await log_origins(redis_server, doc)
        # One record per edit, appended by the replica its author is connected to.
        assert origins == {s.relay.replica_id: EDITS_PER_CLIENT for s in servers}
        await _check_relays(servers, doc, origins)
        for client in clients:  # every other client's edit, once; never its own
            assert client.updates_received == (len(clients) - 1) * EDITS_PER_CLIENT
        for server in servers:
            assert engine_of(server, doc).text == final
        for client in clients:
            await client.close()
    finally:
        for server in servers:
            await server.stop()


async def test_each_ot_op_is_delivered_once_to_each_other_replica_and_client(
    redis_server: RedisProcess,
) -> None:
    collection, doc_id = "loops", "ot"
    doc = f"{collection}/{doc_id}"
    servers = await _servers(redis_server, "s")
    try:
        conns = [await OTConnection.connect(s.url + "/ot") for s in servers]
        # Every replica opens the document before it exists, so each one's relay counts from
        # the very first record (a replica opening it later would load the earlier ones).
        docs = [await conn.open(collection, doc_id) for conn in conns]
        await conns[0].open(collection, doc_id, create_with="")
        for ot in docs:
            await ot.wait_for(lambda t: t is not None)
        remote_ops = [0] * len(docs)
        for n, ot in enumerate(docs):
            def count(op: object, local: bool, n: int = n) -> None:
                if op is not None and not local:
                    remote_ops[n] += 1
            ot.listeners.append(count)
        for i in range(EDITS_PER_CLIENT):
            for n, ot in enumerate(docs):
                ot.insert(0, f"{n}.{i}é😀 ")
                await ot.synced()  # one op per edit (no client-side composing)
        total = len(docs) * EDITS_PER_CLIENT
        for ot in docs:
            await ot.wait_for(lambda t: t is not None and t.count("😀") == total)
        final = docs[0].text

        origins = await log_origins(redis_server, doc)
        assert sum(origins.values()) == total + 1  # the create, then one record per op
        assert origins - Counter({servers[0].relay.replica_id: 1}) == Counter(
            {s.relay.replica_id: EDITS_PER_CLIENT for s in servers})
        await _check_relays(servers, doc, origins)
        assert remote_ops == [(len(docs) - 1) * EDITS_PER_CLIENT] * len(docs)
        for server in servers:
            def caught_up(s: WeftServer = server) -> bool:
                return ot_version(s, doc) == total + 1

            await eventually(caught_up)
            assert engine_of(server, doc).text == final
        for conn in conns:
            await conn.close()
    finally:
        for server in servers:
            await server.stop()
