"""History as pure functions: the text at every version, restore diffs and selective undo, for
both engines, from the records the engines persist."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from crdt.document import EMPTY_UPDATE, CrdtDocument
from crdt.history import apply_op, hunks
from engines.crdt_engine import CRDTEngine
from engines.history import (
    ERR_HISTORY_COMPACTED,
    ERR_NOTHING_TO_UNDO,
    REDO,
    Source,
    build,
    commit,
    diff,
    parse_author,
    tagged,
    undo_op,
)
from engines.interface import Effects, EngineError
from engines.ot_engine import OTEngine, OTSubmit
from ot.text_op import apply

DATA = Path(__file__).resolve().parents[1] / "data"
ENGINES = ("ot", "crdt")


def trace_window(name: str, start: int, txns: int) -> tuple[str, list[list[list[Any]]]]:
    """The text after the trace's first ``start`` transactions, and the next ``txns``."""
    with gzip.open(DATA / name) as f:
        trace = json.load(f)
    text = trace["startContent"]
    for t in trace["txns"][:start]:
        for pos, ndel, ins in t["patches"]:
            text = text[:pos] + ins + text[pos + ndel:]
    return text, [t["patches"] for t in trace["txns"][start:start + txns]]


class Recorder:
    """An engine plus the records it persisted, as the store would keep them."""

    def __init__(self, kind: str) -> None:
        self.engine: Any = OTEngine.load() if kind == "ot" else CRDTEngine.load(client_id=1)
        self.kind = kind
        self.records: list[tuple[int | None, float | None, str, bytes]] = []
        if kind == "ot":  # ShareDB's create: the op at version 0
            self.keep(self.engine.apply(OTSubmit([], 0), "creator"), "creator")

    def keep(self, effects: Effects, author: str) -> None:
        for record in effects.persist:
            self.records.append((len(self.records) + 1, 1000.0 + len(self.records), author,
                                 record))

    def splice(self, pos: int, ndel: int, ins: str, author: str) -> None:
        if ndel:
            self.keep(self.engine.delete(pos, ndel, author), author)
        if ins:
            self.keep(self.engine.insert(pos, ins, author), author)

    def timeline(self) -> Any:
        return build(Source(self.kind, None, 0, None, self.records))


@pytest.mark.parametrize("window", [0, 98_700], ids=["start", "non-ascii"])
@pytest.mark.parametrize("kind", ENGINES)
def test_text_at_every_version_matches_replaying_the_trace_prefix(kind: str, window: int
                                                                  ) -> None:
    # seph-blog1 from its start, and where it pastes an SVG with arrows (↑ →) into the text
    start, txns = trace_window("seph-blog1.json.gz", window, 300)
    rec = Recorder(kind)
    expected = {len(rec.records): ""}  # version -> text, replayed on plain strings
    text = start
    rec.splice(0, 0, start, "trace")
    expected[len(rec.records)] = text
    for patches in txns:
        for pos, ndel, ins in patches:
            if ndel:
                rec.splice(pos, ndel, "", "trace")
                text = text[:pos] + text[pos + ndel:]
                expected[len(rec.records)] = text
            if ins:
                rec.splice(pos, 0, ins, "trace")
                text = text[:pos] + ins + text[pos:]
                expected[len(rec.records)] = text
    timeline = rec.timeline()
    assert dict(timeline.texts()) == {0: "", **expected}
    middle = timeline.head_version // 2
    assert timeline.text_at(middle) == expected[middle]
    assert timeline.head_text == text == rec.engine.text
    assert window == 0 or any(not t.isascii() for t in expected.values())


@pytest.mark.parametrize("kind", ENGINES)
def test_versions_carry_author_and_time(kind: str) -> None:
    rec = Recorder(kind)
    rec.splice(0, 0, "a", "alice")
    rec.splice(1, 0, "b", "bob")
    timeline = rec.timeline()
    assert [(e.author, e.time) for e in timeline.entries][-2:] == [("alice", rec.records[-2][1]),
                                                                   ("bob", rec.records[-1][1])]
    assert timeline.version_at(rec.records[-2][1]) == timeline.head_version - 1
    assert timeline.version_at(10**10) == timeline.head_version


@pytest.mark.parametrize("kind", ENGINES)
def test_unicode_round_trips_through_history(kind: str) -> None:
    rec = Recorder(kind)
    rec.splice(0, 0, "e\u0301 😀 漢字", "alice")  # combining mark, emoji, CJK
    rec.splice(2, 1, "", "bob")
    rec.splice(2, 0, "👩‍👩‍👧", "bob")
    rec.splice(0, 2, "", "alice")
    timeline = rec.timeline()
    texts = [t for _, t in timeline.texts()]
    assert texts[-4:] == ["e\u0301 😀 漢字", "e\u0301😀 漢字", "e\u0301👩‍👩‍👧😀 漢字",
                          "👩‍👩‍👧😀 漢字"]
    op = undo_op(timeline, "bob")
    assert apply(timeline.head_text, op) == "😀 漢字"


def test_versions_outside_the_kept_history_say_why() -> None:
    rec = Recorder("crdt")
    rec.splice(0, 0, "abc", "alice")
    snapshot = rec.engine.snapshot()
    rec.splice(3, 0, "d", "alice")
    timeline = build(Source("crdt", snapshot, 1, 1000.0, rec.records[1:]))
    assert timeline.text_at(1) == "abc" and timeline.text_at(2) == "abcd"
    with pytest.raises(EngineError) as gone:
        timeline.text_at(0)
    assert gone.value.code == ERR_HISTORY_COMPACTED
    with pytest.raises(EngineError) as future:
        timeline.text_at(3)
    assert future.value.code == "ERR_VERSION_UNKNOWN"
    with pytest.raises(EngineError) as early:
        timeline.version_at(999.0)
    assert early.value.code == ERR_HISTORY_COMPACTED


