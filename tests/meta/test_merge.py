"""Metadata merge: every policy's result is independent of delivery order and duplicates."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meta.errors import BadMetaInput, MetaError, UnknownPolicy
from meta.hlc import HybridClock
from meta.policies import Policy, PolicyTable
from meta.register import decode_token
from meta.state import MAX_VALUE_BYTES, DocMeta, Write


def union(existing, incoming):
    return sorted(set(existing) | set(incoming))


def policies() -> PolicyTable:
    return PolicyTable(rules={"notes": "multi-value", "label": "lww-wall", "tags": union})


def fields_of(state: DocMeta) -> dict:
    return {name: tuple((v.ts, repr(v.value)) for v in reg) for name, reg in state.fields.items()}


def simulate(seed: int, writers: int = 3, steps: int = 30) -> list[Write]:
    """Replicas writing with skewed clocks and partial knowledge of each other's writes."""
    rng = random.Random(seed)
    now = [1_700_000_000_000]
    clocks = [HybridClock(f"n{i}", (lambda off: lambda: now[0] + off)(rng.randint(-9000, 9000)))
              for i in range(writers)]
    views = [DocMeta(policies()) for _ in range(writers)]
    log: list[Write] = []
    for _ in range(steps):
        now[0] += rng.randint(0, 50)
        i = rng.randrange(writers)
        for write in rng.sample(log, k=min(len(log), rng.randint(0, 3))):  # partial delivery
            clocks[i].update(write.ts)
            views[i].apply(write)
        field = rng.choice(["title", "notes", "label", "tags"])
        value = None if rng.random() < 0.1 else (
            [f"t{rng.randint(0, 4)}"] if field == "tags" else f"{field}-{rng.randint(0, 99)}")
        context = None
        if field == "notes" and rng.random() < 0.5:
            context = decode_token(views[i].view()["context"])
        write = views[i].make_write(clocks[i], {field: value}, context)
        views[i].apply(write)
        log.append(write)
    return log


def replay(writes: list[Write]) -> DocMeta:
    state = DocMeta(policies())
    for write in writes:
        state.apply(write)
    return state


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.randoms(use_true_random=False))
def test_any_permutation_with_duplicates_gives_the_same_state(seed, rnd):
    log = simulate(seed)
    reference = replay(log)
    shuffled = log + rnd.sample(log, k=len(log) // 2)  # duplicates
    rnd.shuffle(shuffled)
    other = replay(shuffled)
    assert fields_of(other) == fields_of(reference), f"seed {seed}"
    assert other.view() == reference.view()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 30), st.integers(0, 30))
def test_merging_states_is_associative_commutative_and_idempotent(seed, cut1, cut2):
    log = simulate(seed)
    a, b, c = replay(log[:cut1]), replay(log[cut1:cut2]), replay(log[cut2:] + log[:3])

    def join(*states: DocMeta) -> DocMeta:
        out = DocMeta(policies())
        for state in states:
            out.merge(state)
        return out

    ab_c = join(join(a, b), c)
    a_bc = join(a, join(b, c))
    cba = join(c, b, a)
    assert fields_of(ab_c) == fields_of(a_bc) == fields_of(cba), f"seed {seed}"
    assert fields_of(join(ab_c, ab_c)) == fields_of(ab_c)
    assert fields_of(ab_c) == fields_of(replay(log)), f"seed {seed}"


def _pair(offset_b: int = 0):
    now = [1_700_000_000_000]
    a = HybridClock("a", lambda: now[0], max_drift_ms=10 * 60_000)
    b = HybridClock("b", lambda: now[0] + offset_b, max_drift_ms=10 * 60_000)
    return a, b, DocMeta(policies()), DocMeta(policies())


def test_lww_wall_drops_a_causally_newer_write_from_a_slow_clock_and_lww_hlc_keeps_it():
    a, b, at_a, at_b = _pair(offset_b=-5 * 60_000)
    first = at_a.make_write(a, {"title": "old", "label": "old"})
    at_a.apply(first)
    b.update(first.ts)
    at_b.apply(first)
    second = at_b.make_write(b, {"title": "new", "label": "new"})  # made after seeing "old"
    for state in (at_a, at_b):
        state.apply(second)
        assert state.view()["meta"]["title"] == "new"
        assert state.view()["meta"]["label"] == "old"  # the wall-clock loss


def test_multi_value_keeps_concurrent_writes_and_a_write_with_their_context_resolves_them():
    a, b, at_a, at_b = _pair()
    w1, w2 = at_a.make_write(a, {"notes": "from a"}), at_b.make_write(b, {"notes": "from b"})
    at_a.apply(w1)
    at_a.apply(w2)
    at_b.apply(w2)
    at_b.apply(w1)
    assert sorted(at_a.view()["meta"]["notes"]) == ["from a", "from b"]
    token = decode_token(at_a.view()["context"])
    resolved = at_a.make_write(a, {"notes": "merged"}, token)
    at_a.apply(resolved)
    at_b.apply(resolved)
    assert at_a.view()["meta"]["notes"] == at_b.view()["meta"]["notes"] == ["merged"]


