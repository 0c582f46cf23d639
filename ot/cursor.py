"""Moving cursors and selections through an op, as the npm type's ``transformPosition`` /
``transformSelection`` do — so a Python client and a browser agree on where a remote caret is.

A cursor is a code-point offset.  An insert exactly at the cursor leaves the cursor *before*
the inserted text; a delete around the cursor pulls it to the delete's start.
"""

from __future__ import annotations

from typing import TypeAlias

from ot.errors import InvalidOpError
from ot.text_op import OpLike, check, dlen

#: A caret (``int``) or a range ``(anchor, focus)``; ``focus`` may be before ``anchor``.
Selection: TypeAlias = int | tuple[int, int]


def _check_cursor(cursor: object) -> int:
    if type(cursor) is not int or cursor < 0:
        raise InvalidOpError(f"a cursor must be an int >= 0, got {cursor!r}")
    return cursor


def transform_position(cursor: int, op: object) -> int:
    """Where ``cursor`` (a position in the document before ``op``) is after ``op``."""
    return transform_position_unchecked(_check_cursor(cursor), check(op))


def transform_position_unchecked(cursor: int, op: OpLike) -> int:
    """:func:`transform_position` for a valid cursor and op."""
    pos = 0  # how far the walk has got, counted in the new document
    for c in op:
        if cursor <= pos:
            break
        if type(c) is int:
            pos += c
        elif type(c) is str:
            pos += len(c)
            cursor += len(c)
        else:
            cursor -= min(dlen(c["d"]), cursor - pos)  # type: ignore[index]
    return cursor


def transform_selection(selection: Selection, op: object) -> Selection:
    """:func:`transform_position` for a caret or for both ends of an ``(anchor, focus)`` range.

    Lists are accepted for ranges (that is what arrives from JSON); a tuple is returned.
    """
    checked = check(op)
    if type(selection) is int:
        return transform_position_unchecked(_check_cursor(selection), checked)
    if isinstance(selection, (tuple, list)) and len(selection) == 2:
        anchor, focus = (_check_cursor(s) for s in selection)
        return (transform_position_unchecked(anchor, checked),
                transform_position_unchecked(focus, checked))
    raise InvalidOpError(f"a selection must be an int or an (anchor, focus) pair, got "
                         f"{selection!r}")
