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


async def test_offline_ops_are_resubmitted_on_reconnect_and_applied_once(server, npm):
    a, b = await sharedb(npm, server), await sharedb(npm, server)
    await a.call("create", doc="notes/ot-off", text="base")
    await a.call("subscribe", doc="notes/ot-off")
    await b.call("subscribe", doc="notes/ot-off")
    await b.call("disconnect")
    await b.call("insert", doc="notes/ot-off", pos=4, text=" offline-b")
    await b.call("insert", doc="notes/ot-off", pos=14, text="!")
    await a.call("insert", doc="notes/ot-off", pos=0, text="online-a ")
    await a.call("wait_idle")
    await b.call("reconnect")
    await b.call("wait_idle")
    expected = "online-a base offline-b!"
    await a.call("wait_text", doc="notes/ot-off", text=expected)
    await b.call("wait_text", doc="notes/ot-off", text=expected)
    assert await server.text("notes/ot-off") == expected


async def test_unicode_survives_between_sharedb_and_the_server(server, npm):
    a, b = await sharedb(npm, server), await sharedb(npm, server)
    await a.call("create", doc="notes/ot-uni", text="a😀b")
    await b.call("subscribe", doc="notes/ot-uni")
    await a.call("subscribe", doc="notes/ot-uni")
    await b.call("insert", doc="notes/ot-uni", pos=2, text="世界")  # code points: after 😀
    await a.call("insert", doc="notes/ot-uni", pos=1, text="e\u0301")
    await a.call("wait_idle")
    await b.call("wait_idle")
    expected = "ae\u0301😀世界b"
    await a.call("wait_text", doc="notes/ot-uni", text=expected)
    await b.call("wait_text", doc="notes/ot-uni", text=expected)
    assert await server.text("notes/ot-uni") == expected
    await server.edit("notes/ot-uni", pos=3, delete=1)  # the emoji, one code point
    await a.call("wait_text", doc="notes/ot-uni", text="ae\u0301世界b")


async def test_presence_channels_reach_the_other_client(server, npm):
    a, b = await sharedb(npm, server), await sharedb(npm, server)
    await a.call("presence_subscribe", channel="notes/ot-p")
    await b.call("presence_subscribe", channel="notes/ot-p")
    await a.call("presence_submit", channel="notes/ot-p", presence="ann", value={"index": 4})
    event = await b.event("presence", channel="notes/ot-p", id="ann")
    assert event["value"] == {"index": 4}
    await a.call("close")
    await b.event("presence", channel="notes/ot-p", id="ann", value=None)


async def test_doc_presence_is_refused_with_sharedbs_code(server, npm):
    a = await sharedb(npm, server)
    await a.call("create", doc="notes/ot-dp", text="x")
    with pytest.raises(AssertionError, match="ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE"):
        await a.call("doc_presence_submit", doc="notes/ot-dp", value={"index": 0})


async def test_a_rejected_op_rolls_back_with_an_error_not_silently(server, npm):
    a = await sharedb(npm, server)
    await a.call("create", doc="notes/ot-del", text="x")
    with pytest.raises(AssertionError, match="ERR_DOC_DELETE_UNSUPPORTED"):
        await a.call("del", doc="notes/ot-del")
    state = await a.call("fetch", doc="notes/ot-del")
    assert state["data"] == "x"


async def test_reconnecting_with_several_documents_uses_bulk_subscribe(server, npm):
    a, b = await sharedb(npm, server), await sharedb(npm, server)
    for name in ("notes/bulk1", "notes/bulk2"):
        await a.call("create", doc=name, text="x")
        await a.call("subscribe", doc=name)
        await b.call("subscribe", doc=name)
    await b.call("disconnect")
    for name in ("notes/bulk1", "notes/bulk2"):
        await a.call("insert", doc=name, pos=1, text="a")
        await b.call("insert", doc=name, pos=0, text="b")
    await a.call("wait_idle")
    await b.call("reconnect")  # the client batches the two subscribes into one 'bs'
    await b.call("wait_idle")
    for name in ("notes/bulk1", "notes/bulk2"):
        await a.call("wait_text", doc=name, text="bxa")
        await b.call("wait_text", doc=name, text="bxa")
        assert await server.text(name) == "bxa"
