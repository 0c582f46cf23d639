"""The server document: commit order, transform of late ops, dedup, history limits."""

from __future__ import annotations

import gc
import random

import pytest

from ot.errors import (
    DuplicateOpError,
    InvalidOpError,
    OpTooOldError,
    VersionTooNewError,
)
from ot.server_doc import CommittedOp, ServerDocument
from ot.text_op import apply
from tests.ot.ot_random import random_edit, random_op, random_text


def test_an_op_at_the_current_version_is_applied_as_is() -> None:
    doc = ServerDocument("héllo")
    op = [5, " wörld"]
    assert doc.submit(op, 0) == (op, 0)
    assert doc.text == "héllo wörld"
    assert doc.version == 1
    assert len(doc) == 11


def test_a_late_op_is_transformed_over_the_ops_committed_since() -> None:
    doc = ServerDocument("abc")
    doc.submit(["XY"], 0)
    committed, v = doc.submit([3, "!"], 0)
    assert (committed, v) == ([5, "!"], 1)
    assert doc.text == "XYabc!"


def test_a_late_insert_at_the_same_place_goes_after_the_committed_one() -> None:
    """The server transforms the late op as "left": ShareDB's rule, and the client's."""
    doc = ServerDocument("")
    doc.submit(["first"], 0)
    doc.submit(["second"], 0)
    assert doc.text == "secondfirst"


def test_a_late_delete_of_deleted_text_becomes_a_noop_and_is_still_committed() -> None:
    doc = ServerDocument("abc")
    doc.submit([1, {"d": 1}], 0)
    assert doc.submit([1, {"d": "b"}], 0) == ([], 1)
    assert doc.text == "ac"
    assert doc.version == 2


def test_a_resubmitted_op_is_reported_with_its_commit_version() -> None:
    doc = ServerDocument("abc")
    doc.submit(["x"], 0, "alice", 1)
    doc.submit([1, "y"], 1, "bob", 1)
    with pytest.raises(DuplicateOpError) as info:
        doc.submit(["x"], 0, "alice", 1)
    assert info.value.version == 0
    assert info.value.code == "ERR_OP_ALREADY_SUBMITTED"
    assert doc.text == "xyabc"
    assert doc.version == 2


def test_a_resubmission_found_after_other_ops_reports_its_own_version() -> None:
    doc = ServerDocument("")
    doc.submit(["a"], 0, "bob", 1)
    doc.submit(["b"], 1, "alice", 7)
    doc.submit(["c"], 2, "bob", 2)
    with pytest.raises(DuplicateOpError) as info:
        doc.submit(["b"], 0, "alice", 7)
    assert info.value.version == 1


@pytest.mark.parametrize(("src", "seq"), [("alice", 2), ("bob", 1), (None, None), (None, 1)])
def test_ops_with_another_identity_are_not_duplicates(src: str | None, seq: int | None) -> None:
    doc = ServerDocument("")
    doc.submit(["x"], 0, "alice", 1)
    doc.submit(["y"], 0, src, seq)
    assert doc.text == "yx"


def test_an_op_from_the_future_is_refused() -> None:
    doc = ServerDocument("abc")
    with pytest.raises(VersionTooNewError) as info:
        doc.submit(["x"], 1)
    assert info.value.code == "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"
    assert (doc.text, doc.version) == ("abc", 0)


@pytest.mark.parametrize("version", [-1, 0.0, True, "0", None])
def test_a_malformed_version_is_refused(version: object) -> None:
    doc = ServerDocument("abc")
    with pytest.raises(InvalidOpError, match="version must be an int >= 0"):
        doc.submit(["x"], version)  # type: ignore[arg-type]
    assert (doc.text, doc.version) == ("abc", 0)


@pytest.mark.parametrize("late", [False, True])
@pytest.mark.parametrize("op", [[9, "x"], [0, "x"], [{"d": "zz"}], "x", [1, 1]])
def test_an_invalid_op_changes_nothing(op: object, late: bool) -> None:
    doc = ServerDocument("abc")
    doc.submit([3, "d"], 0)
    with pytest.raises(InvalidOpError):
        doc.submit(op, 0 if late else 1)
    assert (doc.text, doc.version) == ("abcd", 1)
    assert doc.ops_since(0) == [CommittedOp(0, [3, "d"], None, None)]


