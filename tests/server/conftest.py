"""Fixtures for the server tests: a real server on a free 127.0.0.1 port, npm clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from server.app import WeftServer
from server.config import Config
from server.limits import Limits
from tests.server.node_driver import NODE, NodeClient

requires_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def make_config(tmp_path: Path | None = None, **overrides) -> Config:
    settings = {"port": 0, "data_dir": tmp_path, "web_root": None, "room_idle_seconds": 0.5,
                "ping_interval": None, "limits": Limits(max_ops_per_second=0), **overrides}
    return Config(**settings)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[WeftServer]:
    async with WeftServer(make_config(tmp_path)) as running:
        yield running


@pytest.fixture
async def npm() -> AsyncIterator[Callable[..., Awaitable[NodeClient]]]:
    """Start npm client scripts; every process is stopped at the end of the test."""
    started: list[NodeClient] = []

    async def start(script: str, *args: str) -> NodeClient:
        client = await NodeClient.start(script, *args)
        started.append(client)
        return client

    yield start
    for client in started:
        await client.close()
