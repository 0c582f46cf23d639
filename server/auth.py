"""Optional shared-secret auth: HMAC-signed tokens naming documents and a role.

A token is ``v1.<payload>.<signature>``: the payload is base64url JSON
``{"doc": PATTERN, "role": "write"|"read", "exp": UNIX_SECONDS|null}`` and the signature is
base64url HMAC-SHA256 of ``v1.<payload>`` under the server's secret.  Whoever holds the secret
(the note app's backend) mints tokens; the server only verifies them, so it keeps no user table.

``PATTERN`` is a document name (``notes/a``), a prefix ending in ``*`` (``notes/*``), or ``*``.
Document names are the server's one namespace: a CRDT document is the path after ``/crdt/``, an
OT document is ``<collection>/<id>``.  Presence channels are checked against the same pattern.

Tokens travel as ``?token=`` (what ``y-websocket``'s ``params`` option and browsers' WebSocket
API allow) or, for the REST API, as ``Authorization: Bearer``.  Without a secret the server runs
open: every request gets a write grant for everything (the CLI warns unless on loopback).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal

import orjson

from server.errors import Forbidden, ReadOnly, Unauthorized

Role = Literal["read", "write"]
ROLES: tuple[Role, ...] = ("read", "write")
_PREFIX = "v1"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Grant:
    """What one verified token (or open access) allows."""

    pattern: str
    role: Role
    expires: float | None = None
    # Who the token speaks for (its ``user`` claim): the author of every edit made with it, so
    # per-user history and undo work for protocol clients too.  None: anonymous.
    user: str | None = None

    def covers(self, name: str) -> bool:
        """Does the pattern name this document (or presence channel)?"""
        if self.pattern.endswith("*"):
            return name.startswith(self.pattern[:-1])
        return name == self.pattern

    @property
    def can_write(self) -> bool:
        return self.role == "write"

    def check(self, name: str, *, write: bool) -> None:
        """Raise :class:`Forbidden`/:class:`ReadOnly` unless this grant allows the access."""
        if self.expires is not None and time.time() >= self.expires:
            raise Unauthorized("token expired; fetch a new one")
        if not self.covers(name):
            raise Forbidden(f"token for {self.pattern!r} does not cover document {name!r}")
        if write and not self.can_write:
            raise ReadOnly(f"token for {name!r} is read-only; edits are refused")

    def author(self, requested: object, default: str) -> str:
        """The author to record for an edit: the token's user when it names one (a caller may
        not speak for someone else), else ``requested`` or ``default``."""
        if self.user is not None:
            if requested not in (None, "", self.user):
                raise Forbidden(f"this token speaks for {self.user!r}, not {requested!r}")
            return self.user
        return str(requested) if requested not in (None, "") else default


OPEN_GRANT = Grant("*", "write")
MAX_USER = 128


def mint_token(secret: str, doc: str, role: Role = "write", ttl: float | None = None,
               user: str | None = None) -> str:
    """Sign a token for ``doc`` (a name or pattern) with ``role``, valid ``ttl`` seconds, for
    ``user`` (recorded as the author of its edits) if given."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if not doc:
        raise ValueError("doc must be a document name or pattern, e.g. 'notes/*'")
    if user is not None and not 0 < len(user) <= MAX_USER:
        raise ValueError(f"user must be 1..{MAX_USER} characters")
    payload: dict[str, object] = {"doc": doc, "role": role,
                                  "exp": None if ttl is None else int(time.time() + ttl)}
    if user is not None:
        payload["user"] = user
    body = f"{_PREFIX}.{_b64encode(orjson.dumps(payload))}"
    return f"{body}.{_sign(secret, body)}"


def _sign(secret: str, body: str) -> str:
    return _b64encode(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


class Authenticator:
    """Turns a token (or its absence) into a :class:`Grant`."""

    def __init__(self, secret: str | None) -> None:
        self._secret = secret or None

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def grant(self, token: str | None) -> Grant:
        """Verify ``token``; raise :class:`Unauthorized` when auth is on and it is not valid."""
        if self._secret is None:
            return OPEN_GRANT
        if not token:
            raise Unauthorized("this server needs a token: pass ?token=… or a Bearer header")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise Unauthorized("malformed token: expected 'v1.<payload>.<signature>'")
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(_sign(self._secret, body), parts[2]):
            raise Unauthorized("token signature does not match this server's secret")
        try:
            payload = orjson.loads(_b64decode(parts[1]))
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise Unauthorized("malformed token payload") from exc
        if not isinstance(payload, dict):
            raise Unauthorized("malformed token payload: expected an object")
        doc, role, exp = payload.get("doc"), payload.get("role"), payload.get("exp")
        if not isinstance(doc, str) or not doc or role not in ROLES:
            raise Unauthorized("malformed token payload: needs 'doc' and a 'read'/'write' role")
        if exp is not None and (not isinstance(exp, int | float) or time.time() >= exp):
            raise Unauthorized("token expired; fetch a new one")
        user = payload.get("user")
        if user is not None and (not isinstance(user, str) or not 0 < len(user) <= MAX_USER):
            raise Unauthorized(f"malformed token payload: 'user' must be 1..{MAX_USER} characters")
        return Grant(doc, role, None if exp is None else float(exp), user)
