"""Undo support: inverting ops.

An op inverts only if each of its deletes carries the text it removes (``{"d": "text"}``);
:func:`make_invertible` fills that text in from the document the op applies to.  As in the npm
type, ``invert(op)`` turns inserts into deletes and back, keeping skips.
"""

from __future__ import annotations

from collections.abc import Callable

from ot.buffer import TextBuffer
from ot.errors import InvalidOpError
from ot.text_op import Component, Op, OpLike, check, dlen, not_applied, push, trim


def _map(op: OpLike, fn: Callable[[int, Component, int], Component]) -> Op:
    """Rebuild ``op`` from ``fn(index, component, position in the original document)``."""
    out: Op = []
    pre = 0
    for i, c in enumerate(op):
        push(out, fn(i, c, pre))
        if type(c) is int:
            pre += c
        elif type(c) is dict:
            pre += dlen(c["d"])
    return trim(out)


def is_invertible(op: object) -> bool:
    """True if every delete of ``op`` carries its text."""
    return all(type(c) is not dict or type(c["d"]) is str for c in check(op))


def invert(op: object) -> Op:
    """The op undoing ``op`` (apply it to the document ``op`` produced)."""

    def swap(i: int, c: Component, _pre: int) -> Component:
        if type(c) is str:
            return {"d": c}
        if type(c) is dict:
            d = c["d"]
            if type(d) is not str:
                raise InvalidOpError(f"op component {i}: cannot invert a delete that does not "
                                     "carry the deleted text; call make_invertible first")
            return d
        return c

    return _map(check(op), swap)


def make_invertible(op: object, doc: str | TextBuffer) -> Op:
    """``op`` with each ``{"d": n}`` replaced by ``{"d": the n characters it deletes}`` from
    ``doc``, the document ``op`` applies to."""
    checked = check(op)
    size = len(doc)

    def fill(i: int, c: Component, pre: int) -> Component:
        if type(c) is dict and type(c["d"]) is int:
            n: int = c["d"]
            if pre + n > size:
                raise not_applied(f"op component {i}: delete of {n} at {pre} goes past the end "
                                  f"of the document (length {size})")
            text = doc.slice(pre, pre + n) if isinstance(doc, TextBuffer) else doc[pre:pre + n]
            return {"d": text}
        return c

    return _map(checked, fill)


def strip_invertible(op: object) -> Op:
    """``op`` with deleted text replaced by its length (smaller on the wire)."""
    return _map(check(op), lambda _i, c, _pre: {"d": dlen(c["d"])} if type(c) is dict else c)


def invert_with_doc(op: object, doc: str | TextBuffer) -> Op:
    """``invert(make_invertible(op, doc))``."""
    return invert(make_invertible(op, doc))
