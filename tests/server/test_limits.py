"""The token bucket behind the per-connection op rate."""

from __future__ import annotations

from server.limits import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_tokens_come_back_at_the_rate():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    assert bucket.take()
    assert not bucket.take()
    clock.now += 0.1
    assert bucket.take()


def test_tokens_never_exceed_the_burst():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=2, clock=clock)
    clock.now += 100
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_a_zero_rate_means_unlimited():
    bucket = TokenBucket(rate=0, burst=1)
    assert all(bucket.take() for _ in range(1000))
