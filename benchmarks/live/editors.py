"""Simulated editors: one WebSocket connection each, typing on schedule and counting arrivals.

Receiving is the hot path (every edit reaches every other editor of the document), so it does
the least that is correct: find markers with one regex over the frame, timestamp them, and for
ShareDB read the JSON header to keep the document version.  No editor merges anything during
the run; the end-of-run check (:mod:`benchmarks.live.verify`) and a replay of what one editor per
document recorded establish convergence afterwards.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any

import orjson

from benchmarks.live import yjs_wire
from benchmarks.live.markers import MARKER_LEN, MAX_KEYSTROKES, Schedule, find_keys, marker
from benchmarks.live.wsclient import OP_TEXT, WSClient, connect

TEXT_UNICODE_URI = "http://sharejs.org/types/text-unicode"
MAX_ERRORS_KEPT = 5


class Tally:
    """What all editors of one worker process received, shared so recording stays cheap."""

    def __init__(self) -> None:
        self.schedule: Schedule | None = None
        self.latencies = array("d")
        self.per_edit: dict[int, list[float]] = {}  # key -> [max latency, receivers]
        self.last_arrival = 0.0
        self.duplicates = 0
        self.errors: list[str] = []
        self.error_count = 0

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)


class Editor:
    """Shared receive path: markers from other editors are timestamped once per receiver."""

    def __init__(self, index: int, doc: str, expected: int, tally: Tally) -> None:
        self.index = index
        self.doc = doc
        self.expected = expected  # deliveries this editor must see (others' keystrokes)
        self.tally = tally
        self.seen: set[int] = set()
        self.client: WSClient | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.sent = 0  # keystrokes typed
        self.messages_sent = 0

    @property
    def complete(self) -> bool:
        return len(self.seen) >= self.expected

    @property
    def idle(self) -> bool:
        """Nothing of ours is still waiting for the server (OT overrides)."""
        return True

    def count(self, payload: bytes, now: float) -> None:
        keys = find_keys(payload)
        if not keys:
            return
        tally = self.tally
        schedule = tally.schedule
        if schedule is None:
            return
        own = self.index
        seen = self.seen
        per_edit = tally.per_edit
        lat_append = tally.latencies.append
        for k in keys:
            editor, seq = divmod(k, MAX_KEYSTROKES)
            if editor == own:
                continue
            if k in seen:
                tally.duplicates += 1
                continue
            seen.add(k)
            lat = now - schedule.at(editor, seq)
            lat_append(lat)
            entry = per_edit.get(k)
            if entry is None:
                per_edit[k] = [lat, 1.0]
            else:
                if lat > entry[0]:
                    entry[0] = lat
                entry[1] += 1.0
        tally.last_arrival = now

    async def open(self, host: str, port: int, path: str, timeout: float) -> None:
        self.client = await connect(host, port, path, self.on_message, timeout)
        self.hello()
        await asyncio.wait_for(self.ready, timeout)

    def hello(self) -> None:
        raise NotImplementedError

    def on_message(self, payload: bytes, opcode: int) -> None:
        raise NotImplementedError

    def keystroke(self, seq: int) -> None:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        return {"editor": self.index, "doc": self.doc, "sent": self.sent,
                "received": len(self.seen), "expected": self.expected}


class YjsEditor(Editor):
    """A Yjs client over y-websocket or Hocuspocus framing, sending pre-generated updates."""

    def __init__(
        self, index: int, doc: str, expected: int, tally: Tally,
        framing: yjs_wire.Framing, updates: list[bytes], record: bool,
    ) -> None:
        super().__init__(index, doc, expected, tally)
        self.framing = framing
        self.updates = updates
        self.frames = yjs_wire.prebuilt_frames(framing, updates)
        self.record = record
        self.recorded: list[bytes] = []

    def hello(self) -> None:
        assert self.client is not None
        for message in self.framing.hello():
            self.client.send(message)

    def on_message(self, payload: bytes, opcode: int) -> None:
        now = time.monotonic()
        self.count(payload, now)
        framing = self.framing
        if self.record:
            self.recorded.extend(framing.updates_in(payload))
        if not self.ready.done() and framing.is_sync_reply(payload):
            self.ready.set_result(None)
        elif framing.is_sync_step1(payload) and self.client is not None:
            # Answer as a Yjs client does: with everything this client has made so far.
            state = self.updates[: self.sent]
            update = yjs_wire.merge(state) if state else yjs_wire.EMPTY_UPDATE
            self.client.send(framing.step2(update))

    def keystroke(self, seq: int) -> None:
        if self.client is not None:
            self.client.send_frame(self.frames[seq])
            self.sent += 1
            self.messages_sent += 1

    def final_text(self) -> str:
        """This editor's text: what it received plus what it typed, merged after the run."""
        return yjs_wire.text_of(self.recorded + self.updates[: self.sent])


