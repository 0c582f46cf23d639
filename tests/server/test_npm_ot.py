"""Real npm `sharedb` clients against the server's OT endpoint."""

from __future__ import annotations

import pytest
from tests.server.conftest import requires_node

pytestmark = [pytest.mark.npm, requires_node]


async def sharedb(npm, server):
    client = await npm("sharedb_client.js", server.url + "/ot")
    await client.call("connect")
    return client


async def test_two_sharedb_clients_converge_on_concurrent_edits(server, npm):
    a, b = await sharedb(npm, server), await sharedb(npm, server)
    await a.call("create", doc="notes/ot1", text="hello")
    await b.call("subscribe", doc="notes/ot1")
    await a.call("subscribe", doc="notes/ot1")
    for i in range(20):
        await a.call("insert", doc="notes/ot1", pos=0, text=f"a{i} ")
        await b.call("insert", doc="notes/ot1", pos=5, text=f" b{i}")
    await a.call("wait_idle")
    await b.call("wait_idle")
    final = await server.text("notes/ot1")
    await a.call("wait_text", doc="notes/ot1", text=final)
    await b.call("wait_text", doc="notes/ot1", text=final)
    inserted = "hello" + "".join(f"a{i}  b{i}" for i in range(20))
    assert sorted(final) == sorted(inserted)  # every keystroke exactly once
