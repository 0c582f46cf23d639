"""Compose and transform for the text op type — the npm ``ot-text-unicode`` algorithms, kept
component for component so that results are equal to the npm type's, not merely equivalent.

Both walk the first op with a :class:`_Taker` that hands out pieces of it on demand.  Results
are built with :func:`ot.text_op.push`, so they come out normalized (merged, no trailing skip).
"""

from __future__ import annotations

from ot.errors import InvalidOpError
from ot.text_op import Component, Delete, Op, OpLike, check, dlen, push, trim

_WHOLE = -1  # take(_WHOLE): the rest of the current component


def _dslice(d: int | str, start: int, end: int | None = None) -> int | str:
    """Part [start:end] of a delete's ``d`` value (a length or the deleted text)."""
    if type(d) is int:
        return d - start if end is None else min(d, end) - start
    return d[start:end]  # type: ignore[index]


class _Taker:
    """Hands out an op piece by piece.  Past its end an op skips forever, so ``take(n)`` then
    returns the skip ``n`` (and ``take(_WHOLE)`` returns ``None``).

    ``indivisible`` names the component kind that is never split: ``"i"`` (inserts, used by
    transform) or ``"d"`` (deletes, used by compose).
    """

    __slots__ = ("idx", "offset", "op")

    def __init__(self, op: OpLike) -> None:
        self.op = op
        self.idx = 0
        self.offset = 0  # into op[idx], in code points

    def peek(self) -> Component | None:
        return self.op[self.idx] if self.idx < len(self.op) else None

    def take(self, n: int, indivisible: str = "") -> Component | None:
        if self.idx == len(self.op):
            return None if n == _WHOLE else n
        c = self.op[self.idx]
        offset = self.offset
        if type(c) is int:
            if n == _WHOLE or c - offset <= n:
                self.idx += 1
                self.offset = 0
                return c - offset
            self.offset += n
            return n
        if type(c) is str:
            if n == _WHOLE or indivisible == "i" or len(c) - offset <= n:
                self.idx += 1
                self.offset = 0
                return c[offset:]
            self.offset += n
            return c[offset:offset + n]
        d = c["d"]  # type: ignore[index]
        if n == _WHOLE or indivisible == "d" or dlen(d) - offset <= n:
            self.idx += 1
            self.offset = 0
            return {"d": _dslice(d, offset)}
        self.offset += n
        return {"d": _dslice(d, offset, offset + n)}


def _length(c: Component) -> int:
    if type(c) is int:
        return c
    if type(c) is str:
        return len(c)
    return dlen(c["d"])  # type: ignore[index]


def transform(op: object, other: object, side: str) -> Op:
    """Transform ``op`` so it applies after ``other`` (both made against the same document).

    ``side`` breaks the tie when both insert at the same place: the ``"left"`` op's insert goes
    first.  ShareDB transforms a submitted op ``"left"`` over the ops committed before it, and a
    client transforms its pending op ``"left"`` and the server's op ``"right"``.
    TP1 holds: ``apply(apply(d, b), transform(a, b, "left")) ==
    apply(apply(d, a), transform(b, a, "right"))``.
    """
    if side != "left" and side != "right":
        raise InvalidOpError(f"side must be 'left' or 'right', got {side!r}")
    return transform_unchecked(check(op), check(other), side == "left")


def transform_unchecked(op: OpLike, other: OpLike, left: bool) -> Op:
    """:func:`transform` for ops already known to be valid (e.g. from the committed log)."""
    if len(op) <= 2 and len(other) <= 2:  # keystrokes: 2-3x faster, same result
        edit = _single(op)
        if edit is not None:
            other_edit = _single(other)
            if other_edit is not None:
                return _transform_single(*edit, *other_edit, left)
    return transform_general(op, other, left)


def _single(op: OpLike) -> tuple[int, str | Delete] | None:
    """``(position, insert or delete)`` if ``op`` is one edit (``[c]`` or ``[pos, c]``)."""
    if len(op) == 2:
        pos, c = op
        if type(pos) is int and type(c) is not int:
            return pos, c  # type: ignore[return-value]
    elif len(op) == 1:
        return 0, op[0]  # type: ignore[return-value]  # (a lone int would be a trailing skip)
    return None


