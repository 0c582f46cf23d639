"""Session guarantees across replicas: causal tokens and the bounded wait for them.

A **causal token** names a state of one document compactly: whoever holds the token of what it
saw can ask any replica for a state at least as new (*monotonic reads*, and *read-your-writes*
for an edit made through another replica).  Tokens are opaque, URL-safe strings:

* OT: ``"o"`` + the version in base 36 (``"o0"``, ``"o2s"``).  A state covers the token when its
  version is at least that version (versions are the commit order, the same on every replica).
* CRDT: ``"c"`` + the Yjs state vector, base64url without padding (``"cAA"`` is the empty
  document).  A state covers the token when its state vector has, for every client, a clock at
  least the token's (it then holds every struct the token's state held).

:func:`wait_until` is how a request waits for its replica to catch up: it registers a change
listener on the room (:attr:`Room.listeners` are told of every committed or relayed change) and
re-checks on each notification, so it wakes on the very change that covers the token, with a
slow re-check as a safety net for a change path that does not notify.  The wait is bounded:
past it, :class:`NotCaughtUp` (HTTP 503, ``ERR_NOT_CAUGHT_UP``, retryable) — except where a
protocol must answer anyway (y-websocket, see :mod:`server.protocols.yjs`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
from dataclasses import dataclass
from typing import Any

from crdt.errors import UpdateError
from crdt.updates import decode_state_vector
from server.errors import ClientError, ServerError
from server.rooms.room import ChangeEvent, Room

#: Longest token accepted (checked before decoding): a state vector of ~1000 clients.
MAX_TOKEN_CHARS = 16_384
#: Re-check this often even without a notification (a safety net, not the mechanism).
RECHECK_SECONDS = 1.0

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_OT_TOKEN = re.compile(r"o[0-9a-z]{1,13}")
_CRDT_TOKEN = re.compile(r"c[A-Za-z0-9_-]+")


class BadCausalToken(ClientError):
    """A causal token that is malformed, or belongs to the other engine."""

    code = "ERR_BAD_CAUSAL_TOKEN"


class NotCaughtUp(ServerError):
    """This replica did not reach the requested state in time; retry (here or elsewhere)."""

    code = "ERR_NOT_CAUGHT_UP"
    http_status = 503
    close_code = 1013  # try again later


@dataclass(frozen=True, slots=True)
class CausalToken:
    """A decoded token: an OT version, or a CRDT state vector as ``{client: clock}``."""

    kind: str
    version: int = 0
    clocks: tuple[tuple[int, int], ...] = ()

    @property
    def state(self) -> dict[int, int]:
        return dict(self.clocks)


# ---- codec ------------------------------------------------------------------------------------


def _base36(number: int) -> str:
    digits = []
    while True:
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
        if not number:
            return "".join(reversed(digits))


def ot_token(version: int) -> str:
    if type(version) is not int or version < 0:
        raise ValueError(f"an OT version is an int >= 0, got {version!r}")
    return "o" + _base36(version)


def crdt_token(state_vector: bytes) -> str:
    return "c" + base64.urlsafe_b64encode(state_vector).rstrip(b"=").decode("ascii")


def decode(token: str) -> CausalToken:
    """Decode a token; :class:`BadCausalToken` says what was wrong."""
    if not isinstance(token, str) or not token:
        raise BadCausalToken("a causal token is a non-empty string (from a response's 'token')")
    if len(token) > MAX_TOKEN_CHARS:
        raise BadCausalToken(f"causal token longer than {MAX_TOKEN_CHARS} characters")
    if _OT_TOKEN.fullmatch(token):
        return CausalToken("ot", version=int(token[1:], 36))
    if _CRDT_TOKEN.fullmatch(token):
        raw = token[1:]
        try:
            vector = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            state = decode_state_vector(vector)
        except (binascii.Error, ValueError, UpdateError) as exc:
            raise BadCausalToken(f"CRDT causal token does not hold a state vector: {exc}") from None
        return CausalToken("crdt", clocks=tuple(sorted(state.items())))
    raise BadCausalToken(
        "expected a causal token like 'o1k' (OT) or 'cAQ…' (CRDT), as returned in 'token'"
    )


def covers(newer: CausalToken, older: CausalToken) -> bool:
    """Whether the state named ``newer`` includes everything of ``older`` (same engine)."""
    if newer.kind != older.kind:
        raise BadCausalToken(f"cannot compare a {older.kind} token with a {newer.kind} token")
    if newer.kind == "ot":
        return newer.version >= older.version
    mine = newer.state
    return all(mine.get(client, 0) >= clock for client, clock in older.clocks)


# ---- rooms ------------------------------------------------------------------------------------


def token_bytes(kind: str, engine_token: bytes) -> str:
    """The token of an engine state, from :attr:`Engine.token` (OT: ASCII version digits)."""
    if kind == "ot":
        return ot_token(int(engine_token))
    return crdt_token(engine_token)


def token_of(room: Room) -> str:
    """The token of the room's current state."""
    return token_bytes(room.kind, room.require_engine().token)


def current(room: Room) -> CausalToken:
    engine: Any = room.require_engine()
    if room.kind == "ot":
        return CausalToken("ot", version=int(engine.version))
    return CausalToken("crdt", clocks=tuple(decode_state_vector(engine.token).items()))


def check_kind(room: Room, token: CausalToken) -> None:
    if token.kind != room.kind:
        raise BadCausalToken(
            f"the token is for a {token.kind} document; {room.name!r} is a {room.kind} document"
        )


def reached(room: Room, token: CausalToken) -> bool:
    """Whether the room's state covers ``token`` (cheap: one comparison or one vector decode)."""
    check_kind(room, token)
    if token.kind == "ot":
        version: int = room.require_engine().version  # type: ignore[attr-defined]
        return version >= token.version
    return covers(current(room), token)


async def wait_until(room: Room, token: CausalToken, timeout: float) -> float:
    """Wait until the room covers ``token``; return the seconds waited.

    Raises :class:`NotCaughtUp` after ``timeout`` seconds, :class:`BadCausalToken` if the
    token is for the other engine.  The room must be held by the caller (it stays loaded).
    """
    if reached(room, token):
        return 0.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + max(0.0, timeout)
    changed = asyncio.Event()

    def on_change(_: ChangeEvent) -> None:
        changed.set()

    room.listeners.append(on_change)
    try:
        while not reached(room, token):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NotCaughtUp(
                    f"replica has not reached the requested state of {room.name!r} within "
                    f"{timeout:g} s (it is at {token_of(room)}); retry"
                )
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, RECHECK_SECONDS))
    finally:
        room.listeners.remove(on_change)
    return loop.time() - started
