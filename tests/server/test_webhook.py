"""The signed webhook, against a real HTTP receiver on 127.0.0.1 (asyncio streams)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from server.app import WeftServer
from server.cli import build_parser, config_from_args
from server.hooks import Hooks
from server.hooks.webhook import Webhook, sign
from server.metrics import Metrics
from server.rooms.room import ChangeEvent
from tests.server.conftest import make_config

SECRET = "webhook-secret"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server: answers each request with the next scripted status
    (200 once the script runs out); ``"close"`` drops the connection without answering."""

    script: list[int | str] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/weft?x=1"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode("latin-1").split("\r\n")
            assert lines[0] == "POST /hooks/weft?x=1 HTTP/1.1", lines[0]
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers["content-length"]))
            self.requests.append(Received(headers, body))
            self.arrived.set()
            action = self.script.pop(0) if self.script else 200
            if action != "close":
                writer.write(f"HTTP/1.1 {action} X\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        finally:
            writer.close()

    async def wait(self, count: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    server = await asyncio.start_server(rec.handle, "127.0.0.1", 0)
    rec.port = server.sockets[0].getsockname()[1]
    async with server:
        yield rec


def verify(received: Received) -> bool:
    """What a receiver does: recompute the HMAC over the raw body, compare in constant time."""
    expected = "sha256=" + hmac.new(SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.headers["x-weft-signature"])


def fast_webhook(url: str, metrics: Metrics, **options: object) -> Webhook:
    settings: dict = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0, **options}
    return Webhook(url, SECRET, metrics=metrics, **settings)


async def test_change_events_are_posted_as_signed_json(tmp_path: Path, receiver: Receiver):
    config = make_config(tmp_path, webhook_url=receiver.url, webhook_secret=SECRET,
                         replica_id="r1")
    async with WeftServer(config) as server:
        await server.edit("notes/w", insert="héllo 😀", pos=0, engine="crdt", author="ann")
        await receiver.wait(1)
    (request,) = receiver.requests
    assert verify(request)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-weft-event"] == "change"
    body = request.json
    assert body["id"] == request.headers["x-weft-delivery"]
    assert (body["event"], body["replica"]) == ("change", "r1")
    data = body["data"]
    assert (data["doc"], data["kind"], data["author"], data["remote"]) == ("notes/w", "crdt",
                                                                          "ann", False)
    update = base64.b64decode(data["payloads"][0])  # the Yjs update, base64
    assert "héllo 😀".encode() in update


async def test_a_tampered_body_does_not_verify(receiver: Receiver):
    body = b'{"event":"change"}'
    assert sign(SECRET, body) != sign(SECRET, body + b" ")
    assert sign(SECRET, body) != sign("other", body)


async def test_ot_changes_carry_version_and_op(tmp_path: Path, receiver: Receiver):
    config = make_config(tmp_path, webhook_url=receiver.url, webhook_secret=SECRET,
                         webhook_events=("change", "store"))
    async with WeftServer(config) as server:
        await server.edit("notes/o", insert="hi", pos=0, engine="ot")
        await receiver.wait(4)  # create + insert, each a change and a store event
    events = [r.json for r in receiver.requests]
    assert [e["event"] for e in events] == ["change", "store", "change", "store"]
    assert events[2]["data"]["payloads"] == [{"version": 1, "op": ["hi"], "src": None,
                                              "seq": None}]
    assert events[3]["data"] == {"doc": "notes/o", "kind": "ot", "what": "records", "count": 1,
                                 "author": "server", "upto": 0}
    assert all(verify(r) for r in receiver.requests)


async def test_failures_are_retried_with_the_same_delivery_id(receiver: Receiver):
    receiver.script = [500, "close", 503]
    metrics = Metrics()
    hook = fast_webhook(receiver.url, metrics)
    await hook.start()
    hook.offer("change", {"doc": "a"})
    await receiver.wait(4)
    await hook.close()
    ids = {r.headers["x-weft-delivery"] for r in receiver.requests}
    assert len(ids) == 1 and all(verify(r) for r in receiver.requests)
    assert metrics.webhook_attempts_total == 4
    assert metrics.webhook_deliveries_total == {"delivered": 1}


async def test_a_client_error_status_is_not_retried(receiver: Receiver):
    receiver.script = [400]
    metrics = Metrics()
    hook = fast_webhook(receiver.url, metrics)
    await hook.start()
    hook.offer("change", {"doc": "a"})
    hook.offer("change", {"doc": "b"})
    await receiver.wait(2)
    await hook.close()
    assert [r.json["data"]["doc"] for r in receiver.requests] == ["a", "b"]
    assert metrics.webhook_deliveries_total == {"failed": 1, "delivered": 1}


async def test_attempts_are_bounded_when_the_receiver_is_down():
    metrics = Metrics()
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hook = fast_webhook(f"http://127.0.0.1:{port}/", metrics, max_attempts=3)
    await hook.start()
    hook.offer("change", {"doc": "a"})
    async with asyncio.timeout(10):
        while not metrics.webhook_deliveries_total:
            await asyncio.sleep(0.01)
    await hook.close()
    assert metrics.webhook_attempts_total == 3
    assert metrics.webhook_deliveries_total == {"failed": 1}


def test_backoff_doubles_with_jitter_and_is_capped():
    low = Webhook("http://127.0.0.1:1/", SECRET, backoff=0.5, max_backoff=3.0, rng=lambda: 0.0)
    high = Webhook("http://127.0.0.1:1/", SECRET, backoff=0.5, max_backoff=3.0, rng=lambda: 1.0)
    assert [high.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [low.delay(n) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 1.5, 1.5]


async def test_a_full_queue_drops_the_oldest_events_and_counts_them(receiver: Receiver):
    metrics = Metrics()
    hook = fast_webhook(receiver.url, metrics, queue_size=2)
    for doc in "abcde":  # not started yet: everything waits in the queue
        hook.offer("change", {"doc": doc})
    assert metrics.webhook_deliveries_total == {"dropped": 3}
    await hook.start()
    await receiver.wait(2)
    await hook.close()
    assert [r.json["data"]["doc"] for r in receiver.requests] == ["d", "e"]


async def test_a_hanging_receiver_never_delays_edits(tmp_path: Path):
    hung: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)  # read nothing, answer nothing

    listener = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        hooks = Hooks()
        async with WeftServer(make_config(tmp_path), hooks=hooks) as server:
            hook = fast_webhook(f"http://127.0.0.1:{port}/", server.metrics, timeout=0.2,
                                max_attempts=2)
            hook.attach(server.hooks)
            await hook.start()
            for i in range(20):
                await asyncio.wait_for(
                    server.edit("notes/h", insert=str(i % 10), pos=0, engine="crdt"), 5)
            assert len(await server.text("notes/h")) == 20
            await hook.close(timeout=0)
        for writer in hung:
            writer.close()


async def test_only_the_configured_events_are_sent(receiver: Receiver):
    hook = fast_webhook(receiver.url, Metrics(), events=("meta_conflict",))
    await hook.start()
    hook.offer("change", ChangeEvent("d", "crdt", (b"x",), "a"))
    hook.offer("meta_conflict", {"doc": "d", "key": "title"})
    await receiver.wait(1)
    await hook.close()
    assert [r.json["event"] for r in receiver.requests] == ["meta_conflict"]


def test_a_webhook_needs_a_secret_a_valid_url_and_known_events():
    with pytest.raises(ValueError, match="secret"):
        Webhook("http://127.0.0.1:1/", "")
    with pytest.raises(ValueError, match="http"):
        Webhook("ftp://example/", SECRET)
    with pytest.raises(ValueError, match="events"):
        Webhook("http://127.0.0.1:1/", SECRET, events=("chnage",))


def test_cli_flags_configure_the_webhook():
    args = build_parser().parse_args(["serve", "--webhook-url", "http://127.0.0.1:9/h",
                                      "--webhook-secret", "s", "--webhook-events",
                                      "change, store", "--hook-timeout", "2.5"])
    config = config_from_args(args)
    assert (config.webhook_url, config.webhook_secret, config.webhook_events,
            config.hook_timeout_seconds) == ("http://127.0.0.1:9/h", "s", ("change", "store"),
                                             2.5)
    with pytest.raises(SystemExit, match="webhook-secret"):
        config_from_args(build_parser().parse_args(["serve", "--webhook-url", "http://x/"]))
    with pytest.raises(SystemExit, match="webhook-events"):
        config_from_args(build_parser().parse_args(
            ["serve", "--webhook-url", "http://x/", "--webhook-secret", "s",
             "--webhook-events", "nope"]))
