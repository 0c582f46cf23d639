"""A sans-I/O OT client: local echo plus the three-state machine of ot.js (``lib/client.js``).

The client edits its own copy at once and keeps at most one op in flight to the server; edits
made while waiting are composed into one buffered op.  Events go in as method calls and what to
do comes out as return values — the caller moves the messages:

==================  =========================  ============================  ===================
state               local edit                 server ack                    remote op
==================  =========================  ============================  ===================
Synchronized        send it → AwaitingConfirm  (error)                       apply it
AwaitingConfirm     buffer it →                → Synchronized                transform past the
                    AwaitingWithBuffer                                       outstanding op
AwaitingWithBuffer  compose into the buffer    send the buffer →             transform past both
                                               AwaitingConfirm
==================  =========================  ============================  ===================

Transform sides follow ShareDB's client: the local (pending) op is ``"left"``, the server op
``"right"`` — the same tie-break the server applies when it transforms the submitted op
``"left"`` over what it committed first, so both ends agree.

What to send: :meth:`Client.edit` and :meth:`Client.receive_ack` return the submission that is
due, if any.  :meth:`Client.receive_op` returns the op it applied instead, so when it reports our
own op coming back (which acknowledges it, as in ShareDB: after a reconnect the client's old
connection's ops reach its new one) the next submission waits in :meth:`Client.flush` — call
``flush()`` whenever ``receive_op`` returns ``None``.

Reconnecting: fetch the ops since :attr:`Client.version` and feed them to
:meth:`Client.receive_op`, then send what :meth:`Client.resend` returns.  The server recognises a
resent op that it had already committed by ``src``/``seq`` and only acknowledges it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ot.buffer import TextBuffer
from ot.cursor import Selection, transform_selection
from ot.errors import ClientStateError, VersionGapError
from ot.text_op import Op, check, delete_op, insert_op
from ot.transform import compose_unchecked, transform_unchecked


@dataclass(frozen=True, slots=True)
class Submission:
    """An op for the server: made against ``version``, identified by ``(src, seq)``."""

    op: Op
    version: int
    src: str | None
    seq: int


@dataclass(frozen=True, slots=True)
class Synchronized:
    """Nothing in flight: the local text equals the server's at :attr:`Client.version`."""


@dataclass(frozen=True, slots=True)
class AwaitingConfirm:
    """``outstanding`` was sent (as ``seq``) and awaits its acknowledgement."""

    outstanding: Op
    seq: int


@dataclass(frozen=True, slots=True)
class AwaitingWithBuffer:
    """``outstanding`` is in flight; ``buffer`` holds the local edits made since."""

    outstanding: Op
    seq: int
    buffer: Op


State: TypeAlias = Synchronized | AwaitingConfirm | AwaitingWithBuffer
SYNCHRONIZED = Synchronized()


def _pass(op: Op, pending: Op) -> tuple[Op, Op]:
    """Transform a server ``op`` and a local ``pending`` op past each other."""
    return transform_unchecked(op, pending, False), transform_unchecked(pending, op, True)