def test_ops_since_returns_the_committed_ops_in_order() -> None:
    doc = ServerDocument("abc")
    doc.submit([1, {"d": "b"}], 0, "a", 1)
    doc.submit([{"d": 1}, "x"], 1, "b", 5)
    doc.submit(["late"], 0, "c", 2)
    assert doc.ops_since(1) == [
        CommittedOp(1, [{"d": 1}, "x"], "b", 5),
        CommittedOp(2, ["late"], "c", 2),
    ]
    assert doc.ops_since(3) == []
    assert doc.ops_since(0)[0] == CommittedOp(0, [1, {"d": "b"}], "a", 1)


def test_ops_since_replays_to_the_current_text() -> None:
    rng = random.Random(5)
    doc = ServerDocument("start")
    for _ in range(200):
        doc.submit(random_op(rng, doc.text), doc.version)
    text = "start"
    for committed in doc.ops_since(0):
        text = apply(text, committed.op)
    assert text == doc.text


def test_ops_since_refuses_versions_outside_the_history() -> None:
    doc = ServerDocument("", max_history=2)
    for i in range(6):
        doc.submit([i, "x"] if i else ["x"], i)
    with pytest.raises(VersionTooNewError):
        doc.ops_since(7)
    with pytest.raises(OpTooOldError):
        doc.ops_since(doc.oldest_version - 1)


def test_max_history_keeps_at_least_that_many_ops() -> None:
    doc = ServerDocument("", max_history=3)
    for i in range(20):
        doc.submit(["x"], i)
        assert len(doc.ops_since(max(doc.version - 3, 0))) == min(doc.version, 3)
    assert 0 < doc.oldest_version <= doc.version - 3


def test_an_op_older_than_the_kept_history_is_refused_clearly() -> None:
    doc = ServerDocument("abc")
    for i in range(5):
        doc.submit(["x"], i)
    doc.compact(2)
    assert doc.oldest_version == 3
    with pytest.raises(OpTooOldError, match="older than the oldest kept history") as info:
        doc.submit(["y"], 2)
    assert info.value.code == "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND"
    assert (info.value.version, info.value.oldest) == (2, 3)
    assert doc.submit(["y"], 3) == (["y"], 5)  # the oldest kept version still works


def test_compact_keeps_the_document() -> None:
    doc = ServerDocument("abc")
    doc.submit(["x"], 0)
    doc.compact(0)
    assert (doc.text, doc.version, doc.oldest_version) == ("xabc", 1, 1)
    assert doc.ops_since(1) == []
    with pytest.raises(ValueError):
        doc.compact(-1)


def test_a_document_can_start_at_a_version() -> None:
    doc = ServerDocument("snap", 41)
    assert doc.submit([4, "!"], 41) == ([4, "!"], 41)
    with pytest.raises(OpTooOldError):
        doc.submit(["x"], 40)


@pytest.mark.parametrize("kwargs", [{"version": -1}, {"max_history": -1}, {"max_history": 1.5}])
def test_bad_construction_is_refused(kwargs: dict) -> None:
    with pytest.raises((InvalidOpError, ValueError)):
        ServerDocument("", **kwargs)


@pytest.mark.parametrize("seed", range(8))
def test_ops_made_at_random_old_versions_all_take_effect(seed: int) -> None:
    """Each late op is rebased onto the current text; replaying the log gives the text."""
    rng = random.Random(seed)
    start = random_text(rng, 20)
    doc = ServerDocument(start)
    texts = [start]  # text at each version
    for step in range(150):
        base = rng.randint(max(0, doc.version - 6), doc.version)
        op = random_edit(rng, texts[base]) if rng.random() < 0.7 else random_op(rng, texts[base])
        committed, v = doc.submit(op, base, f"c{step % 3}", step)
        assert apply(texts[v], committed) == doc.text, f"seed {seed}, step {step}"
        texts.append(doc.text)


def test_committed_records_are_not_tracked_by_the_cyclic_gc() -> None:
    """Performance guard: a tracked record per op makes full GC passes grow with history."""
    doc = ServerDocument("abc")
    doc.submit([1, {"d": 1}], 0, "a", 1)
    doc.submit([1, {"d": "c"}, "xy"], 1, "a", 2)
    gc.collect()
    assert not any(gc.is_tracked(record) for record in doc._log)