def test_a_multi_value_write_with_an_old_context_keeps_siblings_it_did_not_see():
    a, b, at_a, _ = _pair()
    at_a.apply(at_a.make_write(a, {"notes": "one"}))
    stale = decode_token(at_a.view()["context"])
    at_a.apply(at_a.make_write(b, {"notes": "two"}))  # "b" writes after the stale read
    at_a.apply(at_a.make_write(a, {"notes": "three"}, stale))
    assert sorted(at_a.view()["meta"]["notes"]) == ["three", "two"]


def test_concurrent_writes_are_reported_as_conflicts_with_every_value():
    a, b, at_a, _ = _pair()
    w1, w2 = at_a.make_write(a, {"title": "x"}), DocMeta(policies()).make_write(b, {"title": "y"})
    at_a.apply(w1)
    _, conflicts = at_a.apply(w2)
    assert [(c.field, set(c.values)) for c in conflicts] == [("title", {"x", "y"})]


def test_custom_merge_applies_on_write_and_on_read():
    a, b, at_a, at_b = _pair()
    at_a.apply(at_a.make_write(a, {"tags": ["x"]}))
    at_a.apply(at_a.make_write(a, {"tags": ["y"]}))  # merged on write
    assert at_a.view()["meta"]["tags"] == ["x", "y"]
    concurrent = at_b.make_write(b, {"tags": ["z"]})  # never saw x, y
    at_a.apply(concurrent)
    assert at_a.view()["meta"]["tags"] == ["x", "y", "z"]  # siblings merged on read


def test_a_custom_merge_that_fails_is_a_clear_error_and_changes_nothing():
    def broken(existing, incoming):
        raise KeyError("boom")

    state = DocMeta(PolicyTable(rules={"tags": broken}))
    clock = HybridClock("a", lambda: 1)
    state.apply(state.make_write(clock, {"tags": [1]}))
    before = state.view()
    with pytest.raises(MetaError, match="custom merge of field 'tags' failed"):
        state.make_write(clock, {"tags": [2]})
    assert state.view() == before


def test_null_deletes_a_field():
    a, _, state, _ = _pair()
    state.apply(state.make_write(a, {"title": "x", "owner": "me"}))
    state.apply(state.make_write(a, {"title": None}))
    assert state.view()["meta"] == {"owner": "me"}


@pytest.mark.parametrize("changes", [
    {}, [], "title", {"": 1}, {"$context": 1}, {"a\x00": 1}, {"x" * 200: 1},
    {"big": "x" * (MAX_VALUE_BYTES + 1)}, {"x": {1, 2}},
    {f"f{i}": i for i in range(100)},
])
def test_bad_writes_are_refused_and_leave_the_state_unchanged(changes):
    a, _, state, _ = _pair()
    state.apply(state.make_write(a, {"title": "kept"}))
    before = state.view()
    with pytest.raises(BadMetaInput):
        state.make_write(a, changes)
    assert state.view() == before


@pytest.mark.parametrize("spec", ["lww", "", "custom", 42])
def test_unknown_policies_are_refused(spec):
    with pytest.raises(UnknownPolicy):
        PolicyTable(rules={"x": spec})


def test_exact_names_beat_patterns_which_beat_the_default():
    table = PolicyTable("lww-hlc", {"x-*": "multi-value", "x-title": "lww-wall"})
    assert table.for_field("x-title").name == "lww-wall"
    assert table.for_field("x-notes").name == "multi-value"
    assert table.for_field("title") == Policy("lww-hlc")


def test_records_round_trip_and_corrupt_records_are_refused():
    a, _, state, _ = _pair()
    write = state.make_write(a, {"title": "é😀", "tags": ["a"]})
    assert Write.decode(write.encode()) == write
    for bad in (b"nope", b"[]", b'{"t": "1.0.a", "pt": 1}', b'{"t": 5, "pt": 1, "f": {}}'):
        with pytest.raises(BadMetaInput):
            Write.decode(bad)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 30))
def test_a_snapshot_record_stands_for_the_records_it_was_merged_from(seed, cut):
    from meta.state import decode_record

    log = simulate(seed)
    snapshot = replay(log[:cut]).snapshot()
    rebuilt = replay([*decode_record(snapshot), *log[cut:]])
    assert fields_of(rebuilt) == fields_of(replay(log)), f"seed {seed}"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(3, 6))
def test_re_delivering_any_old_write_after_all_the_others_changes_nothing(seed, writers):
    log = simulate(seed, writers=writers, steps=40)
    final = replay(log)
    for write in log:
        again = replay(log)
        again.apply(write)
        assert fields_of(again) == fields_of(final), f"seed {seed}"
