"""Fan-out: one encoded frame to many connections, written now or coalesced per loop tick.

Fan-out is the server's hot path: every change goes to every other connection of its document.
Written one frame at a time, each copy is one ``transport.write`` — one send syscall — and
py-spy showed those syscalls taking half of the event loop's time at 3,000 edits/s from 20
editors on one document.  An :class:`Outbox` sends the first frame of a loop tick at once
and collects the frames a room fans out during the rest of the tick; at the end of the tick
it hands each connection all of them in one ``writelines`` (one syscall).  Under light load a
tick holds one frame and nothing changes (no added delay); under heavy load a tick holds many
and the cost per change falls as the load rises.

Every frame is encoded as a WebSocket message once, not once per connection: with no
extension negotiated (the server turns compression off) the bytes are the same for every
connection, so each copy costs one ``transport.write`` and no Python framing.  A connection
that did negotiate an extension, or is sending a fragmented message, goes through websockets'
own ``broadcast()`` instead.

Coalescing delays a frame (never a tick's first) by at most one loop iteration, and may
reorder it after a frame the protocol sends *directly* to one connection meanwhile.  Rooms use
an outbox only where that is harmless — CRDT: Yjs updates commute and awareness states carry
clocks — never for OT, where an op must reach a client before any later acknowledgement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import broadcast
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from server.metrics import Metrics

if TYPE_CHECKING:
    from server.rooms.room import Peer

# (payload, the peer not to send it to, text frame?)
Queued = tuple[bytes, "Peer | None", bool]


def open_targets(peers: Iterable[Peer], exclude: Peer | None,
                 limit: int) -> tuple[list[tuple[Peer, Connection]], list[Peer]]:
    """The open connections to write to, and the peers too far behind to be written to."""
    targets: list[tuple[Peer, Connection]] = []
    slow: list[Peer] = []
    for peer in peers:
        ws = peer.ws
        if peer is exclude or ws is None or ws.protocol.state is not State.OPEN:
            continue
        if limit > 0 and ws.transport.get_write_buffer_size() > limit:
            slow.append(peer)
            continue
        targets.append((peer, ws))
    return targets, slow


def encode(data: bytes, text: bool) -> bytes:
    """One unmasked, unfragmented WebSocket message with no extension: what a server sends."""
    return Frame(Opcode.TEXT if text else Opcode.BINARY, data).serialize(mask=False)


def _plain(ws: Connection) -> bool:
    """Whether pre-encoded bytes may be written to ``ws`` as they are."""
    return not ws.protocol.extensions and ws.send_in_progress is None


def _write(ws: Connection, chunks: list[bytes]) -> None:
    """Write already encoded messages; a broken connection must not stop the others."""
    try:
        if len(chunks) == 1:
            ws.transport.write(chunks[0])
        else:
            ws.transport.writelines(chunks)
    except Exception as exc:  # as broadcast(): log, skip, go on
        ws.logger.warning("skipped broadcast: failed to write message: %s", exc)


def send_now(peers: Iterable[Peer], frame: bytes | str, exclude: Peer | None, text: bool | None,
             limit: int, metrics: Metrics) -> tuple[int, list[Peer]]:
    """Write ``frame`` to every open peer but ``exclude`` at once: (copies sent, slow peers)."""
    targets, slow = open_targets(peers, exclude, limit)
    if targets:
        if isinstance(frame, str):
            data, is_text = frame.encode(), text is not False
        else:
            data, is_text = bytes(frame), text is True
        encoded = [encode(data, is_text)]
        for _, ws in targets:
            if _plain(ws):
                _write(ws, encoded)
            else:
                broadcast([ws], data, text=is_text)
        metrics.sent(len(data), len(targets))
    return len(targets), slow


def write_frames(ws: Connection, frames: list[tuple[bytes, bool]],
                 encoded: list[bytes]) -> None:
    """Write several messages to ``ws`` with one ``writelines`` (one system call).

    ``encoded[i]`` is ``frames[i]`` already encoded by :func:`encode`; a connection that cannot
    take pre-encoded bytes gets the frames through websockets instead.
    """
    if _plain(ws):
        _write(ws, encoded)
    else:
        for data, text in frames:
            broadcast([ws], data, text=text)


class Outbox:
    """The frames one room fans out during the current loop tick."""

    __slots__ = ("_drop_slow", "_frames", "_limit", "_metrics", "_peers", "_ticking")

    def __init__(self, peers: set[Peer], limit: int, metrics: Metrics,
                 drop_slow: Callable[[Peer], None]) -> None:
        self._peers = peers
        self._limit = limit
        self._metrics = metrics
        self._drop_slow = drop_slow
        self._frames: list[Queued] = []
        # True from the first frame of a tick until the end-of-tick flush.
        self._ticking = False

    def push(self, frame: bytes | str, exclude: Peer | None, text: bool | None) -> int:
        """Send ``frame`` now if it is the tick's first, else queue it for the end of the tick
        (so light load pays no delay); returns how many peers it is meant for."""
        if not self._ticking:
            self._ticking = True
            asyncio.get_running_loop().call_soon(self.flush)
            sent, slow = send_now(self._peers, frame, exclude, text, self._limit, self._metrics)
            for peer in slow:
                self._drop_slow(peer)
            return sent
        if isinstance(frame, str):
            data, is_text = frame.encode(), text is not False
        else:
            data, is_text = bytes(frame), text is True
        self._frames.append((data, exclude, is_text))
        return len(self._peers) - (exclude in self._peers)

    def flush(self) -> None:
        """Write everything queued: each connection gets its frames in one system call."""
        self._ticking = False
        frames, self._frames = self._frames, []
        if not frames:
            return
        if len(frames) == 1:
            data, exclude, text = frames[0]
            _, slow = send_now(self._peers, data, exclude, text, self._limit, self._metrics)
        else:
            targets, slow = open_targets(self._peers, None, self._limit)
            encoded = [encode(data, text) for data, _, text in frames]
            copies = nbytes = 0
            for peer, ws in targets:
                mine = [i for i, (_, exclude, _) in enumerate(frames) if exclude is not peer]
                if not mine:
                    continue
                write_frames(ws, [(frames[i][0], frames[i][2]) for i in mine],
                             [encoded[i] for i in mine])
                copies += len(mine)
                nbytes += sum(len(frames[i][0]) for i in mine)
            self._metrics.messages_out += copies
            self._metrics.bytes_out += nbytes
        for peer in slow:
            self._drop_slow(peer)
