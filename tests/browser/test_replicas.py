"""Two browsers on two different replicas (relayed through Redis) converge, for both engines.

Each replica is a real `python -m server serve --redis ... --replica-id ...` subprocess with
its own data directory, sharing one throwaway `redis-server` on a free loopback port. Alice's
page talks only to replica 1 and Bob's only to replica 2, so every character one sees from the
other crossed the Redis relay. Expected texts are exact: each user types at a fixed place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.browser.conftest import (
    DIST,
    WeftProcess,
    free_port,
)
from tests.browser.editor import Editor, wait_converged
from tests.replicas.conftest import REDIS_SERVER, RedisProcess

ENGINES = ["crdt", "ot"]


def replica_process(workdir: Path, redis_url: str, replica_id: str) -> WeftProcess:
    """A Weft server subprocess in replica mode: Redis store and relay, a fixed replica id."""
    return WeftProcess(free_port(), workdir / "data", workdir / "server.log",
                       ("--redis", redis_url, "--replica-id", replica_id))


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh redis-server (never port 6379) for this test alone, killed afterwards."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    directory = tmp_path / "redis"
    directory.mkdir()
    redis = RedisProcess(directory)
    await redis.start()
    try:
        yield redis.url
    finally:
        await redis.stop()


@pytest.fixture
def replicas(tmp_path: Path, redis_url: str) -> Iterator[tuple[WeftProcess, WeftProcess]]:
    """Replicas r1 and r2 on separate ports and data directories, sharing one Redis."""
    if not (DIST / "index.html").is_file():
        pytest.fail("web_client/dist is not built: run `npm ci && npm run build` in web_client "
                    "(./scripts/test does it)")
    started: list[WeftProcess] = []
    try:
        for i in (1, 2):
            workdir = tmp_path / f"replica-{i}"
            workdir.mkdir()
            replica = replica_process(workdir, redis_url, f"r{i}")
            replica.start()
            started.append(replica)
        yield started[0], started[1]
    finally:
        for replica in started:
            replica.stop()


def no_page_errors(*editors: Editor) -> None:
    for editor in editors:
        assert editor.page_errors == [], f"{editor.name}'s page raised: {editor.page_errors}"


@pytest.mark.parametrize("engine", ENGINES)
async def test_browsers_on_two_replicas_converge_on_concurrent_typing(
    browser: Browser,
    replicas: tuple[WeftProcess, WeftProcess],
    doc_name: str,
    engine: str,
    artifacts: Path,
) -> None:
    first, second = replicas
    assert first.url != second.url
    alice = await Editor.open(browser, first.url, doc_name, engine, "Alice")
    bob = await Editor.open(browser, second.url, doc_name, engine, "Bob")
    await alice.type_at_start("|")
    assert await wait_converged(alice, bob) == "|"

    await asyncio.gather(
        alice.type_at_start("Alice 👋🏽 on r1. "),
        bob.type_at_end(" Bob 🎉 on r2!"),
    )

    expected = "Alice 👋🏽 on r1. | Bob 🎉 on r2!"
    try:
        assert await wait_converged(alice, bob) == expected
    finally:
        await alice.page.screenshot(path=str(artifacts / f"{engine}-replica-r1.png"))
        await bob.page.screenshot(path=str(artifacts / f"{engine}-replica-r2.png"))
    no_page_errors(alice, bob)
    await alice.close()
    await bob.close()
