"""Real npm `y-websocket` providers against the server's CRDT endpoint."""

from __future__ import annotations

import asyncio

import pytest

from tests.server.conftest import requires_node

pytestmark = [pytest.mark.npm, requires_node]


async def provider(npm, server, doc, *extra):
    client = await npm("yws_client.js", server.url + "/crdt", doc, *extra)
    await client.call("wait_synced")
    return client


async def converged(server, doc, *clients, timeout=10.0):
    """Wait until every client shows the server's text; return it."""
    async with asyncio.timeout(timeout):
        while True:
            text = await server.text(doc)
            texts = [(await c.call("text"))["text"] for c in clients]
            if all(t == text for t in texts):
                return text
            await asyncio.sleep(0.05)


async def test_two_providers_converge_on_concurrent_edits(server, npm):
    a, b = await provider(npm, server, "notes/c1"), await provider(npm, server, "notes/c1")
    await a.call("insert", index=0, text="hello")
    await b.call("wait_text", text="hello")
    for i in range(20):
        await a.call("insert", index=0, text=f"a{i} ")
        await b.call("insert", index=5, text=f" b{i}")
    expected = sorted("hello" + "".join(f"a{i}  b{i}" for i in range(20)))
    final = await converged(server, "notes/c1", a, b)
    assert sorted(final) == expected  # every keystroke exactly once
