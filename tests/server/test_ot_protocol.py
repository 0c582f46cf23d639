"""The OT endpoint at the wire level: ShareDB's messages, replies, errors and ordering."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed

from server.app import WeftServer
from server.limits import Limits
from tests.server.conftest import make_config
from tests.server.raw import RawOT

DOC = {"c": "notes", "d": "wire"}


async def create(raw: RawOT, text: str = "seed", **doc) -> dict:
    target = doc or DOC
    return await raw.rpc({"a": "op", **target, "v": None, "src": raw.src, "seq": 1,
                          "create": {"type": "text-unicode", "data": text}})


async def test_handshake_names_json0_as_default_type_and_gives_an_id(server):
    raw = await RawOT.open(server.url + "/ot")
    assert raw.src
    reply = await raw.rpc({"a": "hs", "id": None})
    assert reply["type"] == "http://sharejs.org/types/JSONv0"
    assert (reply["protocol"], reply["protocolMinor"]) == (1, 2)


async def test_fetch_of_a_missing_document_says_it_has_no_type(server):
    raw = await RawOT.open(server.url + "/ot")
    reply = await raw.rpc({"a": "f", **DOC})
    assert reply == {"a": "f", **DOC, "data": {"v": 0, "type": None}}


async def test_create_then_subscribe_returns_the_text_unicode_snapshot(server):
    raw = await RawOT.open(server.url + "/ot")
    assert (await create(raw, "héllo 😀"))["v"] == 0
    reply = await raw.rpc({"a": "s", **DOC})
    assert reply["data"] == {"v": 1, "data": "héllo 😀",
                             "type": "http://sharejs.org/types/text-unicode"}


async def test_an_op_is_acknowledged_and_broadcast_to_other_subscribers(server):
    a, b = await RawOT.open(server.url + "/ot"), await RawOT.open(server.url + "/ot")
    await create(a)
    await b.rpc({"a": "s", **DOC})
    ack = await a.rpc({"a": "op", **DOC, "v": 1, "src": a.src, "seq": 2, "op": [4, "!"]})
    assert ack == {"a": "op", **DOC, "src": a.src, "seq": 2, "v": 1}
    assert await b.recv() == {"a": "op", **DOC, "v": 1, "src": a.src, "seq": 2, "op": [4, "!"]}
    assert await server.text("notes/wire") == "seed!"


async def test_subscribe_from_a_version_sends_the_missing_ops_first(server):
    a = await RawOT.open(server.url + "/ot")
    await create(a)
    await a.rpc({"a": "op", **DOC, "v": 1, "src": a.src, "seq": 2, "op": ["x"]})
    b = await RawOT.open(server.url + "/ot")
    await b.send({"a": "s", **DOC, "v": 1})
    assert (await b.recv())["op"] == ["x"]
    assert await b.recv() == {"a": "s", **DOC}


async def test_a_stale_op_is_transformed_and_a_non_subscriber_gets_what_it_missed(server):
    a, b = await RawOT.open(server.url + "/ot"), await RawOT.open(server.url + "/ot")
    await create(a, "ab")
    await a.rpc({"a": "op", **DOC, "v": 1, "src": a.src, "seq": 2, "op": ["1"]})
    await b.send({"a": "op", **DOC, "v": 1, "src": b.src, "seq": 1, "op": [2, "2"]})
    missed = await b.recv()
    assert (missed["v"], missed["op"], missed["src"]) == (1, ["1"], a.src)
    assert await b.recv() == {"a": "op", **DOC, "src": b.src, "seq": 1, "v": 2}
    assert await server.text("notes/wire") == "1ab2"


async def test_a_resubmitted_op_is_acknowledged_once_and_not_applied_twice(server):
    a = await RawOT.open(server.url + "/ot")
    await create(a, "")
    op = {"a": "op", **DOC, "v": 1, "src": a.src, "seq": 2, "op": ["once"]}
    first = await a.rpc(op)
    await a.close()
    again = await RawOT.open(server.url + "/ot", client_id=a.src)  # reconnect, same src
    assert again.src == a.src
    other = await RawOT.open(server.url + "/ot")
    await other.rpc({"a": "op", **DOC, "v": 2, "src": other.src, "seq": 1, "op": [4, "+"]})
    assert await again.rpc(op) == first  # same ack, same version
    assert await server.text("notes/wire") == "once+"


async def test_an_op_too_far_behind_gets_a_sharedb_error_not_a_rollback(tmp_path):
    async with WeftServer(make_config(tmp_path)) as server:
        a = await RawOT.open(server.url + "/ot")
        await create(a, "")
        await a.rpc({"a": "op", **DOC, "v": 1, "src": a.src, "seq": 2, "op": ["x"]})
        engine = server.rooms.get("notes/wire").engine
        engine.document.compact(0)  # history before version 2 is gone
        reply = await a.rpc({"a": "op", **DOC, "v": 1, "src": a.src, "seq": 3, "op": ["y"]})
        assert reply["error"]["code"] == "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND"
        assert await server.text("notes/wire") == "x"


async def test_ping_is_answered(server):
    raw = await RawOT.open(server.url + "/ot")
    assert await raw.rpc({"a": "pp"}) == {"a": "pp"}


async def test_bulk_subscribe_answers_each_document(server):
    raw = await RawOT.open(server.url + "/ot")
    await create(raw, "one", c="notes", d="b1")
    reply = await raw.rpc({"a": "bs", "c": "notes", "b": ["b1", "b2"]})
    assert reply["a"] == "bs"
    assert reply["data"]["b1"]["data"] == "one"
    assert reply["data"]["b2"] == {"v": 0, "type": None}


async def test_presence_channel_updates_reach_other_subscribers_with_the_senders_src(server):
    a, b = await RawOT.open(server.url + "/ot"), await RawOT.open(server.url + "/ot")
    await a.rpc({"a": "ps", "ch": "notes/wire", "seq": 1})
    await b.rpc({"a": "ps", "ch": "notes/wire", "seq": 1})
    assert await a.recv() == {"a": "pr", "ch": "notes/wire"}  # b asked for everyone's presence
    ack = await b.rpc({"a": "p", "ch": "notes/wire", "id": "cur", "p": {"index": 3}, "pv": 0})
    assert ack["pv"] == 0 and ack["src"] == b.src
    got = await a.recv()
    assert (got["a"], got["id"], got["p"], got["src"]) == ("p", "cur", {"index": 3}, b.src)


async def test_a_closed_connection_clears_its_presence_for_others(server):
    a, b = await RawOT.open(server.url + "/ot"), await RawOT.open(server.url + "/ot")
    await a.rpc({"a": "ps", "ch": "room", "seq": 1})
    await b.rpc({"a": "p", "ch": "room", "id": "cur", "p": 1, "pv": 0})
    assert (await a.recv())["p"] == 1
    await b.close()
    gone = await a.recv()
    assert (gone["id"], gone["p"], gone["pv"]) == ("cur", None, 1)


# ---- bad input ------------------------------------------------------------------------------

BAD_REQUESTS = [
    ("invalid JSON", "{not json", "ERR_MESSAGE_BADLY_FORMED"),
    ("JSON that is not an object", "[1, 2]", "ERR_MESSAGE_BADLY_FORMED"),
    ("unknown action", {"a": "zz"}, "ERR_MESSAGE_BADLY_FORMED"),
    ("missing action", {"c": "notes"}, "ERR_MESSAGE_BADLY_FORMED"),
    ("query", {"a": "qf", "id": 1, "c": "notes", "q": {}}, "ERR_DATABASE_METHOD_NOT_IMPLEMENTED"),
    ("op against a missing document",
     {"a": "op", "c": "notes", "d": "missing", "v": 1, "seq": 1, "op": ["x"]},
     "ERR_DOC_DOES_NOT_EXIST"),
    ("op that is not a list", {"a": "op", **DOC, "v": 1, "seq": 9, "op": "x"},
     "ERR_OT_OP_BADLY_FORMED"),
    ("op component of a wrong type", {"a": "op", **DOC, "v": 1, "seq": 9, "op": [True]},
     "ERR_OT_OP_BADLY_FORMED"),
    ("op skipping past the end", {"a": "op", **DOC, "v": 1, "seq": 9, "op": [99, "x"]},
     "ERR_OT_OP_NOT_APPLIED"),
    ("delete of text that is not there",
     {"a": "op", **DOC, "v": 1, "seq": 9, "op": [{"d": "nope"}]}, "ERR_OT_OP_NOT_APPLIED"),
    ("op with a lone surrogate", '{"a":"op","c":"notes","d":"wire","v":1,"seq":9,'
     '"op":["\\ud83d"]}', "ERR_OT_OP_BADLY_FORMED"),
    ("op from the future", {"a": "op", **DOC, "v": 99, "seq": 9, "op": ["x"]},
     "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"),
    ("negative version", {"a": "op", **DOC, "v": -1, "seq": 9, "op": ["x"]},
     "ERR_MESSAGE_BADLY_FORMED"),
    ("non-numeric seq", {"a": "op", **DOC, "v": 1, "seq": "x", "op": ["x"]},
     "ERR_MESSAGE_BADLY_FORMED"),
    ("op message without op, create or del", {"a": "op", **DOC, "v": 1, "seq": 9},
     "ERR_MESSAGE_BADLY_FORMED"),
    ("collection containing a slash", {"a": "f", "c": "a/b", "d": "x"},
     "ERR_MESSAGE_BADLY_FORMED"),
    ("create of another type",
     {"a": "op", "c": "notes", "d": "json", "v": 0, "seq": 9,
      "create": {"type": "json0", "data": {}}}, "ERR_DOC_TYPE_NOT_RECOGNIZED"),
    ("create of an existing document",
     {"a": "op", **DOC, "v": 0, "seq": 9, "create": {"type": "text-unicode", "data": "x"}},
     "ERR_DOC_ALREADY_CREATED"),
    ("delete of a document", {"a": "op", **DOC, "v": 1, "seq": 9, "del": True},
     "ERR_DOC_DELETE_UNSUPPORTED"),
    ("document presence (text-unicode cannot transform it)",
     {"a": "p", "ch": "notes.wire", "id": "x", "p": {"index": 0}, "pv": 0, **DOC, "v": 1,
      "t": "http://sharejs.org/types/text-unicode"}, "ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE"),
    ("presence without an id", {"a": "p", "ch": "room", "p": 1, "pv": 0},
     "ERR_MESSAGE_BADLY_FORMED"),
    ("bulk request with bad data", {"a": "bs", "c": "notes", "b": 5},
     "ERR_MESSAGE_BADLY_FORMED"),
    ("historic snapshot", {"a": "nf", "id": 1, **DOC, "v": 0},
     "ERR_DATABASE_METHOD_NOT_IMPLEMENTED"),
]


@pytest.mark.parametrize(("case", "frame", "code"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
async def test_bad_requests_get_an_error_reply_and_change_nothing(server, case, frame, code):
    raw = await RawOT.open(server.url + "/ot")
    await create(raw, "seed")
    reply = await raw.rpc(frame)
    assert reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    if isinstance(frame, dict) and "a" in frame:
        assert reply["a"] == frame["a"]  # echoed, so the client can match it to its request
    assert await raw.rpc({"a": "pp"}) == {"a": "pp"}  # the connection survives
    assert await server.text("notes/wire") == "seed"  # the document is unchanged


async def test_an_oversize_message_closes_only_that_connection_with_1009(tmp_path):
    config = make_config(tmp_path, limits=Limits(max_message_bytes=1000, max_ops_per_second=0))
    async with WeftServer(config) as server:
        raw, bystander = await RawOT.open(server.url + "/ot"), await RawOT.open(server.url + "/ot")
        await create(raw, "seed")
        await raw.send({"a": "op", **DOC, "v": 1, "seq": 2, "op": ["x" * 2000]})
        with pytest.raises(ConnectionClosed) as closed:
            await raw.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert await bystander.rpc({"a": "pp"}) == {"a": "pp"}
        assert await server.text("notes/wire") == "seed"


async def test_documents_over_the_size_limit_are_refused(tmp_path):
    config = make_config(tmp_path, limits=Limits(max_doc_bytes=10, max_ops_per_second=0))
    async with WeftServer(config) as server:
        raw = await RawOT.open(server.url + "/ot")
        await create(raw, "12345")
        reply = await raw.rpc({"a": "op", **DOC, "v": 1, "seq": 2, "op": ["6789ab"]})
        assert reply["error"]["code"] == "ERR_DOC_TOO_LARGE"
        assert (await raw.rpc({"a": "op", **DOC, "v": 1, "seq": 3, "op": ["678"]}))["v"] == 1
        assert await server.text("notes/wire") == "67812345"


async def test_ops_over_the_rate_limit_are_refused_and_others_are_unaffected(tmp_path):
    config = make_config(tmp_path, limits=Limits(max_ops_per_second=1, ops_burst=3))
    async with WeftServer(config) as server:
        fast, calm = await RawOT.open(server.url + "/ot"), await RawOT.open(server.url + "/ot")
        await create(fast, "")  # spends one token
        codes = []
        for seq in range(2, 6):
            reply = await fast.rpc({"a": "op", **DOC, "v": None, "seq": seq, "op": ["x"]})
            codes.append(reply.get("error", {}).get("code"))
        assert codes == [None, None, "ERR_RATE_LIMITED", "ERR_RATE_LIMITED"]
        assert "error" not in await calm.rpc({"a": "op", **DOC, "v": None, "seq": 1, "op": ["y"]})
        assert await server.text("notes/wire") == "yxx"


async def test_one_failing_request_does_not_stop_the_connection(server, monkeypatch):
    from server.protocols import ot_docs

    raw = await RawOT.open(server.url + "/ot")

    def boom(engine):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ot_docs, "snapshot", boom)
    reply = await raw.rpc({"a": "f", **DOC})
    assert reply["error"]["code"] == "ERR_INTERNAL"
    monkeypatch.undo()
    assert (await raw.rpc({"a": "f", **DOC}))["data"] == {"v": 0, "type": None}


async def test_many_connections_submitting_concurrently_all_commit(server):
    clients = [await RawOT.open(server.url + "/ot") for _ in range(5)]
    await create(clients[0], "")
    await asyncio.gather(*(
        c.rpc({"a": "op", **DOC, "v": 1, "src": c.src, "seq": 1, "op": [str(i)]})
        for i, c in enumerate(clients)
    ))
    assert sorted(await server.text("notes/wire")) == list("01234")


async def test_opening_a_crdt_document_through_the_ot_endpoint_is_refused(server):
    await server.edit("notes/yjs", insert="x", pos=0, engine="crdt")
    raw = await RawOT.open(server.url + "/ot")
    reply = await raw.rpc({"a": "s", "c": "notes", "d": "yjs"})
    assert reply["error"]["code"] == "ERR_ENGINE_MISMATCH"
    assert "crdt" in reply["error"]["message"]


async def test_bulk_subscribe_from_versions_sends_ops_then_echoes_the_ids(server):
    raw = await RawOT.open(server.url + "/ot")
    await create(raw, "one", c="notes", d="b1")
    await raw.send({"a": "bs", "c": "notes", "b": {"b1": 0}})
    created = await raw.recv()
    assert (created["a"], created["v"], created["create"]["data"]) == ("op", 0, "one")
    assert await raw.recv() == {"a": "bs", "c": "notes", "b": {"b1": 0}}


async def test_bulk_subscribe_per_document_errors_are_reported_per_document(server):
    await server.edit("notes/yjs-doc", insert="x", pos=0, engine="crdt")
    raw = await RawOT.open(server.url + "/ot")
    reply = await raw.rpc({"a": "bs", "c": "notes", "b": ["yjs-doc", "fresh"]})
    assert reply["data"]["yjs-doc"]["error"]["code"] == "ERR_ENGINE_MISMATCH"
    assert reply["data"]["fresh"] == {"v": 0, "type": None}


async def test_a_subscribe_reply_reaches_the_client_before_ops_committed_after_it(
        server, monkeypatch):
    # Slow group commits so that ops from several clients share one commit with a subscribe
    # queued between them: the op after the subscribe is delivered in the same step as the
    # subscriber joins.  Its broadcast must not overtake the reply (a client drops ops for a
    # document it has no snapshot of yet, then takes the older snapshot and stops there).
    from server.store.sqlite import SQLiteStore

    writers = [await RawOT.open(server.url + "/ot") for _ in range(3)]
    await create(writers[0], "")
    real = SQLiteStore._write_batch

    def slow(self, batch):  # runs in the store's thread
        import time
        time.sleep(0.05)
        return real(self, batch)

    monkeypatch.setattr(SQLiteStore, "_write_batch", slow)
    subscriber = await RawOT.open(server.url + "/ot")
    for i, writer in enumerate(writers):
        await writer.send({"a": "op", **DOC, "v": 1, "src": writer.src, "seq": 2, "op": [str(i)]})
        await asyncio.sleep(0.01)
        if i == 1:
            await subscriber.send({"a": "s", **DOC})
            await asyncio.sleep(0.01)
    reply = await subscriber.recv()
    assert reply["a"] == "s", reply
    version = reply["data"]["v"]
    later = await subscriber.recv()
    assert (later["a"], later["v"]) == ("op", version)
