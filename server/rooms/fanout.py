"""Fan-out: one encoded frame to many connections, written now or coalesced per loop tick.

Fan-out is the server's hot path: every change goes to every other connection of its document.
Written one frame at a time, each copy is one ``transport.write`` — one send syscall — and
py-spy showed those syscalls taking half of the event loop's time at 3,000 edits/s from 20
editors on one document.  An :class:`Outbox` sends the first frame of a loop tick at once
and collects the frames a room fans out during the rest of the tick; at the end of the tick
it hands each connection all of them in one ``writelines`` (one syscall).  Under light load a
tick holds one frame and nothing changes (no added delay); under heavy load a tick holds many
and the cost per change falls as the load rises.

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


def send_now(peers: Iterable[Peer], frame: bytes | str, exclude: Peer | None, text: bool | None,
             limit: int, metrics: Metrics) -> tuple[int, list[Peer]]:
    """Write ``frame`` to every open peer but ``exclude`` at once: (copies sent, slow peers)."""
    targets, slow = open_targets(peers, exclude, limit)
    if targets:
        broadcast([ws for _, ws in targets], frame, text=text)
        metrics.sent(len(frame), len(targets))
    return len(targets), slow


def write_frames(ws: Connection, frames: list[tuple[bytes, bool]]) -> None:
    """Frame ``frames`` as WebSocket messages and write them with one ``writelines``.

    This is websockets' own ``broadcast()`` path (protocol ``send_*`` then write what
    ``data_to_send`` returns) with the writes of several messages joined into one.
    """
    if ws.send_in_progress is not None:  # a fragmented message is going out: do not interleave
        for data, text in frames:
            broadcast([ws], data, text=text)
        return
    protocol = ws.protocol
    for data, text in frames:
        if text:
            protocol.send_text(data)
        else:
            protocol.send_binary(data)
    chunks = protocol.data_to_send()
    if all(chunks):
        ws.transport.writelines(chunks)
    else:  # an empty chunk asks for a half-close: let websockets handle it
        for chunk in chunks:
            if chunk:
                ws.transport.write(chunk)
        ws.send_data()


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
            copies = nbytes = 0
            for peer, ws in targets:
                mine = [(data, text) for data, exclude, text in frames if exclude is not peer]
                if not mine:
                    continue
                try:
                    write_frames(ws, mine)
                except Exception:  # as broadcast(): one broken connection must not stop the rest
                    continue
                copies += len(mine)
                nbytes += sum(len(data) for data, _ in mine)
            self._metrics.messages_out += copies
            self._metrics.bytes_out += nbytes
        for peer in slow:
            self._drop_slow(peer)
