"""Pre-generated Yjs updates and the two framings the generator speaks."""

from __future__ import annotations

from pycrdt import Doc, Text

from benchmarks.live import yjs_wire
from benchmarks.live.markers import find_keys, key, marker


def test_generated_updates_type_the_markers_in_a_row_one_update_each():
    updates = yjs_wire.generate_updates(7, 5)
    assert len(updates) == 5
    assert yjs_wire.text_of(updates) == "".join(marker(7, k) for k in range(5))
    assert [find_keys(u) for u in updates] == [[key(7, k)] for k in range(5)]


def test_updates_of_different_editors_merge_in_any_order_to_the_same_text():
    a = yjs_wire.generate_updates(1, 3)
    b = yjs_wire.generate_updates(2, 3)
    one = yjs_wire.text_of(a + b)
    other = yjs_wire.text_of(b + a)
    assert one == other
    assert sorted(find_keys(one.encode())) == sorted(key(e, k) for e in (1, 2) for k in range(3))


def test_ywebsocket_update_frame_is_sync_update_with_length_prefix():
    framing = yjs_wire.framing_for("yws", "doc")
    update = yjs_wire.generate_updates(0, 1)[0]
    message = framing.update(update)
    assert message[:2] == b"\x00\x02"
    assert framing.updates_in(message) == [update]


def test_hocuspocus_messages_carry_the_document_name_and_start_with_auth():
    framing = yjs_wire.framing_for("hocuspocus", "notes/a")
    auth, step1 = framing.hello()
    prefix = b"\x07notes/a"
    assert auth == prefix + b"\x02\x00\x00"
    assert step1 == prefix + b"\x00\x00\x01\x00"
    update = yjs_wire.generate_updates(0, 1)[0]
    assert framing.updates_in(framing.update(update)) == [update]


def test_hocuspocus_sync_reply_counts_as_the_join_answer():
    framing = yjs_wire.framing_for("hocuspocus", "d")
    reply = b"\x01d" + b"\x04\x01" + yjs_wire.varbytes(b"\x00\x00")
    assert framing.is_sync_reply(reply)
    assert framing.updates_in(reply) == [b"\x00\x00"]


def test_server_step2_applies_to_a_pycrdt_doc():
    updates = yjs_wire.generate_updates(3, 4)
    framing = yjs_wire.framing_for("yws", "d")
    message = framing.step2(yjs_wire.merge(updates))
    doc: Doc = Doc()
    text = doc.get("text", type=Text)
    doc.apply_update(framing.updates_in(message)[0])
    assert str(text) == "".join(marker(3, k) for k in range(4))


def test_varuint_round_trips():
    for n in (0, 1, 127, 128, 300, 2**21, 2**35):
        assert yjs_wire.read_varuint(yjs_wire.varuint(n), 0) == (n, len(yjs_wire.varuint(n)))
