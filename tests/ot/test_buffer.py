"""The chunked text buffer: same results as ``str``, atomic failures, invariants kept."""

from __future__ import annotations

import random

import pytest

from ot.buffer import TextBuffer
from ot.errors import BADLY_FORMED, NOT_APPLIED, InvalidOpError
from ot.text_op import apply
from tests.ot.ot_random import random_edit, random_op, random_text


def test_starts_with_the_given_text_in_chunks() -> None:
    buf = TextBuffer("a😀" * 50, chunk_size=16)
    assert buf.text == str(buf) == "a😀" * 50
    assert len(buf) == 100
    buf.check_invariants()


def test_empty_buffer() -> None:
    buf = TextBuffer()
    assert buf.text == ""
    assert len(buf) == 0
    buf.apply(["x"])
    assert buf.text == "x"


@pytest.mark.parametrize(("text", "chunk_size"), [(5, 8), ("x", 1), ("x", 2.0)])
def test_rejects_bad_construction(text: object, chunk_size: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        TextBuffer(text, chunk_size)  # type: ignore[arg-type]


def test_slice_reads_across_chunks() -> None:
    text = "".join(chr(0x1F600 + i % 50) + "ab" for i in range(40))
    buf = TextBuffer(text, chunk_size=8)
    for start, end in [(0, 0), (0, 120), (3, 17), (7, 8), (119, 120), (50, None)]:
        assert buf.slice(start, end) == text[start:end]


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (2, 1), (0, 11), (True, 2), (0, 1.5)])
def test_slice_rejects_bad_ranges(start: object, end: object) -> None:
    with pytest.raises(IndexError):
        TextBuffer("0123456789").slice(start, end)  # type: ignore[arg-type]


def test_insert_and_delete() -> None:
    buf = TextBuffer("héllo", chunk_size=4)
    buf.insert(5, " wörld 🎉")
    assert buf.delete(0, 1) == "h"
    buf.insert(0, "H")
    assert buf.text == "Héllo wörld 🎉"
    buf.check_invariants()


@pytest.mark.parametrize(("call", "args"), [
    ("insert", (6, "x")),
    ("insert", (-1, "x")),
    ("insert", (0, b"x")),
    ("insert", (0, "\udc00")),
    ("delete", (4, 2)),
    ("delete", (0, -1)),
    ("delete", (-1, 1)),
])
def test_insert_and_delete_refuse_bad_arguments_and_change_nothing(call: str,
                                                                   args: tuple) -> None:
    buf = TextBuffer("héllo", chunk_size=4)
    with pytest.raises((IndexError, TypeError, ValueError)):
        getattr(buf, call)(*args)
    assert buf.text == "héllo"
    buf.check_invariants()


@pytest.mark.parametrize(("op", "code"), [
    ([6, "x"], NOT_APPLIED),
    ([2, {"d": 4}], NOT_APPLIED),
    ([{"d": "hx"}], NOT_APPLIED),
    ([1, "x", 1, {"d": "x"}], NOT_APPLIED),  # the insert before the bad delete must not stick
    ([0, "x"], BADLY_FORMED),
    ([1, ""], BADLY_FORMED),
    ([1, {"d": 0}], BADLY_FORMED),
    ([1, {"d": 1, "x": 1}], BADLY_FORMED),
    ([True, "x"], BADLY_FORMED),
    ([1, "\ud800"], BADLY_FORMED),
    (["x", 1], BADLY_FORMED),
    ("x", BADLY_FORMED),
])
def test_a_failing_op_changes_nothing(op: object, code: str) -> None:
    buf = TextBuffer("héllo", chunk_size=4)
    with pytest.raises(InvalidOpError) as info:
        buf.apply(op)
    assert info.value.code == code
    assert buf.text == "héllo"
    buf.check_invariants()


@pytest.mark.parametrize("chunk_size", [2, 3, 8, 64])
@pytest.mark.parametrize("seed", range(6))
def test_random_ops_give_the_same_text_as_str(chunk_size: int, seed: int) -> None:
    rng = random.Random(seed)
    doc = random_text(rng, 40)
    buf = TextBuffer(doc, chunk_size)
    for step in range(300):
        op = random_op(rng, doc) if rng.random() < 0.5 else random_edit(rng, doc)
        doc = apply(doc, op)
        buf.apply(op)
        assert buf.text == doc, f"seed {seed}, step {step}, op {op!r}"
        buf.check_invariants()


@pytest.mark.parametrize("seed", range(3))
def test_long_deletes_and_pastes_across_many_chunks(seed: int) -> None:
    rng = random.Random(seed)
    doc = "".join(random_text(rng, 10) for _ in range(200))
    buf = TextBuffer(doc, chunk_size=16)
    for step in range(100):
        pos = rng.randint(0, len(doc))
        if rng.random() < 0.5 and pos < len(doc):
            n = rng.randint(1, len(doc) - pos)
            op = [pos, {"d": doc[pos:pos + n]}] if pos else [{"d": n}]
        else:
            text = "".join(random_text(rng, 10) for _ in range(rng.randint(1, 30))) or "x"
            op = [pos, text] if pos else [text]
        doc = apply(doc, op)
        buf.apply(op)
        assert buf.text == doc, f"seed {seed}, step {step}"
        buf.check_invariants()


def test_far_jumps_find_the_right_chunk() -> None:
    doc = "abcdefghij" * 100
    buf = TextBuffer(doc, chunk_size=8)
    for pos in (999, 0, 500, 3, 998, 250, 750):
        buf.apply([pos, "X"] if pos else ["X"])
        doc = doc[:pos] + "X" + doc[pos:]
        assert buf.text == doc
        buf.check_invariants()


def test_deleting_everything_leaves_one_empty_chunk() -> None:
    buf = TextBuffer("x" * 100, chunk_size=8)
    buf.apply([{"d": 100}])
    assert buf.text == ""
    buf.check_invariants()
    buf.apply(["again"])
    assert buf.text == "again"


def test_repr_says_length_and_chunks() -> None:
    assert repr(TextBuffer("abc")) == "TextBuffer(length=3, chunks=1)"
