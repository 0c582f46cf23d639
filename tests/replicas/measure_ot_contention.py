"""OT commits under contention: one client per replica, each submits its next op as soon as the
previous one is acknowledged, all on one document.

Run: ``.venv/bin/python -m tests.replicas.measure_ot_contention [replicas] [ops_per_client]
[--mode sequencer|home]`` (needs ``redis-server``; starts its own on a free port in a temporary
directory).  Prints the commit rate and, per op, the conflict retries (sequencer: Redis
refused the compare-and-set) or the forwards (home: submits sent to the document's home
replica, plus resends).  Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from server.client import OTConnection
from server.client.ot_client import OTDoc
from server.store.redis import RedisStore
from tests.replicas.conftest import RedisProcess, eventually, replica


async def _writer(doc: OTDoc, i: int, ops: int) -> None:
    for n in range(ops):
        doc.insert(0, f"{i}.{n} ")
        await doc.synced(timeout=30)


async def main(replicas: int, ops: int, mode: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisProcess(Path(tmp))
        await redis.start()
        try:
            async with AsyncExitStack() as stack:
                servers = [await stack.enter_async_context(replica(redis, f"r{i}",
                                                                   ot_ordering=mode))
                           for i in range(replicas)]
                conns = [await OTConnection.connect(s.url + "/ot") for s in servers]
                docs = [await conns[0].open("bench", "contended", create_with="")]
                if mode == "home":  # r0 opened it first: it is the home
                    homes = servers[0].homes
                    assert homes is not None
                    await eventually(lambda: homes.is_home("bench/contended"))
                docs += [await c.open("bench", "contended") for c in conns[1:]]
                for doc in docs:
                    await doc.wait_for(lambda t: t == "")
                stores = [s.store for s in servers if isinstance(s.store, RedisStore)]
                commits0 = sum(st.ot_commits for st in stores)
                started = time.perf_counter()
                await asyncio.gather(*(_writer(d, i, ops) for i, d in enumerate(docs)))
                elapsed = time.perf_counter() - started
                commits = sum(st.ot_commits for st in stores) - commits0
                conflicts = sum(st.ot_conflicts for st in stores)
                forwards = sum(s.homes.counts["forwarded"] for s in servers if s.homes)
                resent = sum(s.homes.counts["resent"] for s in servers if s.homes)
                for c in conns:
                    await c.close()
        finally:
            await redis.stop()
    print(f"{mode}: {replicas} replicas x {ops} ops on one OT doc (appendfsync always): "
          f"{commits} commits in {elapsed:.2f} s = {commits / elapsed:.0f} commits/s, "
          f"{conflicts / max(1, commits):.2f} retries/op, "
          f"{forwards / max(1, commits):.2f} forwards/op ({resent} resent)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("replicas", type=int, nargs="?", default=3)
    parser.add_argument("ops", type=int, nargs="?", default=300, help="ops per client")
    parser.add_argument("--mode", choices=["sequencer", "home"], default="sequencer")
    args = parser.parse_args()
    asyncio.run(main(args.replicas, args.ops, args.mode))