class Client:
    """One editor's view of a document: local text, server version, pending ops, selection."""

    __slots__ = ("_buffer", "_sent", "_seq", "selection", "src", "state", "version")

    def __init__(self, text: str = "", version: int = 0, src: str | None = None,
                 selection: Selection | None = None) -> None:
        self._buffer = TextBuffer(text)
        self.version = version  # server ops incorporated into the local text
        self.src = src  # connection id (ShareDB gives one at handshake): enables dedup
        self.state: State = SYNCHRONIZED
        self._seq = 0  # last seq given to an op
        self._sent = False  # whether the outstanding op went out on the current connection
        self.selection = selection  # local caret/range, moved through remote ops

    @property
    def text(self) -> str:
        """The local text, including edits not yet acknowledged."""
        return self._buffer.text

    @property
    def pending(self) -> bool:
        """True while some local edit is not yet acknowledged."""
        return not isinstance(self.state, Synchronized)

    # -- events ----------------------------------------------------------------------------------

    def edit(self, op: object, selection: Selection | None = None) -> Submission | None:
        """Apply a local edit (raises ``InvalidOpError``, text unchanged, if it does not fit);
        return the submission to send, if one is due now."""
        checked = list(check(op))  # our own copy: the caller may reuse its list
        self._buffer.apply(checked)
        if selection is not None:
            self.selection = selection
        if not checked:
            return None
        state = self.state
        if isinstance(state, Synchronized):
            self._await(checked)
            return self.flush()
        if isinstance(state, AwaitingConfirm):
            self.state = AwaitingWithBuffer(state.outstanding, state.seq, checked)
        else:
            self.state = AwaitingWithBuffer(state.outstanding, state.seq,
                                            compose_unchecked(state.buffer, checked))
        return None

    def insert(self, pos: int, text: str) -> Submission | None:
        """:meth:`edit` with the op inserting ``text`` at ``pos``."""
        return self.edit(insert_op(pos, text))

    def delete(self, pos: int, length: int) -> Submission | None:
        """:meth:`edit` with the op deleting ``length`` code points at ``pos``."""
        return self.edit(delete_op(pos, length))

    def receive_ack(self, version: int) -> Submission | None:
        """The server committed our outstanding op at ``version``; return the buffered op to
        send next, if any.

        An acknowledgement older than :attr:`version` is a stale duplicate (the op was already
        acknowledged, e.g. by its echo while catching up after a reconnect) and is ignored, as
        ShareDB's client does.
        """
        if version < self.version:
            return None
        if version > self.version:
            raise VersionGapError("acknowledgement", version, self.version)
        self._acknowledge(version)
        return self.flush()

    def receive_op(self, op: object, version: int, src: str | None = None,
                   seq: int | None = None) -> Op | None:
        """A committed op from the server, applied at ``version``.

        Returns the op as applied to the local text (transformed past pending local edits), or
        ``None`` when there was nothing to apply: an op older than :attr:`version` (already
        seen) or our own outstanding op, which counts as its acknowledgement (then call
        :meth:`flush` for what to send next).
        """
        if version < self.version:
            return None
        if version > self.version:
            raise VersionGapError("op", version, self.version)
        state = self.state
        if (src is not None and src == self.src and not isinstance(state, Synchronized)
                and seq == state.seq):
            self._acknowledge(version)
            return None
        remote = check(op)
        new_state: State = state
        if isinstance(state, AwaitingConfirm):
            remote, outstanding = _pass(remote, state.outstanding)
            new_state = AwaitingConfirm(outstanding, state.seq)
        elif isinstance(state, AwaitingWithBuffer):
            remote, outstanding = _pass(remote, state.outstanding)
            remote, buffer = _pass(remote, state.buffer)
            new_state = AwaitingWithBuffer(outstanding, state.seq, buffer)
        self._buffer.apply(remote)  # raises (nothing changed) if the op does not fit
        self.state = new_state
        self.version += 1
        if self.selection is not None:
            self.selection = transform_selection(self.selection, remote)
        return remote

    def flush(self) -> Submission | None:
        """The outstanding op if it has not been handed out for sending yet, else ``None``."""
        state = self.state
        if isinstance(state, Synchronized) or self._sent:
            return None
        self._sent = True
        return Submission(state.outstanding, self.version, self.src, state.seq)

    def resend(self) -> Submission | None:
        """After reconnecting (and catching up): the outstanding op to send again, same seq."""
        self._sent = False
        return self.flush()

    def _acknowledge(self, version: int) -> None:
        state = self.state
        if isinstance(state, Synchronized):
            raise ClientStateError(f"acknowledgement for version {version} but no op is "
                                   "awaiting one")
        self.version += 1
        if isinstance(state, AwaitingConfirm):
            self.state = SYNCHRONIZED
        else:
            self._await(state.buffer)

    def _await(self, op: Op) -> None:
        """Make ``op`` the outstanding op, with the next seq, not yet sent."""
        self._seq += 1
        self.state = AwaitingConfirm(op, self._seq)
        self._sent = False
