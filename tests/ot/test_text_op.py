"""The text op type: shape rules, normalize, apply and the op builders."""

from __future__ import annotations

import pytest

from ot.errors import BADLY_FORMED, NOT_APPLIED, InvalidOpError
from ot.text_op import (
    apply,
    base_length,
    check,
    component_length,
    delete_op,
    insert_op,
    is_noop,
    is_valid,
    normalize,
    target_length,
)

# -- check -----------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [
    [],
    ["a"],
    [3, "x"],
    [{"d": 2}],
    [{"d": "ab"}],
    [1, {"d": 1}, "x", 2, {"d": "😀"}],
    ["a", "b"],  # adjacent inserts are allowed (the npm type allows them too)
    [{"d": 1}, {"d": 2}],
    [2, "👨\u200d👩\u200d👧"],
])
def test_check_accepts_valid_ops(op: list) -> None:
    assert check(op) is op
    assert is_valid(op)


@pytest.mark.parametrize(("op", "fragment"), [
    ("abc", "must be a list"),
    ((1, "x"), "must be a list"),
    (None, "must be a list"),
    ({"d": 1}, "must be a list"),
    ([0, "x"], "skip must be an int > 0"),
    ([-2, "x"], "skip must be an int > 0"),
    ([1.5, "x"], "got float"),
    ([True, "x"], "got bool"),
    ([1, 2, "x"], "adjacent skips"),
    (["x", 3], "must not end with a skip"),
    ([3], "must not end with a skip"),
    ([""], "insert must not be empty"),
    ([{"d": 0}], "at least 1"),
    ([{"d": -1}], "at least 1"),
    ([{"d": ""}], "must not be empty"),
    ([{"d": 1.0}], "got float"),
    ([{"d": True}], "got bool"),
    ([{"d": None}], "got NoneType"),
    ([{"d": 1, "x": 2}], "a delete must be"),
    ([{"i": "x"}], "a delete must be"),
    ([{}], "a delete must be"),
    ([None], "got NoneType"),
    ([["x"]], "got list"),
    (["\ud800"], "lone surrogates"),
    ([{"d": "a\udfff"}], "lone surrogates"),
])
def test_check_rejects_malformed_ops_with_one_clear_error(op: object, fragment: str) -> None:
    with pytest.raises(InvalidOpError, match=fragment) as info:
        check(op)
    assert info.value.code == BADLY_FORMED
    assert not is_valid(op)


def test_invalid_op_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        check([0])


def test_check_names_the_bad_component() -> None:
    with pytest.raises(InvalidOpError, match="component 2"):
        check([1, "x", 0])


# -- normalize -------------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "expected"), [
    ([], []),
    ([0], []),
    ([5], []),
    ([1, 2, "x"], [3, "x"]),
    ([0, "x"], ["x"]),
    (["", "a", "", "b"], ["ab"]),
    ([{"d": 0}, {"d": ""}, "x"], ["x"]),
    ([{"d": 1}, {"d": 2}], [{"d": 3}]),
    ([{"d": "a"}, {"d": "b"}], [{"d": "ab"}]),
    ([{"d": "a"}, {"d": 2}], [{"d": 3}]),  # mixing loses the text, as in the npm type
    (["x", {"d": 1}], ["x", {"d": 1}]),  # order of insert and delete is kept
    ([2, "x", 3, 0], [2, "x"]),
])
def test_normalize_merges_drops_empties_and_trims(op: list, expected: list) -> None:
    assert normalize(op) == expected


def test_normalize_does_not_mutate_its_input() -> None:
    op = [{"d": 1}, {"d": 2}, 0, 1, "a", "b"]
    copy = [dict(c) if isinstance(c, dict) else c for c in op]
    normalize(op)
    assert op == copy


def test_normalized_ops_pass_check() -> None:
    assert check(normalize([0, 1, 1, "", "x", {"d": 0}, {"d": 2}, 4])) == [2, "x", {"d": 2}]


