"""Pure operational transformation for plain text, wire-compatible with ShareDB's
``text-unicode`` type (npm ``ot-text-unicode``).  No I/O: values in, values out.

* :mod:`ot.text_op` — the op type: check, normalize, apply, builders;
* :mod:`ot.transform` — compose and transform; :mod:`ot.cursor` — cursors; :mod:`ot.invert`;
* :mod:`ot.buffer` — a chunked text buffer for large documents;
* :mod:`ot.server_doc` — the server's document: version, op log, submit with transform/dedup;
* :mod:`ot.client` — the sans-I/O client state machine;
* :mod:`ot.errors` — the error classes, with ShareDB's codes.
"""

from ot.buffer import TextBuffer
from ot.client import Client, Submission
from ot.cursor import Selection, transform_position, transform_selection
from ot.errors import (
    ClientStateError,
    DuplicateOpError,
    InvalidOpError,
    OpTooOldError,
    OTError,
    VersionGapError,
    VersionTooNewError,
)
from ot.invert import invert, invert_with_doc, is_invertible, make_invertible, strip_invertible
from ot.server_doc import CommittedOp, ServerDocument
from ot.text_op import (
    Component,
    Op,
    apply,
    check,
    delete_op,
    insert_op,
    is_noop,
    is_valid,
    normalize,
)
from ot.transform import compose, transform

__all__ = [
    "Client",
    "ClientStateError",
    "CommittedOp",
    "Component",
    "DuplicateOpError",
    "InvalidOpError",
    "OTError",
    "Op",
    "OpTooOldError",
    "Selection",
    "ServerDocument",
    "Submission",
    "TextBuffer",
    "VersionGapError",
    "VersionTooNewError",
    "apply",
    "check",
    "compose",
    "delete_op",
    "insert_op",
    "invert",
    "invert_with_doc",
    "is_invertible",
    "is_noop",
    "is_valid",
    "make_invertible",
    "normalize",
    "strip_invertible",
    "transform",
    "transform_position",
    "transform_selection",
]
