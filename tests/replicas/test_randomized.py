"""Randomized failure schedules across three replicas and one Redis, both engines.

Each run draws a schedule of ~40 steps: edits (inserts and deletes of whole tokens) by four
clients, clients going offline and coming back (to a random replica, typing meanwhile),
replicas stopping and starting again (in-process: a clean stop drops their clients; the
``kill -9`` crash is covered by ``test_chaos.py``) and Redis restarting.  Documents are
compacted every few records, so snapshots, trims and compaction markers happen all the time.
After every run all clients and replicas must show one text holding every surviving token
exactly once, and a replica loading from Redis alone must see the same.  The one exception is
OT's hard rollback: a client whose pending edits can no longer be transformed (the ops it
needs were compacted away) drops them, as ShareDB's client does — those unacknowledged edits
may be missing; acknowledged ones never are (:meth:`Typist.expect`).

Seeded: the master seed is printed, and so is each run's; set ``WEFT_RANDOMIZED_SEED`` to
replay a master seed.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import traceback

import pytest

from server.app import WeftServer
from server.store.redis import RedisStore
from tests.replicas.conftest import RedisProcess, replica
from tests.replicas.typists import Typist, converge, make_typist

RUNS = 8
STEPS = 40
TYPISTS = 4
SLOTS = 3
RUN_TIMEOUT = 45.0  # seconds per run, generous for a loaded 2-core machine
CONVERGE_TIMEOUT = 20.0  # shorter than RUN_TIMEOUT: its failure message says who is stuck
COMPACT_EVERY = 4  # tiny: snapshots, trims and compaction markers happen all the time


class Cluster:
    """Three replica slots, each running a :class:`WeftServer` or stopped."""

    def __init__(self, redis: RedisProcess, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.slots: list[WeftServer | None] = [None] * SLOTS
        self.restarts = 0

    async def start(self, slot: int) -> None:
        server = replica(self.redis, f"{self.prefix}{slot}", compact_every=COMPACT_EVERY)
        await server.start()
        self.slots[slot] = server

    async def stop(self, slot: int) -> None:
        server, self.slots[slot] = self.slots[slot], None
        if server is not None:
            await server.stop()
            self.restarts += 1

    def live(self) -> list[WeftServer]:
        return [s for s in self.slots if s is not None]

    async def close(self) -> None:
        for slot in range(SLOTS):
            await self.stop(slot)


async def _step(rng: random.Random, cluster: Cluster, typists: list[Typist],
                counts: dict[str, int], trace: list[str]) -> None:
    roll = rng.random()
    typist = rng.choice(typists)
    trace.append(f"roll {roll:.3f} {typist.name} connected={typist.connected} "
                 f"live={[s.config.replica_id for s in cluster.live()]}")
    if roll < 0.55:
        if rng.random() < 0.2 and typist.delete_token(rng) is not None:
            counts["delete"] += 1
        else:
            typist.type_token(rng)
            counts["insert"] += 1
    elif roll < 0.63:
        if typist.connected:
            await typist.disconnect()
            counts["disconnect"] += 1
    elif roll < 0.73:
        if not typist.connected:
            await typist.connect(rng.choice(cluster.live()).url)
            counts["reconnect"] += 1
    elif roll < 0.81:
        slot = rng.randrange(SLOTS)
        if cluster.slots[slot] is None:
            await cluster.start(slot)
            counts["replica start"] += 1
        elif len(cluster.live()) > 1:
            await cluster.stop(slot)
            counts["replica stop"] += 1
    elif roll < 0.85:
        await cluster.redis.stop()
        await asyncio.sleep(rng.random() * 0.3)
        await cluster.redis.start()
        counts["redis restart"] += 1
    else:
        await asyncio.sleep(rng.random() * 0.05)  # let messages flow (or not)


def _replica_states(cluster: Cluster, doc: str) -> list[str]:
    """What each live replica holds of ``doc``, for failure messages."""
    states = []
    for server in cluster.live():
        room = server.rooms.get(doc)
        store = server.store
        position = store.positions.get(doc) if isinstance(store, RedisStore) else None
        text = room.engine.text if room is not None and room.engine is not None else None
        states.append(f"{server.config.replica_id} url={server.url} room={room!r} "
                      f"position={position} text={text!r}")
    return states


async def _run(redis: RedisProcess, engine: str, seed: int, run: int,
               trace: list[str]) -> dict[str, int]:
    rng = random.Random(seed)
    cluster = Cluster(redis, f"{engine}{run}-")
    doc = f"random/{engine}-{run}"
    counts: dict[str, int] = dict.fromkeys(
        ["insert", "delete", "disconnect", "reconnect", "replica stop", "replica start",
         "redis restart", "ot rollbacks"], 0)
    typists: list[Typist] = []
    try:
        for slot in range(SLOTS):
            await cluster.start(slot)
        for i in range(TYPISTS):  # sequential: the first one creates an OT document
            typist = make_typist(engine, f"u{i}", doc)
            await typist.connect(rng.choice(cluster.live()).url)
            typists.append(typist)
        for _ in range(STEPS):
            await _step(rng, cluster, typists, counts, trace)
        for typist in typists:  # everyone back online, somewhere
            if not typist.connected:
                await typist.connect(rng.choice(cluster.live()).url)
        trace.append("converge")
        try:
            final = await converge(typists, timeout=CONVERGE_TIMEOUT,
                                   reconnect_to=lambda: rng.choice(cluster.live()).url)
            for server in cluster.live():
                deadline = time.monotonic() + 10
                while (text := await server.text(doc)) != final and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert text == final, f"replica {server.config.replica_id} has {text!r}"
        except AssertionError as exc:
            states = "\n".join(_replica_states(cluster, doc))
            raise AssertionError(f"{exc}\nreplicas:\n{states}") from None
        counts["ot rollbacks"] = sum(getattr(t, "rollbacks", 0) for t in typists)
        async with replica(redis, f"{engine}{run}-loader") as loader:
            assert await loader.text(doc) == final
        return counts
    finally:
        for typist in typists:
            await typist.disconnect()
        await cluster.close()


@pytest.mark.parametrize("engine", ["crdt", "ot"])
async def test_random_failure_schedules_converge_without_losing_edits(
    redis_server: RedisProcess, engine: str,
) -> None:
    master = int(os.environ.get("WEFT_RANDOMIZED_SEED") or random.randrange(1 << 30))
    print(f"{engine}: master seed {master} (WEFT_RANDOMIZED_SEED={master} replays)")
    seeds = random.Random(master).sample(range(1 << 30), RUNS)
    totals: dict[str, int] = {}
    started = time.monotonic()
    for run, seed in enumerate(seeds):
        trace: list[str] = []
        task = asyncio.get_running_loop().create_task(
            _run(redis_server, engine, seed, run, trace))
        done, _ = await asyncio.wait({task}, timeout=RUN_TIMEOUT)
        stuck = "" if done else "".join(traceback.format_stack(task.get_stack()[-1]))
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=20)
        if stuck or task.cancelled() or task.exception() is not None:
            steps = "\n".join(trace[-12:])
            raise AssertionError(
                f"{engine} run {run} (seed {seed}) failed after {run} passing runs: "
                f"{'stuck at ' + stuck if stuck else repr(task.exception())}\n"
                f"last steps:\n{steps}") from (None if stuck else task.exception())
        counts = task.result()
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        print(f"{engine} run {run} seed {seed} passed: {counts}")
    print(f"{engine}: {RUNS}/{RUNS} runs passed in {time.monotonic() - started:.1f}s; "
          f"totals {totals}")