def test_restore_diff_is_one_change_between_common_prefix_and_suffix() -> None:
    assert diff("hello world", "hello brave world") == [6, "brave "]
    assert diff("abc😀def", "abcdef") == [3, {"d": "😀"}]
    assert diff("same", "same") == []
    for current, target in [("", "x"), ("x", ""), ("aXb", "aYb"), ("漢字", "漢")]:
        assert apply(current, diff(current, target)) == target


@pytest.mark.parametrize("kind", ENGINES)
def test_undo_keeps_the_later_edits_of_others(kind: str) -> None:
    rec = Recorder(kind)
    rec.splice(0, 0, "hello", "alice")
    rec.splice(5, 0, " world", "bob")
    rec.splice(0, 0, ">> ", "alice")
    rec.splice(3, 0, "[b]", "bob")
    timeline = rec.timeline()
    op = undo_op(timeline, "alice")
    assert apply(timeline.head_text, op) == "[b]hello world"
    rec.keep(commit(rec.engine, op, timeline.head_version, tagged("undo", "alice"),
                    timeline.head_text), tagged("undo", "alice"))
    timeline = rec.timeline()
    op = undo_op(timeline, "alice")  # the next one down alice's stack: "hello"
    assert apply(timeline.head_text, op) == "[b] world"


@pytest.mark.parametrize("kind", ENGINES)
def test_redo_reapplies_the_latest_undo_and_a_new_edit_clears_redo(kind: str) -> None:
    rec = Recorder(kind)
    rec.splice(0, 0, "one", "alice")
    rec.splice(3, 0, " two", "alice")

    def act(action: str) -> str:
        timeline = rec.timeline()
        op = undo_op(timeline, "alice", action)
        author = tagged(action, "alice")
        rec.keep(commit(rec.engine, op, timeline.head_version, author, timeline.head_text),
                 author)
        return str(rec.engine.text)

    assert act("undo") == "one"
    assert act("undo") == ""
    assert act(REDO) == "one"
    assert act(REDO) == "one two"
    with pytest.raises(EngineError) as nothing:
        act(REDO)
    assert nothing.value.code == ERR_NOTHING_TO_UNDO
    assert act("undo") == "one"
    rec.splice(3, 0, "!", "alice")
    with pytest.raises(EngineError):
        act(REDO)


def test_undo_with_nothing_to_undo_is_a_clear_error() -> None:
    rec = Recorder("crdt")
    rec.splice(0, 0, "x", "bob")
    with pytest.raises(EngineError) as exc:
        undo_op(rec.timeline(), "alice")
    assert exc.value.code == ERR_NOTHING_TO_UNDO and "alice" in str(exc.value)


def test_history_authors_are_tagged_and_parsed() -> None:
    assert parse_author(tagged("undo", "a:b")) == ("undo", "a:b")
    assert parse_author("relay:r1") == (None, "relay:r1")
    assert parse_author("alice") == (None, "alice")


def test_crdt_op_becomes_one_update_in_code_points() -> None:
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    alphabet = "ab😀漢e\u0301"
    for _ in range(50):
        doc = CrdtDocument()
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        doc.insert(0, text)
        peer = CrdtDocument.from_snapshot(doc.snapshot())  # a replica before the edit
        target = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        update = apply_op(doc, diff(text, target))
        assert doc.text == target
        assert (update == EMPTY_UPDATE) == (text == target)
        peer.apply_update(update)  # the one update carries the whole edit
        assert peer.text == target


def test_hunks_merge_adjacent_components() -> None:
    assert hunks([2, {"d": 3}, "xy", 4, "z"]) == [(2, 3, "xy"), (9, 0, "z")]


@pytest.mark.parametrize("kind", ENGINES)
def test_undo_passes_over_an_edit_others_already_removed(kind: str) -> None:
    rec = Recorder(kind)
    rec.splice(0, 0, "keep ", "alice")
    rec.splice(5, 0, "gone", "alice")
    rec.splice(5, 4, "", "bob")  # bob deleted alice's latest edit
    timeline = rec.timeline()
    assert apply(timeline.head_text, undo_op(timeline, "alice")) == ""


@pytest.mark.parametrize("kind", ENGINES)
def test_undoing_all_of_one_users_inserts_leaves_the_others_text_and_redo_restores(
        kind: str) -> None:
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    rec = Recorder(kind)
    alphabets = {"alice": "a😀", "bob": "b漢"}
    for _ in range(40):  # alice inserts; bob inserts and deletes anyone's text
        user = rng.choice(["alice", "bob"])
        text = str(rec.engine.text)
        if user == "bob" and text and rng.random() < 0.3:
            pos = rng.randrange(len(text))
            rec.splice(pos, rng.randrange(1, min(3, len(text) - pos) + 1), "", user)
            continue
        word = "".join(rng.choice(alphabets[user]) for _ in range(rng.randrange(1, 4)))
        rec.splice(rng.randrange(len(text) + 1), 0, word, user)
    final = str(rec.engine.text)

    def act(action: str) -> bool:
        timeline = rec.timeline()
        try:
            op = undo_op(timeline, "alice", action)
        except EngineError:
            return False
        author = tagged(action, "alice")
        rec.keep(commit(rec.engine, op, timeline.head_version, author, timeline.head_text),
                 author)
        return True

    for _ in range(50):
        if not act("undo"):
            break
    assert rec.engine.text == "".join(c for c in final if c not in "a😀")
    for _ in range(50):
        if not act(REDO):
            break
    assert rec.engine.text == final
