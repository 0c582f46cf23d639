"""Causal tokens: the codec, REST/embedding exposure, and the bounded wait on one server."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

import orjson
import pytest

from crdt.document import CrdtDocument
from server import causal
from server.app import WeftServer
from server.causal import BadCausalToken, CausalToken, NotCaughtUp
from server.metrics import MAX_LAG_SERIES, RelayLag
from tests.server.conftest import make_config

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def http(url: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], dict]:
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), orjson.loads(error.read())


async def call(server: WeftServer, path: str, method: str = "GET", body: dict | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], dict]:
    base = server.url.replace("ws://", "http://")
    data = orjson.dumps(body) if body is not None else None
    return await asyncio.to_thread(http, base + path, method, data, headers)


@pytest.fixture
async def quick(tmp_path: Path):
    """A server that gives up waiting for a causal token after 0.2 s."""
    async with WeftServer(make_config(tmp_path, causal_wait_seconds=0.2)) as running:
        yield running


# ---- codec ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "token"), [(0, "o0"), (35, "oz"), (36, "o10"),
                                               (2**40, "oe13wu1og")])
def test_an_ot_token_is_o_and_the_version_in_base_36(version, token):
    assert causal.ot_token(version) == token
    assert causal.decode(token) == CausalToken("ot", version=version)


def test_a_crdt_token_is_c_and_the_state_vector_in_unpadded_base64url():
    doc = CrdtDocument(client_id=123456789)
    doc.insert(0, "héllo 😀")
    other = CrdtDocument(client_id=7)
    other.apply_update(doc.diff())
    other.insert(0, ">")
    token = causal.crdt_token(other.state_vector())
    assert token.startswith("c") and URL_SAFE.fullmatch(token) and "=" not in token
    assert causal.decode(token).state == {123456789: len("héllo 😀".encode("utf-16-le")) // 2,
                                          7: 1}


def test_the_empty_document_has_a_crdt_token_too():
    assert causal.decode(causal.crdt_token(CrdtDocument().state_vector())).state == {}


@pytest.mark.parametrize("bad", ["", "x12", "o", "o-1", "o1_0", "o 1", "oA", "c", "c!!",
                                 "c" + "A" * 3, "cAAE", "cAQ", "o" + "z" * 14, "c" + "A" * 20_000])
def test_a_malformed_token_is_refused_with_a_message(bad):
    with pytest.raises(BadCausalToken) as info:
        causal.decode(bad)
    assert info.value.code == "ERR_BAD_CAUSAL_TOKEN" and info.value.message


def test_covers_compares_versions_and_state_vectors_pointwise():
    assert causal.covers(CausalToken("ot", version=5), CausalToken("ot", version=5))
    assert not causal.covers(CausalToken("ot", version=4), CausalToken("ot", version=5))
    both = CausalToken("crdt", clocks=((1, 3), (2, 4)))
    assert causal.covers(both, CausalToken("crdt", clocks=((1, 3),)))
    assert not causal.covers(both, CausalToken("crdt", clocks=((1, 3), (9, 1))))
    assert not causal.covers(CausalToken("crdt", clocks=((1, 2),)), both)
    with pytest.raises(BadCausalToken):
        causal.covers(both, CausalToken("ot", version=1))


# ---- REST and embedding -----------------------------------------------------------------------


async def test_every_rest_document_response_carries_its_token_in_body_and_header(server):
    for name, engine in (("notes/t-ot", "ot"), ("notes/t-crdt", "crdt")):
        status, headers, body = await call(server, f"/api/docs/{name}/edits", "POST",
                                           {"pos": 0, "insert": "ab", "engine": engine})
        assert status == 200 and headers["X-Weft-Token"] == body["token"]
        status, headers, read = await call(server, f"/api/docs/{name}")
        assert status == 200 and headers["X-Weft-Token"] == read["token"] == body["token"]
        assert causal.decode(read["token"]).kind == engine
    assert read["token"].startswith("c")


async def test_embedding_snapshot_gives_text_and_token(server):
    await server.edit("notes/emb", insert="abc", pos=0, engine="ot")
    text, token = await server.snapshot("notes/emb")
    assert (text, token) == ("abc", "o2")
    assert (await server.info("notes/emb", after=token))["token"] == "o2"


async def test_a_request_with_a_covered_token_is_answered_at_once(server):
    first = await server.edit("notes/c", insert="a", pos=0, engine="crdt")
    await server.edit("notes/c", insert="b", pos=1)
    status, _, body = await call(server, f"/api/docs/notes/c?after={first['token']}")
    assert (status, body["text"]) == (200, "ab")
    status, _, body = await call(server, "/api/docs/notes/c",
                                 headers={"X-Weft-After": first["token"]})
    assert (status, body["text"]) == (200, "ab")
    assert server.metrics.causal_waits_total["rest", "immediate"] == 2


async def test_a_token_the_replica_never_reaches_is_a_retryable_503(quick):
    await quick.edit("notes/f", insert="a", pos=0, engine="ot")
    status, headers, body = await call(quick, "/api/docs/notes/f?after=o9")
    assert (status, body["error"]["code"]) == (503, "ERR_NOT_CAUGHT_UP")
    assert headers["Retry-After"] == "1" and "notes/f" in body["error"]["message"]
    assert quick.metrics.causal_waits_total["rest", "timeout"] == 1
    edit = await call(quick, "/api/docs/notes/f/edits?after=o9", "POST", {"pos": 0, "insert": "x"})
    assert edit[0] == 503 and (await quick.text("notes/f")) == "a"  # the edit was not applied


async def test_a_malformed_or_wrong_engine_token_is_a_400(server):
    await server.edit("notes/g", insert="a", pos=0, engine="ot")
    for token in ("nonsense", "cAA"):
        status, _, body = await call(server, f"/api/docs/notes/g?after={token}")
        assert (status, body["error"]["code"]) == (400, "ERR_BAD_CAUSAL_TOKEN"), token


async def test_an_edit_with_a_token_waits_then_applies_at_positions_of_that_state(server):
    await server.edit("notes/w", insert="ab", pos=0, engine="ot")  # version 2
    task = asyncio.create_task(server.edit("notes/w", insert="X", pos=3, after="o3"))
    await asyncio.sleep(0.05)
    assert not task.done()  # pos 3 does not exist yet at version 2
    await server.edit("notes/w", insert="c", pos=2)  # version 3
    result = await asyncio.wait_for(task, 10)
    assert (result["text"], result["token"]) == ("abcX", "o4")


async def test_the_wait_wakes_on_the_room_change_notification(server, monkeypatch):
    monkeypatch.setattr(causal, "RECHECK_SECONDS", 60.0)  # only a notification can wake it
    await server.edit("notes/n", insert="a", pos=0, engine="crdt")
    writer = CrdtDocument()
    async with server.changes("notes/n"):
        room = server.rooms.get("notes/n")
        writer.apply_update(room.engine.snapshot())
        update = writer.insert(1, "b")
        wanted = causal.decode(causal.crdt_token(writer.state_vector()))
        waiting = asyncio.create_task(causal.wait_until(room, wanted, 30.0))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        room.change(lambda engine: engine.apply(update, "test"), author="test")
        waited = await asyncio.wait_for(waiting, 10)
    assert 0 < waited < 30 and room.engine.text == "ab"


async def test_wait_until_raises_not_caught_up_after_the_bound(server):
    await server.edit("notes/b", insert="a", pos=0, engine="ot")
    async with server.changes("notes/b"):
        room = server.rooms.get("notes/b")
        with pytest.raises(NotCaughtUp) as info:
            await causal.wait_until(room, CausalToken("ot", version=5), 0.05)
    assert info.value.code == "ERR_NOT_CAUGHT_UP" and info.value.http_status == 503
    assert not room.listeners  # the waiter's listener is gone


async def test_metrics_report_causal_waits(quick):
    await quick.edit("notes/m", insert="a", pos=0, engine="ot")
    await call(quick, "/api/docs/notes/m?after=o1")
    await call(quick, "/api/docs/notes/m?after=o7")
    text = quick.metrics.render({})
    assert 'weft_causal_waits_total{endpoint="rest",outcome="immediate"} 1' in text
    assert 'weft_causal_waits_total{endpoint="rest",outcome="timeout"} 1' in text
    assert 'weft_causal_wait_seconds_total{endpoint="rest"}' in text


# ---- relay lag metric -------------------------------------------------------------------------


def test_relay_lag_keeps_the_last_value_per_doc_and_origin_and_a_histogram_per_origin():
    lag = RelayLag()
    lag.observe('notes/"q"\n', "r1", 0.004)
    lag.observe('notes/"q"\n', "r1", 0.2)
    lag.observe("notes/b", "r2", 3.0)
    text = "\n".join(lag.render())
    assert 'weft_relay_lag_seconds{doc="notes/\\"q\\"\\n",origin="r1"} 0.2' in text
    assert 'weft_relay_lag_by_origin_seconds_bucket{origin="r1",le="0.005"} 1' in text
    assert 'weft_relay_lag_by_origin_seconds_bucket{origin="r1",le="0.25"} 2' in text
    assert 'weft_relay_lag_by_origin_seconds_bucket{origin="r1",le="+Inf"} 2' in text
    assert 'weft_relay_lag_by_origin_seconds_count{origin="r2"} 1' in text
    lag.forget("notes/b")
    assert 'doc="notes/b"' not in "\n".join(lag.render())


def test_relay_lag_series_stay_bounded():
    lag = RelayLag()
    for i in range(MAX_LAG_SERIES * 3):
        lag.observe(f"doc{i}", "r1", 0.01)
    assert len(lag.last) == MAX_LAG_SERIES and ("doc0", "r1") not in lag.last
