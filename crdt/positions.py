"""Code-point positions to UTF-8 byte offsets, for texts that are not pure ASCII.

pycrdt's ``Text`` addresses its content by UTF-8 byte offsets: an offset inside a multibyte
character silently appends at the end, and a deletion there panics.  Our interface speaks code
points.  For ASCII text the two coincide (the document keeps a fast path for that); for anything
else this index answers "which byte offset is code point *n*?" without re-encoding the text.

Shape: the text is mirrored as a list of chunks of at most ``MAX_CHUNK`` code points, each with
its UTF-8 length.  A cursor remembers where the last lookup landed, because editors work around
a caret: a lookup walks from the cursor, usually zero or one chunk.  Within a chunk the byte
offset comes from encoding the shorter side of the split — or from nothing when the chunk is
ASCII (its byte length equals its length).

Invariants: ``len(chunks) == len(sizes) >= 1``; ``sizes[i] == len(chunks[i].encode())``; only the
last chunk may be empty (and only when the whole text is); ``non_ascii`` counts chunks whose
size differs from their length; the cursor ``(ci, cp, b)`` gives the code-point and byte start
of chunk ``ci``.  Edits return the byte offsets pycrdt needs; if pycrdt then refuses one (a bug,
never bad input: positions are checked first), the document drops the index and rebuilds it.
"""

from __future__ import annotations

from typing import Any

MAX_CHUNK = 512  # split above this many code points
MIN_CHUNK = 64  # merge a chunk this small into its neighbour


