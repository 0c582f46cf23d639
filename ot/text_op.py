"""The plain-text op type, wire-compatible with npm ``ot-text-unicode`` (ShareDB's
``text-unicode``).

An op is a list of components walked over the document from its start:

* ``int`` n > 0 — skip n characters;
* ``str`` (non-empty) — insert this text here;
* ``{"d": n}`` / ``{"d": "text"}`` — delete n characters here; the text form also says *what*
  was deleted, which makes the op invertible.

Lengths and positions count Unicode code points (Python ``str`` indexing already does; the npm
type counts with ``unicount``).  The op does not have to skip the rest of the document, and a
trailing skip is not allowed.

This module holds the shape rules (:func:`check`, :func:`normalize`), applying to a ``str`` and
the op builders.  :mod:`ot.transform` holds compose/transform, :mod:`ot.cursor` cursor
transformation, :mod:`ot.invert` inversion.

We are stricter than the npm type in three ways, on purpose (an op that passes here always
passes there): components must be exactly ``int``/``str``/``{"d": …}`` (no ``bool``, ``float``,
extra keys or lone surrogates, which JSON and orjson cannot carry), a delete must stay inside
the document, and a delete that carries text must match the text it deletes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeAlias

from ot.errors import BADLY_FORMED, NOT_APPLIED, InvalidOpError

Delete: TypeAlias = dict[str, int | str]
Component: TypeAlias = int | str | Delete
Op: TypeAlias = list[Component]
#: What the internal, unchecked functions accept: the server's log keeps ops as tuples.
OpLike: TypeAlias = Sequence[Component]

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True if ``text`` holds a UTF-16 surrogate code point, which no JSON encoder can send."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def dlen(d: int | str) -> int:
    """The number of code points a delete's ``d`` value removes."""
    return d if type(d) is int else len(d)  # type: ignore[arg-type]


def component_length(c: Component) -> int:
    """Length of a component in code points (skip count, insert length or delete length)."""
    if type(c) is dict:
        return dlen(c["d"])
    if type(c) is int:
        return c
    return len(c)  # type: ignore[arg-type]


def _bad(i: int, message: str) -> InvalidOpError:
    return InvalidOpError(f"op component {i}: {message}", BADLY_FORMED)


def _type_name(value: object) -> str:
    return type(value).__name__


def check_delete(c: dict[object, object], i: int) -> int:
    """Validate a delete component and return its length."""
    if len(c) != 1 or "d" not in c:
        keys = sorted(map(str, c))
        raise _bad(i, f"a delete must be {{'d': n}} or {{'d': 'text'}}, got keys {keys}")
    d = c["d"]
    if type(d) is int:
        if d <= 0:
            raise _bad(i, f"a delete must remove at least 1 character, got {d}")
        return d
    if type(d) is str:
        if not d:
            raise _bad(i, "a delete's text must not be empty")
        if has_lone_surrogate(d):
            raise _bad(i, "a delete's text must not contain lone surrogates")
        return len(d)
    raise _bad(i, f"a delete's 'd' must be an int > 0 or a non-empty str, got {_type_name(d)}")


def check(op: object) -> Op:
    """Raise :class:`InvalidOpError` unless ``op`` is a valid op; return it, typed.

    The rules are ``checkOp`` of the npm type plus the strictness described in the module
    docstring: skips are ints > 0 and never adjacent or trailing, inserts are non-empty strings,
    deletes are ``{"d": n > 0}`` or ``{"d": "non-empty"}``.
    """
    if type(op) is not list:
        raise InvalidOpError(f"an op must be a list of components, got {_type_name(op)}")
    last_was_skip = False
    for i, c in enumerate(op):
        t = type(c)
        if t is int:
            if c <= 0:
                raise _bad(i, f"a skip must be an int > 0, got {c}")
            if last_was_skip:
                raise _bad(i, "adjacent skips must be combined into one")
            last_was_skip = True
            continue
        last_was_skip = False
        if t is str:
            if not c:
                raise _bad(i, "an insert must not be empty")
            if has_lone_surrogate(c):
                raise _bad(i, "an insert must not contain lone surrogates")
        elif t is dict:
            check_delete(c, i)
        else:
            raise _bad(i, f"expected an int (skip), str (insert) or {{'d': …}} (delete), "
                       f"got {_type_name(c)}")
    if last_was_skip:
        raise _bad(len(op) - 1, "an op must not end with a skip")
    return op


def is_valid(op: object) -> bool:
    """True if :func:`check` accepts ``op``."""
    try:
        check(op)
    except InvalidOpError:
        return False
    return True


def push(op: Op, c: Component | None) -> None:
    """Append ``c`` to ``op``, merging it into a last component of the same kind.

    The npm type's ``makeAppend``: no-op components (``None``, 0, ``""``, empty deletes) vanish,
    adjacent skips add up, inserts concatenate, and deletes concatenate their text when both
    carry text (keeping the op invertible) or else add their lengths.  Never mutates components.
    """
    if not c:
        return
    t = type(c)
    if t is dict:
        d = c["d"]  # type: ignore[index]
        if not d:
            return
    if op:
        last = op[-1]
        if type(last) is t:
            if t is dict:
                ld = last["d"]  # type: ignore[index]
                if type(ld) is str and type(d) is str:
                    op[-1] = {"d": ld + d}
                else:
                    op[-1] = {"d": dlen(ld) + dlen(d)}
            else:
                op[-1] = last + c  # type: ignore[operator]
            return
    op.append(c)


