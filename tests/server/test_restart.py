"""Documents survive restarts: acknowledged edits are durable, for both engines."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from server.app import WeftServer
from server.client import CRDTClient, OTConnection
from tests.server.conftest import make_config, requires_node
from tests.server.raw import RawOT


async def test_ot_and_crdt_edits_survive_a_clean_restart(tmp_path):
    async with WeftServer(make_config(tmp_path)) as server:
        conn = await OTConnection.connect(server.url + "/ot")
        doc = await conn.open("notes", "ot", create_with="héllo")
        doc.insert(5, " 😀")
        await doc.synced()  # acknowledged
        crdt = await CRDTClient.connect(server.url + "/crdt", "notes/crdt")
        crdt.insert(0, "世界 e\u0301")
        await asyncio.sleep(0.05)
        await crdt.close()
        await conn.close()
    async with WeftServer(make_config(tmp_path)) as server:
        assert await server.text("notes/ot") == "héllo 😀"
        assert await server.text("notes/crdt") == "世界 e\u0301"
        again = await CRDTClient.connect(server.url + "/crdt", "notes/crdt")
        assert again.text == "世界 e\u0301"
        await again.close()


async def test_compacted_documents_reload_from_their_snapshot(tmp_path):
    config = make_config(tmp_path, compact_every=5)
    async with WeftServer(config) as server:
        client = await CRDTClient.connect(server.url + "/crdt", "notes/compact")
        for i in range(23):
            client.insert(0, str(i % 10))
        await client.wait_for(lambda t: len(t) == 23)
        await asyncio.sleep(0.1)
        await client.close()
    async with WeftServer(config) as server:
        assert len(await server.text("notes/compact")) == 23


def weft_command() -> list[str]:
    script = Path(sys.executable).with_name("weft")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server"]


async def start_weft(data_dir: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "WEFT_ROOM_IDLE_SECONDS": "0.5",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = await asyncio.create_subprocess_exec(
        *weft_command(), "serve", "--port", "0", "--data-dir", str(data_dir),
        "--log-level", "warning", stdout=asyncio.subprocess.PIPE, env=env,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    assert line.startswith("weft: listening on "), line
    return proc, line.rsplit(" ", 1)[1].strip()


async def test_weft_serve_keeps_acknowledged_ops_across_sigterm_and_sigkill(tmp_path):
    proc, url = await start_weft(tmp_path)
    try:
        raw = await RawOT.open(url + "/ot")
        await raw.rpc({"a": "op", "c": "notes", "d": "cli", "v": None, "seq": 1,
                       "create": {"type": "text-unicode", "data": "a"}})
        ack = await raw.rpc({"a": "op", "c": "notes", "d": "cli", "v": 1, "seq": 2, "op": ["b"]})
        assert ack["v"] == 1  # acknowledged, therefore durable:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        proc, url = await start_weft(tmp_path)
        raw = await RawOT.open(url + "/ot")
        reply = await raw.rpc({"a": "f", "c": "notes", "d": "cli"})
        assert reply["data"]["data"] == "ba"
        await raw.rpc({"a": "op", "c": "notes", "d": "cli", "v": 2, "seq": 3, "op": [2, "c"]})
        proc.send_signal(signal.SIGTERM)  # clean shutdown: flushed, connections closed 1001
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        proc, url = await start_weft(tmp_path)
        raw = await RawOT.open(url + "/ot")
        assert (await raw.rpc({"a": "f", "c": "notes", "d": "cli"}))["data"]["data"] == "bac"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)


@pytest.mark.npm
@requires_node
async def test_a_yjs_client_restores_what_a_killed_server_had_not_stored(tmp_path, npm):
    proc, url = await start_weft(tmp_path)
    try:
        client = await npm("yws_client.js", url + "/crdt", "notes/killed")
        await client.call("wait_synced")
        await client.call("insert", index=0, text="survives 😀")
        await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await client.call("insert", index=0, text="offline ")  # made while the server is down
        port = url.rsplit(":", 1)[1]
        proc, url = await start_weft_on(tmp_path, port)
        await client.call("wait_synced")  # y-websocket reconnects by itself and resyncs
        async with asyncio.timeout(10):
            while await rest_text(url, "notes/killed") != "offline survives 😀":
                await asyncio.sleep(0.1)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)


async def start_weft_on(data_dir: Path, port: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "WEFT_PORT": port,
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = await asyncio.create_subprocess_exec(
        *weft_command(), "serve", "--data-dir", str(data_dir), "--log-level", "warning",
        stdout=asyncio.subprocess.PIPE, env=env,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    return proc, line.rsplit(" ", 1)[1].strip()


async def rest_text(url: str, doc: str) -> str | None:
    import urllib.error
    import urllib.request

    import orjson

    def get() -> str | None:
        try:
            with urllib.request.urlopen(url.replace("ws://", "http://") + "/api/docs/" + doc,
                                        timeout=5) as response:
                return orjson.loads(response.read())["text"]
        except urllib.error.HTTPError:
            return None
    return await asyncio.to_thread(get)


async def test_stopping_closes_connections_with_1001_after_storing(tmp_path):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    server = WeftServer(make_config(tmp_path))
    await server.start()
    client = await CRDTClient.connect(server.url + "/crdt", "notes/bye")
    client.insert(0, "stored at shutdown")
    raw = await connect(server.url + "/crdt/notes/bye")
    await raw.recv()
    await server.stop()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(raw.recv(), 5)
    assert closed.value.rcvd.code == 1001
    async with WeftServer(make_config(tmp_path)) as again:
        assert await again.text("notes/bye") == "stored at shutdown"
