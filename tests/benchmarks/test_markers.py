"""Markers and the keystroke schedule: what receivers rely on to measure latency."""

from __future__ import annotations

import pytest

from benchmarks.live.markers import (
    MARKER_LEN,
    MAX_EDITORS,
    MAX_KEYSTROKES,
    Schedule,
    find_keys,
    key,
    marker,
    parse_text,
    split_key,
)


def test_a_marker_has_fixed_length_and_round_trips():
    for editor, seq in [(0, 0), (5, 17), (MAX_EDITORS - 1, MAX_KEYSTROKES - 1)]:
        m = marker(editor, seq)
        assert len(m) == MARKER_LEN
        assert find_keys(m.encode()) == [key(editor, seq)]
        assert split_key(key(editor, seq)) == (editor, seq)


def test_markers_are_found_inside_binary_and_json_frames():
    frame = b"\x00\x02\x13\x01\x01\x8a" + marker(3, 9).encode() + b"\x00" + marker(4, 1).encode()
    assert find_keys(frame) == [key(3, 9), key(4, 1)]
    json_frame = b'{"a":"op","op":[16,"' + (marker(1, 2) + marker(1, 3)).encode() + b'"]}'
    assert find_keys(json_frame) == [key(1, 2), key(1, 3)]


def test_out_of_range_ids_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="editor id"):
        marker(MAX_EDITORS, 0)
    with pytest.raises(ValueError, match="keystroke number"):
        marker(0, -1)


def test_parse_text_accepts_only_whole_markers():
    text = marker(1, 0) + marker(2, 5)
    assert parse_text(text) == [key(1, 0), key(2, 5)]
    assert parse_text(text[:-1]) is None
    assert parse_text(text[:3] + "!" + text[4:]) is None


def test_schedule_spreads_editors_within_one_period_and_is_the_same_everywhere():
    a, b = Schedule(100.0, 10.0), Schedule(100.0, 10.0)
    phases = [a.at(e, 0) - 100.0 for e in range(20)]
    assert all(0.0 <= p < 0.1 for p in phases)
    assert len(set(phases)) == 20
    assert a.at(7, 5) == b.at(7, 5) == pytest.approx(a.at(7, 0) + 0.5)
