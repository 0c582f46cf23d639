"""Cross-replica latency: a client on replica A inserts, a client on replica B sees it.

Run: ``.venv/bin/python -m tests.replicas.measure_latency [edits]`` (needs ``redis-server``;
starts its own on a free port in a temporary directory).  Prints median and p99 in ms.  Not a
test: timings depend on the machine.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from server.client import CRDTClient
from tests.replicas.conftest import RedisProcess, replica


async def main(edits: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisProcess(Path(tmp))
        await redis.start()
        try:
            async with replica(redis, "A") as one, replica(redis, "B") as two:
                a = await CRDTClient.connect(one.url + "/crdt", "bench/latency")
                b = await CRDTClient.connect(two.url + "/crdt", "bench/latency")
                samples = []
                for i in range(edits):
                    started = time.perf_counter()
                    a.insert(0, "x")
                    await b.wait_for(lambda t, n=i + 1: len(t) == n)
                    samples.append((time.perf_counter() - started) * 1000)
                await a.close()
                await b.close()
        finally:
            await redis.stop()
    samples.sort()
    print(f"{edits} edits, client on A -> client on B via Redis (appendfsync always): "
          f"median {statistics.median(samples):.2f} ms, "
          f"p99 {samples[int(len(samples) * 0.99) - 1]:.2f} ms, max {samples[-1]:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
