"""The errors the CRDT core raises on bad input.

All of them are :class:`ValueError` subclasses under one base, :class:`CrdtError`, so a caller
can catch "the input was wrong" in one place; each message says what was wrong and what was
expected.  Raising one of them leaves the document (and awareness) unchanged.

pycrdt reports some bad input by a Rust panic, which surfaces as ``pyo3_runtime.PanicException``
— a :class:`BaseException` that ``except Exception`` does not catch and that cannot be imported
(pyo3 creates the class lazily, in no importable module).  :func:`is_panic` recognises it so the
few call sites that may reach a panic can turn it into one of these errors.
"""

from __future__ import annotations


class CrdtError(ValueError):
    """Base class of every error the CRDT core raises on bad input."""


class PositionError(CrdtError):
    """A code-point position or length outside the current text (or not an integer)."""


class TextError(CrdtError):
    """Text that cannot be stored: not a ``str``, or containing lone surrogates."""


class UpdateError(CrdtError):
    """Yjs update bytes that are malformed, truncated, or would corrupt the document."""


class ProtocolError(CrdtError):
    """A Yjs sync-protocol frame (or awareness update) that is malformed."""


def is_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust panic raised through pyo3 (``pyo3_runtime.PanicException``)."""
    cls = type(exc)
    return cls.__name__ == "PanicException" and cls.__module__ == "pyo3_runtime"
