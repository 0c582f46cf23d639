"""The room lifecycle table: the transitions that keep edits safe while rooms unload."""

from __future__ import annotations

import pytest

from server.rooms.lifecycle import InvalidTransition, RoomEvent, RoomState, next_state

S, E = RoomState, RoomEvent


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [
        (S.LOADING, E.LOADED, S.LIVE),
        (S.LOADING, E.LOAD_FAILED, S.UNLOADED),
        (S.LIVE, E.IDLE, S.STORING),
        (S.STORING, E.STORED, S.UNLOADED),
        (S.STORING, E.REJOINED, S.LIVE),
        (S.STORING, E.STORE_FAILED, S.LIVE),
        (S.LIVE, E.FAILED, S.UNLOADED),
    ],
)
def test_allowed_transitions(state, event, after):
    assert next_state(state, event) is after


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.LOADING, E.IDLE),  # a room being loaded cannot be unloaded
        (S.LIVE, E.STORED),  # a live room unloads only through STORING
        (S.UNLOADED, E.REJOINED),  # a retired room is never revived: a fresh one loads
        (S.UNLOADED, E.LOADED),
    ],
)
def test_forbidden_transitions_raise(state, event):
    with pytest.raises(InvalidTransition):
        next_state(state, event)
