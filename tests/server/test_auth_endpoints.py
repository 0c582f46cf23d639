"""Auth on every endpoint: tokens in ?token= or Bearer, document scopes, read-only roles."""

from __future__ import annotations

import asyncio
import urllib.request

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from crdt.sync import read_frame
from server.app import WeftServer
from server.auth import mint_token
from server.client import CRDTClient
from tests.server.conftest import make_config
from tests.server.raw import RawOT

SECRET = "test-secret"


@pytest.fixture
async def secured(tmp_path):
    async with WeftServer(make_config(tmp_path, auth_secret=SECRET)) as running:
        await running.edit("notes/a", insert="hello", pos=0, engine="crdt")
        await running.edit("notes/ot", insert="hello", pos=0, engine="ot")
        yield running


async def closed_with(url: str) -> int:
    ws = await connect(url)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return closed.value.rcvd.code


async def test_a_crdt_connection_without_a_token_is_closed_with_4401(secured):
    assert await closed_with(f"{secured.url}/crdt/notes/a") == 4401


async def test_a_forged_token_is_closed_with_4401(secured):
    token = mint_token("wrong", "notes/a")
    assert await closed_with(f"{secured.url}/crdt/notes/a?token={token}") == 4401


async def test_a_token_for_another_document_is_closed_with_4403(secured):
    token = mint_token(SECRET, "notes/b")
    assert await closed_with(f"{secured.url}/crdt/notes/a?token={token}") == 4403


async def test_a_read_only_crdt_client_receives_updates_but_its_edits_are_refused(secured):
    reader = await CRDTClient.connect(f"{secured.url}/crdt", "notes/a",
                                      token=mint_token(SECRET, "notes/*", "read"))
    writer = await CRDTClient.connect(f"{secured.url}/crdt", "notes/a",
                                      token=mint_token(SECRET, "notes/a", "write"))
    assert reader.text == "hello"
    writer.insert(5, " world")
    await reader.wait_for(lambda t: t == "hello world")
    reader.insert(0, "nope ")
    await reader.wait_for(lambda t: bool(reader.permission_denied))
    assert "ERR_READ_ONLY" in reader.permission_denied[0]
    assert reader.connected  # stays connected, keeps receiving
    writer.insert(0, ">")
    await reader.wait_for(lambda t: t.startswith("nope >") or t.startswith(">nope"))
    assert await secured.text("notes/a") == ">hello world"


async def test_a_read_only_ot_client_gets_an_error_reply_for_ops(secured):
    token = mint_token(SECRET, "notes/ot", "read")
    raw = await RawOT.open(f"{secured.url}/ot?token={token}")
    assert (await raw.rpc({"a": "f", "c": "notes", "d": "ot"}))["data"]["data"] == "hello"
    reply = await raw.rpc({"a": "op", "c": "notes", "d": "ot", "v": 1, "seq": 1, "op": ["x"]})
    assert reply["error"]["code"] == "ERR_READ_ONLY"
    assert await secured.text("notes/ot") == "hello"


async def test_ot_requests_outside_the_token_scope_are_forbidden(secured):
    token = mint_token(SECRET, "notes/ot", "write")
    raw = await RawOT.open(f"{secured.url}/ot?token={token}")
    reply = await raw.rpc({"a": "f", "c": "notes", "d": "a"})
    assert reply["error"]["code"] == "ERR_FORBIDDEN"


def http(url: str, method: str = "GET", body: dict | None = None,
         token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method,
                                     data=None if body is None else orjson.dumps(body))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


async def test_the_rest_api_honours_bearer_tokens(secured):
    base = secured.url.replace("ws://", "http://") + "/api/docs/notes%2Fa"
    status, body = await asyncio.to_thread(http, base)
    assert (status, body["error"]["code"]) == (401, "ERR_UNAUTHORIZED")
    status, body = await asyncio.to_thread(http, base, token=mint_token(SECRET, "notes/a", "read"))
    assert (status, body["text"]) == (200, "hello")
    status, body = await asyncio.to_thread(http, base + "/edits", "POST", {"pos": 0, "insert": "x"},
                                           mint_token(SECRET, "notes/a", "read"))
    assert (status, body["error"]["code"]) == (403, "ERR_READ_ONLY")


async def test_an_unauthorized_crdt_client_never_gets_document_state(secured):
    ws = await connect(f"{secured.url}/crdt/notes/a")
    frames = []
    with pytest.raises(ConnectionClosed):
        while True:
            frames.append(read_frame(await asyncio.wait_for(ws.recv(), 5)))
    assert frames == []
