"""CRDTEngine: the Engine interface over CrdtDocument (the shared suite is tests/engines)."""

from __future__ import annotations

import pytest

from crdt.document import EMPTY_UPDATE, CrdtDocument
from engines.crdt_engine import CRDTEngine
from engines.interface import NO_EFFECTS, Effects, Engine, EngineError


def client_update(text: str = "héllo 😀") -> bytes:
    return CrdtDocument(client_id=77).insert(0, text)


def test_it_is_an_engine_of_kind_crdt() -> None:
    engine = CRDTEngine.load()
    assert isinstance(engine, Engine)
    assert engine.kind == "crdt"


def test_an_update_is_persisted_and_broadcast_as_received() -> None:
    engine = CRDTEngine.load()
    update = client_update()
    assert engine.apply(update, "c1") == Effects(persist=(update,), broadcast=(update,))
    assert engine.text == "héllo 😀"


@pytest.mark.parametrize("update", [b"", EMPTY_UPDATE])
def test_an_empty_update_has_no_effects(update: bytes) -> None:
    assert CRDTEngine.load().apply(update).empty


def test_a_duplicate_update_has_no_effects() -> None:
    engine = CRDTEngine.load()
    update = client_update()
    engine.apply(update)
    assert engine.apply(update) is NO_EFFECTS


def test_an_invalid_update_is_refused_with_a_code_and_changes_nothing() -> None:
    engine = CRDTEngine.load()
    engine.insert(0, "keep")
    token = engine.token
    with pytest.raises(EngineError) as info:
        engine.apply(b"\x01\x01garbage")
    assert info.value.code == "ERR_CRDT_UPDATE_INVALID"
    assert engine.text == "keep" and engine.token == token


def test_server_side_edits_return_the_update_to_persist_and_broadcast() -> None:
    engine = CRDTEngine.load()
    effects = engine.insert(0, "日本")
    (update,) = effects.persist
    assert effects.broadcast == (update,) and effects.reply == ()
    client = CrdtDocument()
    client.apply_update(update)
    assert client.text == "日本"
    assert engine.insert(1, "").empty and engine.delete(1, 0).empty


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda e: e.insert(9, "x"), "ERR_CRDT_POSITION"),
        (lambda e: e.delete(1, 9), "ERR_CRDT_POSITION"),
        (lambda e: e.insert(0, "\ud800"), "ERR_CRDT_TEXT_INVALID"),
    ],
)
def test_bad_server_side_edits_carry_a_code(call: object, code: str) -> None:
    engine = CRDTEngine.load()
    engine.insert(0, "ab")
    with pytest.raises(EngineError) as info:
        call(engine)  # type: ignore[operator]
    assert info.value.code == code
    assert engine.text == "ab"


def test_the_token_is_the_state_vector_and_newcomers_get_what_they_lack() -> None:
    engine = CRDTEngine.load()
    engine.apply(client_update("shared "))
    joiner = CRDTEngine.load()
    joiner.apply(engine.newcomer_state(joiner.token))
    engine.insert(7, "näw")
    missing = engine.newcomer_state(joiner.token)
    assert len(missing) < len(engine.newcomer_state())
    joiner.apply(missing)
    assert joiner.text == engine.text == "shared näw"


def test_a_malformed_state_vector_is_refused_with_a_code() -> None:
    with pytest.raises(EngineError) as info:
        CRDTEngine.load().newcomer_state(b"\x05")
    assert info.value.code == "ERR_CRDT_STATE_VECTOR_INVALID"


def test_load_from_snapshot_and_log() -> None:
    engine = CRDTEngine.load()
    engine.insert(0, "first ")
    snapshot = engine.snapshot()
    log = [*engine.insert(6, "second ✓").persist, *engine.delete(0, 1).persist]
    again = CRDTEngine.load(snapshot, log)
    assert again.text == "irst second ✓"
    assert again.token == engine.token


def test_a_corrupt_stored_record_is_reported_on_load() -> None:
    with pytest.raises(EngineError) as info:
        CRDTEngine.load(None, [b"\x01"])
    assert info.value.code == "ERR_CRDT_UPDATE_INVALID"


def test_compact_folds_snapshot_and_log_keeping_updates_still_waiting() -> None:
    a = CrdtDocument(client_id=1)
    first = a.insert(0, "abc")
    b = CrdtDocument(client_id=2)
    b.apply_update(first)
    waiting = b.insert(3, "!")  # the server will see this before `first`
    engine = CRDTEngine.load()
    engine.insert(0, "x")
    log = [*engine.apply(waiting).persist]
    compacted = CRDTEngine.compact(engine.snapshot(), log)
    reopened = CRDTEngine.load(compacted, [first])
    assert reopened.text in ("xabc!", "abc!x")
    assert reopened.text == CRDTEngine.load(None, [engine.snapshot(), waiting, first]).text


def test_client_id_can_be_pinned_for_reproducible_replays() -> None:
    engine = CRDTEngine.load(client_id=5)
    engine.insert(0, "x")
    assert engine.document.client_id == 5


def test_a_bytearray_update_is_persisted_as_bytes() -> None:
    update = client_update()
    effects = CRDTEngine.load().apply(bytearray(update))
    assert effects.persist == (update,) and type(effects.persist[0]) is bytes
