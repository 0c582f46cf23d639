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


async def test_offline_edits_merge_on_reconnect_without_duplicates(server, npm):
    a, b = await provider(npm, server, "notes/off"), await provider(npm, server, "notes/off")
    await a.call("insert", index=0, text="base")
    await b.call("wait_text", text="base")
    await b.call("disconnect")
    await b.call("insert", index=4, text=" offline-b")
    await a.call("insert", index=0, text="online-a ")
    await a.call("wait_text", text="online-a base")
    await b.call("connect")
    final = await converged(server, "notes/off", a, b)
    assert final == "online-a base offline-b"


async def test_emoji_cjk_and_combining_marks_survive_utf16_clients(server, npm):
    a, b = await provider(npm, server, "notes/uni"), await provider(npm, server, "notes/uni")
    await a.call("insert", index=0, text="a😀b")  # the emoji is 2 UTF-16 code units
    await b.call("wait_text", text="a😀b")
    await b.call("insert", index=3, text="世界")  # after the emoji: UTF-16 index 3
    await a.call("insert", index=1, text="e\u0301")  # e + combining acute
    final = await converged(server, "notes/uni", a, b)
    assert final == "ae\u0301😀世界b"
    # the server speaks code points: the emoji is one
    await server.edit("notes/uni", pos=3, delete=1)
    await a.call("wait_text", text="ae\u0301世界b")
    await b.call("wait_text", text="ae\u0301世界b")


async def test_awareness_is_seen_by_the_other_provider_and_removed_when_it_leaves(server, npm):
    a, b = await provider(npm, server, "notes/aw"), await provider(npm, server, "notes/aw")
    await a.call("awareness_set", state={"user": "ann", "cursor": 3})
    await b.call("wait_awareness", state={"user": "ann", "cursor": 3})
    await a.call("close")
    async with asyncio.timeout(10):
        while (await b.call("awareness_states"))["states"]:
            await asyncio.sleep(0.05)


async def test_a_provider_opening_an_ot_document_stops_with_a_clear_reason(server, npm):
    await server.edit("notes/is-ot", insert="x", pos=0, engine="ot")
    client = await npm("yws_client.js", server.url + "/crdt", "notes/is-ot")
    closed = await client.event("closed")
    assert closed["code"] == 4409 and "ERR_ENGINE_MISMATCH" in closed["reason"]


async def test_a_read_only_provider_is_told_permission_denied(tmp_path, npm):
    from server.app import WeftServer
    from server.auth import mint_token
    from tests.server.conftest import make_config

    async with WeftServer(make_config(tmp_path, auth_secret="k")) as server:
        await server.edit("notes/ro", insert="shared", pos=0, engine="crdt")
        reader = await npm("yws_client.js", server.url + "/crdt", "notes/ro",
                           mint_token("k", "notes/ro", "read"))
        await reader.call("wait_synced")
        assert (await reader.call("text"))["text"] == "shared"
        await reader.call("insert", index=0, text="mine ")
        denied = await reader.event("permission_denied")
        assert "ERR_READ_ONLY" in denied["reason"]
        assert await server.text("notes/ro") == "shared"
