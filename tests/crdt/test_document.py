"""CrdtDocument: code-point editing over pycrdt's byte offsets, and safe remote updates."""

from __future__ import annotations

import itertools

import pytest
from pycrdt import Doc, Map, Text

from crdt.document import EMPTY_UPDATE, CrdtDocument
from crdt.errors import CrdtError, PositionError, TextError, UpdateError, is_panic
from crdt.updates import decode_state_vector

FAMILY = "👩\u200d👩\u200d👧"  # ZWJ sequence: 5 code points, 18 UTF-8 bytes
FLAG = "🇫🇷"  # two regional indicators
COMBINING = "e\u0301"  # e + combining acute


def pair() -> tuple[CrdtDocument, CrdtDocument]:
    return CrdtDocument(client_id=1), CrdtDocument(client_id=2)


def relay(update: bytes, *docs: CrdtDocument) -> None:
    for doc in docs:
        doc.apply_update(update)


# -- code points ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "pos", "insert", "expected"),
    [
        ("ab", 1, "😀", "a😀b"),
        ("😀😀", 1, "x", "😀x😀"),
        (FAMILY + FLAG, 5, "|", FAMILY + "|" + FLAG),
        (FAMILY + FLAG, 6, "|", FAMILY + "🇫|🇷"),  # code points may split a flag: caller's call
        ("日本語", 2, "の", "日本の語"),
        (COMBINING + "x", 1, "y", "ey\u0301x"),
        ("\U0001d4b3\U0001d4b4", 1, "é", "\U0001d4b3é\U0001d4b4"),  # astral letters
        ("abc", 3, "日本", "abc日本"),
    ],
)
def test_insert_counts_code_points(start: str, pos: int, insert: str, expected: str) -> None:
    doc = CrdtDocument()
    doc.insert(0, start)
    doc.insert(pos, insert)
    assert doc.text == expected
    assert len(doc) == len(expected)


@pytest.mark.parametrize(
    ("start", "pos", "length", "expected"),
    [
        ("a😀b", 1, 1, "ab"),
        (FAMILY + "!", 0, 5, "!"),
        (FAMILY + "!", 1, 1, "👩👩\u200d👧!"),
        ("日本語", 1, 2, "日"),
        (COMBINING + COMBINING, 1, 2, "e\u0301"),
        ("x" * 600 + "é" + "y" * 600, 550, 100, "x" * 550 + "y" * 551),  # across chunks
    ],
)
def test_delete_counts_code_points(start: str, pos: int, length: int, expected: str) -> None:
    doc = CrdtDocument()
    doc.insert(0, start)
    doc.delete(pos, length)
    assert doc.text == expected


def test_positions_stay_right_after_remote_updates_with_non_ascii_text() -> None:
    a, b = pair()
    relay(a.insert(0, "héllo wörld"), b)
    relay(b.insert(5, " 😀"), a)
    relay(a.insert(0, "日本 "), b)
    relay(b.delete(3, 6), a)  # "héllo " goes, counted in b's code points
    relay(a.insert(len(a), FAMILY), b)
    assert a.text == b.text == "日本 😀 wörld" + FAMILY
    relay(b.insert(4, "→"), a)
    assert a.text == b.text == "日本 😀→ wörld" + FAMILY


def test_a_text_can_go_from_ascii_to_unicode_and_back() -> None:
    doc = CrdtDocument()
    doc.insert(0, "plain")
    doc.insert(5, " 😀")
    doc.insert(0, ">")
    doc.delete(6, 2)  # the emoji and its space go: ASCII again
    doc.insert(6, "!")
    assert doc.text == ">plain!"


def test_a_long_unicode_text_maps_every_position() -> None:
    doc = CrdtDocument()
    model = ("日本語 text 😀 " * 200)[:2000]
    doc.insert(0, model)
    for pos in range(0, len(model), 97):
        doc.insert(pos, "|")
        model = model[:pos] + "|" + model[pos:]
    assert doc.text == model


def test_each_edit_returns_the_update_a_peer_needs() -> None:
    a, b = pair()
    for update in (a.insert(0, "naïve"), a.insert(5, " 😀"), a.delete(0, 1)):
        assert update and update != EMPTY_UPDATE
        b.apply_update(update)
    assert b.text == "aïve 😀"


def test_an_edit_that_changes_nothing_returns_the_empty_update() -> None:
    doc = CrdtDocument()
    doc.insert(0, "héllo")
    assert doc.insert(2, "") == EMPTY_UPDATE
    assert doc.delete(2, 0) == EMPTY_UPDATE
    assert doc.splice(2, 0, "") == EMPTY_UPDATE
    assert doc.text == "héllo"


