"""The Python clients against the server, and mixed with npm clients in one room."""

from __future__ import annotations

import pytest

from server.client import CRDTClient, OTConnection
from tests.server.conftest import requires_node


async def test_python_ot_clients_converge(server):
    a = await OTConnection.connect(server.url + "/ot")
    b = await OTConnection.connect(server.url + "/ot")
    da = await a.open("notes", "py-ot", create_with="hello")
    db = await b.open("notes", "py-ot", create_with="ignored")
    assert db.text == "hello"
    for i in range(30):
        da.insert(0, f"a{i}")
        db.insert(len(db.text or ""), f"b{i}")
    await da.synced()
    await db.synced()
    final = await server.text("notes/py-ot")
    await da.wait_for(lambda t: t == final)
    await db.wait_for(lambda t: t == final)
    assert sorted(final) == sorted("hello" + "".join(f"a{i}b{i}" for i in range(30)))
    await a.close()
    await b.close()


async def test_python_crdt_clients_converge(server):
    a = await CRDTClient.connect(server.url + "/crdt", "notes/py-crdt")
    b = await CRDTClient.connect(server.url + "/crdt", "notes/py-crdt")
    for i in range(30):
        a.insert(0, f"a{i}")
        b.insert(len(b.text), f"b{i}")
    expected = sorted("".join(f"a{i}b{i}" for i in range(30)))
    await a.wait_for(lambda t: sorted(t) == expected)
    await b.wait_for(lambda t: t == a.text)
    assert await server.text("notes/py-crdt") == a.text
    await a.close()
    await b.close()


@pytest.mark.npm
@requires_node
async def test_python_and_npm_clients_share_a_crdt_room(server, npm):
    js = await npm("yws_client.js", server.url + "/crdt", "notes/mixed")
    await js.call("wait_synced")
    py = await CRDTClient.connect(server.url + "/crdt", "notes/mixed")
    py.insert(0, "from python ")
    await js.call("wait_text", text="from python ")
    await js.call("insert", index=12, text="and node")
    await py.wait_for(lambda t: t == "from python and node")


@pytest.mark.npm
@requires_node
async def test_python_and_npm_clients_share_an_ot_room(server, npm):
    js = await npm("sharedb_client.js", server.url + "/ot")
    await js.call("connect")
    py = await OTConnection.connect(server.url + "/ot")
    doc = await py.open("notes", "mixed-ot", create_with="x")
    await js.call("subscribe", doc="notes/mixed-ot")
    await js.call("insert", doc="notes/mixed-ot", pos=1, text=" from node")
    await doc.wait_for(lambda t: t == "x from node")
    doc.insert(0, "py ")
    await js.call("wait_text", doc="notes/mixed-ot", text="py x from node")
    await py.close()
