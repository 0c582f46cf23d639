"""The code-point to UTF-8 index, against a plain ``str`` model."""

from __future__ import annotations

import random

import pytest

from crdt.positions import MAX_CHUNK, CodePointIndex

UNITS = [
    "a", "b", " ", "\n", "é", "e\u0301", "日本", "😀", "👩\u200d👩\u200d👧", "🇫🇷",
    "\U0001d4b3",  # an astral letter
]


def utf8_offset(text: str, pos: int) -> int:
    return len(text[:pos].encode())


def check_invariants(index: CodePointIndex, model: str) -> None:
    assert index.text == model
    assert index.length == len(model)
    chunks, sizes = index._chunks, index._sizes
    assert all(size == len(chunk.encode()) for chunk, size in zip(chunks, sizes, strict=True))
    assert all(chunks[:-1]), "only the last chunk may be empty"
    assert all(len(chunk) <= MAX_CHUNK for chunk in chunks)
    assert index.non_ascii == sum(1 for c, s in zip(chunks, sizes, strict=True) if s != len(c))
    ci, cp, b = index._ci, index._cp, index._b
    assert cp == sum(map(len, chunks[:ci])) and b == sum(sizes[:ci])


def test_offsets_of_every_position_in_a_mixed_text() -> None:
    model = "aé😀" + "👩\u200d👩\u200d👧" + "日本" * 400 + "z"
    index = CodePointIndex(model)
    for pos in [*range(0, len(model) + 1, 7), len(model), 3, 2, 1, 0]:  # forward and back
        assert index.byte_offset(pos) == utf8_offset(model, pos)


def test_an_empty_text_has_one_empty_chunk() -> None:
    index = CodePointIndex("")
    assert index.byte_offset(0) == 0
    assert index.insert(0, "é", 2) == 0
    assert index.delete(0, 1) == (0, 2)
    check_invariants(index, "")


@pytest.mark.parametrize("seed", range(6))
def test_random_edits_keep_the_index_equal_to_the_model(seed: int) -> None:
    rng = random.Random(seed)
    model = "".join(rng.choice(UNITS) for _ in range(rng.randrange(0, 1500)))
    index = CodePointIndex(model)
    for step in range(400):
        if model and rng.random() < 0.45:
            pos = rng.randrange(len(model))
            length = rng.randint(1, min(len(model) - pos, rng.choice([1, 4, 200, 1500])))
            start, size = index.delete(pos, length)
            removed = model[pos : pos + length]
            assert (start, size) == (utf8_offset(model, pos), len(removed.encode()))
            model = model[:pos] + model[pos + length :]
        else:
            pos = rng.randint(0, len(model))
            text = "".join(rng.choice(UNITS) for _ in range(rng.choice([1, 2, 40, 900])))
            assert index.insert(pos, text, len(text.encode())) == utf8_offset(model, pos)
            model = model[:pos] + text + model[pos:]
        if step % 20 == 0:
            check_invariants(index, model)
    check_invariants(index, model)


def test_non_ascii_chunks_are_counted_so_the_document_can_return_to_ascii() -> None:
    index = CodePointIndex("x" * 2000)
    assert index.non_ascii == 0
    index.insert(1500, "😀", 4)
    assert index.non_ascii == 1
    index.delete(1500, 1)
    assert index.non_ascii == 0
