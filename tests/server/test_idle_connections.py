"""What an idle connection keeps (see server.http.connection): no keepalive task of its own,
no handshake headers, no empty deques — and keepalive still works, from one shared task."""

from __future__ import annotations

import asyncio
import collections

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.protocol import State

from server.app import WeftServer
from server.http.connection import EmptyingDeque, WeftConnection
from tests.server.conftest import make_config


async def _server_side(server: WeftServer, count: int = 1) -> list[WeftConnection]:
    for _ in range(200):
        conns = list(server._server.connections) if server._server else []
        if len(conns) >= count:
            return conns
        await asyncio.sleep(0.01)
    raise AssertionError("the server never saw the connection")


async def test_an_idle_connection_keeps_no_handshake_headers_task_or_deque(tmp_path):
    async with WeftServer(make_config(tmp_path, ping_interval=20.0)) as server:
        ws = await connect(f"{server.url}/crdt/idle/doc", compression=None)
        await ws.recv()  # sync step 1: the session is running
        (conn,) = await _server_side(server)
        assert conn.keepalive_task is None
        assert conn.request is not None and conn.request.path == "/crdt/idle/doc"
        assert len(conn.request.headers) == 0 and len(conn.response.headers) == 0
        assert conn.http_body is None and conn.http_body_error is None
        assert not isinstance(conn.drain_waiters, collections.deque)
        assert isinstance(conn.recv_messages.frames.queue, EmptyingDeque)
        await ws.close()


async def test_shared_keepalive_pings_every_connection_and_they_stay_open(tmp_path):
    async with WeftServer(make_config(tmp_path, ping_interval=0.1)) as server:
        a = await connect(f"{server.url}/crdt/ka/one")
        b = await connect(f"{server.url}/crdt/ka/two")
        await a.recv()
        await b.recv()
        conns = await _server_side(server, 2)
        await asyncio.sleep(0.45)  # several rounds: pings sent, pongs received
        assert all(c.latency > 0 for c in conns)
        assert all(c.protocol.state is State.OPEN for c in conns)
        assert a.state is State.OPEN and b.state is State.OPEN
        await a.close()
        await b.close()


async def test_a_peer_that_stops_answering_pings_is_failed_with_1011():
    async def handler(ws):
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, create_connection=WeftConnection,
                     ping_interval=0.1, ping_timeout=0.1, close_timeout=0.2) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/") as client:
            (conn,) = list(server.connections)
            client.transport.pause_reading()  # the client hears no ping, answers no pong
            for _ in range(100):
                if conn.protocol.state is not State.OPEN:
                    break
                await asyncio.sleep(0.02)
            assert conn.protocol.close_sent is not None
            assert conn.protocol.close_sent.code == 1011
            assert conn.protocol.close_sent.reason == "keepalive ping timeout"
            client.transport.resume_reading()


def test_emptying_deque_behaves_like_the_deque_it_replaces():
    q = EmptyingDeque()
    assert len(q) == 0 and not q and list(q) == []
    q.append(1)
    q.append(2)
    q.extendleft([0])
    assert len(q) == 3 and q and list(q) == [0, 1, 2]
    assert [q.popleft(), q.popleft(), q.popleft()] == [0, 1, 2]
    assert q._items is None  # nothing held once empty
    with pytest.raises(IndexError):
        q.popleft()
