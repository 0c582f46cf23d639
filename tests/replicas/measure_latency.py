"""Cross-replica keystroke latency against single-replica latency, both engines, side by side.

A writer inserts one character; the time until a reader sees it is one sample.  Readers sit on
the writer's replica ("one replica") or on the other one ("split over two"); the four
(engine, placement) pairs are sampled in turn, so machine noise hits them alike.  Both replicas
use one Redis (AOF, ``appendfsync always``), so "one replica" pays the same durable write.

Run: ``.venv/bin/python -m tests.replicas.measure_latency [edits]`` (needs ``redis-server``;
starts its own on a free port in a temporary directory).  Prints p50/p99/max in ms and the
split/one ratio.  Not a test: timings depend on the machine.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from server.client import CRDTClient, OTConnection
from tests.replicas.conftest import RedisProcess, replica

Probe = Callable[[], Awaitable[float]]


async def _crdt_probe(writer_url: str, reader_url: str, doc: str) -> tuple[Probe, list]:
    a = await CRDTClient.connect(writer_url + "/crdt", doc)
    b = await CRDTClient.connect(reader_url + "/crdt", doc)
    count = [0]

    async def probe() -> float:
        count[0] += 1
        started = time.perf_counter()
        a.insert(0, "x")
        await b.wait_for(lambda t, n=count[0]: len(t) == n)
        return (time.perf_counter() - started) * 1000

    return probe, [a, b]


async def _ot_probe(writer_url: str, reader_url: str, doc: str) -> tuple[Probe, list]:
    ca = await OTConnection.connect(writer_url + "/ot")
    cb = await OTConnection.connect(reader_url + "/ot")
    collection, _, doc_id = doc.partition("/")
    a = await ca.open(collection, doc_id, create_with="")
    await a.wait_for(lambda t: t is not None)
    b = await cb.open(collection, doc_id)
    await b.wait_for(lambda t: t is not None)
    count = [0]

    async def probe() -> float:
        count[0] += 1
        started = time.perf_counter()
        a.insert(0, "x")
        await b.wait_for(lambda t, n=count[0]: t is not None and len(t) == n)
        return (time.perf_counter() - started) * 1000

    return probe, [ca, cb]


def _summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)],
            ordered[-1])


async def main(edits: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisProcess(Path(tmp))
        await redis.start()
        try:
            async with replica(redis, "A") as one, replica(redis, "B") as two:
                probes: dict[tuple[str, str], Probe] = {}
                clients: list = []
                for engine, make in (("crdt", _crdt_probe), ("ot", _ot_probe)):
                    for placement, reader in (("one replica", one), ("split over two", two)):
                        probe, opened = await make(one.url, reader.url,
                                                   f"bench/{engine}-{placement[0]}")
                        probes[(engine, placement)] = probe
                        clients += opened
                samples: dict[tuple[str, str], list[float]] = {key: [] for key in probes}
                for _ in range(edits):
                    for key, probe in probes.items():
                        samples[key].append(await probe())
                for client in clients:
                    await client.close()
        finally:
            await redis.stop()
    print(f"{edits} edits per cell, writer on replica A, Redis appendfsync always (ms):")
    for engine in ("crdt", "ot"):
        p50_one, p99_one, _ = _summary(samples[(engine, "one replica")])
        for placement in ("one replica", "split over two"):
            p50, p99, worst = _summary(samples[(engine, placement)])
            print(f"  {engine:4} {placement:15} p50 {p50:6.2f}  p99 {p99:6.2f}  max {worst:6.2f}"
                  f"  (p50 x{p50 / p50_one:.2f}, p99 x{p99 / p99_one:.2f} vs one replica)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
