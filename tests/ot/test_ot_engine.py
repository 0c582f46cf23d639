"""The OT engine adapter: Effects, durable records, loading, newcomers, server-side edits."""

from __future__ import annotations

import orjson
import pytest

from engines.interface import NO_EFFECTS, Effects, Engine, EngineError
from engines.ot_engine import OTAck, OTCommitted, OTEngine, OTSubmit
from ot.server_doc import ServerDocument


def engine_with(text: str) -> OTEngine:
    return OTEngine(ServerDocument(text))


def test_it_is_an_engine_of_kind_ot() -> None:
    engine = OTEngine.load()
    assert isinstance(engine, Engine)
    assert engine.kind == "ot"
    assert (engine.text, engine.version, engine.token) == ("", 0, b"0")


def test_an_accepted_op_is_persisted_acknowledged_and_broadcast() -> None:
    engine = engine_with("héllo")
    fx = engine.apply(OTSubmit([5, " 👋"], 0, "alice", 1), "user-1")
    assert orjson.loads(fx.persist[0]) == {"v": 0, "op": [5, " 👋"], "src": "alice", "seq": 1,
                                           "a": "user-1"}
    assert fx.reply == (OTAck(0, "alice", 1),)
    assert fx.broadcast == (OTCommitted(0, [5, " 👋"], "alice", 1),)
    assert (engine.text, engine.token) == ("héllo 👋", b"1")


def test_a_late_op_is_broadcast_transformed() -> None:
    engine = engine_with("abc")
    engine.apply(OTSubmit(["X"], 0, "a", 1))
    fx = engine.apply(OTSubmit([3, "!"], 0, "b", 1))
    assert fx.broadcast == (OTCommitted(1, [4, "!"], "b", 1),)
    assert fx.reply == (OTAck(1, "b", 1),)
    assert orjson.loads(fx.persist[0])["op"] == [4, "!"]


def test_a_resubmitted_op_is_only_acknowledged_again() -> None:
    engine = engine_with("")
    engine.apply(OTSubmit(["x"], 0, "alice", 4))
    engine.apply(OTSubmit(["y"], 1, "bob", 1))
    fx = engine.apply(OTSubmit(["x"], 0, "alice", 4))
    assert fx == Effects(reply=(OTAck(0, "alice", 4),))
    assert (engine.text, engine.version) == ("yx", 2)


@pytest.mark.parametrize(("change", "code"), [
    (OTSubmit([9, "x"], 1), "ERR_OT_OP_NOT_APPLIED"),
    (OTSubmit([{"d": "zz"}], 1), "ERR_OT_OP_NOT_APPLIED"),
    (OTSubmit([0, "x"], 1), "ERR_OT_OP_BADLY_FORMED"),
    (OTSubmit("x", 0), "ERR_OT_OP_BADLY_FORMED"),
    (OTSubmit(["x"], 2), "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"),
    (OTSubmit(["x"], -1), "ERR_OT_OP_BADLY_FORMED"),
    ({"op": ["x"], "v": 1}, "ERR_MESSAGE_BADLY_FORMED"),
])
def test_a_bad_change_raises_an_engine_error_and_changes_nothing(change: object,
                                                                 code: str) -> None:
    engine = engine_with("abc")
    engine.apply(OTSubmit([3, "d"], 0))
    with pytest.raises(EngineError) as info:
        engine.apply(change)
    assert info.value.code == code
    assert (engine.text, engine.version) == ("abcd", 1)


def test_an_op_older_than_the_kept_history_is_refused_with_sharedbs_code() -> None:
    engine = OTEngine.load(max_history=1)
    for v in range(5):
        engine.apply(OTSubmit(["x"], v))
    with pytest.raises(EngineError) as info:
        engine.apply(OTSubmit(["y"], 0))
    assert info.value.code == "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND"


def test_snapshot_and_log_reopen_the_document() -> None:
    engine = engine_with("")
    log = []
    log += engine.apply(OTSubmit(["日本"], 0, "a", 1)).persist
    snapshot = engine.snapshot()
    log += engine.apply(OTSubmit([2, "語😀"], 1, "a", 2)).persist
    log += engine.delete(0, 1).persist
    again = OTEngine.load(snapshot, log)  # the first record is already in the snapshot
    assert (again.text, again.token) == (engine.text, engine.token) == ("本語😀", b"3")
    assert orjson.loads(snapshot) == {"v": 1, "text": "日本"}


def test_a_reopened_document_still_recognises_resubmissions() -> None:
    engine = engine_with("")
    log = list(engine.apply(OTSubmit(["a"], 0, "alice", 1)).persist)
    log += engine.apply(OTSubmit(["b"], 1, "bob", 1)).persist
    again = OTEngine.load(None, log)
    assert again.apply(OTSubmit(["a"], 0, "alice", 1)) == Effects(reply=(OTAck(0, "alice", 1),))