class ShareDBEditor(Editor):
    """A ShareDB connection editing one ``text-unicode`` document.

    Like the npm client it has at most one op in flight; keystrokes made meanwhile wait and go
    out together as one insert when the ack comes.  It keeps the version and the document's
    length (in markers) from acks and others' ops — enough to submit valid ops — and a cursor,
    a marker boundary it types at, shifted by others' inserts before it.
    """

    def __init__(
        self, index: int, collection: str, doc: str, expected: int, tally: Tally,
    ) -> None:
        super().__init__(index, doc, expected, tally)
        self.collection = collection
        self.src: str | None = None
        self.seq = 1
        self.version = 0
        self.known = 0  # markers in the document at self.version
        self.cursor = 0
        self.inflight: tuple[int, int] | None = None  # (seq, markers)
        self.pending: list[str] = []
        self.gaps = 0

    @property
    def idle(self) -> bool:
        return self.inflight is None and not self.pending

    def hello(self) -> None:
        self._send({"a": "hs", "protocol": 1, "protocolMinor": 1, "id": None})

    def _send(self, message: dict[str, Any]) -> None:
        if self.client is not None:
            self.client.send(orjson.dumps(message), OP_TEXT)
            self.messages_sent += 1

    def on_message(self, payload: bytes, opcode: int) -> None:
        now = time.monotonic()
        self.count(payload, now)
        msg = orjson.loads(payload)
        action = msg.get("a")
        if action == "op":
            self._on_op(msg)
        elif action == "hs":
            self.src = msg.get("id")
            self._send({"a": "s", "c": self.collection, "d": self.doc})
        elif action == "s" and not self.ready.done():
            if "error" in msg:
                self.ready.set_exception(ConnectionError(f"subscribe failed: {msg['error']}"))
                return
            data = msg.get("data") or {}
            self.version = int(data.get("v") or 0)
            self.known = len(data.get("data") or "") // MARKER_LEN
            self.cursor = self.known
            self.ready.set_result(None)
        elif "error" in msg:
            self.tally.error(f"editor {self.index}: {msg}")

    def _on_op(self, msg: dict[str, Any]) -> None:
        if "error" in msg:
            self.tally.error(f"editor {self.index}: op rejected: {msg['error']}")
            if self.inflight is not None and msg.get("seq") == self.inflight[0]:
                self.inflight = None
                self._flush()
            return
        inflight = self.inflight
        if (
            inflight is not None and msg.get("src") == self.src and msg.get("seq") == inflight[0]
        ):
            self.version = int(msg["v"]) + 1
            self.known += inflight[1]
            self.inflight = None
            self._flush()
            return
        v = msg.get("v")
        if not isinstance(v, int) or v < self.version:
            return  # a duplicate of an op already counted
        if v > self.version:
            self.gaps += 1
            self.tally.error(f"editor {self.index}: op v{v} skipped from v{self.version}")
        self.version = v + 1
        op = msg.get("op")
        if not op:
            return
        inserted = sum(len(c) for c in op if isinstance(c, str)) // MARKER_LEN
        at = op[0] // MARKER_LEN if isinstance(op[0], int) else 0
        if at < self.cursor:
            self.cursor += inserted
        self.known += inserted

    def keystroke(self, seq: int) -> None:
        self.pending.append(marker(self.index, seq))
        self.sent += 1
        if self.inflight is None:
            self._flush()

    def _flush(self) -> None:
        if not self.pending or self.src is None:
            return
        text = "".join(self.pending)
        n = len(self.pending)
        self.pending = []
        at = min(self.cursor, self.known)
        op: list[Any] = [at * MARKER_LEN, text] if at else [text]
        self.inflight = (self.seq, n)
        self._send({"a": "op", "c": self.collection, "d": self.doc, "v": self.version,
                    "src": self.src, "seq": self.seq, "op": op})
        self.seq += 1
        self.cursor = at + n

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out.update(version=self.version, length=self.known * MARKER_LEN, gaps=self.gaps)
        return out


async def sharedb_create(
    host: str, port: int, path: str, collection: str, docs: list[str], timeout: float
) -> None:
    """Create empty ``text-unicode`` documents (before editors subscribe to them)."""
    acks: dict[int, asyncio.Future[dict[str, Any]]] = {}
    hs: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_message(payload: bytes, opcode: int) -> None:
        msg = orjson.loads(payload)
        if msg.get("a") == "hs" and not hs.done():
            hs.set_result(msg["id"])
        elif msg.get("a") == "op" and msg.get("seq") in acks and not acks[msg["seq"]].done():
            acks[msg["seq"]].set_result(msg)

    client = await connect(host, port, path, on_message, timeout)
    try:
        client.send(orjson.dumps({"a": "hs", "protocol": 1, "protocolMinor": 1, "id": None}),
                    OP_TEXT)
        src = await asyncio.wait_for(hs, timeout)
        loop = asyncio.get_running_loop()
        for seq, doc in enumerate(docs, start=1):
            acks[seq] = loop.create_future()
            client.send(orjson.dumps({
                "a": "op", "c": collection, "d": doc, "v": 0, "src": src, "seq": seq,
                "create": {"type": TEXT_UNICODE_URI, "data": ""},
            }), OP_TEXT)
        for seq, fut in acks.items():
            reply = await asyncio.wait_for(fut, timeout)
            if "error" in reply:
                raise RuntimeError(f"creating {docs[seq - 1]!r} failed: {reply['error']}")
    finally:
        await client.close()
