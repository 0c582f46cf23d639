"""Compose and transform: the npm type's results, component for component."""

from __future__ import annotations

import pytest

from ot.errors import InvalidOpError
from ot.text_op import apply
from ot.transform import compose, transform


@pytest.mark.parametrize(("op", "other", "side", "expected"), [
    (["a"], ["b"], "left", ["a"]),  # same place: the left insert goes first
    (["a"], ["b"], "right", [1, "a"]),
    ([2, "x"], ["abc"], "left", [5, "x"]),
    ([2, "x"], [3, "abc"], "left", [2, "x"]),  # other is after us: no change
    ([1, "x"], [{"d": 2}], "left", ["x"]),  # our insert inside their delete survives
    ([{"d": 2}], [1, "x"], "left", [{"d": 1}, 1, {"d": 1}]),  # we must not delete their insert
    ([{"d": 3}], [{"d": 2}], "left", [{"d": 1}]),  # overlap is deleted only once
    ([{"d": "abc"}], [1, {"d": 1}], "left", [{"d": "ac"}]),  # deleted text follows along
    ([1, {"d": 1}], [{"d": 3}], "right", []),
    ([], [5, "x"], "left", []),
    (["x"], [], "right", ["x"]),
])
def test_transform(op: list, other: list, side: str, expected: list) -> None:
    assert transform(op, other, side) == expected


def test_transform_satisfies_tp1_on_an_example() -> None:
    doc = "héllo wörld"
    a = [1, {"d": 4}, "ey"]
    b = [5, "!", 1, {"d": "w"}, "W"]
    left = apply(apply(doc, b), transform(a, b, "left"))
    right = apply(apply(doc, a), transform(b, a, "right"))
    assert left == right == "hey! Wörld"


@pytest.mark.parametrize("side", ["", "LEFT", None, 0])
def test_transform_rejects_an_unknown_side(side: object) -> None:
    with pytest.raises(InvalidOpError, match="side must be 'left' or 'right'"):
        transform(["a"], ["b"], side)  # type: ignore[arg-type]


@pytest.mark.parametrize(("op", "other"), [([0], ["a"]), (["a"], [1, 1]), ("a", [])])
def test_transform_rejects_invalid_ops(op: object, other: object) -> None:
    with pytest.raises(InvalidOpError):
        transform(op, other, "left")


@pytest.mark.parametrize(("op1", "op2", "expected"), [
    (["a"], [1, "b"], ["ab"]),
    ([2, "x"], [2, {"d": 1}], []),  # inserting then deleting the same text is nothing
    ([{"d": 1}], [{"d": 1}], [{"d": 2}]),
    (["abc"], [1, {"d": 1}], ["ac"]),
    ([1, {"d": "b"}], [{"d": "a"}], [{"d": "ab"}]),
    ([3, "x"], [], [3, "x"]),
    ([], [{"d": 2}], [{"d": 2}]),
    ([2, {"d": 1}], [4, "z"], [2, {"d": 1}, 2, "z"]),
])
def test_compose(op1: list, op2: list, expected: list) -> None:
    assert compose(op1, op2) == expected


def test_compose_equals_applying_in_turn_on_an_example() -> None:
    doc = "日本語のテキスト😀"
    a = [2, {"d": "語"}, "😀", 3, "!"]
    b = [{"d": 1}, 4, {"d": 2}, "x"]
    assert apply(doc, compose(a, b)) == apply(apply(doc, a), b)


@pytest.mark.parametrize(("op1", "op2"), [([0], []), ([], [1]), ([], None)])
def test_compose_rejects_invalid_ops(op1: object, op2: object) -> None:
    with pytest.raises(InvalidOpError):
        compose(op1, op2)


def test_transform_and_compose_do_not_mutate_their_inputs() -> None:
    a = [{"d": "ab"}, "x"]
    b = [1, {"d": 1}, "y"]
    transform(a, b, "left")
    compose(a, [1, {"d": 1}])
    assert a == [{"d": "ab"}, "x"]
    assert b == [1, {"d": 1}, "y"]
