"""The generator's ShareDB editor: one op in flight, versions kept from acks and others' ops."""

from __future__ import annotations

import orjson
import pytest

from benchmarks.live.editors import ShareDBEditor, Tally
from benchmarks.live.markers import MARKER_LEN, Schedule, marker


class FakeClient:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.frames_in = 0
        self.bytes_in = 0

    def send(self, payload: bytes, opcode: int = 2) -> None:
        self.sent.append(orjson.loads(payload))


@pytest.fixture
async def editor() -> ShareDBEditor:
    tally = Tally()
    tally.schedule = Schedule(0.0, 10.0)
    ed = ShareDBEditor(1, "docs", "d", expected=2, tally=tally)
    ed.client = FakeClient()  # type: ignore[assignment]
    ed.hello()
    ed.on_message(orjson.dumps({"a": "hs", "id": "me"}), 1)
    ed.on_message(orjson.dumps({"a": "s", "c": "docs", "d": "d",
                                "data": {"v": 1, "data": "", "type": "text-unicode"}}), 1)
    return ed


def sent(ed: ShareDBEditor) -> list[dict]:
    return ed.client.sent  # type: ignore[union-attr]


async def test_joins_with_handshake_then_subscribe(editor):
    assert [m["a"] for m in sent(editor)] == ["hs", "s"]
    assert editor.ready.done()
    assert editor.version == 1


async def test_keystrokes_wait_while_an_op_is_in_flight_and_go_out_together(editor):
    editor.keystroke(0)
    editor.keystroke(1)
    editor.keystroke(2)
    ops = [m for m in sent(editor) if m["a"] == "op"]
    assert len(ops) == 1
    assert ops[0] == {"a": "op", "c": "docs", "d": "d", "v": 1, "src": "me", "seq": 1,
                      "op": [marker(1, 0)]}
    editor.on_message(orjson.dumps({"a": "op", "c": "docs", "d": "d", "v": 1, "src": "me",
                                    "seq": 1}), 1)
    ops = [m for m in sent(editor) if m["a"] == "op"]
    assert ops[1]["v"] == 2
    assert ops[1]["seq"] == 2
    assert ops[1]["op"] == [MARKER_LEN, marker(1, 1) + marker(1, 2)]
    assert not editor.idle


async def test_others_ops_advance_the_version_and_count_as_deliveries(editor):
    other = marker(2, 0)
    editor.on_message(orjson.dumps({"a": "op", "c": "docs", "d": "d", "v": 1, "src": "x",
                                    "seq": 1, "op": [other]}), 1)
    assert editor.version == 2
    assert editor.known == 1
    assert len(editor.seen) == 1
    editor.keystroke(0)
    op = next(m for m in sent(editor) if m["a"] == "op")
    assert op["v"] == 2
    # our cursor was at 0 and the insert landed at 0 too: we keep typing before it
    assert op["op"] == [marker(1, 0)]


async def test_duplicate_ops_are_ignored_and_gaps_are_reported(editor):
    msg = {"a": "op", "c": "docs", "d": "d", "v": 1, "src": "x", "seq": 1, "op": [marker(2, 0)]}
    editor.on_message(orjson.dumps(msg), 1)
    editor.on_message(orjson.dumps(msg), 1)
    assert editor.version == 2
    assert editor.tally.duplicates == 1
    editor.on_message(orjson.dumps({**msg, "v": 5, "op": [marker(2, 1)]}), 1)
    assert editor.gaps == 1
    assert editor.tally.error_count == 1
