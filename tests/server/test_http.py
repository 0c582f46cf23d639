"""HTTP on the WebSocket port: health, metrics, the REST API and static files."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import orjson
import pytest

from server.app import WeftServer
from server.client import CRDTClient, OTConnection
from tests.server.conftest import make_config


def request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, method=method, data=body)
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def get(server, path, method="GET", body=None):
    base = server.url.replace("ws://", "http://")
    return await asyncio.to_thread(request, base + path, method, body)


async def test_healthz_reports_ok(server):
    status, _, body = await get(server, "/healthz")
    assert status == 200 and orjson.loads(body)["status"] == "ok"


async def test_metrics_use_the_prometheus_text_format(server):
    client = await CRDTClient.connect(server.url + "/crdt", "notes/m")
    client.insert(0, "abc")
    await asyncio.sleep(0.05)
    status, headers, body = await get(server, "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for name in ("weft_connections{endpoint=\"crdt\"} 1", "weft_rooms{state=\"live\"} 1",
                 "weft_ops_total{engine=\"crdt\"} 1", "weft_ops_per_second", "weft_bytes_in_total",
                 "weft_bytes_out_total"):
        assert name in text, name
    await client.close()


async def test_reading_a_document_gives_text_engine_and_version(server):
    await server.edit("notes/r", insert="héllo 😀", pos=0, engine="ot")
    status, _, body = await get(server, "/api/docs/notes%2Fr")
    assert status == 200
    assert orjson.loads(body) == {"name": "notes/r", "engine": "ot", "text": "héllo 😀",
                                  "version": 2, "token": "o2"}


async def test_reading_a_crdt_document_gives_a_state_vector_token(server):
    await server.edit("notes/t", insert="x", pos=0, engine="crdt")
    status, _, body = await get(server, "/api/docs/notes/t")
    assert status == 200 and orjson.loads(body)["token"]


async def test_reading_a_missing_document_is_a_404(server):
    status, _, body = await get(server, "/api/docs/nope")
    assert (status, orjson.loads(body)["error"]["code"]) == (404, "ERR_DOC_DOES_NOT_EXIST")


async def test_a_rest_edit_reaches_connected_clients_of_both_engines(server):
    await server.edit("notes/e1", insert="ab", pos=0, engine="crdt")
    await server.edit("notes/e2", insert="ab", pos=0, engine="ot")
    crdt = await CRDTClient.connect(server.url + "/crdt", "notes/e1")
    conn = await OTConnection.connect(server.url + "/ot")
    ot = await conn.open("notes", "e2")
    for name in ("notes/e1", "notes/e2"):
        status, _, body = await get(server, f"/api/docs/{name}/edits", "POST",
                                    orjson.dumps({"pos": 1, "insert": "😀"}))
        assert status == 200 and orjson.loads(body)["text"] == "a😀b"
    await crdt.wait_for(lambda t: t == "a😀b")
    await ot.wait_for(lambda t: t == "a😀b")
    status, _, body = await get(server, "/api/docs/notes/e2/edits", "POST",
                                orjson.dumps({"pos": 1, "delete": 1}))
    assert orjson.loads(body)["text"] == "ab"
    await ot.wait_for(lambda t: t == "ab")
    await crdt.close()
    await conn.close()


@pytest.mark.parametrize(("body", "code"), [
    (b"not json", "ERR_MESSAGE_BADLY_FORMED"),
    (b"[1]", "ERR_MESSAGE_BADLY_FORMED"),
    (b'{"pos": -1, "insert": "x"}', "ERR_MESSAGE_BADLY_FORMED"),
    (b'{"pos": 0}', "ERR_MESSAGE_BADLY_FORMED"),
    (b'{"pos": 0, "insert": "x", "delete": 1}', "ERR_MESSAGE_BADLY_FORMED"),
    (b'{"pos": 9, "insert": "x"}', "ERR_OT_OP_NOT_APPLIED"),
    (b'{"pos": 1, "delete": 5}', "ERR_OT_OP_NOT_APPLIED"),
])
async def test_bad_edits_are_refused_with_a_clear_error(server, body, code):
    await server.edit("notes/bad", insert="ab", pos=0, engine="crdt")
    status, _, reply = await get(server, "/api/docs/notes/bad/edits", "POST", body)
    assert status >= 400 and orjson.loads(reply)["error"]["code"] == code
    assert await server.text("notes/bad") == "ab"


async def test_an_edit_to_a_missing_document_needs_an_engine(server):
    status, _, body = await get(server, "/api/docs/new/edits", "POST",
                                orjson.dumps({"pos": 0, "insert": "x"}))
    assert status == 404
    status, _, body = await get(server, "/api/docs/new/edits", "POST",
                                orjson.dumps({"pos": 0, "insert": "x", "engine": "crdt"}))
    assert status == 200 and orjson.loads(body)["engine"] == "crdt"


async def test_a_websocket_endpoint_asked_over_plain_http_says_upgrade(server):
    status, headers, _ = await get(server, "/ot")
    assert status == 426 and headers["Upgrade"] == "websocket"


async def test_static_files_are_served_without_path_traversal(tmp_path):
    web = tmp_path / "dist"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<h1>weft</h1>")
    (web / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("secret")
    config = make_config(tmp_path / "data")
    async with WeftServer(config.__class__(**{**_fields(config), "web_root": web})) as server:
        status, headers, body = await get(server, "/")
        assert (status, body) == (200, b"<h1>weft</h1>")
        assert headers["Content-Type"].startswith("text/html")
        status, headers, _ = await get(server, "/assets/app.js")
        assert status == 200 and "javascript" in headers["Content-Type"]
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt",
                     "/..%2fsecret.txt", "/missing.js"):
            assert (await raw_get(server, path))[0] == 404, path


def _fields(config):
    return {name: getattr(config, name) for name in config.__slots__}


async def raw_get(server, path: str) -> tuple[int, bytes]:
    """Send the path byte for byte (urllib would normalise '..')."""
    def go() -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return int(data.split(b" ", 2)[1]), data
    return await asyncio.to_thread(go)


async def test_without_a_built_web_client_the_root_says_what_runs(server):
    status, _, body = await get(server, "/")
    assert status == 200 and b"Weft server is running" in body