def trim(op: Op) -> Op:
    """Drop a trailing skip (there is at most one in an op built with :func:`push`)."""
    if op and type(op[-1]) is int:
        op.pop()
    return op


def normalize(op: object) -> Op:
    """The canonical form of a loosely built op (what ShareDB clients send after
    ``type.normalize``): zero skips and empty inserts/deletes dropped, neighbours of the same
    kind merged, the trailing skip trimmed.  Returns a new list; idempotent.

    Accepts everything :func:`check` does plus zero/empty components and adjacent skips; still
    rejects negative numbers and foreign types.
    """
    if type(op) is not list:
        raise InvalidOpError(f"an op must be a list of components, got {_type_name(op)}")
    out: Op = []
    for i, c in enumerate(op):
        t = type(c)
        if t is int:
            if c < 0:
                raise _bad(i, f"a skip must be an int >= 0, got {c}")
        elif t is dict:
            d = c.get("d") if len(c) == 1 else None
            if (type(d) is int and d == 0) or d == "":
                continue  # an empty delete is a no-op, as in the npm type
            check_delete(c, i)
        elif t is str:
            if c and has_lone_surrogate(c):
                raise _bad(i, "an insert must not contain lone surrogates")
        else:
            raise _bad(i, f"expected an int, str or {{'d': …}}, got {_type_name(c)}")
        push(out, c)
    return trim(out)


def base_length(op: OpLike) -> int:
    """The number of characters of the original document ``op`` walks over (skips + deletes):
    the least document length it can apply to."""
    n = 0
    for c in op:
        if type(c) is int:
            n += c
        elif type(c) is dict:
            n += dlen(c["d"])
    return n


def target_length(op: OpLike, doc_length: int) -> int:
    """The document length after applying ``op`` to a document of ``doc_length``."""
    delta = 0
    for c in op:
        if type(c) is str:
            delta += len(c)
        elif type(c) is dict:
            delta -= dlen(c["d"])
    return doc_length + delta


def not_applied(message: str) -> InvalidOpError:
    return InvalidOpError(message, NOT_APPLIED)


def apply(doc: str, op: object) -> str:
    """Apply ``op`` to the text ``doc`` and return the new text.

    Raises :class:`InvalidOpError` if the op is malformed, walks past the end of ``doc`` or
    deletes text other than the text its delete carries.  (For large documents edited many
    times use :class:`ot.buffer.TextBuffer`, which does not copy the whole text per op.)
    """
    checked = check(op)
    parts: list[str] = []
    pos = 0
    size = len(doc)
    for i, c in enumerate(checked):
        if type(c) is int:
            if pos + c > size:
                raise not_applied(f"op component {i}: skip of {c} at {pos} goes past the end "
                                  f"of the document (length {size})")
            parts.append(doc[pos:pos + c])
            pos += c
        elif type(c) is str:
            parts.append(c)
        else:
            d = c["d"]  # type: ignore[index]
            n = dlen(d)
            if pos + n > size:
                raise not_applied(f"op component {i}: delete of {n} at {pos} goes past the end "
                                  f"of the document (length {size})")
            if type(d) is str and doc[pos:pos + n] != d:
                raise not_applied(f"op component {i}: delete expected {d!r} at {pos}, the "
                                  f"document has {doc[pos:pos + n]!r}")
            pos += n
    parts.append(doc[pos:])
    return "".join(parts)


def _check_pos(pos: object, what: str) -> int:
    if type(pos) is not int or pos < 0:
        raise InvalidOpError(f"{what} must be an int >= 0, got {pos!r}")
    return pos


def insert_op(pos: int, text: str) -> Op:
    """The op inserting ``text`` at code-point ``pos`` (``[]`` for empty text), as the npm
    type's ``insert`` builds it."""
    _check_pos(pos, "insert position")
    if type(text) is not str:
        raise InvalidOpError(f"inserted text must be a str, got {_type_name(text)}")
    if not text:
        return []
    if has_lone_surrogate(text):
        raise InvalidOpError("inserted text must not contain lone surrogates")
    return [pos, text] if pos else [text]


def delete_op(pos: int, text_or_length: int | str) -> Op:
    """The op deleting ``text_or_length`` at code-point ``pos`` (``[]`` when empty), as the npm
    type's ``remove`` builds it; pass the text to make the op invertible."""
    _check_pos(pos, "delete position")
    if type(text_or_length) is int:
        if text_or_length < 0:
            raise InvalidOpError(f"delete length must be >= 0, got {text_or_length}")
    elif type(text_or_length) is not str:
        raise InvalidOpError(f"delete needs a length (int) or the deleted text (str), got "
                             f"{_type_name(text_or_length)}")
    elif has_lone_surrogate(text_or_length):
        raise InvalidOpError("deleted text must not contain lone surrogates")
    if not text_or_length:
        return []
    component: Delete = {"d": text_or_length}
    return [pos, component] if pos else [component]


def is_noop(op: OpLike) -> bool:
    """True for the empty op (what a normalized op that changes nothing is)."""
    return len(op) == 0