def test_splice_replaces_in_one_update() -> None:
    a, b = pair()
    relay(a.insert(0, "a selected 😀 word"), b)
    update = a.splice(2, 10, "chosen")
    b.apply_update(update)
    assert a.text == b.text == "a chosen word"


def test_custom_root_name() -> None:
    doc = CrdtDocument(root="monaco")
    update = doc.insert(0, "x")
    ydoc: Doc = Doc()
    ydoc.apply_update(update)
    assert str(ydoc.get("monaco", type=Text)) == "x"
    assert doc.root == "monaco"


def test_client_id_is_used_for_local_edits() -> None:
    doc = CrdtDocument(client_id=42)
    doc.insert(0, "x")
    assert doc.client_id == 42
    assert decode_state_vector(doc.state_vector()) == {42: 1}


def test_an_invalid_client_id_is_refused() -> None:
    with pytest.raises(CrdtError, match="client id"):
        CrdtDocument(client_id=2**60)


# -- position and text validation ------------------------------------------------------------


@pytest.mark.parametrize("pos", [-1, 4, 100, 1.5, "1", None, True])
@pytest.mark.parametrize("start", ["a😀b", "abc"])
def test_insert_out_of_range_is_refused_and_changes_nothing(start: str, pos: object) -> None:
    doc = CrdtDocument()
    doc.insert(0, start)
    state = doc.state_vector()
    with pytest.raises(PositionError, match="position"):
        doc.insert(pos, "x")  # type: ignore[arg-type]
    assert doc.text == start
    assert doc.state_vector() == state


@pytest.mark.parametrize(("pos", "length"), [(-1, 1), (0, 4), (3, 1), (4, 0), (1, -1), (0, 1.0)])
@pytest.mark.parametrize("start", ["a😀b", "abc"])
def test_delete_out_of_range_is_refused_and_changes_nothing(
    start: str, pos: int, length: object
) -> None:
    doc = CrdtDocument()
    doc.insert(0, start)
    with pytest.raises(PositionError):
        doc.delete(pos, length)  # type: ignore[arg-type]
    assert doc.text == start


def test_position_errors_are_value_errors_with_the_valid_range() -> None:
    doc = CrdtDocument()
    doc.insert(0, "日本")
    with pytest.raises(ValueError, match="from 0 to 2"):
        doc.insert(3, "x")


@pytest.mark.parametrize("text", ["a\ud800b", b"bytes", 5, None])
def test_text_that_cannot_be_stored_is_refused(text: object) -> None:
    doc = CrdtDocument()
    doc.insert(0, "ok")
    with pytest.raises(TextError):
        doc.insert(1, text)  # type: ignore[arg-type]
    assert doc.text == "ok"


# -- remote updates: validation --------------------------------------------------------------


def sample_update() -> bytes:
    doc = CrdtDocument(client_id=7)
    doc.insert(0, "héllo 😀")
    return doc.insert(3, "日本")


