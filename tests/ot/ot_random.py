"""Random text and ops for the OT tests: Hypothesis strategies and seeded generators.

The text is built from units that break naive code: emoji with ZWJ and skin tones, flags,
combining marks, CJK, astral letters, newlines.  Ops count code points, so they are free to cut
a ZWJ sequence or a flag in half — the type must still round-trip that.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

from ot.text_op import Op, push, trim

UNITS = [
    "a", "b", "z", " ", "\n", "\t", "é", "e\u0301", "ñ", "ß", "Ω", "漢", "字", "한", "ア",
    "💃", "🎉", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇫🇷", "🇯🇵", "\U0001d4b3", "𐍈",
    "\u0915\u094d\u0937", "a\u0308\u0301", "\u200b", "\ufeff", "{", "\"", "\\",
]

#: Any code point except lone surrogates (which no JSON can carry).
_ANY_CHAR = st.characters(blacklist_categories=("Cs",))

texts = st.one_of(
    st.lists(st.sampled_from(UNITS), max_size=12).map("".join),
    st.text(_ANY_CHAR, max_size=12),
)
nonempty_texts = st.one_of(
    st.lists(st.sampled_from(UNITS), min_size=1, max_size=6).map("".join),
    st.text(_ANY_CHAR, min_size=1, max_size=6),
)


@st.composite
def ops_on(draw: st.DrawFn, doc: str, max_steps: int = 6) -> Op:
    """A valid op on ``doc``: a walk of skips, inserts and deletes (text or length form)."""
    op: Op = []
    pos = 0
    for _ in range(draw(st.integers(0, max_steps))):
        kind = draw(st.sampled_from(("skip", "insert", "delete")))
        if kind == "insert":
            push(op, draw(nonempty_texts))
        elif pos < len(doc):
            n = draw(st.integers(1, len(doc) - pos))
            if kind == "skip":
                push(op, n)
            else:
                push(op, {"d": doc[pos:pos + n]} if draw(st.booleans()) else {"d": n})
            pos += n
    return trim(op)


def random_text(rng: random.Random, units: int = 12) -> str:
    if rng.random() < 0.3:
        return "".join(chr(rng.choice((rng.randint(32, 0xD7FF), rng.randint(0xE000, 0x10FFFF))))
                       for _ in range(rng.randint(0, units)))
    return "".join(rng.choice(UNITS) for _ in range(rng.randint(0, units)))


def random_op(rng: random.Random, doc: str, max_steps: int = 6, text_deletes: float = 0.5) -> Op:
    """Seeded counterpart of :func:`ops_on`."""
    op: Op = []
    pos = 0
    for _ in range(rng.randint(0, max_steps)):
        kind = rng.choice(("skip", "insert", "delete"))
        if kind == "insert":
            push(op, random_text(rng, 4) or "x")
        elif pos < len(doc):
            n = rng.randint(1, min(len(doc) - pos, 8 if rng.random() < 0.8 else len(doc)))
            if kind == "skip":
                push(op, n)
            else:
                push(op, {"d": doc[pos:pos + n]} if rng.random() < text_deletes else {"d": n})
            pos += n
    return trim(op)


def random_edit(rng: random.Random, doc: str) -> Op:
    """A keystroke-like op: one insert or one delete somewhere in ``doc``."""
    pos = rng.randint(0, len(doc))
    if doc and pos < len(doc) and rng.random() < 0.4:
        n = rng.randint(1, min(3, len(doc) - pos))
        return [pos, {"d": n}] if pos else [{"d": n}]
    text = random_text(rng, 3) or "x"
    return [pos, text] if pos else [text]
