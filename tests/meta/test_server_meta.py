"""Document metadata through one server: REST, the embedding API and both npm clients."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import orjson
import pytest

from server.app import WeftServer
from server.errors import ClientError
from tests.meta.node_meta import NODE, MetaNode
from tests.server.conftest import make_config

requires_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def union(existing, incoming):
    return sorted({*existing, *incoming})


def http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


async def rest(server: WeftServer, doc: str, method: str = "GET", payload=None,
               raw: bytes | None = None) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{server.port}/api/docs/{doc}/meta"
    body = raw if raw is not None else (None if payload is None else orjson.dumps(payload))
    return await asyncio.to_thread(http, url, method, body)


@pytest.fixture
async def server(tmp_path):
    policies = {"tags": union, "notes": "multi-value"}
    async with WeftServer(make_config(tmp_path), meta_policies=policies) as running:
        yield running


async def test_a_document_without_metadata_reads_as_empty(server):
    status, body = await rest(server, "notes%2Fa")
    assert status == 200
    assert body["name"] == "notes/a" and body["meta"] == {} and body["context"]


async def test_patch_sets_fields_and_put_replaces_the_whole_map(server):
    status, body = await rest(server, "d", "PATCH", {"title": "Notes é😀", "owner": "ann"})
    assert status == 200 and body["meta"] == {"owner": "ann", "title": "Notes é😀"}
    assert body["fields"]["title"]["policy"] == "lww-hlc"
    _, body = await rest(server, "d", "PUT", {"title": "Only"})
    assert body["meta"] == {"title": "Only"}
    _, body = await rest(server, "d", "PATCH", {"title": None})
    assert body["meta"] == {}


@pytest.mark.parametrize(("raw", "code"), [
    (b"not json", "ERR_MESSAGE_BADLY_FORMED"),
    (b"[1, 2]", "ERR_MESSAGE_BADLY_FORMED"),
    (b'{"x": "' + b"y" * 20_000 + b'"}', "ERR_META_INVALID"),
    (b'{"$bad": 1}', "ERR_META_INVALID"),
    (b'{"title": 1, "$context": "%%%"}', "ERR_META_INVALID"),
])
async def test_bad_metadata_writes_get_a_clear_error_and_change_nothing(server, raw, code):
    await rest(server, "d", "PATCH", {"title": "kept"})
    status, body = await rest(server, "d", "PATCH", raw=raw)
    assert status == 400 and body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert (await rest(server, "d"))[1]["meta"] == {"title": "kept"}


async def test_multi_value_siblings_and_resolving_them_over_rest(server):
    _, first = await rest(server, "d", "PATCH", {"notes": "start"})
    token = first["context"]
    await rest(server, "d", "PATCH", {"notes": "from alice", "$context": token})
    _, both = await rest(server, "d", "PATCH", {"notes": "from bob", "$context": token})
    assert sorted(both["meta"]["notes"]) == ["from alice", "from bob"]
    assert sorted(both["fields"]["notes"]["siblings"]) == ["from alice", "from bob"]
    _, resolved = await rest(server, "d", "PATCH", {"notes": "merged", "$context": both["context"]})
    assert resolved["meta"]["notes"] == ["merged"]


async def test_embedding_api_reads_writes_and_applies_a_custom_merge(server):
    await server.meta.write("doc", {"tags": ["b"], "title": "T"})
    await server.meta.write("doc", {"tags": ["a"]})
    assert await server.meta.get("doc") == {"tags": ["a", "b"], "title": "T"}


async def test_policies_are_configurable_after_start_and_unknown_ones_refused(server):
    server.meta.policy("x-*", "multi-value")
    view = await server.meta.write("doc", {"x-color": "red"})
    assert view["fields"]["x-color"]["policy"] == "multi-value"
    with pytest.raises(ClientError, match="unknown metadata policy"):
        server.meta.policy("y", "newest-wins")


async def test_conflicts_call_the_callback_and_the_hooks_seam(server):
    seen, emitted = [], []
    server.meta.on_meta_conflict = lambda doc, conflict: seen.append((doc, conflict.field))
    server.hooks.on_meta_conflict(lambda payload: _collect(emitted, payload))
    token = (await server.meta.write("doc", {"notes": "a"}))["context"]
    await server.meta.write("doc", {"notes": "b"}, context=token)
    await server.meta.write("doc", {"notes": "c"}, context=token)
    assert seen == [("doc", "notes")]
    await server.hooks.drain()
    assert [p["field"] for p in emitted] == ["notes"]


async def _collect(into, payload):
    into.append(payload)


async def test_metadata_survives_a_restart_with_the_sqlite_store(tmp_path):
    async with WeftServer(make_config(tmp_path)) as first:
        await first.meta.write("doc", {"title": "durable"})
    async with WeftServer(make_config(tmp_path)) as second:
        assert await second.meta.get("doc") == {"title": "durable"}


@requires_node
async def test_real_sharedb_clients_write_read_and_receive_metadata_changes(server):
    url = server.url + "/ot"
    alice = await MetaNode.start("sharedb", url, "notes", "a")
    bob = await MetaNode.start("sharedb", url, "notes", "a")
    try:
        read = await bob.request({"id": 1})
        assert read["a"] == "meta" and read["c"] == "notes" and read["meta"] == {}
        wrote = await alice.request({"id": 2, "set": {"title": "from sharedb"}})
        assert wrote["meta"] == {"title": "from sharedb"}
        change = await bob.expect(lambda m: m.get("changed") == ["title"])
        assert change["meta"]["title"] == "from sharedb" and "id" not in change
        await rest(server, "notes%2Fa", "PATCH", {"title": "from rest"})
        await bob.expect(lambda m: m.get("meta", {}).get("title") == "from rest")
        bad = await alice.request({"id": 3, "set": {"$x": 1}})
        assert bad["error"]["code"] == "ERR_META_INVALID"
        assert not [m for m in alice.messages + bob.messages if "warn" in m]
    finally:
        await alice.close()
        await bob.close()


@requires_node
async def test_real_y_websocket_clients_write_read_and_receive_metadata_changes(server):
    url = server.url + "/crdt"
    alice = await MetaNode.start("yjs", url, "notes/b")
    bob = await MetaNode.start("yjs", url, "notes/b")
    try:
        assert (await bob.request({"id": 1}))["meta"] == {}
        wrote = await alice.request({"id": 2, "set": {"tags": ["yjs"]}})
        assert wrote["meta"] == {"tags": ["yjs"]}
        change = await bob.expect(lambda m: m.get("changed") == ["tags"])
        assert change["meta"]["tags"] == ["yjs"]
        await server.meta.write("notes/b", {"tags": ["server"]})
        await bob.expect(lambda m: m.get("meta", {}).get("tags") == ["server", "yjs"])
        bad = await alice.request({"id": 3, "set": "not an object"})
        assert bad["error"]["code"] == "ERR_META_INVALID"
    finally:
        await alice.close()
        await bob.close()


@requires_node
async def test_a_yjs_client_edits_text_and_metadata_on_one_connection(server):
    from server.client import CRDTClient

    writer = await CRDTClient.connect(server.url + "/crdt", "notes/c")
    node = await MetaNode.start("yjs", server.url + "/crdt", "notes/c")
    try:
        writer.insert(0, "hello")
        await node.request({"id": 1, "set": {"title": "hello doc"}})
        assert await server.meta.get("notes/c") == {"title": "hello doc"}
        await writer.wait_for(lambda t: t == "hello")
    finally:
        await node.close()
        await writer.close()


async def test_a_read_only_token_reads_metadata_but_cannot_write_it(tmp_path):
    from server.auth import mint_token

    async with WeftServer(make_config(tmp_path, auth_secret="s3cret")) as server:
        await server.meta.write("notes/a", {"title": "T"})
        token = mint_token("s3cret", "notes/a", "read")
        url = f"http://127.0.0.1:{server.port}/api/docs/notes%2Fa/meta?token={token}"
        status, body = await asyncio.to_thread(http, url)
        assert status == 200 and body["meta"] == {"title": "T"}
        status, body = await asyncio.to_thread(http, url, "PATCH", b'{"title": "no"}')
        assert status == 403 and body["error"]["code"] == "ERR_READ_ONLY"
        assert await server.meta.get("notes/a") == {"title": "T"}


async def test_a_forged_context_cannot_suppress_writes_the_server_has_not_seen(server):
    from meta.register import encode_token

    forged = encode_token({"notes": {server.meta.clock.node: (2**52, 0), "x": (2**52, 0)}})
    await server.meta.write("d", {"notes": "a"}, context=forged)
    view = await server.meta.write("d", {"notes": "b"}, context=forged)
    assert view["meta"]["notes"] == ["b"]  # covered "a" (seen), nothing beyond it
    await server.meta.write("d", {"notes": "c"}, context=None)
    assert (await server.meta.get("d"))["notes"] == ["c"]


async def test_a_malformed_yjs_metadata_frame_gets_an_error_answer_not_a_close(server):
    from websockets.asyncio.client import connect

    async with connect(server.url + "/crdt/notes/z") as ws:
        await ws.send(bytes([100, 5]) + b"{not")
        while True:
            frame = await asyncio.wait_for(ws.recv(), 5)
            if frame[0] == 100:
                break
        assert b"ERR_MESSAGE_BADLY_FORMED" in frame
        await ws.send(bytes([100, 2]) + b"{}")
        while True:
            frame = await asyncio.wait_for(ws.recv(), 5)
            if frame[0] == 100:
                break
        assert b'"meta":{}' in frame


def test_the_cli_sets_the_default_policy_and_the_clock_offset():
    from server.cli import build_parser, config_from_args

    args = build_parser().parse_args(["serve", "--meta-policy", "multi-value",
                                      "--clock-offset-ms", "-180000"])
    config = config_from_args(args)
    assert (config.meta_default_policy, config.clock_offset_ms) == ("multi-value", -180_000)
    server = WeftServer(make_config(None, meta_default_policy="multi-value",
                                    clock_offset_ms=-180_000))
    assert server.meta.policies.for_field("anything").name == "multi-value"
    behind = time.time_ns() // 1_000_000 - server.meta.clock.physical()
    assert 170_000 < behind < 190_000


def test_an_unknown_default_policy_is_refused_at_construction():
    from meta.errors import UnknownPolicy

    with pytest.raises(UnknownPolicy, match="unknown metadata policy 'newest'"):
        WeftServer(make_config(None, meta_default_policy="newest"))


@requires_node
async def test_a_client_that_unfollows_stops_receiving_changes(server):
    client = await MetaNode.start("sharedb", server.url + "/ot", "notes", "u")
    try:
        await client.request({"id": 1})
        assert (await client.request({"id": 2, "unfollow": True}))["unfollow"] is True
        await server.meta.write("notes/u", {"title": "unseen"})
        await client.request({"id": 3})  # answered after any broadcast would have been sent
        assert not [m for m in client.messages if "changed" in m]
    finally:
        await client.close()
