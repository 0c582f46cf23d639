"""Metadata errors: each says what was wrong and what was expected; nothing was changed.

Codes follow the server's ``ERR_…`` convention so the server maps them to replies one to one.
"""

from __future__ import annotations


class MetaError(ValueError):
    """Base of every metadata error (the caller's input was refused; no state changed)."""

    code = "ERR_META_INVALID"


class BadMetaInput(MetaError):
    """A write that is not a JSON object of fields, a bad field name, a value too big, ..."""

    code = "ERR_META_INVALID"


class UnknownPolicy(MetaError):
    """A policy name that is not one of the built-in ones (or ``custom`` without a merge)."""

    code = "ERR_META_POLICY"


class ClockDriftError(MetaError):
    """A remote timestamp too far ahead of local physical time: refused, never adopted."""

    code = "ERR_META_CLOCK_DRIFT"
