"""The client state machine, event by event."""

from __future__ import annotations

import pytest

from ot.client import (
    AwaitingConfirm,
    AwaitingWithBuffer,
    Client,
    Submission,
    Synchronized,
)
from ot.errors import ClientStateError, InvalidOpError, VersionGapError
from ot.server_doc import ServerDocument


def test_a_new_client_is_synchronized() -> None:
    client = Client("abc", 7, src="me")
    assert (client.text, client.version, client.pending) == ("abc", 7, False)
    assert isinstance(client.state, Synchronized)


def test_a_local_edit_is_applied_at_once_and_sent() -> None:
    client = Client("abc", 7, src="me")
    sub = client.edit([3, "d"])
    assert sub == Submission([3, "d"], 7, "me", 1)
    assert client.text == "abcd"
    assert client.state == AwaitingConfirm([3, "d"], 1)
    assert client.pending


def test_edits_while_awaiting_are_buffered_and_composed() -> None:
    client = Client("", 0, src="me")
    client.insert(0, "a")
    assert client.insert(1, "b") is None
    assert client.insert(2, "c") is None
    assert client.text == "abc"
    assert client.state == AwaitingWithBuffer(["a"], 1, [1, "bc"])


def test_the_ack_sends_the_buffer() -> None:
    client = Client("", 0, src="me")
    client.insert(0, "a")
    client.insert(1, "b")
    assert client.receive_ack(0) == Submission([1, "b"], 1, "me", 2)
    assert client.state == AwaitingConfirm([1, "b"], 2)
    assert client.receive_ack(1) is None
    assert isinstance(client.state, Synchronized)
    assert client.version == 2


def test_an_ack_while_synchronized_is_an_error() -> None:
    client = Client("", 3)
    with pytest.raises(ClientStateError, match="no op is awaiting one"):
        client.receive_ack(3)


def test_an_ack_for_a_future_version_is_a_gap() -> None:
    client = Client("", 3)
    client.insert(0, "x")
    with pytest.raises(VersionGapError, match="fetch the ops since 3"):
        client.receive_ack(4)
    assert client.pending


def test_a_stale_duplicate_ack_is_ignored() -> None:
    client = Client("", 3)
    client.insert(0, "x")
    assert client.receive_ack(2) is None
    assert client.pending


def test_a_remote_op_is_applied_when_synchronized() -> None:
    client = Client("abc", 0)
    assert client.receive_op([1, {"d": 1}], 0, "other", 1) == [1, {"d": 1}]
    assert (client.text, client.version) == ("ac", 1)


def test_a_remote_op_is_transformed_past_the_outstanding_op() -> None:
    client = Client("abc", 0, src="me")
    client.edit(["L"])
    assert client.receive_op(["R"], 0, "other", 1) == [1, "R"]
    assert client.text == "LRabc"  # the server puts our later-committed insert first, too
    assert client.state == AwaitingConfirm(["L"], 1)
    assert client.version == 1


def test_a_remote_op_is_transformed_past_outstanding_and_buffer() -> None:
    client = Client("abc", 0, src="me")
    client.edit([1, {"d": 1}])
    client.edit([2, "!"])
    assert client.text == "ac!"
    applied = client.receive_op([{"d": 1}, "X", 2, "Y"], 0)  # on "abc": "XbcY"
    assert client.text == "Xc!Y"
    assert applied == [{"d": 1}, "X", 2, "Y"]
    assert client.state == AwaitingWithBuffer([1, {"d": 1}], 1, [2, "!"])


def test_an_old_remote_op_is_ignored() -> None:
    client = Client("abc", 5)
    assert client.receive_op(["x"], 4) is None
    assert client.text == "abc"


def test_a_remote_op_from_the_future_is_a_gap() -> None:
    client = Client("abc", 5)
    with pytest.raises(VersionGapError):
        client.receive_op(["x"], 6)


def test_our_own_op_echoed_back_counts_as_its_ack() -> None:
    client = Client("", 0, src="me")
    client.insert(0, "a")
    client.insert(1, "b")
    assert client.receive_op(["a"], 0, "me", 1) is None
    assert client.version == 1
    assert client.text == "ab"
    assert client.resend() == Submission([1, "b"], 1, "me", 2)


def test_after_an_echo_flush_gives_the_next_op_once() -> None:
    client = Client("", 0, src="me")
    client.insert(0, "a")
    client.insert(1, "b")
    assert client.flush() is None  # "a" was already handed out by insert()
    assert client.receive_op(["a"], 0, "me", 1) is None
    assert client.flush() == Submission([1, "b"], 1, "me", 2)
    assert client.flush() is None


def test_resend_repeats_the_outstanding_op_with_its_seq() -> None:
    client = Client("abc", 0, src="me")
    client.edit(["x"])
    client.edit(["y"])
    client.receive_op([3, "!"], 0, "other", 1)
    assert client.resend() == Submission(["x"], 1, "me", 1)
    assert Client().resend() is None


def test_an_invalid_local_edit_changes_nothing() -> None:
    client = Client("abc", 0)
    with pytest.raises(InvalidOpError):
        client.edit([4, "x"])
    with pytest.raises(InvalidOpError):
        client.delete(2, 5)
    assert (client.text, client.pending) == ("abc", False)


def test_an_empty_edit_sends_nothing() -> None:
    client = Client("abc", 0)
    assert client.edit([]) is None
    assert client.insert(1, "") is None
    assert not client.pending


def test_the_selection_follows_remote_ops() -> None:
    client = Client("hello world", 0, selection=(6, 11))
    client.receive_op(["¡", 5, {"d": 1}], 0)
    assert client.selection == (6, 11)
    client.receive_op([{"d": 6}], 1)
    assert client.selection == (0, 5)
    client.edit([5, "!"], selection=6)
    client.receive_op(["> "], 2)
    assert client.selection == 8


def test_two_clients_and_a_server_agree_on_a_conflict() -> None:
    server = ServerDocument("ab")
    alice, bob = Client("ab", 0, "alice"), Client("ab", 0, "bob")
    sa = alice.insert(1, "A")
    sb = bob.insert(1, "B")
    assert sa is not None and sb is not None
    op_a, va = server.submit(sa.op, sa.version, sa.src, sa.seq)
    op_b, vb = server.submit(sb.op, sb.version, sb.src, sb.seq)
    alice.receive_ack(va)  # the server answers in commit order
    alice.receive_op(op_b, vb, sb.src, sb.seq)
    bob.receive_op(op_a, va, sa.src, sa.seq)
    bob.receive_ack(vb)
    assert alice.text == bob.text == server.text == "aBAb"
