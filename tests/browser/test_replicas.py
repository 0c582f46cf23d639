"""Two browsers on two different replicas (relayed through Redis) converge, for both engines.

Each replica is a real `python -m server serve --redis ... --replica-id ...` subprocess with
its own data directory, sharing one throwaway `redis-server` on a free loopback port. Alice's
page talks only to replica 1 and Bob's only to replica 2, so every character one sees from the
other crossed the Redis relay. Expected texts are exact: each user types at a fixed place.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.browser.conftest import (
    DIST,
    REPO,
    SERVER_START_TIMEOUT_S,
    WeftProcess,
    free_port,
)
from tests.browser.editor import Editor, wait_converged
from tests.replicas.conftest import REDIS_SERVER, RedisProcess

ENGINES = ["crdt", "ot"]


class ReplicaProcess(WeftProcess):
    """A Weft server subprocess in replica mode: Redis store and relay, a fixed replica id."""

    def __init__(self, port: int, data_dir: Path, log: Path, redis_url: str, replica_id: str):
        super().__init__(port, data_dir, log)
        self.redis_url, self.replica_id = redis_url, replica_id

    def start(self) -> None:
        command = [
            sys.executable, "-m", "server", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(self.data_dir),
            "--redis", self.redis_url, "--replica-id", self.replica_id,
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"replica {self.replica_id} exited with {self.proc.returncode}:\n"
                    f"{self.log.read_text()}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"replica {self.replica_id} not healthy after {SERVER_START_TIMEOUT_S}s:\n"
            f"{self.log.read_text()}"
        )


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
def replicas(tmp_path: Path, redis_url: str) -> Iterator[tuple[ReplicaProcess, ReplicaProcess]]:
    """Replicas r1 and r2 on separate ports and data directories, sharing one Redis."""
    if not (DIST / "index.html").is_file():
        pytest.fail("web_client/dist is not built: run `npm ci && npm run build` in web_client "
                    "(./scripts/test does it)")
    started: list[ReplicaProcess] = []
    try:
        for i in (1, 2):
            workdir = tmp_path / f"replica-{i}"
            workdir.mkdir()
            replica = ReplicaProcess(
                free_port(), workdir / "data", workdir / "server.log", redis_url, f"r{i}"
            )
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
    replicas: tuple[ReplicaProcess, ReplicaProcess],
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
