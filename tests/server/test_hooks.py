"""Hooks: connect decisions, load seeding, change/store notifications after commit."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from engines.ot_engine import OTCommitted
from server.app import WeftServer
from server.auth import mint_token
from server.client import CRDTClient, OTConnection
from server.hooks import Allow, ConnectRequest, Deny, Hooks, LoadEvent, StoreEvent
from server.rooms.room import ChangeEvent
from tests.server.conftest import make_config


def http(url: str, method: str = "GET", body: dict | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def api(server: WeftServer, doc: str) -> str:
    return server.url.replace("ws://", "http://") + "/api/docs/" + doc.replace("/", "%2F")


async def close_of(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    ws = await connect(url, additional_headers=headers)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def metric(server: WeftServer, line: str) -> float:
    text = server.metrics.render(server.rooms.states())
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


# ---- change ---------------------------------------------------------------------------------

async def test_change_hooks_get_doc_engine_payloads_and_author_in_commit_order(tmp_path: Path):
    seen: list[ChangeEvent] = []
    hooks = Hooks()

    @hooks.on("change")
    async def record(event: ChangeEvent) -> None:
        seen.append(event)

    async with WeftServer(make_config(tmp_path), hooks=hooks) as server:
        await server.edit("notes/ot", insert="ab", pos=0, engine="ot", author="alice")
        await server.edit("notes/ot", insert="c", pos=2, author="bob")
        await server.hooks.drain()
    ops = [(e.doc, e.kind, e.author, e.remote) for e in seen]
    # The create (version 0) comes first, then the two inserts, in commit order.
    assert ops == [("notes/ot", "ot", "alice", False)] * 2 + [("notes/ot", "ot", "bob", False)]
    committed = [e.payloads[0] for e in seen]
    assert all(isinstance(c, OTCommitted) for c in committed)
    assert [c.version for c in committed] == [0, 1, 2]
    assert committed[2].op == [2, "c"]


async def test_change_hooks_see_client_crdt_updates_as_yjs_bytes(tmp_path: Path):
    seen: list[ChangeEvent] = []
    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on_change(lambda e: _append(seen, e))
        client = await CRDTClient.connect(server.url + "/crdt", "notes/c")
        client.insert(0, "héllo 😀")
        await _eventually(lambda: bool(seen))
        await client.close()
    (event,) = seen
    assert (event.doc, event.kind) == ("notes/c", "crdt")
    assert event.author.startswith("crdt:") and isinstance(event.payloads[0], bytes)


async def _append(seen: list[Any], event: Any) -> None:
    seen.append(event)


async def _eventually(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_raising_change_hook_loses_no_edit_and_is_counted(tmp_path: Path):
    calls = 0

    async def broken(event: ChangeEvent) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("hook bug")

    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on_change(broken)
        await server.edit("notes/r", insert="one ", pos=0, engine="crdt")
        await server.edit("notes/r", insert="two", pos=4)
        await server.hooks.drain()
        assert calls == 2  # the first failure did not stop the second event
        assert await server.text("notes/r") == "one two"
        assert await metric(server, 'weft_hook_failures_total{event="change",reason="error"}') == 2
    async with WeftServer(make_config(tmp_path)) as again:  # durable across a restart
        assert await again.text("notes/r") == "one two"


async def test_a_change_hook_that_hangs_is_cancelled_after_the_timeout(tmp_path: Path):
    cancelled = asyncio.Event()

    async def hangs(event: ChangeEvent) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with WeftServer(make_config(tmp_path, hook_timeout_seconds=0.05)) as server:
        server.hooks.on_change(hangs)
        await server.edit("notes/t", insert="x", pos=0, engine="crdt")
        await asyncio.wait_for(cancelled.wait(), 5)
        await server.hooks.drain()
        timeouts = 'weft_hook_failures_total{event="change",reason="timeout"}'
        assert await metric(server, timeouts) == 1
        assert await server.text("notes/t") == "x"


async def test_a_blocked_change_hook_does_not_delay_fan_out(tmp_path: Path):
    release = asyncio.Event()

    async def blocked(event: ChangeEvent) -> None:
        await release.wait()

    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on_change(blocked)
        writer = await CRDTClient.connect(server.url + "/crdt", "notes/f")
        reader = await CRDTClient.connect(server.url + "/crdt", "notes/f")
        for i in range(5):
            writer.insert(len(writer.text), str(i))
        await reader.wait_for(lambda t: t == "01234", timeout=5)
        one = await OTConnection.connect(server.url + "/ot")
        two = await OTConnection.connect(server.url + "/ot")
        doc = await one.open("notes", "g", create_with="")
        other = await two.open("notes", "g")
        doc.insert(0, "hi")
        await other.wait_for(lambda t: t == "hi", timeout=5)
        await doc.synced()  # acknowledged while the hook still waits
        release.set()
        await server.hooks.drain()
        for client in (writer, reader, one, two):
            await client.close()


async def test_a_full_hook_queue_drops_the_oldest_event_and_counts_it(tmp_path: Path):
    release = asyncio.Event()
    seen: list[str] = []

    async def slow(event: ChangeEvent) -> None:
        await release.wait()
        seen.append(event.author)

    hooks = Hooks(queue_size=2)
    hooks.on_change(slow)
    async with WeftServer(make_config(tmp_path), hooks=hooks) as server:
        for i in range(5):
            await server.edit("notes/q", insert="x", pos=0, engine="crdt", author=f"a{i}")
        # a0 is running (blocked); a1 and a2 were dropped for a3 and a4.
        assert await metric(server, 'weft_hook_events_dropped_total{event="change"}') == 2
        release.set()
        await server.hooks.drain()
    assert seen == ["a0", "a3", "a4"]


# ---- store ----------------------------------------------------------------------------------

async def test_store_hooks_fire_after_records_and_after_a_snapshot_are_durable(tmp_path: Path):
    events: list[StoreEvent] = []
    async with WeftServer(make_config(tmp_path, compact_every=1000)) as server:
        async def stored(event: StoreEvent) -> None:
            # Durable: a second server on the same file would load it (SQLite, WAL).
            events.append(event)

        server.hooks.on_store(stored)
        await server.edit("notes/s", insert="abc", pos=0, engine="crdt", author="w")
        await server.hooks.drain()
        assert [(e.doc, e.kind, e.what, e.count, e.author) for e in events] == [
            ("notes/s", "crdt", "records", 1, "w")]
        room = server.rooms.get("notes/s")
        assert room is not None
        await room.flush(compact=True)
        await server.hooks.drain()
    assert events[-1].what == "snapshot" and events[-1].upto == 1


# ---- connect --------------------------------------------------------------------------------

async def test_a_denying_connect_hook_closes_websockets_with_4403_and_its_reason(tmp_path: Path):
    requests: list[ConnectRequest] = []

    async def gate(request: ConnectRequest) -> Deny | None:
        requests.append(request)
        return None if request.headers.get("X-User") == "ann" else Deny("who are you?")

    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on_connect(gate)
        code, reason = await close_of(server.url + "/crdt/notes/d")
        assert (code, reason) == (4403, "ERR_FORBIDDEN: who are you?")
        client = CRDTClient(server.url + "/crdt", "notes/d")
        ws = await connect(client.url, additional_headers={"X-User": "ann"})
        await asyncio.wait_for(ws.recv(), 5)  # sync step 1: let in
        await ws.close()
        code, _ = await close_of(server.url + "/ot")
        assert code == 4403
    crdt, _, ot = requests
    assert (crdt.endpoint, crdt.doc, crdt.path, crdt.method) == ("crdt", "notes/d",
                                                                 "/crdt/notes/d", "GET")
    assert (ot.endpoint, ot.doc) == ("ot", None)  # ShareDB names documents per message


async def test_a_denying_connect_hook_answers_rest_with_403(tmp_path: Path):
    async with WeftServer(make_config(tmp_path)) as server:
        await server.edit("notes/h", insert="x", pos=0, engine="crdt")
        server.hooks.on_connect(_deny_all)
        status, body = await asyncio.to_thread(http, api(server, "notes/h"))
        assert status == 403
        assert body["error"] == {"code": "ERR_FORBIDDEN", "message": "no"}


async def _deny_all(request: ConnectRequest) -> Deny:
    return Deny("no")


@pytest.mark.parametrize("failure", ["raises", "hangs", "returns junk"])
async def test_a_failing_connect_hook_denies_access(tmp_path: Path, failure: str):
    async def broken(request: ConnectRequest) -> Any:
        if failure == "raises":
            raise RuntimeError("auth backend down")
        if failure == "hangs":
            await asyncio.sleep(3600)
        return "yes"

    async with WeftServer(make_config(tmp_path, hook_timeout_seconds=0.05)) as server:
        server.hooks.on_connect(broken)
        code, reason = await close_of(server.url + "/crdt/notes/x")
        assert code == 4403
        assert "denied" in reason
        status, _ = await asyncio.to_thread(http, api(server, "notes/x"))
        assert status == 403
        assert await metric(server, 'weft_hook_calls_total{event="connect"}') == 2


async def test_a_connect_hook_can_make_a_connection_read_only(tmp_path: Path):
    secret = "s3cret"
    seen: list[ConnectRequest] = []

    async def read_only(request: ConnectRequest) -> Allow:
        seen.append(request)
        return Allow(role="read")

    async with WeftServer(make_config(tmp_path, auth_secret=secret)) as server:
        await server.edit("notes/ro", insert="hello", pos=0, engine="crdt")
        server.hooks.on_connect(read_only)
        token = mint_token(secret, "notes/*", "write")
        auth = {"Authorization": f"Bearer {token}"}
        status, body = await asyncio.to_thread(http, api(server, "notes/ro"), headers=auth)
        assert (status, body["text"]) == (200, "hello")
        status, body = await asyncio.to_thread(
            http, api(server, "notes/ro") + "/edits", "POST", {"pos": 0, "insert": "x"}, auth)
        assert (status, body["error"]["code"]) == (403, "ERR_READ_ONLY")
        status, _ = await asyncio.to_thread(http, api(server, "notes/ro"))
        assert status == 401  # no token: the hook is never asked
        client = await CRDTClient.connect(server.url + "/crdt", "notes/ro", token=token)
        client.insert(0, "x")
        await _eventually(lambda: bool(client.permission_denied))
        await client.close()
        assert await server.text("notes/ro") == "hello"
    assert seen[0].grant.pattern == "notes/*" and seen[0].grant.role == "write"


# ---- load -----------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["crdt", "ot"])
async def test_a_load_hook_seeds_a_new_document_once(tmp_path: Path, engine: str):
    loads: list[LoadEvent] = []

    async def template(event: LoadEvent) -> str:
        loads.append(event)
        return "# Title ✨\n"

    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on_load(template)
        await server.edit("notes/new", insert="more", pos=10, engine=engine)
        assert await server.text("notes/new") == "# Title ✨\nmore"
        room = server.rooms.get("notes/new")
        assert room is not None
        await _eventually(lambda: server.rooms.get("notes/new") is None)  # idle: unloaded
        assert await server.text("notes/new") == "# Title ✨\nmore"  # reloaded, not reseeded
    assert [(e.doc, e.kind, e.new) for e in loads] == [("notes/new", engine, True),
                                                       ("notes/new", engine, False)]


async def test_a_seeded_crdt_document_reaches_a_client_that_opened_it(tmp_path: Path):
    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on_load(_template)
        client = await CRDTClient.connect(server.url + "/crdt", "notes/fresh")
        await client.wait_for(lambda t: t == "template")
        await client.close()


async def test_a_seeded_ot_document_is_created_for_sharedb_clients(tmp_path: Path):
    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on_load(_template)
        conn = await OTConnection.connect(server.url + "/ot")
        doc = await conn.open("notes", "fresh")
        await doc.wait_for(lambda t: t == "template")
        doc.insert(8, "!")
        await doc.synced()
        await conn.close()
        assert await server.text("notes/fresh") == "template!"


async def _template(event: LoadEvent) -> str:
    return "template"


async def test_a_failing_load_hook_leaves_the_document_unseeded_but_usable(tmp_path: Path):
    async def broken(event: LoadEvent) -> str:
        raise RuntimeError("template service down")

    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on_load(broken)
        await server.edit("notes/l", insert="ok", pos=0, engine="crdt")
        assert await server.text("notes/l") == "ok"
        assert await metric(server, 'weft_hook_failures_total{event="load",reason="error"}') == 1


# ---- meta_conflict, lifecycle, API ---------------------------------------------------------

async def test_meta_conflict_events_emitted_by_other_modules_reach_their_hooks(tmp_path: Path):
    seen: list[dict[str, Any]] = []
    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on_meta_conflict(lambda e: _append(seen, e))
        server.rooms.hooks.emit("meta_conflict", {"doc": "notes/m", "key": "title"})
        await server.hooks.drain()
    assert seen == [{"doc": "notes/m", "key": "title"}]


async def test_a_raising_hook_keeps_no_room_loaded(tmp_path: Path):
    async def broken(event: Any) -> None:
        raise RuntimeError("bug")

    async with WeftServer(make_config(tmp_path, room_idle_seconds=0.1)) as server:
        for name in ("change", "store", "load"):
            server.hooks.on(name)(broken)
        await server.edit("notes/idle", insert="kept", pos=0, engine="crdt")
        await _eventually(lambda: len(server.rooms) == 0)
        assert server.metrics.rooms_unloaded_total == 1
        assert await server.text("notes/idle") == "kept"


def test_unknown_hook_events_are_refused_with_the_list_of_events():
    hooks = Hooks()
    with pytest.raises(ValueError, match="unknown hook event 'chnage'"):
        hooks.on("chnage")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a notification"):
        hooks.emit("connect", None)
    with pytest.raises(ValueError, match="timeout"):
        Hooks(timeout=0)


async def test_sync_handlers_are_accepted_too(tmp_path: Path):
    seen: list[ChangeEvent] = []
    async with WeftServer(make_config(tmp_path)) as server:
        server.hooks.on("change")(seen.append)
        await server.edit("notes/sync", insert="x", pos=0, engine="crdt")
        await server.hooks.drain()
    assert len(seen) == 1
