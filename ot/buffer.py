"""A text buffer that applies ops without copying the whole document.

Why: a Python ``str`` is immutable, so editing a 100 KB document by slicing copies 100 KB per
keystroke.  Here the text is a list of chunks of at most ``chunk_size`` code points; an edit
rebuilds one chunk.  Python's ``len(str)`` already counts code points in O(1), so each chunk's
length is "cached" for free, and the total length is kept in ``_len``.

Finding the chunk of a position: edits cluster (people type where they typed last), so the
buffer remembers the last chunk it touched and its start offset and walks a chunk or two from
there.  Far jumps (several people typing in different places) bisect a table of chunk starts.
The table is kept lazily: an edit in chunk ``i`` only marks the starts after ``i`` stale (one
comparison on the hot path), and a jump recomputes the stale tail in C (``accumulate``) only
when it needs a position there.

Invariants (checked by :meth:`TextBuffer.check_invariants` in tests):

* ``_chunks`` is never empty; only the single chunk of an empty document may be empty;
* every chunk is at most ``_max`` code points long;
* ``_cs == sum(len(c) for c in _chunks[:_ci])`` and ``_len == sum(map(len, _chunks))``;
* ``_starts[i]`` is the start of chunk ``i`` for every ``i < _valid <= len(_chunks)``.

Every op is validated before the first chunk changes, so a failing op changes nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from ot.text_op import check, dlen, has_lone_surrogate, not_applied

DEFAULT_CHUNK_SIZE = 1024
_WALK = 2  # chunks walked from the remembered one before bisecting the chunk starts


class TextBuffer:
    """Mutable text in code points, edited by text-unicode ops or by insert/delete."""

    __slots__ = ("_chunks", "_ci", "_cs", "_len", "_max", "_min", "_starts", "_valid")

    def __init__(self, text: str = "", chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if type(text) is not str:
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if type(chunk_size) is not int or chunk_size < 2:
            raise ValueError(f"chunk_size must be an int >= 2, got {chunk_size!r}")
        self._max = chunk_size
        self._min = max(chunk_size // 4, 1)  # a shorter chunk is merged with a neighbour
        half = chunk_size // 2
        self._chunks = [text[i:i + half] for i in range(0, len(text), half)] or [""]
        self._len = len(text)
        self._ci = 0  # index of the remembered chunk
        self._cs = 0  # start offset of the remembered chunk
        self._starts: list[int] = []  # chunk start offsets, valid below _valid
        self._valid = 0

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    @property
    def text(self) -> str:
        """The whole text (joins the chunks: O(length))."""
        return "".join(self._chunks)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"TextBuffer(length={self._len}, chunks={len(self._chunks)})"

    def slice(self, start: int = 0, end: int | None = None) -> str:
        """The text from code point ``start`` up to ``end`` (default: the end)."""
        if end is None:
            end = self._len
        if type(start) is not int or type(end) is not int or not 0 <= start <= end <= self._len:
            raise IndexError(f"slice [{start!r}:{end!r}] is outside the text; expected "
                             f"0 <= start <= end <= {self._len}")
        if start == end:
            return ""
        ci, cs = self._seek(start)
        chunks = self._chunks
        parts = []
        while cs < end:
            chunk = chunks[ci]
            parts.append(chunk[max(start - cs, 0):end - cs])
            cs += len(chunk)
            ci += 1
        return "".join(parts)

    # -- editing -------------------------------------------------------------------------------

    def insert(self, pos: int, text: str) -> None:
        """Insert ``text`` at code point ``pos``."""
        if type(pos) is not int or not 0 <= pos <= self._len:
            raise IndexError(f"insert position {pos!r} is outside the text; expected "
                             f"0 <= pos <= {self._len}")
        if type(text) is not str:
            raise TypeError(f"inserted text must be a str, got {type(text).__name__}")
        if has_lone_surrogate(text):
            raise ValueError("inserted text must not contain lone surrogates")
        if text:
            self._insert(pos, text)

    def delete(self, pos: int, length: int) -> str:
        """Delete ``length`` code points at ``pos``; return the deleted text."""
        if (type(pos) is not int or type(length) is not int or pos < 0 or length < 0
                or pos + length > self._len):
            raise IndexError(f"delete of {length!r} at {pos!r} is outside the text; expected "
                             f"0 <= pos and pos + length <= {self._len}")
        deleted = self.slice(pos, pos + length)
        if length:
            self._delete(pos, length)
        return deleted

    def apply(self, op: object) -> None:
        """Apply a text-unicode op; raise :class:`InvalidOpError` (text unchanged) if it is
        malformed or does not fit (see :func:`ot.text_op.apply` for the rules)."""
        # Fast paths: one insert or one delete, what a keystroke sends.  Anything unusual falls
        # through to the general path, which also produces the error messages.
        if type(op) is list:
            n = len(op)
            if n == 2:
                pos, c = op
                if type(pos) is int and pos > 0:
                    tc = type(c)
                    if tc is str:
                        if c and pos <= self._len and (c.isascii() or not has_lone_surrogate(c)):
                            self._insert(pos, c)
                            return
                    elif tc is dict and len(c) == 1:
                        d = c.get("d")
                        if type(d) is int and d > 0 and pos + d <= self._len:
                            self._delete(pos, d)
                            return
            elif n == 1:
                c = op[0]
                tc = type(c)
                if tc is str:
                    if c and (c.isascii() or not has_lone_surrogate(c)):
                        self._insert(0, c)
                        return
                elif tc is dict and len(c) == 1:
                    d = c.get("d")
                    if type(d) is int and 0 < d <= self._len:
                        self._delete(0, d)
                        return
        self._apply_general(op)

    def _apply_general(self, op: object) -> None:
        checked = check(op)
        size = self._len
        pre = 0  # validate against the text first: nothing may change if the op fails
        for i, c in enumerate(checked):
            if type(c) is int:
                pre += c
                if pre > size:
                    raise not_applied(f"op component {i}: skip of {c} goes past the end of the "
                                      f"document (length {size})")
            elif type(c) is dict:
                d = c["d"]
                n = dlen(d)
                if pre + n > size:
                    raise not_applied(f"op component {i}: delete of {n} at {pre} goes past the "
                                      f"end of the document (length {size})")
                if type(d) is str and (actual := self.slice(pre, pre + n)) != d:
                    raise not_applied(f"op component {i}: delete expected {d!r} at {pre}, the "
                                      f"document has {actual!r}")
                pre += n
        pos = 0  # now apply, edit by edit, in new-document positions
        for c in checked:
            if type(c) is int:
                pos += c
            elif type(c) is str:
                self._insert(pos, c)
                pos += len(c)
            else:
                self._delete(pos, dlen(c["d"]))  # type: ignore[index]

    # -- internals: positions are valid here -----------------------------------------------------

    def _seek(self, pos: int) -> tuple[int, int]:
        """Index and start of a chunk with ``start <= pos <= start + len(chunk)``; remembered."""
        chunks = self._chunks
        ci = self._ci
        cs = self._cs
        for _ in range(_WALK):
            if pos < cs:
                ci -= 1
                cs -= len(chunks[ci])
            elif pos > cs + len(chunks[ci]):
                cs += len(chunks[ci])
                ci += 1
            else:
                break
        else:
            starts = self._starts
            valid = self._valid
            if not valid or pos > starts[valid - 1] + len(chunks[valid - 1]):
                start = starts[valid - 1] + len(chunks[valid - 1]) if valid else 0
                del starts[valid:]  # recompute the stale tail
                starts.extend(accumulate(map(len, chunks[valid:-1]), initial=start))
                valid = self._valid = len(chunks)
            ci = bisect_right(starts, pos, 0, valid) - 1
            cs = starts[ci]
        self._ci = ci
        self._cs = cs
        return ci, cs

    def _insert(self, pos: int, text: str) -> None:
        chunks = self._chunks
        ci = self._ci
        cs = self._cs
        chunk = chunks[ci]
        off = pos - cs
        if off < 0 or off > len(chunk):
            ci, cs = self._seek(pos)
            chunk = chunks[ci]
            off = pos - cs
        chunk = f"{chunk[:off]}{text}{chunk[off:]}" if off < len(chunk) else chunk + text
        self._len += len(text)
        if self._valid > ci:  # starts after this chunk move
            self._valid = ci + 1
        if len(chunk) <= self._max:
            chunks[ci] = chunk
        else:
            self._split(ci, chunk)

    def _split(self, ci: int, chunk: str) -> None:
        """Store an over-long ``chunk`` at ``ci`` as half-full pieces (the cache stays valid:
        the first piece starts where the chunk did)."""
        half = self._max // 2
        self._chunks[ci:ci + 1] = [chunk[i:i + half] for i in range(0, len(chunk), half)]

    def _delete(self, pos: int, n: int) -> None:
        chunks = self._chunks
        ci = self._ci
        cs = self._cs
        chunk = chunks[ci]
        off = pos - cs
        if off < 0 or off >= len(chunk):
            ci, cs = self._seek(pos)
            chunk = chunks[ci]
            off = pos - cs
            if off == len(chunk):  # at the end of a chunk: the text starts in the next one
                cs += len(chunk)
                ci += 1
                chunk = chunks[ci]
                off = 0
                self._ci = ci
                self._cs = cs
        self._len -= n
        end = off + n
        if end <= len(chunk):
            chunk = f"{chunk[:off]}{chunk[end:]}" if end < len(chunk) else chunk[:off]
            if len(chunk) >= self._min:
                chunks[ci] = chunk
                if self._valid > ci:  # starts after this chunk move
                    self._valid = ci + 1
                return
            last = ci + 1
        else:  # the delete runs on into the chunks after this one
            end -= len(chunk)
            last = ci + 1
            while end and end >= len(chunks[last]):
                end -= len(chunks[last])
                last += 1
            if end:
                chunk = chunk[:off] + chunks[last][end:]
                last += 1
            else:
                chunk = chunk[:off]
        if self._valid > ci:  # chunks from here on change (a merge may reach back to ci - 1)
            self._valid = ci
        chunks[ci:last] = [chunk]
        if len(chunk) > self._max:
            self._split(ci, chunk)
        else:
            self._rebalance(ci, cs)

    def _rebalance(self, ci: int, cs: int) -> None:
        """Merge a short or empty chunk at ``ci`` (starting at ``cs``) into a neighbour."""
        chunks = self._chunks
        chunk = chunks[ci]
        if len(chunk) >= self._min or len(chunks) == 1:
            return
        if ci + 1 < len(chunks) and len(chunk) + len(chunks[ci + 1]) <= self._max:
            chunks[ci:ci + 2] = [chunk + chunks[ci + 1]]
        elif ci > 0 and len(chunk) + len(chunks[ci - 1]) <= self._max:
            prev = chunks[ci - 1]
            chunks[ci - 1:ci + 1] = [prev + chunk]
            self._ci = ci - 1
            self._cs = cs - len(prev)
        elif not chunk:  # neighbours are full: just drop the empty chunk
            del chunks[ci]
            if ci == len(chunks):
                self._ci = ci - 1
                self._cs = cs - len(chunks[ci - 1])

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if an internal invariant is broken (for tests)."""
        chunks = self._chunks
        if not chunks or (len(chunks) > 1 and not all(chunks)):
            raise AssertionError(f"empty chunk in {list(map(len, chunks))}")
        if any(len(c) > self._max for c in chunks):
            raise AssertionError(f"over-long chunk in {list(map(len, chunks))}")
        if self._len != sum(map(len, chunks)):
            raise AssertionError("cached length is wrong")
        if not 0 <= self._ci < len(chunks) or self._cs != sum(map(len, chunks[:self._ci])):
            raise AssertionError("remembered chunk position is wrong")
        starts = [0, *accumulate(map(len, chunks[:-1]))]
        if self._valid > len(chunks) or self._starts[:self._valid] != starts[:self._valid]:
            raise AssertionError("chunk start table is wrong")
