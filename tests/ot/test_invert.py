"""Inverting ops, and filling in deleted text to make them invertible."""

from __future__ import annotations

import pytest

from ot.buffer import TextBuffer
from ot.errors import NOT_APPLIED, InvalidOpError
from ot.invert import (
    invert,
    invert_with_doc,
    is_invertible,
    make_invertible,
    strip_invertible,
)
from ot.text_op import apply


def test_invert_swaps_inserts_and_deletes() -> None:
    assert invert([2, "ab", {"d": "x"}]) == [2, {"d": "ab"}, "x"]


def test_invert_undoes_the_op() -> None:
    doc = "a😀b漢"
    op = [1, {"d": "😀"}, "🎉🎉", 1, {"d": "漢"}]
    assert apply(apply(doc, op), invert(op)) == doc


def test_invert_refuses_deletes_without_text() -> None:
    with pytest.raises(InvalidOpError, match="call make_invertible first"):
        invert([1, {"d": 2}])


@pytest.mark.parametrize("doc", ["abcd", TextBuffer("abcd")])
def test_make_invertible_fills_in_the_deleted_text(doc: str | TextBuffer) -> None:
    assert make_invertible([1, {"d": 2}, "x"], doc) == [1, {"d": "bc"}, "x"]


def test_make_invertible_counts_code_points() -> None:
    assert make_invertible(["x", 1, {"d": 2}], "🇫🇷👍🏽") == ["x", 1, {"d": "🇷👍"}]


def test_make_invertible_refuses_deletes_past_the_end() -> None:
    with pytest.raises(InvalidOpError, match="past the end") as info:
        make_invertible([3, {"d": 2}], "abcd")
    assert info.value.code == NOT_APPLIED


def test_invert_with_doc_undoes_a_length_delete() -> None:
    doc = "hello"
    op = [1, {"d": 3}, "EY"]
    assert apply(apply(doc, op), invert_with_doc(op, doc)) == doc


def test_strip_invertible_replaces_text_by_length() -> None:
    assert strip_invertible([1, {"d": "😀b"}, "x"]) == [1, {"d": 2}, "x"]


def test_is_invertible() -> None:
    assert is_invertible([1, {"d": "a"}, "x"])
    assert not is_invertible([{"d": 1}])
    assert is_invertible([])