class CodePointIndex:
    """Byte offsets of code-point positions in a text, kept in step with local edits."""

    __slots__ = ("_b", "_chunks", "_ci", "_cp", "_sizes", "length", "non_ascii")

    def __init__(self, text: str) -> None:
        step = MAX_CHUNK // 2
        self._chunks = [text[i : i + step] for i in range(0, len(text), step)] or [""]
        self._sizes = [len(chunk.encode()) for chunk in self._chunks]
        self.length = len(text)
        self.non_ascii = sum(
            1 for chunk, size in zip(self._chunks, self._sizes, strict=True) if size != len(chunk)
        )
        self._ci = self._cp = self._b = 0

    @property
    def text(self) -> str:
        return "".join(self._chunks)

    def byte_offset(self, pos: int) -> int:
        """The UTF-8 offset of code point ``pos`` (``0 <= pos <= length``, checked by caller)."""
        ci, cp, b = self._seek(pos)
        return b + self._bytes_into(ci, pos - cp)

    def insert(self, pos: int, text: str, size: int) -> int:
        """Mirror inserting ``text`` (``size`` UTF-8 bytes) at code point ``pos``.

        Returns the byte offset of ``pos`` before the insertion: where pycrdt must insert.
        This is the hot path of non-ASCII typing, hence written out rather than composed.
        """
        ci, cp, b = self._ci, self._cp, self._b
        chunks = self._chunks
        chunk = chunks[ci]
        if not cp <= pos <= cp + len(chunk):
            ci, cp, b = self._seek(pos)
            chunk = chunks[ci]
        off = pos - cp
        sizes = self._sizes
        old = sizes[ci]
        n = len(chunk)
        if old == n:
            offset = b + off
        elif off <= n // 2:
            offset = b + len(chunk[:off].encode())
        else:
            offset = b + old - len(chunk[off:].encode())
        chunk = chunk[:off] + text + chunk[off:]
        chunks[ci] = chunk
        sizes[ci] = new = old + size
        self.length += len(text)
        if (old == n) != (new == len(chunk)):
            self.non_ascii += 1 if old == n else -1
        if len(chunk) > MAX_CHUNK:
            self._split(ci)
        return offset

    def delete(self, pos: int, length: int) -> tuple[int, int]:
        """Mirror deleting ``length`` code points at ``pos``; return (byte offset, byte length)."""
        ci, cp, b = self._ci, self._cp, self._b
        chunks, sizes = self._chunks, self._sizes
        chunk = chunks[ci]
        off = pos - cp
        if off >= 0 and off + length < len(chunk):  # inside the cursor's chunk: the usual case
            size = sizes[ci]
            n = len(chunk)
            if size == n:
                start, gone = b + off, length
            else:
                start = b + self._bytes_into(ci, off)
                gone = len(chunk[off : off + length].encode())
            chunk = chunk[:off] + chunk[off + length :]
            chunks[ci] = chunk
            sizes[ci] = size - gone
            self.length -= length
            if size != n and size - gone == len(chunk):
                self.non_ascii -= 1
            if len(chunk) < MIN_CHUNK:
                self._compact(ci)
            return start, gone
        ci, cp, b = self._seek(pos)
        off = pos - cp
        start = b + self._bytes_into(ci, off)
        removed = 0
        left = length
        first = ci
        while left:
            chunk = chunks[ci]
            if off == len(chunk):  # the range starts at the next chunk's first character
                ci += 1
                first = ci
                off = 0
                continue
            take = min(left, len(chunk) - off)
            size = sizes[ci]
            was_ascii = size == len(chunk)
            gone = take if was_ascii else len(chunk[off : off + take].encode())
            chunk = chunk[:off] + chunk[off + take :]
            chunks[ci] = chunk
            sizes[ci] = size - gone
            self._recount(was_ascii, sizes[ci] == len(chunk))
            removed += gone
            left -= take
            if off == 0 and not chunk and len(chunks) > 1:
                del chunks[ci], sizes[ci]  # the next chunk slides into slot ci
            else:
                ci += 1
                off = 0
        self.length -= length
        self._compact(min(first, len(chunks) - 1))
        return start, removed

    def _seek(self, pos: int) -> tuple[int, int, int]:
        """Find the chunk holding ``pos`` (at a boundary: the earlier chunk), from the cursor."""
        ci, cp, b = self._ci, self._cp, self._b
        chunks = self._chunks
        if pos < cp:
            while pos < cp:
                ci -= 1
                cp -= len(chunks[ci])
                b -= self._sizes[ci]
        else:
            last = len(chunks) - 1
            while ci < last and pos > cp + len(chunks[ci]):
                cp += len(chunks[ci])
                b += self._sizes[ci]
                ci += 1
        self._ci, self._cp, self._b = ci, cp, b
        return ci, cp, b

    def _bytes_into(self, ci: int, off: int) -> int:
        chunk = self._chunks[ci]
        size = self._sizes[ci]
        if size == len(chunk):
            return off
        if off <= len(chunk) // 2:
            return len(chunk[:off].encode())
        return size - len(chunk[off:].encode())

    def _recount(self, was_ascii: bool, is_ascii: bool) -> None:
        if was_ascii != is_ascii:
            self.non_ascii += 1 if was_ascii else -1

    def _split(self, ci: int) -> None:
        chunk = self._chunks[ci]
        parts = [chunk[i : i + MAX_CHUNK // 2] for i in range(0, len(chunk), MAX_CHUNK // 2)]
        sizes = [len(part.encode()) for part in parts]
        self._recount(self._sizes[ci] == len(chunk), True)
        self.non_ascii += sum(1 for p, s in zip(parts, sizes, strict=True) if s != len(p))
        self._chunks[ci : ci + 1] = parts
        self._sizes[ci : ci + 1] = sizes
        if self._ci > ci:  # chunks after the split moved right; their starts did not change
            self._ci += len(parts) - 1

    def _compact(self, ci: int) -> None:
        """Merge a chunk that shrank below ``MIN_CHUNK`` into a neighbour (if one fits)."""
        chunks = self._chunks
        if len(chunks) > 1 and len(chunks[ci]) < MIN_CHUNK:
            if ci + 1 < len(chunks) and len(chunks[ci + 1]) + len(chunks[ci]) <= MAX_CHUNK:
                self._merge(ci)
            elif ci > 0 and len(chunks[ci - 1]) + len(chunks[ci]) <= MAX_CHUNK:
                self._merge(ci - 1)
        if self._ci >= len(chunks):  # the cursor's chunk was deleted at the very end
            self._ci = self._cp = self._b = 0

    def _merge(self, ci: int) -> None:
        """Join chunk ``ci + 1`` onto chunk ``ci``."""
        chunks, sizes = self._chunks, self._sizes
        if self._ci == ci + 1:  # keep the cursor on the merged chunk, at its start
            self._ci, self._cp, self._b = ci, self._cp - len(chunks[ci]), self._b - sizes[ci]
        elif self._ci > ci + 1:
            self._ci -= 1
        for i in (ci, ci + 1):
            self._recount(sizes[i] == len(chunks[i]), True)
        chunks[ci] += chunks.pop(ci + 1)
        sizes[ci] += sizes.pop(ci + 1)
        self._recount(True, sizes[ci] == len(chunks[ci]))


def rich_offset(chunks: list[tuple[Any, Any]], pos: int) -> int:
    """Text offset of the place just after code point ``pos`` in a text holding embeds.

    Position 0 is the very start; position p > 0 is right after the p-th character, before any
    embed that follows it.  pycrdt counts each embed as one unit.
    """
    if pos == 0:
        return 0
    seen = units = 0
    for content, _attrs in chunks:
        if isinstance(content, str):
            if pos <= seen + len(content):
                return units + len(content[: pos - seen].encode())
            seen += len(content)
            units += len(content.encode())
        else:
            units += 1
    return units
