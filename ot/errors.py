"""Errors raised by the OT core.

Every error carries a stable machine-readable ``code``.  Where ShareDB has an error for the same
situation we reuse its code (``lib/error.js``), so a wire adapter can forward it to a ShareDB
client unchanged.  The classes split into "the op is wrong" (:class:`InvalidOpError`) and "the op
is fine but cannot be placed in history" (version errors, duplicates).
"""

from __future__ import annotations


class OTError(Exception):
    """Base class of every OT error; ``code`` is the stable identifier (``ERR_…``)."""

    code: str = "ERR_OT"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


#: The op is not a well-formed text-unicode op (wrong shape, empty insert, trailing skip …).
BADLY_FORMED = "ERR_OT_OP_BADLY_FORMED"
#: The op is well formed but does not fit the document (skips past the end, deletes text that is
#: not there).  ShareDB reports every failure of ``type.apply`` with this code.
NOT_APPLIED = "ERR_OT_OP_NOT_APPLIED"


class InvalidOpError(OTError, ValueError):
    """An op (or cursor) is malformed or does not fit the document it is applied to.

    Whoever raises it guarantees the document was left unchanged.  ``code`` is
    :data:`BADLY_FORMED` for shape errors and :data:`NOT_APPLIED` when the op does not fit the
    document.
    """

    code = BADLY_FORMED


class OpTooOldError(OTError):
    """The op was made against a version whose following ops are no longer kept.

    ShareDB reports the same situation (ops needed to transform the submission are missing) as
    ``ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND``.  The client must fetch the current document and redo
    its edit.
    """

    code = "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND"

    def __init__(self, version: int, oldest: int) -> None:
        super().__init__(
            f"op version {version} is older than the oldest kept history (version {oldest}); "
            f"expected a version between {oldest} and the current version — fetch the document "
            "again"
        )
        self.version = version
        self.oldest = oldest


class VersionTooNewError(OTError):
    """The op claims a version the document has not reached (ShareDB's code for it)."""

    code = "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"

    def __init__(self, version: int, current: int) -> None:
        super().__init__(
            f"op version {version} is newer than the document (version {current}); expected a "
            f"version <= {current}"
        )
        self.version = version
        self.current = current


class DuplicateOpError(OTError):
    """The op (same ``src`` and ``seq``) was already committed, at ``version``.

    Not a failure: a client resends its unacknowledged op after reconnecting.  ShareDB answers
    with ``ERR_OP_ALREADY_SUBMITTED`` internally and acknowledges the op to the client; callers
    do the same with :attr:`version`.
    """

    code = "ERR_OP_ALREADY_SUBMITTED"

    def __init__(self, src: str, seq: int, version: int) -> None:
        super().__init__(f"op {src!r}/{seq} was already committed at version {version}")
        self.src = src
        self.seq = seq
        self.version = version


class VersionGapError(OTError):
    """A client received an op or acknowledgement for a version it has not reached.

    Messages from the server were lost or reordered; the client must fetch the ops since its
    version (``ServerDocument.ops_since``) before going on.
    """

    code = "ERR_OT_VERSION_GAP"

    def __init__(self, what: str, version: int, expected: int) -> None:
        super().__init__(
            f"{what} for version {version} but the client is at version {expected}; expected "
            f"version {expected} — fetch the ops since {expected}"
        )
        self.version = version
        self.expected = expected


class ClientStateError(OTError):
    """An event arrived that the client's current state does not allow (e.g. an ack while
    nothing is awaiting one)."""

    code = "ERR_OT_CLIENT_STATE"
