"""The hybrid logical clock: monotonic, causal, and bounded drift."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meta.errors import BadMetaInput, ClockDriftError
from meta.hlc import HybridClock, Timestamp, offset_clock


class FakeTime:
    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_now_follows_physical_time_when_it_moves_forward():
    t = FakeTime()
    clock = HybridClock("a", t)
    assert clock.now() == Timestamp(t.now, 0, "a")
    t.now += 5
    assert clock.now() == Timestamp(t.now, 0, "a")


def test_now_counts_logically_when_physical_time_stands_still_or_goes_back():
    t = FakeTime()
    clock = HybridClock("a", t)
    first = clock.now()
    t.now -= 1000  # NTP step backwards
    second, third = clock.now(), clock.now()
    assert first < second < third
    assert second.wall == first.wall


def test_a_write_after_seeing_a_remote_one_is_ordered_after_it_despite_a_slow_clock():
    fast, slow = FakeTime(), FakeTime()
    slow.now -= 5 * 60_000  # five minutes behind
    # The drift bound must exceed the skew, or the slow node refuses everyone's timestamps.
    a, b = HybridClock("a", fast), HybridClock("b", slow, max_drift_ms=10 * 60_000)
    seen = a.now()
    b.update(seen)
    assert b.now() > seen


def test_a_remote_timestamp_beyond_max_drift_is_refused_and_not_adopted():
    t = FakeTime()
    clock = HybridClock("a", t, max_drift_ms=60_000)
    before = clock.now()
    far = Timestamp(t.now + 10 * 60_000, 0, "b")
    with pytest.raises(ClockDriftError, match="ahead of this node's clock"):
        clock.update(far)
    assert clock.last == before
    assert clock.now().wall < far.wall


def test_a_remote_timestamp_within_max_drift_is_adopted():
    t = FakeTime()
    clock = HybridClock("a", t, max_drift_ms=60_000)
    near = Timestamp(t.now + 59_000, 3, "b")
    clock.update(near)
    assert clock.now() > near


def test_offset_clock_shifts_the_physical_clock():
    assert offset_clock(-300, lambda: 1000)() == 700
    assert offset_clock(0, lambda: 1000)() == 1000


@pytest.mark.parametrize("raw", [None, 5, "", "1.2", "x.0.a", "1.y.a", "1.2." , "1.2." + "n" * 200])
def test_malformed_timestamps_are_refused(raw):
    with pytest.raises(BadMetaInput):
        Timestamp.decode(raw)


def test_timestamps_round_trip_through_their_text_form():
    ts = Timestamp(1_700_000_000_123, 7, "replica-1")
    assert Timestamp.decode(ts.encode()) == ts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["tick", "jump", "recv", "observe"]),
                          st.integers(-120_000, 120_000)), max_size=60))
def test_clock_is_monotonic_causal_and_never_drifts_past_the_bound(steps):
    t = FakeTime()
    clock = HybridClock("a", t, max_drift_ms=60_000)
    last = clock.now()
    for action, delta in steps:
        if action == "jump":
            t.now += delta  # physical time may step either way
            continue
        if action in ("recv", "observe"):
            remote = Timestamp(t.now + delta, abs(delta) % 5, "b")
            try:
                (clock.update if action == "recv" else clock.observe)(remote)
            except ClockDriftError:
                assert delta > 60_000
            else:
                assert clock.now() > remote
        current = clock.now()
        assert current > last
        # Bounded drift: never further ahead of physical time than the largest physical time
        # seen plus the drift bound.
        assert current.wall <= max(t.now, last.wall) + 60_000
        last = current


def test_observing_a_timestamp_orders_the_next_one_after_it_and_is_idempotent():
    t = FakeTime()
    clock = HybridClock("a", t)
    remote = Timestamp(t.now + 5_000, 7, "b")
    clock.observe(remote)
    clock.observe(remote)
    assert clock.last.position == remote.position
    assert clock.now() > remote


def test_observing_a_timestamp_beyond_max_drift_is_refused():
    t = FakeTime()
    clock = HybridClock("a", t, max_drift_ms=1_000)
    with pytest.raises(ClockDriftError):
        clock.observe(Timestamp(t.now + 2_000, 0, "b"))
    assert clock.last.wall == 0
