"""When awareness states heard from other replicas were last refreshed: heartbeats (same
clock) keep a state, silence past the timeout removes it."""

from __future__ import annotations

import pytest

from crdt.awareness import decode_awareness_update
from crdt.errors import ProtocolError
from crdt.remote_awareness import RemoteAwareness, encode_awareness_update

ANN = {"user": "ann", "name": "Zoë 😀"}


def update(*entries: tuple[int, int, object]) -> bytes:
    return encode_awareness_update(list(entries))


def test_encoding_round_trips_through_the_strict_decoder():
    entries = [(1, 0, ANN), (300_000, 7, None), (2**53 - 1, 2**31, [1, "二"])]
    assert decode_awareness_update(encode_awareness_update(entries)) == entries


def test_a_heartbeat_keeps_a_state_past_the_timeout():
    heard = RemoteAwareness(timeout_ms=1000)
    heard.heard("r1", update((5, 2, ANN)), now_ms=0)
    heard.heard("r1", update((5, 2, ANN)), now_ms=900)
    assert heard.expire(now_ms=1500) == {}
    assert heard.present == {5: "r1"}


def test_states_nobody_refreshes_expire_with_a_removal_per_origin():
    heard = RemoteAwareness(timeout_ms=1000)
    heard.heard("r1", update((5, 2, ANN)), now_ms=0)
    heard.heard("r2", update((6, 1, {"user": "bob"}), (7, 4, {"user": "cy"})), now_ms=0)
    heard.heard("r2", update((7, 4, {"user": "cy"})), now_ms=800)
    removals = heard.expire(now_ms=1000)
    assert {o: decode_awareness_update(u) for o, u in removals.items()} == {
        "r1": [(5, 2, None)], "r2": [(6, 1, None)]}
    assert heard.present == {7: "r2"}
    assert heard.expire(now_ms=2100).keys() == {"r2"}  # cy now
    assert heard.expire(now_ms=3200) == {} and len(heard) == 0  # tombstones forgotten


def test_a_removal_is_not_undone_by_a_heartbeat_with_the_same_clock():
    heard = RemoteAwareness(timeout_ms=1000)
    heard.heard("r1", update((5, 2, ANN)), now_ms=0)
    heard.heard("r1", update((5, 2, None)), now_ms=10)
    heard.heard("r1", update((5, 2, ANN)), now_ms=20)
    assert heard.present == {}
    heard.heard("r1", update((5, 3, ANN)), now_ms=30)  # a newer clock is back
    assert heard.present == {5: "r1"}


def test_an_older_clock_does_not_refresh():
    heard = RemoteAwareness(timeout_ms=1000)
    heard.heard("r1", update((5, 2, ANN)), now_ms=0)
    heard.heard("r1", update((5, 1, ANN)), now_ms=900)
    assert heard.expire(now_ms=1000).keys() == {"r1"}


def test_a_client_heard_from_another_replica_moves_there():
    heard = RemoteAwareness()
    heard.heard("r1", update((5, 2, ANN)), now_ms=0)
    heard.heard("r2", update((5, 3, ANN)), now_ms=1)
    assert heard.present == {5: "r2"}


def test_a_malformed_update_records_nothing():
    heard = RemoteAwareness()
    with pytest.raises(ProtocolError):
        heard.heard("r1", update((5, 2, ANN), (6, 1, None))[:-1] + b"\x05", now_ms=0)
    assert len(heard) == 0