def _at(pos: int, c: Component) -> Op:
    return [pos, c] if pos else [c]


def _transform_single(p: int, c: str | Delete, q: int, other: str | Delete, left: bool) -> Op:
    """Transform the edit ``c`` at ``p`` past the edit ``other`` at ``q``: the results of
    :func:`transform_general` worked out case by case (tests compare the two)."""
    if type(other) is str:  # they insert m characters at q
        m = len(other)
        if type(c) is str:
            return _at(p + m if q < p or (q == p and not left) else p, c)
        n = dlen(c["d"])  # type: ignore[index]
        if q <= p:
            return _at(p + m, c)
        if q >= p + n:
            return _at(p, c)
        d = c["d"]  # type: ignore[index]
        cut = q - p  # their insert lands inside our delete: split it around the insert
        return [*_at(p, {"d": _dslice(d, 0, cut)}), m, {"d": _dslice(d, cut)}]
    k = dlen(other["d"])  # type: ignore[index]  # they delete k characters at q
    before = min(max(p - q, 0), k)  # how many of them lie before our position
    if type(c) is str:
        return _at(q if q < p < q + k else p - before, c)
    d = c["d"]  # type: ignore[index]
    n = dlen(d)
    lo = min(max(q - p, 0), n)  # their range, in our delete's coordinates
    hi = min(max(q + k - p, 0), n)
    if hi <= lo:
        return _at(p - before, c)
    if hi - lo == n:
        return []
    rest = d - (hi - lo) if type(d) is int else d[:lo] + d[hi:]  # type: ignore[index]
    return _at(p - before, {"d": rest})


def transform_general(op: OpLike, other: OpLike, left: bool) -> Op:
    """The npm type's transform, for any valid ops."""
    out: Op = []
    taker = _Taker(op)
    take = taker.take
    for c2 in other:
        if type(c2) is int:  # other skips: copy op's components over that stretch
            length: int = c2
            while length > 0:
                c1 = take(length, "i")
                push(out, c1)
                if type(c1) is not str:
                    length -= _length(c1)  # type: ignore[arg-type]
        elif type(c2) is str:  # other inserts: step over its text (our insert first if left)
            if left and type(taker.peek()) is str:
                push(out, take(_WHOLE))
            push(out, len(c2))
        else:  # other deletes: our skips and deletes there vanish, our inserts stay
            length = dlen(c2["d"])  # type: ignore[index]
            while length > 0:
                c1 = take(length, "i")
                if type(c1) is int:
                    length -= c1
                elif type(c1) is str:
                    push(out, c1)
                else:
                    length -= dlen(c1["d"])  # type: ignore[index]
    while (c := take(_WHOLE)) is not None:
        push(out, c)
    return trim(out)


def compose(op1: object, op2: object) -> Op:
    """The single op equal to applying ``op1`` then ``op2``:
    ``apply(apply(d, op1), op2) == apply(d, compose(op1, op2))``."""
    return compose_unchecked(check(op1), check(op2))


def compose_unchecked(op1: OpLike, op2: OpLike) -> Op:
    """:func:`compose` for ops already known to be valid."""
    out: Op = []
    taker = _Taker(op1)
    take = taker.take
    for c in op2:
        if type(c) is int:  # op2 keeps: copy op1 over that stretch (op1's deletes cost nothing)
            length: int = c
            while length > 0:
                chunk = take(length, "d")
                push(out, chunk)
                if type(chunk) is not dict:
                    length -= _length(chunk)  # type: ignore[arg-type]
        elif type(c) is str:
            push(out, c)
        else:  # op2 deletes: original text becomes a delete, op1's inserts there cancel out
            d = c["d"]  # type: ignore[index]
            length = dlen(d)
            offset = 0
            while offset < length:
                chunk = take(length - offset, "d")
                if type(chunk) is int:
                    push(out, {"d": _dslice(d, offset, offset + chunk)})
                    offset += chunk
                elif type(chunk) is str:
                    offset += len(chunk)
                else:
                    push(out, chunk)
    while (rest := take(_WHOLE)) is not None:
        push(out, rest)
    return trim(out)
