"""OT commits under contention: one client per replica, each submits its next op as soon as the
previous one is acknowledged, all on one document; Redis sequences them.

Run: ``.venv/bin/python -m tests.replicas.measure_ot_contention [replicas] [ops_per_client]``
(needs ``redis-server``; starts its own on a free port in a temporary directory).  Prints the
commit rate and the conflict retries per op.  Not a test: timings depend on the machine.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from server.client import OTConnection
from server.client.ot_client import OTDoc
from server.store.redis import RedisStore
from tests.replicas.conftest import RedisProcess, replica


async def _writer(doc: OTDoc, i: int, ops: int) -> None:
    for n in range(ops):
        doc.insert(0, f"{i}.{n} ")
        await doc.synced(timeout=30)


async def main(replicas: int, ops: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisProcess(Path(tmp))
        await redis.start()
        try:
            async with AsyncExitStack() as stack:
                servers = [await stack.enter_async_context(replica(redis, f"r{i}"))
                           for i in range(replicas)]
                conns = [await OTConnection.connect(s.url + "/ot") for s in servers]
                docs = [await c.open("bench", "contended", create_with="") for c in conns]
                started = time.perf_counter()
                await asyncio.gather(*(_writer(d, i, ops) for i, d in enumerate(docs)))
                elapsed = time.perf_counter() - started
                stores = [s.store for s in servers if isinstance(s.store, RedisStore)]
                commits = sum(st.ot_commits for st in stores) - 1  # minus the create
                conflicts = sum(st.ot_conflicts for st in stores)
                for c in conns:
                    await c.close()
        finally:
            await redis.stop()
    print(f"{replicas} replicas x {ops} ops on one OT doc (appendfsync always): "
          f"{commits} commits in {elapsed:.2f} s = {commits / elapsed:.0f} commits/s, "
          f"{conflicts} conflicts = {conflicts / max(1, commits):.2f} retries/op")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args + [3, 300][len(args):])))
