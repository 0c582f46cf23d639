"""Server-side awareness: the y-protocols clock rules, per-connection tracking, validation."""

from __future__ import annotations

import pytest
from pycrdt import write_var_uint

from crdt.awareness import AwarenessRegistry, decode_awareness_update
from crdt.errors import ProtocolError


def entry(client: int, clock: int, state: str) -> bytes:
    raw = state.encode()
    return write_var_uint(client) + write_var_uint(clock) + write_var_uint(len(raw)) + raw


def update(*entries: bytes) -> bytes:
    return write_var_uint(len(entries)) + b"".join(entries)


def test_a_new_client_is_added() -> None:
    registry = AwarenessRegistry()
    assert registry.apply("a", update(entry(1, 1, '{"name":"Zoë 😀"}')))
    assert registry.states == {1: {"name": "Zoë 😀"}}
    assert registry.clients_of("a") == {1}


def test_a_newer_clock_updates_and_an_older_one_is_ignored() -> None:
    registry = AwarenessRegistry()
    registry.apply("a", update(entry(1, 3, '{"cursor":1}')))
    assert registry.apply("a", update(entry(1, 4, '{"cursor":2}')))
    assert not registry.apply("a", update(entry(1, 2, '{"cursor":0}')))
    assert registry.states == {1: {"cursor": 2}}


def test_a_null_state_removes_the_client() -> None:
    registry = AwarenessRegistry()
    registry.apply("a", update(entry(1, 1, "{}")))
    assert registry.apply("a", update(entry(1, 2, "null")))
    assert registry.states == {}
    assert registry.clients_of("a") == set()


def test_the_server_has_no_presence_of_its_own() -> None:
    registry = AwarenessRegistry()
    assert registry.states == {}
    assert registry.full_update() is None


def test_full_update_holds_every_state() -> None:
    registry = AwarenessRegistry()
    registry.apply("a", update(entry(1, 1, '{"n":1}'), entry(2, 5, '{"n":2}')))
    full = registry.full_update()
    assert full is not None
    assert sorted(decode_awareness_update(full)) == [(1, 1, {"n": 1}), (2, 5, {"n": 2})]


def test_removing_a_connection_removes_only_its_clients() -> None:
    registry = AwarenessRegistry()
    registry.apply("a", update(entry(1, 1, "{}"), entry(2, 1, "{}")))
    registry.apply("b", update(entry(3, 1, "{}")))
    removal = registry.remove_connection("a")
    assert removal is not None
    assert sorted(decode_awareness_update(removal)) == [(1, 1, None), (2, 1, None)]
    assert registry.states == {3: {}}
    assert registry.remove_connection("a") is None


def test_a_client_that_moved_to_another_connection_stays_when_the_old_one_closes() -> None:
    registry = AwarenessRegistry()
    registry.apply("old", update(entry(1, 1, '{"tab":1}')))
    registry.apply("new", update(entry(1, 2, '{"tab":2}')))
    assert registry.remove_connection("old") is None
    assert registry.states == {1: {"tab": 2}}
    assert registry.clients_of("new") == {1}


def test_silent_clients_expire() -> None:
    registry = AwarenessRegistry()
    registry.apply("a", update(entry(1, 1, "{}")))
    now = registry._awareness.meta[1]["lastUpdated"]
    assert registry.expire(now + 29_999) is None
    removal = registry.expire(now + 30_000)
    assert removal is not None and decode_awareness_update(removal) == [(1, 1, None)]
    assert registry.states == {} and registry.clients_of("a") == set()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unexpected end"),
        (b"\x02" + entry(1, 1, "{}"), "2 awareness entries|unexpected end"),
        (update(entry(1, 1, "{")), "not valid JSON"),
        (update(entry(1, 1, "NaN")), "not valid JSON"),
        (update(entry(1, 1, "{}")) + b"\x00", "unexpected bytes"),
        (b"\x01\x01\x01\x05ab", "runs past the end"),
        (b"\x01\x01\x01\x02\xff\xfe", "not valid UTF-8"),
    ],
)
def test_malformed_updates_are_refused_and_change_nothing(data: bytes, message: str) -> None:
    registry = AwarenessRegistry()
    registry.apply("a", update(entry(9, 1, '{"keep":true}')))
    with pytest.raises(ProtocolError, match=message):
        registry.apply("a", data)
    assert registry.states == {9: {"keep": True}}


def test_an_update_whose_second_entry_is_bad_applies_nothing() -> None:
    """pycrdt's own Awareness would apply the first entry, then fail on the second."""
    registry = AwarenessRegistry()
    with pytest.raises(ProtocolError):
        registry.apply("a", update(entry(1, 1, '{"ok":1}'), entry(2, 1, "{broken")))
    assert registry.states == {}
