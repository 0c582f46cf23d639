"""Bounds-checked readers for lib0's binary encoding (the one Yjs and y-protocols speak).

pycrdt ships a ``Decoder`` for this encoding, but it trusts its input: a truncated varint raises
``IndexError``, a length prefix longer than the data silently yields a short slice, and integers
are unbounded.  These readers check every bound and raise :class:`DecodeError` with a message, so
the update scanner and the sync-protocol reader can reject bad bytes before anything is changed.

Each reader takes ``(data, pos)`` and returns ``(value, new_pos)``: plain functions over an
immutable buffer keep them fast and reentrant.
"""

from __future__ import annotations

MAX_SAFE_INTEGER = 2**53 - 1  # lib0 refuses larger varints (JavaScript's Number limit)
MAX_ANY_DEPTH = 64  # nesting limit for lib0 "any" values, far beyond what a real client sends


class DecodeError(Exception):
    """Bytes that are not valid lib0 encoding; the message says what was expected where."""


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned LEB128 integer of at most 53 bits."""
    try:
        byte = data[pos]
    except IndexError:
        raise DecodeError(f"unexpected end of data at byte {pos} (expected an integer)") from None
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    shift = 7
    pos += 1
    end = len(data)
    while True:
        if pos >= end:
            raise DecodeError(f"unexpected end of data at byte {pos} inside an integer")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if value > MAX_SAFE_INTEGER or shift > 63:
            raise DecodeError(f"integer at byte {pos} exceeds 2**53 - 1")
    if value > MAX_SAFE_INTEGER:
        raise DecodeError(f"integer ending at byte {pos} exceeds 2**53 - 1")
    return value, pos


def read_var_int(data: bytes, pos: int) -> tuple[int, int]:
    """Read lib0's signed varint (sign in bit 6 of the first byte)."""
    try:
        byte = data[pos]
    except IndexError:
        raise DecodeError(f"unexpected end of data at byte {pos} (expected an integer)") from None
    value = byte & 0x3F
    negative = bool(byte & 0x40)
    pos += 1
    shift = 6
    end = len(data)
    while byte >= 0x80:
        if pos >= end:
            raise DecodeError(f"unexpected end of data at byte {pos} inside an integer")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if value > MAX_SAFE_INTEGER:
            raise DecodeError(f"integer ending at byte {pos} exceeds 2**53 - 1")
    return (-value if negative else value), pos


def read_var_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    """Read a length-prefixed byte array (lib0 ``varUint8Array``)."""
    length, pos = read_var_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise DecodeError(
            f"length prefix {length} at byte {pos} runs past the end of the data "
            f"({len(data) - pos} bytes left)"
        )
    return data[pos:end], end


def read_var_string(data: bytes, pos: int) -> tuple[str, int]:
    """Read a length-prefixed UTF-8 string (lib0 ``varString``)."""
    raw, end = read_var_bytes(data, pos)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError:
        raise DecodeError(f"string at byte {pos} is not valid UTF-8") from None


def skip_any(data: bytes, pos: int, depth: int = 0) -> int:
    """Skip one lib0 "any" value (the encoding of ``ContentAny`` and sub-document options)."""
    if depth > MAX_ANY_DEPTH:
        raise DecodeError(f"value at byte {pos} is nested deeper than {MAX_ANY_DEPTH} levels")
    try:
        tag = data[pos]
    except IndexError:
        raise DecodeError(f"unexpected end of data at byte {pos} (expected a value)") from None
    pos += 1
    if tag in (127, 126, 121, 120):  # undefined, null, false, true
        return pos
    if tag == 125:  # integer
        return read_var_int(data, pos)[1]
    if tag in (124, 123, 122):  # float32, float64, bigint64
        end = pos + (4 if tag == 124 else 8)
        if end > len(data):
            raise DecodeError(f"unexpected end of data at byte {pos} inside a number")
        return end
    if tag == 119:  # string
        return read_var_string(data, pos)[1]
    if tag == 116:  # bytes
        return read_var_bytes(data, pos)[1]
    if tag == 118:  # object
        count, pos = read_var_uint(data, pos)
        check_count(data, pos, count, "object entries")
        for _ in range(count):
            pos = read_var_string(data, pos)[1]
            pos = skip_any(data, pos, depth + 1)
        return pos
    if tag == 117:  # array
        count, pos = read_var_uint(data, pos)
        check_count(data, pos, count, "array items")
        for _ in range(count):
            pos = skip_any(data, pos, depth + 1)
        return pos
    raise DecodeError(f"unknown value tag {tag} at byte {pos - 1}")


def check_count(data: bytes, pos: int, count: int, what: str) -> None:
    """Refuse a count that could not fit in the bytes left (each entry takes at least a byte).

    This is what stops a ten-byte message from announcing a billion entries: decoders that
    preallocate (yrs does) would otherwise try to reserve that much memory.
    """
    if count > len(data) - pos:
        raise DecodeError(
            f"{count} {what} announced at byte {pos}, but only {len(data) - pos} bytes are left"
        )
