"""Cursor and selection transformation, as the npm type's transformPosition/Selection."""

from __future__ import annotations

import pytest

from ot.cursor import transform_position, transform_selection
from ot.errors import InvalidOpError


@pytest.mark.parametrize(("cursor", "op", "expected"), [
    (2, ["xy"], 4),  # insert before the cursor pushes it right
    (0, ["x"], 0),  # insert exactly at the cursor leaves it before the text
    (2, [2, "x"], 2),
    (2, [3, "x"], 2),  # insert after the cursor: no change
    (3, [1, {"d": 1}], 2),  # delete before the cursor pulls it left
    (2, [1, {"d": 5}], 1),  # delete around the cursor moves it to the delete's start
    (5, [1, "😀", {"d": "ab"}], 4),
    (0, [{"d": 3}], 0),
])
def test_transform_position(cursor: int, op: list, expected: int) -> None:
    assert transform_position(cursor, op) == expected


def test_transform_selection_moves_both_ends() -> None:
    assert transform_selection((3, 1), ["ab"]) == (5, 3)
    assert transform_selection([1, 4], [2, {"d": 1}]) == (1, 3)
    assert transform_selection(2, ["x"]) == 3


@pytest.mark.parametrize("cursor", [-1, True, 1.0, None, "1"])
def test_transform_position_rejects_bad_cursors(cursor: object) -> None:
    with pytest.raises(InvalidOpError, match="cursor must be an int >= 0"):
        transform_position(cursor, ["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize("selection", [(1,), (1, 2, 3), "ab", None, (1, -2)])
def test_transform_selection_rejects_bad_selections(selection: object) -> None:
    with pytest.raises(InvalidOpError):
        transform_selection(selection, ["x"])  # type: ignore[arg-type]


def test_transform_position_rejects_invalid_ops() -> None:
    with pytest.raises(InvalidOpError):
        transform_position(1, [1, 1])
