"""The server's one error tree.

Every error a client can see carries a stable ``code`` (``ERR_…``, ShareDB's spelling where
ShareDB has one, so npm clients branch on it as they would against ShareDB) and says what was
wrong and what was expected.  The tree splits the way ShareDB's 4xxx/5xxx do:

* :class:`ClientError` — the client sent something wrong; the document is unchanged and the
  connection survives unless the error says otherwise (``close_code``).
* :class:`ServerError` — we failed (storage, a bug); the client may retry.

Each class also names the HTTP status (REST API) and the WebSocket close code used when the
error ends a connection.  Close codes 4400-4499 tell ``y-websocket`` not to reconnect (the
server decided, retrying cannot help); 4500-4599 and 1011/1013 mean "try again later".
"""

from __future__ import annotations

from typing import ClassVar

from engines.interface import EngineError


class WeftError(Exception):
    """Base of every error the server reports to a client."""

    code: ClassVar[str] = "ERR_UNKNOWN_ERROR"
    http_status: ClassVar[int] = 500
    close_code: ClassVar[int] = 1011

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            # Instance attribute shadows the class default: a subclass reused with a more
            # precise ShareDB code (e.g. ERR_OT_OP_BADLY_FORMED) keeps its status and close code.
            self.code = code  # type: ignore[misc]

    def as_dict(self) -> dict[str, str]:
        """The ``{code, message}`` object ShareDB puts in an ``error`` field."""
        return {"code": self.code, "message": self.message}


class ClientError(WeftError):
    """The client sent something wrong; nothing was changed."""

    code = "ERR_BAD_REQUEST"
    http_status = 400
    close_code = 1008


class BadMessage(ClientError):
    """A frame that is not valid for the protocol (bad JSON, missing fields, truncated)."""

    code = "ERR_MESSAGE_BADLY_FORMED"
    close_code = 1007


class InvalidFrame(BadMessage):
    """A binary frame that is not valid Yjs protocol; the connection is closed (4400: the
    provider must not reconnect and send it again)."""

    code = "ERR_FRAME_INVALID"
    close_code = 4400


class UnsupportedAction(ClientError):
    """A well-formed request this server does not implement (queries, historic snapshots)."""

    code = "ERR_DATABASE_METHOD_NOT_IMPLEMENTED"
    http_status = 501


class Unauthorized(ClientError):
    """No token, or a token that is malformed, forged or expired."""

    code = "ERR_UNAUTHORIZED"
    http_status = 401
    close_code = 4401


class Forbidden(ClientError):
    """A valid token that does not cover this document, or a read token asked to write."""

    code = "ERR_FORBIDDEN"
    http_status = 403
    close_code = 4403


class ReadOnly(Forbidden):
    """An edit sent over a read-only connection."""

    code = "ERR_READ_ONLY"


class DocNotFound(ClientError):
    """The document does not exist (and the request cannot create it)."""

    code = "ERR_DOC_DOES_NOT_EXIST"
    http_status = 404
    close_code = 4404


class EngineMismatch(ClientError):
    """The document is merged by the other engine; one document never gets both."""

    code = "ERR_ENGINE_MISMATCH"
    http_status = 409
    close_code = 4409


class DocTooLarge(ClientError):
    """Applying the change would take the document over the configured maximum size."""

    code = "ERR_DOC_TOO_LARGE"
    http_status = 413
    close_code = 4413


class MessageTooLarge(ClientError):
    """A frame larger than the configured maximum (checked before decoding)."""

    code = "ERR_MESSAGE_TOO_LARGE"
    http_status = 413
    close_code = 1009


class RateLimited(ClientError):
    """The connection sends edits faster than its budget allows."""

    code = "ERR_RATE_LIMITED"
    http_status = 429
    # 45xx: y-websocket reconnects with back-off and re-syncs, so no edit is lost.
    close_code = 4529


class SlowConsumer(ClientError):
    """The connection reads slower than the room writes; it is dropped to protect the room."""

    code = "ERR_SLOW_CONSUMER"
    http_status = 429
    close_code = 4508


class ServerError(WeftError):
    """We failed; the client did nothing wrong and may retry."""

    code = "ERR_INTERNAL"
    http_status = 500
    close_code = 1011


class StorageError(ServerError):
    """The store could not load or persist a document."""

    code = "ERR_STORAGE"
    http_status = 503
    close_code = 1011


class ShuttingDown(ServerError):
    """The server is stopping; reconnect to it (or another replica) later."""

    code = "ERR_SHUTTING_DOWN"
    http_status = 503
    close_code = 1001


def from_engine_error(exc: EngineError) -> ClientError:
    """Wrap an engine's input error so the adapters handle one tree.

    Engine errors are always client faults: the engine rejected what the client sent and left
    the document unchanged.
    """
    return ClientError(str(exc), code=exc.code)


def close_reason(exc: WeftError) -> str:
    """A WebSocket close reason: the code and message, cut to the 123-byte protocol limit."""
    reason = f"{exc.code}: {exc.message}"
    encoded = reason.encode()
    if len(encoded) <= 123:
        return reason
    return encoded[:120].decode(errors="ignore") + "..."
