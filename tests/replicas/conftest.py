"""Fixtures for replica tests: a real ``redis-server`` on a free 127.0.0.1 port (never 6379).

Append-only file with ``appendfsync always`` in a temporary directory and no RDB snapshots, so
restarting the process on the same port and directory keeps every acknowledged write.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.app import WeftServer
from server.store.redis import RedisStore
from tests.server.conftest import make_config
from tests.server.conftest import npm as npm  # the npm-client fixture, shared

REDIS_SERVER = shutil.which("redis-server")
requires_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    assert port != 6379
    return port


class RedisProcess:
    """One redis-server process that a test may stop and start again (same port, same AOF)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 10.0) -> None:
        assert REDIS_SERVER is not None
        self.process = await asyncio.create_subprocess_exec(
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory),
            "--protected-mode", "no",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        client = Redis.from_url(self.url)
        try:
            while True:  # wait until it answers (and has loaded its AOF), bounded
                try:
                    if await client.ping():
                        return
                except RedisError:
                    pass
                if self.process.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server on port {self.port} did not start")
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Redis flushes its AOF and exits; killed if it takes too long."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisProcess(directory)
    await server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


def replica(redis: RedisProcess, name: str, **overrides: object) -> WeftServer:
    """A Weft replica (its own Redis connections) storing and relaying through ``redis``."""
    config = make_config(None, redis_url=redis.url, replica_id=name, **overrides)
    server = WeftServer(config)
    assert isinstance(server.store, RedisStore)
    return server


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds, checking every 10 ms; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