def test_records_the_snapshot_covers_stay_history_for_older_ops() -> None:
    engine = engine_with("")
    log = list(engine.apply(OTSubmit(["ab"], 0, "a", 1)).persist)
    log += engine.apply(OTSubmit([2, "😀"], 1, "a", 2)).persist
    snapshot = engine.snapshot()  # v2; the store kept both records beside it
    log += engine.apply(OTSubmit(["X"], 2, "b", 1)).persist
    again = OTEngine.load(snapshot, log)
    assert again.document.oldest_version == 0
    # An offline client still at version 1 is transformed, not refused as too old...
    reference = OTEngine.load(None, log)  # the same document from its whole log
    effects = again.apply(OTSubmit([1, "é"], 1, "c", 1))
    assert effects == reference.apply(OTSubmit([1, "é"], 1, "c", 1))
    assert again.text == reference.text == "Xaéb😀"
    # ...and a resubmission of an op the snapshot covers is recognised.
    assert again.apply(OTSubmit([2, "😀"], 1, "a", 2)) == Effects(reply=(OTAck(1, "a", 2),))


def test_a_broken_run_of_covered_records_is_not_history() -> None:
    engine = engine_with("")
    records = [engine.apply(OTSubmit([str(i)], 0 if i == 0 else i, "a", i + 1)).persist[0]
               for i in range(3)]
    snapshot = engine.snapshot()
    again = OTEngine.load(snapshot, [records[0], records[2]])  # v1 missing
    assert again.document.oldest_version == 3 - 1  # only v2 runs up to the snapshot
    assert again.text == engine.text


def test_a_gap_in_the_log_is_an_error() -> None:
    engine = engine_with("")
    records = [engine.insert(0, "x").persist[0], engine.insert(0, "y").persist[0]]
    with pytest.raises(EngineError) as info:
        OTEngine.load(None, records[1:])
    assert info.value.code == "ERR_LOG_GAP"


@pytest.mark.parametrize("record", [b"nope", b"[]", b'{"v": 0}', b'{"v": 0, "op": [5, "x"]}'])
def test_an_unreadable_log_record_is_an_error(record: bytes) -> None:
    with pytest.raises(EngineError) as info:
        OTEngine.load(None, [record])
    assert info.value.code == "ERR_LOG_INVALID"


@pytest.mark.parametrize("snapshot", [b"", b"{}", b'{"v": "1", "text": ""}',
                                      b'{"v": 1, "text": 5}', b'{"v": -1, "text": ""}'])
def test_an_unreadable_snapshot_is_an_error(snapshot: bytes) -> None:
    with pytest.raises(EngineError) as info:
        OTEngine.load(snapshot)
    assert info.value.code == "ERR_SNAPSHOT_INVALID"


def test_a_newcomer_gets_text_and_version_or_the_ops_it_missed() -> None:
    engine = engine_with("ab")
    engine.apply(OTSubmit([2, "c"], 0, "a", 1))
    engine.apply(OTSubmit([1, {"d": 1}], 1, "b", 1))
    assert engine.newcomer_state() == ("ac", 2)
    missed = [OTCommitted(1, [1, {"d": 1}], "b", 1)]
    assert engine.newcomer_state(1) == missed
    assert engine.newcomer_state(b"1") == missed
    assert engine.newcomer_state(engine.token) == []


@pytest.mark.parametrize(("since", "code"), [
    (3, "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"),
    (b"x1", "ERR_MESSAGE_BADLY_FORMED"),
    (-1, "ERR_OT_OP_BADLY_FORMED"),
])
def test_newcomer_state_refuses_bad_versions(since: object, code: str) -> None:
    engine = engine_with("ab")
    engine.insert(0, "x")
    with pytest.raises(EngineError) as info:
        engine.newcomer_state(since)  # type: ignore[arg-type]
    assert info.value.code == code


def test_newcomer_state_refuses_versions_behind_the_kept_history() -> None:
    engine = OTEngine.load(max_history=0)
    engine.insert(0, "x")
    engine.insert(0, "y")
    with pytest.raises(EngineError) as info:
        engine.newcomer_state(0)
    assert info.value.code == "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND"


def test_server_side_edits_commit_like_client_ops() -> None:
    engine = engine_with("a😀c")
    fx = engine.insert(2, "b", author="api")
    assert fx.broadcast == (OTCommitted(0, [2, "b"], None, None),)
    assert orjson.loads(fx.persist[0])["a"] == "api"
    fx = engine.delete(1, 1)
    assert fx.broadcast == (OTCommitted(1, [1, {"d": 1}], None, None),)
    assert engine.text == "abc"


def test_empty_server_side_edits_do_nothing() -> None:
    engine = engine_with("abc")
    assert engine.insert(1, "") is NO_EFFECTS
    assert engine.delete(1, 0) is NO_EFFECTS
    assert engine.version == 0


@pytest.mark.parametrize(("call", "args"), [
    ("insert", (4, "x")), ("insert", (-1, "x")), ("insert", (0, 5)), ("insert", ("0", "x")),
    ("delete", (3, 1)), ("delete", (0, 4)), ("delete", (-1, 1)), ("delete", (0, -1)),
    ("delete", (0, 1.0)),
])
def test_bad_server_side_edits_are_refused(call: str, args: tuple) -> None:
    engine = engine_with("a😀c")
    with pytest.raises(EngineError):
        getattr(engine, call)(*args)
    assert (engine.text, engine.version) == ("a😀c", 0)


def test_snapshot_round_trips_unicode() -> None:
    text = "👨\u200d👩\u200d👧 e\u0301 漢字 🇫🇷 \U0001d4b3"
    engine = engine_with(text)
    engine.insert(len(text), "!")
    again = OTEngine.load(engine.snapshot())
    assert (again.text, again.version) == (text + "!", 1)


def test_the_underlying_document_is_reachable() -> None:
    doc = ServerDocument("x")
    assert OTEngine(doc).document is doc
