"""CRDT history as text ops: what each stored update did to the text, and edits made of ops.

History, restore and undo work on plain-text ops (the OT type's shape, :mod:`ot.text_op`) for
both engines, so one algorithm serves both.  For the CRDT that needs two translations:

* :func:`replay` applies stored updates one by one and reports, for each, the op it made on the
  text — read from pycrdt's Text event delta, which counts UTF-8 bytes (converted to code points
  here, deleted text included so the op can be inverted);
* :func:`apply_op` makes one local edit out of an op (several splices in one transaction),
  returning the one Yjs update to store and broadcast.

Pure: no I/O.  Replaying computes a delta per update (O(text) each); history is read rarely.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pycrdt import Text

from crdt.document import EMPTY_UPDATE, CrdtDocument
from crdt.errors import UpdateError
from ot.text_op import Op, OpLike, apply, push, trim
from ot.transform import compose


def _delta_op(delta: list[dict[str, Any]], before: str) -> Op:
    """A Text event delta (UTF-8 byte counts) over ``before`` as a code-point op whose deletes
    carry the deleted text."""
    data = before.encode("utf-8", "surrogatepass")
    ascii_ = len(data) == len(before)
    at = 0
    op: Op = []
    for item in delta:
        if "retain" in item:
            n = item["retain"]
            push(op, n if ascii_ else len(data[at:at + n].decode("utf-8", "surrogatepass")))
            at += n
        elif "delete" in item:
            n = item["delete"]
            push(op, {"d": data[at:at + n].decode("utf-8", "surrogatepass")})
            at += n
        elif isinstance(item.get("insert"), str) and item["insert"]:
            push(op, item["insert"])
    return trim(op)


def replay(document: CrdtDocument, updates: Iterable[bytes]) -> Iterator[tuple[Op, str]]:
    """Apply ``updates`` to ``document`` in order; yield ``(op, text after)`` for each.

    An update whose predecessors are missing yields an empty op (the document holds it until
    they arrive; the op of that later update then includes its effect).  Raises
    :class:`~crdt.errors.UpdateError` for an unreadable update.
    """
    text = document.ydoc.get(document.root, type=Text)
    deltas: list[list[dict[str, Any]]] = []
    sub = text.observe(lambda event: deltas.append(list(event.delta)))
    try:
        current = document.text
        for update in updates:
            deltas.clear()
            document.apply_update(update)
            op: Op = []
            for delta in deltas:  # one per transaction; several when held updates follow on
                step = _delta_op(delta, current)
                op = step if not op else compose(op, step)
                current = apply(current, step)
            yield op, current
    finally:
        text.unobserve(sub)


def hunks(op: OpLike) -> list[tuple[int, int, str]]:
    """``(position, code points deleted, text inserted)`` of each change of ``op``, in the
    coordinates of the text ``op`` applies to, left to right."""
    out: list[tuple[int, int, str]] = []
    pos = 0
    for c in op:
        if type(c) is int:
            pos += c
        elif type(c) is str:
            if out and out[-1][0] + out[-1][1] == pos:
                p, n, s = out[-1]
                out[-1] = (p, n, s + c)
            else:
                out.append((pos, 0, c))
        else:
            d = c["d"]  # type: ignore[index]
            n = d if type(d) is int else len(d)  # type: ignore[arg-type]
            if out and out[-1][0] + out[-1][1] == pos and not out[-1][2]:
                p, m, s = out[-1]
                out[-1] = (p, m + n, s)
            else:
                out.append((pos, n, ""))
            pos += n
    return out


def apply_op(document: CrdtDocument, op: OpLike) -> bytes:
    """Make ``op`` (code points, over the document's current text) one local edit; return its
    update (``EMPTY_UPDATE`` when it changes nothing).  Raises like
    :meth:`CrdtDocument.splice` (the document is unchanged then)."""
    changes = hunks(op)
    if not changes:
        return EMPTY_UPDATE
    size = len(document)
    last = changes[-1]
    if last[0] + last[1] > size:
        raise UpdateError(f"the op reaches code point {last[0] + last[1]} but the text has "
                          f"{size}")
    # right to left: the positions of the hunks still to make stay valid
    return document.splice_all(list(reversed(changes)))
