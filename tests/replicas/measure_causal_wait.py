"""How long a read with a causal token waits on another replica (monotonic reads).

Run: ``.venv/bin/python -m tests.replicas.measure_causal_wait [rounds]`` (needs ``redis-server``;
starts its own on a free port in a temporary directory).  Each round edits through replica A,
takes the token A returned, and at once reads through replica B with ``after=token`` (the
embedding API's ``info``, which the REST API calls too): the time that read takes is the wait
for B's relay (CRDT) or log catch-up (OT).  Also measures a y-websocket client reconnecting to B
with the state vector it had on A.  Not a test: timings depend on the machine.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from websockets.asyncio.client import connect

from crdt.sync import FrameKind, read_frame, sync_step1_frame
from server import causal
from server.client import CRDTClient, OTConnection
from tests.replicas.conftest import RedisProcess, replica


def summary(name: str, samples: list[float], waited: int) -> str:
    samples.sort()
    return (f"{name}: {len(samples)} reads, {waited} had to wait; median "
            f"{statistics.median(samples):.2f} ms, p99 {samples[int(len(samples) * 0.99) - 1]:.2f}"
            f" ms, max {samples[-1]:.2f} ms")


async def timed(read: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await read()
    return (time.perf_counter() - started) * 1000


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisProcess(Path(tmp))
        await redis.start()
        try:
            async with replica(redis, "A") as one, replica(redis, "B") as two:
                # CRDT over the embedding/REST path: B waits for its relay.
                await one.edit("bench/crdt", insert="x", pos=0, engine="crdt")
                crdt: list[float] = []
                async with two.changes("bench/crdt"):
                    for _ in range(rounds):
                        token = (await one.edit("bench/crdt", insert="x", pos=0))["token"]
                        crdt.append(await timed(lambda t=token: two.info("bench/crdt", t)))
                print(summary("CRDT read on B after an edit on A", crdt,
                              two.metrics.causal_waits_total["rest", "waited"]))

                # OT: edits through ShareDB on A, reads on B (log catch-up when behind).
                conn = await OTConnection.connect(one.url + "/ot")
                doc = await conn.open("bench", "ot", create_with="")
                await doc.synced()
                ot: list[float] = []
                before = two.metrics.causal_waits_total["rest", "waited"]
                async with two.changes("bench/ot"):
                    for _ in range(rounds):
                        doc.insert(0, "x")
                        await doc.synced()
                        token = causal.ot_token(doc.version)
                        ot.append(await timed(lambda t=token: two.info("bench/ot", t)))
                await conn.close()
                print(summary("OT read on B after an op on A", ot,
                              two.metrics.causal_waits_total["rest", "waited"] - before))

                # y-websocket: a client that saw an edit on A reconnects to B.
                writer = await CRDTClient.connect(one.url + "/crdt", "bench/yjs")
                reader = await CRDTClient.connect(two.url + "/crdt", "bench/yjs")  # B has it open
                yjs: list[float] = []
                for _ in range(min(rounds, 100)):
                    writer.insert(0, "x")
                    vector = writer.doc.state_vector()
                    async with connect(f"{two.url}/crdt/bench/yjs") as ws:
                        started = time.perf_counter()
                        await ws.send(sync_step1_frame(vector))
                        while read_frame(await ws.recv()).kind is not FrameKind.SYNC_STEP2:
                            pass
                        yjs.append((time.perf_counter() - started) * 1000)
                await writer.close()
                await reader.close()
                print(summary("y-websocket step 1 -> step 2 on B right after an edit on A", yjs,
                              two.metrics.causal_waits_total["crdt", "waited"]))
        finally:
            await redis.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