@pytest.mark.parametrize("op", ["x", [-1], [True], [1.0], [{"d": -1}], [None], [{"d": 1, "e": 1}]])
def test_normalize_rejects_what_cannot_be_made_valid(op: object) -> None:
    with pytest.raises(InvalidOpError):
        normalize(op)


# -- apply -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "op", "expected"), [
    ("", [], ""),
    ("", ["abc"], "abc"),
    ("abc", [3, "d"], "abcd"),
    ("abc", [1, {"d": 1}], "ac"),
    ("abc", [{"d": "ab"}, "X"], "Xc"),
    ("a😀b", [1, {"d": 1}, 1, "!"], "ab!"),  # the emoji is one code point
    ("👨\u200d👩\u200d👧", [2, {"d": 1}], "👨\u200d\u200d👧"),  # ops may cut a ZWJ sequence
    ("🇫🇷", [1, "x"], "🇫x🇷"),
    ("e\u0301", [1, {"d": "\u0301"}], "e"),
    ("漢字", [1, "語"], "漢語字"),
])
def test_apply(doc: str, op: list, expected: str) -> None:
    assert apply(doc, op) == expected


@pytest.mark.parametrize(("doc", "op", "fragment"), [
    ("abc", [4, "x"], "skip of 4 at 0 goes past the end"),
    ("abc", [3, {"d": 1}], "delete of 1 at 3 goes past the end"),
    ("abc", [{"d": 4}], "goes past the end"),
    ("abc", [1, {"d": "x"}], "delete expected 'x' at 1, the document has 'b'"),
    ("a😀", [1, {"d": "😃"}], "delete expected"),
])
def test_apply_rejects_ops_that_do_not_fit_the_document(doc: str, op: list,
                                                        fragment: str) -> None:
    with pytest.raises(InvalidOpError, match=fragment) as info:
        apply(doc, op)
    assert info.value.code == NOT_APPLIED


def test_apply_rejects_malformed_ops() -> None:
    with pytest.raises(InvalidOpError) as info:
        apply("abc", [1, 1, "x"])
    assert info.value.code == BADLY_FORMED


# -- builders and lengths --------------------------------------------------------------------


@pytest.mark.parametrize(("pos", "text", "expected"), [
    (0, "x", ["x"]),
    (3, "xy", [3, "xy"]),
    (5, "", []),
])
def test_insert_op_builds_like_the_npm_insert(pos: int, text: str, expected: list) -> None:
    assert insert_op(pos, text) == expected


@pytest.mark.parametrize(("pos", "what", "expected"), [
    (0, 2, [{"d": 2}]),
    (3, "ab", [3, {"d": "ab"}]),
    (3, 0, []),
    (3, "", []),
])
def test_delete_op_builds_like_the_npm_remove(pos: int, what: int | str, expected: list) -> None:
    assert delete_op(pos, what) == expected


@pytest.mark.parametrize(("pos", "text"),
                         [(-1, "x"), (True, "x"), (1.0, "x"), (0, 5), (0, "\ud83d")])
def test_insert_op_rejects_bad_arguments(pos: object, text: object) -> None:
    with pytest.raises(InvalidOpError):
        insert_op(pos, text)  # type: ignore[arg-type]


@pytest.mark.parametrize(("pos", "what"), [(-1, 1), (0, -1), (0, 1.5), (None, 1), (0, None)])
def test_delete_op_rejects_bad_arguments(pos: object, what: object) -> None:
    with pytest.raises(InvalidOpError):
        delete_op(pos, what)  # type: ignore[arg-type]


def test_lengths_count_code_points() -> None:
    op = [2, "😀x", {"d": "漢字"}, 1, {"d": 3}]
    assert [component_length(c) for c in op] == [2, 2, 2, 1, 3]
    assert base_length(op) == 8
    assert target_length(op, 10) == 10 + 2 - 5


def test_is_noop() -> None:
    assert is_noop([])
    assert not is_noop(["x"])
