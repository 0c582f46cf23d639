"""The Yjs sync protocol: frame parsing, the server's reactions, a Python client."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text, create_sync_message, create_update_message, write_var_uint

from crdt.document import EMPTY_UPDATE, CrdtDocument
from crdt.errors import ProtocolError
from crdt.sync import (
    FrameKind,
    SyncClient,
    SyncServer,
    as_update_frame,
    awareness_frame,
    permission_denied_frame,
    query_awareness_frame,
    read_frame,
    sync_step1_frame,
    sync_step2_frame,
    update_frame,
)


def awareness_update(client: int, clock: int, state: str) -> bytes:
    raw = state.encode()
    return b"\x01" + write_var_uint(client) + write_var_uint(clock) + write_var_uint(len(raw)) + raw


# -- frames ---------------------------------------------------------------------------------


def test_frames_round_trip_through_the_reader() -> None:
    update = CrdtDocument().insert(0, "héllo")
    cases = [
        (sync_step1_frame(b"\x01\x05\x03"), FrameKind.SYNC_STEP1, b"\x01\x05\x03"),
        (sync_step2_frame(update), FrameKind.SYNC_STEP2, update),
        (update_frame(update), FrameKind.SYNC_UPDATE, update),
        (awareness_frame(b"\x00"), FrameKind.AWARENESS, b"\x00"),
        (query_awareness_frame(), FrameKind.QUERY_AWARENESS, b""),
        (permission_denied_frame("nö"), FrameKind.AUTH, "nö".encode()),
    ]
    for data, kind, payload in cases:
        frame = read_frame(data)
        assert (frame.kind, frame.payload, frame.raw) == (kind, payload, data)


def test_frames_made_by_pycrdt_helpers_are_read() -> None:
    ydoc: Doc = Doc()
    ydoc.get("text", type=Text).insert(0, "x")
    assert read_frame(create_sync_message(ydoc)).kind is FrameKind.SYNC_STEP1
    assert read_frame(create_update_message(ydoc.get_update())).payload == ydoc.get_update()


def test_a_step2_is_forwarded_as_an_update_with_the_same_payload() -> None:
    update = CrdtDocument().insert(0, "x")
    forwarded = as_update_frame(read_frame(sync_step2_frame(update)))
    assert forwarded == update_frame(update)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unexpected end"),
        (b"\x07", "unknown message type 7"),
        (b"\x00", "unexpected end"),
        (b"\x00\x05\x00", "unknown sync message type 5"),
        (b"\x00\x02\x05ab", "runs past the end"),
        (b"\x00\x02\x02\x00\x00\xff", "1 unexpected trailing bytes"),
        (b"\x00\x00\x02\x01\x05", "sync step 1"),
        (b"\x01\x80", "inside an integer"),
        (b"\x03\x00", "trailing"),
        (b"\x02\x01\x00", "unknown auth message type 1"),
        (b"\x02\x00\x02\xff\xfe", "not valid UTF-8"),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff", "2\\*\\*53"),
    ],
)
def test_malformed_frames_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        read_frame(data)


def test_non_bytes_frames_are_refused() -> None:
    with pytest.raises(ProtocolError, match="bytes"):
        read_frame("\x00\x00")  # type: ignore[arg-type]


# -- server ---------------------------------------------------------------------------------


def test_a_new_connection_gets_the_servers_step1() -> None:
    doc = CrdtDocument()
    doc.insert(0, "x")
    (step1,) = SyncServer(doc).open("a")
    assert read_frame(step1).payload == doc.state_vector()


def test_step1_is_answered_with_the_missing_part() -> None:
    server_doc = CrdtDocument(client_id=1)
    server_doc.insert(0, "shared 日本")
    client = CrdtDocument(client_id=2)
    reaction = SyncServer(server_doc).receive("a", sync_step1_frame(client.state_vector()))
    assert reaction.update is None and reaction.broadcast == ()
    (reply,) = reaction.reply
    client.apply_update(read_frame(reply).payload)
    assert client.text == "shared 日本"


def test_an_update_is_to_be_applied_then_forwarded_as_received() -> None:
    update = CrdtDocument().insert(0, "😀")
    frame = update_frame(update)
    reaction = SyncServer(CrdtDocument()).receive("a", frame)
    assert reaction.update == update
    assert reaction.broadcast == (frame,)
    assert reaction.reply == ()


def test_an_empty_step2_needs_no_work() -> None:
    reaction = SyncServer(CrdtDocument()).receive("a", sync_step2_frame(EMPTY_UPDATE))
    assert reaction.update is None and reaction.broadcast == () and reaction.reply == ()


def test_the_server_does_not_apply_updates_itself() -> None:
    """The caller applies through the engine, which validates and persists first."""
    server_doc = CrdtDocument()
    SyncServer(server_doc).receive("a", update_frame(CrdtDocument().insert(0, "x")))
    assert server_doc.text == ""


def test_two_documents_sync_through_step1_and_step2() -> None:
    server_doc = CrdtDocument(client_id=1)
    server_doc.insert(0, "server 🖥")
    server = SyncServer(server_doc)
    client = SyncClient(CrdtDocument(client_id=2))
    client.document.insert(0, "offline ✍ ")  # edits made before connecting
    to_client = list(server.open("c"))
    replies = server.receive("c", client.hello()).reply
    to_client.extend(replies)
    to_server: list[bytes] = []
    for frame in to_client:
        to_server.extend(client.receive(frame))
    assert client.synced
    for frame in to_server:
        reaction = server.receive("c", frame)
        if reaction.update is not None:
            server_doc.apply_update(reaction.update)
    assert server_doc.text == client.document.text
    assert "server 🖥" in server_doc.text and "offline ✍ " in server_doc.text


def test_query_awareness_is_answered_with_every_state() -> None:
    server = SyncServer(CrdtDocument())
    assert server.receive("a", query_awareness_frame()).reply == ()
    server.receive("a", awareness_frame(awareness_update(11, 1, '{"name":"Ada"}')))
    server.receive("b", awareness_frame(awareness_update(22, 1, '{"name":"Bo"}')))
    (reply,) = server.receive("c", query_awareness_frame()).reply
    assert read_frame(reply).kind is FrameKind.AWARENESS
    assert server.awareness.states == {11: {"name": "Ada"}, 22: {"name": "Bo"}}


def test_awareness_is_forwarded_as_received_and_newcomers_see_it() -> None:
    server = SyncServer(CrdtDocument())
    frame = awareness_frame(awareness_update(11, 1, '{"cursor":3}'))
    assert server.receive("a", frame).broadcast == (frame,)
    assert server.receive("a", frame).broadcast == ()  # same clock again: not news
    opening = server.open("b")
    assert [read_frame(f).kind for f in opening] == [FrameKind.SYNC_STEP1, FrameKind.AWARENESS]


def test_closing_a_connection_announces_its_users_left() -> None:
    server = SyncServer(CrdtDocument())
    server.receive("a", awareness_frame(awareness_update(11, 1, '{"name":"Ada"}')))
    server.receive("b", awareness_frame(awareness_update(22, 1, '{"name":"Bo"}')))
    (farewell,) = server.close("a")
    assert read_frame(farewell).payload == awareness_update(11, 1, "null")
    assert server.awareness.states == {22: {"name": "Bo"}}
    assert server.close("a") == ()


def test_a_malformed_awareness_frame_changes_nothing() -> None:
    server = SyncServer(CrdtDocument())
    server.receive("a", awareness_frame(awareness_update(11, 1, '{"name":"Ada"}')))
    bad = awareness_update(11, 2, '{"name":"Eve"}') + b"\x05"
    with pytest.raises(ProtocolError):
        server.receive("a", awareness_frame(bad))
    assert server.awareness.states == {11: {"name": "Ada"}}


def test_auth_frames_from_a_client_are_ignored() -> None:
    reaction = SyncServer(CrdtDocument()).receive("a", permission_denied_frame("x"))
    assert reaction.frame.kind is FrameKind.AUTH
    assert reaction.reply == reaction.broadcast == () and reaction.update is None
