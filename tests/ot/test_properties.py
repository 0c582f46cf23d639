"""Properties of the op type over random ops on random Unicode text (Hypothesis).

Derandomized, so every run checks the same examples and a failure replays; Hypothesis prints
the falsifying example.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ot.cursor import transform_position, transform_selection
from ot.invert import invert, make_invertible
from ot.text_op import apply, check, normalize
from ot.transform import compose, transform, transform_general, transform_unchecked
from tests.ot.ot_random import nonempty_texts, ops_on, texts

PROPERTY = settings(max_examples=300, derandomize=True, deadline=None)


@st.composite
def doc_and_two_ops(draw: st.DrawFn) -> tuple[str, list, list]:
    doc = draw(texts)
    return doc, draw(ops_on(doc)), draw(ops_on(doc))


@st.composite
def doc_and_sequential_ops(draw: st.DrawFn) -> tuple[str, list, list]:
    doc = draw(texts)
    a = draw(ops_on(doc))
    return doc, a, draw(ops_on(apply(doc, a)))


@PROPERTY
@given(doc_and_sequential_ops())
def test_apply_of_compose_equals_applying_in_turn(case: tuple[str, list, list]) -> None:
    doc, a, b = case
    assert apply(doc, compose(a, b)) == apply(apply(doc, a), b)


@PROPERTY
@given(doc_and_two_ops())
def test_transform_satisfies_tp1(case: tuple[str, list, list]) -> None:
    doc, a, b = case
    via_a = apply(apply(doc, a), transform(b, a, "right"))
    via_b = apply(apply(doc, b), transform(a, b, "left"))
    assert via_a == via_b


@PROPERTY
@given(doc_and_two_ops())
def test_transform_and_compose_return_valid_normalized_ops(case: tuple[str, list, list]) -> None:
    _doc, a, b = case
    for result in (transform(a, b, "left"), transform(a, b, "right"),
                   compose(a, transform(b, a, "right"))):
        assert check(result) == normalize(result)


@PROPERTY
@given(doc_and_two_ops())
def test_transform_keeps_deleted_text_correct(case: tuple[str, list, list]) -> None:
    """Transformed text deletes still name exactly the text they delete (apply checks it)."""
    doc, a, b = case
    apply(apply(doc, b), transform(make_invertible(a, doc), make_invertible(b, doc), "left"))


@PROPERTY
@given(st.data())
def test_invert_undoes_an_op(data: st.DataObject) -> None:
    doc = data.draw(texts)
    op = make_invertible(data.draw(ops_on(doc)), doc)
    assert apply(apply(doc, op), invert(op)) == doc
    assert invert(invert(op)) == op


_LOOSE_COMPONENT = st.one_of(
    st.integers(0, 5),
    texts,
    st.builds(lambda n: {"d": n}, st.integers(0, 3)),
    st.builds(lambda s: {"d": s}, texts),
)


@PROPERTY
@given(st.lists(_LOOSE_COMPONENT, max_size=8))
def test_normalize_is_idempotent_and_valid(op: list) -> None:
    once = normalize(op)
    assert normalize(once) == once
    check(once)


@PROPERTY
@given(st.data())
def test_normalize_preserves_the_effect_of_a_valid_op(data: st.DataObject) -> None:
    doc = data.draw(texts)
    op = data.draw(ops_on(doc))
    split = []  # the same op with inserts split in two: valid, but not normalized
    for c in op:
        split.extend([c[:1], c[1:]] if isinstance(c, str) and len(c) > 1 else [c])
    assert apply(doc, normalize(split)) == apply(doc, op)


@PROPERTY
@given(st.data())
def test_cursor_transform_stays_in_bounds(data: st.DataObject) -> None:
    doc = data.draw(texts)
    op = data.draw(ops_on(doc))
    cursor = data.draw(st.integers(0, len(doc)))
    after = len(apply(doc, op))
    assert 0 <= transform_position(cursor, op) <= after
    anchor, focus = transform_selection((cursor, len(doc) - cursor), op)  # type: ignore[misc]
    assert 0 <= anchor <= after
    assert 0 <= focus <= after


@PROPERTY
@given(texts, st.integers(0, 20), nonempty_texts)
def test_cursor_keeps_its_character_when_text_is_inserted_elsewhere(
    doc: str, at: int, text: str
) -> None:
    """A cursor before character k still points at that character after an insert."""
    at = min(at, len(doc))
    op = [at, text] if at else [text]
    new = apply(doc, op)
    for cursor in range(len(doc)):
        moved = transform_position(cursor, op)
        assert new[moved] == doc[cursor] or (cursor == at and new[moved:].startswith(text))


@st.composite
def single_edits_on(draw: st.DrawFn, doc: str) -> list:
    """One insert or one delete (length or text form) somewhere in ``doc``."""
    pos = draw(st.integers(0, len(doc)))
    if pos < len(doc) and draw(st.booleans()):
        n = draw(st.integers(1, len(doc) - pos))
        c: object = {"d": doc[pos:pos + n]} if draw(st.booleans()) else {"d": n}
    else:
        c = draw(nonempty_texts)
    return [pos, c] if pos else [c]


@settings(max_examples=1000, derandomize=True, deadline=None)
@given(st.data())
def test_the_single_edit_fast_path_equals_the_general_transform(data: st.DataObject) -> None:
    doc = data.draw(texts)
    short = st.one_of(single_edits_on(doc), ops_on(doc, max_steps=2))  # also ["x", {"d": 1}]
    a = data.draw(short)
    b = data.draw(short)
    for left in (True, False):
        assert transform_unchecked(a, b, left) == transform_general(a, b, left)