GARBAGE = [
    b"\x01",
    b"\xff\xff\xff",
    b"hello world",
    b"\x01\x01\x05\x00\x84\x00\x01a",  # truncated string
    b"\x05" + b"\x00" * 3,  # more struct runs than bytes
    b"\x01\x01\x01\x00\x1f\x01\x00",  # unknown struct kind 31
    b"\x00\x00\x00",  # trailing byte
    b"\x01\x01\x01\x80\x80\x80\x80\x10\x04\x01\x04text\x01a\x00",  # clock beyond 2**32
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_updates_are_refused_and_change_nothing(garbage: bytes) -> None:
    doc = CrdtDocument()
    doc.insert(0, "ünchanged")
    snapshot = doc.snapshot()
    with pytest.raises(UpdateError):
        doc.apply_update(garbage)
    assert doc.text == "ünchanged"
    assert doc.snapshot() == snapshot
    doc.insert(9, "!")  # and the document still works
    assert doc.text == "ünchanged!"


def test_every_truncation_of_a_real_update_is_refused_and_changes_nothing() -> None:
    update = sample_update()
    for cut in range(len(update)):
        doc = CrdtDocument()
        with pytest.raises(UpdateError):
            doc.apply_update(update[:cut] if cut else b"\x01")
        assert doc.text == ""


def test_an_update_whose_parent_is_ordinary_text_is_refused_whole() -> None:
    """yrs integrates the structs before the bad one and then fails: checked beforehand here."""
    def varstr(raw: bytes) -> bytes:
        return bytes([len(raw)]) + raw

    good = b"\x01\x07\x00\x04\x01" + varstr(b"text") + varstr(b"ok")  # client 7 at the root
    bad = b"\x01\x05\x00\x04\x00\x01\x01" + varstr(b"zz")  # client 5, parent = item 1#1
    update = b"\x02" + good + bad + b"\x00"
    raw: Doc = Doc(client_id=1)
    raw_text = raw.get("text", type=Text)
    raw_text.insert(0, "abc")
    with pytest.raises(RuntimeError):
        raw.apply_update(update)
    assert str(raw_text) == "abcok"  # what plain pycrdt leaves behind
    doc = CrdtDocument(client_id=1)
    doc.insert(0, "abc")
    with pytest.raises(UpdateError, match="cannot be integrated"):
        doc.apply_update(update)
    assert doc.text == "abc"
    assert decode_state_vector(doc.state_vector()) == {1: 3}


def test_updates_of_nested_types_are_still_accepted() -> None:
    other: Doc = Doc(client_id=9)
    other["meta"] = meta = Map()
    meta["title"] = Text("draft")
    doc = CrdtDocument()
    assert doc.apply_update(other.get_update())
    meta["title"].insert(0, "a ")  # this item names its parent (the nested text) by ID
    assert doc.apply_update(other.get_update(doc.state_vector()))
    assert str(doc.ydoc.get("meta", type=Map)["title"]) == "a draft"


def test_non_bytes_updates_are_refused() -> None:
    with pytest.raises(UpdateError, match="bytes"):
        CrdtDocument().apply_update("\x00\x00")  # type: ignore[arg-type]


def test_empty_and_duplicate_updates_bring_nothing_new() -> None:
    a, b = pair()
    update = a.insert(0, "x😀")
    assert b.apply_update(update) is True
    assert b.apply_update(update) is False
    assert b.apply_update(EMPTY_UPDATE) is False
    assert b.apply_update(b"") is False
    assert b.text == "x😀"


def test_a_duplicate_deletion_brings_nothing_new() -> None:
    a, b = pair()
    b.apply_update(a.insert(0, "abc"))
    deletion = a.delete(1, 1)
    assert b.apply_update(deletion) is True
    assert b.apply_update(deletion) is False


def test_malformed_state_vectors_are_refused() -> None:
    doc = CrdtDocument()
    doc.insert(0, "x")
    for bad in (b"", b"\x02\x01", b"\x01\x01\x01\x00", b"\xff"):
        with pytest.raises(UpdateError, match="state vector"):
            doc.diff(bad)


# -- causality, snapshots --------------------------------------------------------------------


def test_updates_out_of_causal_order_wait_and_then_apply() -> None:
    a, b = pair()
    updates = [a.insert(0, "one "), a.insert(4, "two "), a.insert(8, "three")]
    assert b.apply_update(updates[2]) is True  # new, though it cannot show yet
    assert b.apply_update(updates[1]) is True
    assert b.text == ""
    b.apply_update(updates[0])
    assert b.text == "one two three"


def test_every_delivery_order_of_one_writers_updates_gives_the_same_text() -> None:
    """Plain pycrdt 0.14.13 loses an insert in 6 of these 24 orders; the document must not."""
    source = CrdtDocument(client_id=2)
    updates = [source.insert(0, "X"), source.insert(0, "Y"), source.insert(2, "Z"),
               source.insert(1, "W")]
    for order in itertools.permutations(updates):
        doc = CrdtDocument(client_id=1)
        for update in order:
            doc.apply_update(update)
        assert doc.text == source.text == "YWXZ"


def test_out_of_order_deletions_and_inserts_from_two_writers_converge() -> None:
    a, b = pair()
    b.apply_update(a.insert(0, "héllo"))
    ups = [a.delete(0, 1), b.insert(5, " 😀"), a.insert(0, "H"), b.delete(0, 2), a.insert(1, "ä")]
    c = CrdtDocument(client_id=3)
    for update in reversed([a.diff(b"\x01\x01\x00"), *ups]):
        c.apply_update(update)
    a.apply_update(b.diff(a.state_vector()))
    b.apply_update(a.diff(b.state_vector()))
    assert c.text == a.text == b.text


def test_a_snapshot_keeps_updates_still_waiting_for_predecessors() -> None:
    a, b = pair()
    first = a.insert(0, "abc")
    c = CrdtDocument(client_id=3)
    c.apply_update(first)
    later = c.insert(1, "ZZ")  # depends on a's first update
    b.apply_update(later)  # b has not seen `first`
    assert b.text == ""
    reopened = CrdtDocument.from_snapshot(b.snapshot())
    reopened.apply_update(first)
    assert reopened.text == "aZZbc"


def test_a_newcomer_diff_includes_updates_still_waiting() -> None:
    a, b = pair()
    first = a.insert(0, "abc")
    c = CrdtDocument(client_id=3)
    c.apply_update(first)
    b.apply_update(c.insert(3, "!"))
    newcomer = CrdtDocument()
    newcomer.apply_update(b.diff(newcomer.state_vector()))
    newcomer.apply_update(first)
    assert newcomer.text == "abc!"


def test_waiting_updates_are_forgotten_once_integrated() -> None:
    a, b = pair()
    first, second = a.insert(0, "x"), a.insert(1, "y")
    b.apply_update(second)
    b.apply_update(first)
    assert b.text == "xy"
    assert b.snapshot() == b.ydoc.get_update()


def test_snapshot_round_trip_keeps_text_and_state() -> None:
    doc = CrdtDocument()
    doc.insert(0, "naïve 😀 コード")
    doc.delete(2, 1)
    again = CrdtDocument.from_snapshot(doc.snapshot())
    assert again.text == doc.text
    assert again.state_vector() == doc.state_vector()
    again.insert(len(again), "!")
    assert again.text == "nave 😀 コード!"


def test_diff_against_a_state_vector_holds_only_what_is_missing() -> None:
    a, b = pair()
    b.apply_update(a.insert(0, "shared "))
    a.insert(7, "näw")
    missing = a.diff(b.state_vector())
    assert len(missing) < len(a.diff())
    b.apply_update(missing)
    assert b.text == "shared näw"


# -- rich-text peers -------------------------------------------------------------------------


def test_embeds_from_a_rich_text_peer_do_not_shift_code_point_positions() -> None:
    doc = CrdtDocument(client_id=1)
    doc.insert(0, "héllo wörld")
    rich: Doc = Doc(client_id=5)
    rich_text = rich.get("text", type=Text)
    rich.apply_update(doc.diff())
    rich_text.insert_embed(len("héllo".encode()), {"image": "cat.png"})
    rich_text.format(0, 1, {"bold": True})
    doc.apply_update(rich.get_update(doc.state_vector()))
    assert doc.text == "héllo wörld"
    assert len(doc) == 11
    doc.insert(6, "big ")
    doc.delete(0, 1)
    assert doc.text == "éllo big wörld"
    rich.apply_update(doc.diff(rich.get_state()))
    chunks = [c for c, _ in rich_text.diff()]
    assert "".join(c for c in chunks if isinstance(c, str)) == "éllo big wörld"


# -- Rust panics -----------------------------------------------------------------------------


def real_panic() -> BaseException:
    """A genuine ``pyo3_runtime.PanicException``: pycrdt deleting inside a UTF-8 character."""
    ydoc: Doc = Doc()
    text = ydoc.get("text", type=Text)
    text.insert(0, "é")
    try:
        del text[1:2]
    except BaseException as exc:  # catching the panic is the point
        return exc
    raise AssertionError("pycrdt no longer panics here")


def test_a_pycrdt_panic_is_recognised_and_is_not_an_exception() -> None:
    panic = real_panic()
    assert is_panic(panic)
    assert not isinstance(panic, Exception)
    assert not is_panic(RuntimeError("x"))


def test_a_panic_while_applying_an_update_becomes_an_update_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    panic = real_panic()
    doc = CrdtDocument()
    doc.insert(0, "still here")

    def explode(update: bytes) -> None:
        raise panic

    monkeypatch.setattr(doc.ydoc, "apply_update", explode)
    with pytest.raises(UpdateError, match="panic"):
        doc.apply_update(CrdtDocument().insert(0, "x"))
    monkeypatch.undo()
    assert doc.text == "still here"


def test_a_panic_during_a_local_edit_becomes_a_crdt_error(monkeypatch: pytest.MonkeyPatch) -> None:
    panic = real_panic()
    doc = CrdtDocument()
    doc.insert(0, "日本")

    def explode(*args: object) -> None:
        raise panic

    monkeypatch.setattr(type(doc.ydoc.get("text", type=Text)), "insert", explode)
    with pytest.raises(CrdtError, match="refused"):
        doc.insert(1, "語")
    monkeypatch.undo()
    assert doc.text == "日本"
    doc.insert(1, "語")  # the index was rebuilt from the text
    assert doc.text == "日語本"


def test_keyboard_interrupts_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = CrdtDocument()

    def interrupt(update: bytes) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(doc.ydoc, "apply_update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        doc.apply_update(CrdtDocument().insert(0, "x"))
