"""History through one running server: the embedding API and REST, with connected clients
seeing restores and undos as ordinary changes, for both engines."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.app import WeftServer
from server.auth import mint_token
from server.history import HistoryCompacted, NothingToUndo
from tests.history.editors import Editor
from tests.server.conftest import make_config
from tests.server.test_auth_endpoints import http
from tests.server.test_http import get

ENGINES = ("ot", "crdt")


async def post(server: WeftServer, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    status, _, raw = await get(server, path, "POST", orjson.dumps(body))
    return status, orjson.loads(raw)


async def typed(server: WeftServer, doc: str, engine: str, edits: list[tuple[str, int, str]]
                ) -> None:
    """Apply ``(author, pos, text)`` inserts in order, creating the document first."""
    for i, (author, pos, text) in enumerate(edits):
        await server.edit(doc, pos=pos, insert=text, author=author,
                          engine=engine if i == 0 else None)


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    async with WeftServer(make_config(tmp_path)) as running:
        yield running


@pytest.mark.parametrize("engine", ENGINES)
async def test_versions_list_every_change_with_author_and_time(server: WeftServer,
                                                               engine: str) -> None:
    await typed(server, "n/v", engine, [("alice", 0, "a"), ("bob", 1, "b")])
    history = await server.history("n/v")
    authors = [v["author"] for v in history["versions"]]
    assert authors[-2:] == ["alice", "bob"] and history["head"] == history["versions"][-1][
        "version"]
    assert all(v["time"].endswith("Z") for v in history["versions"][1:])
    status, _, body = await get(server, "/api/docs/n%2Fv/versions")
    assert status == 200 and orjson.loads(body) == history


@pytest.mark.parametrize("engine", ENGINES)
async def test_text_at_a_version_and_at_a_time(server: WeftServer, engine: str) -> None:
    await typed(server, "n/t", engine, [("alice", 0, "héllo"), ("alice", 5, " 😀")])
    middle = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.01)
    await server.edit("n/t", pos=0, insert="漢字 ", author="bob")
    head = (await server.history("n/t"))["head"]
    assert await server.text_at("n/t", version=head) == "漢字 héllo 😀"
    assert await server.text_at("n/t", version=head - 1) == "héllo 😀"
    assert await server.text_at("n/t", at=middle) == "héllo 😀"
    status, _, body = await get(server, f"/api/docs/n%2Ft?version={head - 2}")
    assert status == 200 and orjson.loads(body)["text"] == "héllo"
    status, _, body = await get(server, "/api/docs/n%2Ft?at=" + middle.replace("+", "%2B"))
    assert status == 200 and orjson.loads(body)["text"] == "héllo 😀"
    status, _, body = await get(server, f"/api/docs/n%2Ft?version={head + 1}")
    assert status == 404 and orjson.loads(body)["error"]["code"] == "ERR_VERSION_UNKNOWN"


@pytest.mark.parametrize("engine", ENGINES)
async def test_restore_is_a_new_edit_that_merges_with_a_concurrent_edit(
        server: WeftServer, engine: str) -> None:
    await typed(server, "n/r", engine, [("alice", 0, "first draft"), ("alice", 11, " + junk")])
    old = (await server.history("n/r"))["head"] - 1
    bob = await Editor.open(engine, server.url, "n/r")
    watcher = await Editor.open(engine, server.url, "n/r")
    await bob.go_offline()
    bob.insert(0, "B:")  # concurrent with the restore
    status, state = await post(server, "/api/docs/n%2Fr/restore",
                               {"version": old, "author": "carol"})
    assert status == 200 and state["text"] == "first draft" and state["restored"] == old
    await watcher.wait_for("first draft")  # a connected client just sees a change
    await bob.come_back()
    await bob.wait_for("B:first draft")
    assert await server.text("n/r") == "B:first draft"
    history = await server.history("n/r")
    assert "restore:carol" in [v["author"] for v in history["versions"]]
    await server.undo("n/r", "carol")  # a restore is itself undoable
    assert await server.text("n/r") == "B:first draft + junk"
    await bob.close()
    await watcher.close()


@pytest.mark.parametrize("engine", ENGINES)
async def test_undo_of_one_users_edit_keeps_another_users_concurrent_edit(
        server: WeftServer, engine: str) -> None:
    await typed(server, "n/u", engine, [("alice", 0, "hello"), ("alice", 5, " world")])
    bob = await Editor.open(engine, server.url, "n/u")
    await bob.go_offline()
    bob.insert(5, ",")  # bob's edit, concurrent with alice's undo
    status, state = await post(server, "/api/docs/n%2Fu/undo", {"user": "alice"})
    assert status == 200 and state["text"] == "hello"
    await bob.come_back()
    await bob.wait_for("hello,")
    status, state = await post(server, "/api/docs/n%2Fu/redo", {"user": "alice"})
    assert status == 200 and state["text"] == "hello, world"
    await bob.wait_for("hello, world")
    await bob.close()


@pytest.mark.parametrize("engine", ENGINES)
async def test_undo_with_nothing_to_undo_answers_409(server: WeftServer, engine: str) -> None:
    await typed(server, "n/x", engine, [("alice", 0, "a")])
    with pytest.raises(NothingToUndo):
        await server.undo("n/x", "bob")
    status, body = await post(server, "/api/docs/n%2Fx/redo", {"user": "alice"})
    assert status == 409 and body["error"]["code"] == "ERR_NOTHING_TO_UNDO"
    status, body = await post(server, "/api/docs/n%2Fx/undo", {})
    assert status == 400


@pytest.mark.parametrize("engine", ENGINES)
async def test_compaction_keeps_the_budget_and_older_versions_answer_410(
        tmp_path: Path, engine: str) -> None:
    config = make_config(tmp_path, history_keep_versions=3, compact_every=10_000)
    async with WeftServer(config) as server:
        await typed(server, "n/c", engine, [("alice", i, "abcdefghij"[i]) for i in range(10)])
        room = server.rooms.get("n/c")
        assert room is not None
        await room.flush()
        await room.compact()
        for i in range(4):  # a second compaction: the first snapshot becomes a checkpoint
            await server.edit("n/c", pos=10 + i, insert=str(i), author="alice")
        await room.flush()
        await room.compact()
        history = await server.history("n/c")
        head, oldest = history["head"], history["oldest"]
        assert 0 < oldest <= head - 3
        assert await server.text_at("n/c", version=head - 3) == "abcdefghij0"
        with pytest.raises(HistoryCompacted):
            await server.text_at("n/c", version=oldest - 1)
        status, _, body = await get(server, f"/api/docs/n%2Fc?version={oldest - 1}")
        error = orjson.loads(body)["error"]
        assert status == 410 and error["code"] == "ERR_HISTORY_COMPACTED"
        assert f"starts at version {oldest}" in error["message"]
        # Reloading from the store gives the same document.
        assert await server.text("n/c") == "abcdefghij0123"


async def test_history_over_rest_honours_tokens(tmp_path: Path) -> None:
    async with WeftServer(make_config(tmp_path, auth_secret="s3cret")) as server:
        await server.edit("n/a", pos=0, insert="hi", engine="crdt", author="alice")
        base = server.url.replace("ws://", "http://") + "/api/docs/n%2Fa"
        read, write = mint_token("s3cret", "n/a", "read"), mint_token("s3cret", "n/a")
        status, _ = await asyncio.to_thread(http, base + "/versions")
        assert status == 401
        status, body = await asyncio.to_thread(http, base + "/versions", token=read)
        assert status == 200 and body["head"] == 1
        status, body = await asyncio.to_thread(http, base + "/undo", "POST", {"user": "alice"},
                                               read)
        assert (status, body["error"]["code"]) == (403, "ERR_READ_ONLY")
        status, body = await asyncio.to_thread(http, base + "/undo", "POST", {"user": "alice"},
                                               write)
        assert status == 200 and body["text"] == ""
