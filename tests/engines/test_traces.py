"""Every real editing trace, through both engines, must end exactly at its ``endContent``."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import replay
from benchmarks.trace_io import ConcurrentTrace, SequentialTrace, load_trace, version_vectors

DATA = Path(__file__).resolve().parent.parent / "data"
SEQUENTIAL = ["automerge-paper", "seph-blog1", "friendsforever_flat"]
KINDS = ["ot", "crdt"]


def sequential(name: str) -> SequentialTrace:
    trace = load_trace(DATA / f"{name}.json.gz")
    assert isinstance(trace, SequentialTrace)
    return trace


def first_difference(got: str, want: str) -> str:
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"first difference at code point {i}: {got[i:i + 20]!r} vs {want[i:i + 20]!r}"
    return f"lengths differ: {len(got)} vs {len(want)}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SEQUENTIAL)
def test_sequential_trace_replayed_as_local_edits_reaches_end_content(kind: str, name: str) -> None:
    trace = sequential(name)
    doc = replay.replay_local(replay.ENGINES[kind], trace)
    assert doc.text == trace.end, first_difference(doc.text, trace.end)
    reopened = replay.ENGINES[kind].load(doc.snapshot())
    assert reopened.text == trace.end


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SEQUENTIAL)
def test_sequential_trace_ingested_by_the_server_reaches_end_content(kind: str, name: str) -> None:
    trace = sequential(name)
    changes = replay.prepare_ingest(kind, trace)
    doc = replay.replay_ingest(replay.ENGINES[kind], changes)
    assert doc.text == trace.end, first_difference(doc.text, trace.end)


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_trace_with_one_client_per_agent_converges_to_end_content(kind: str) -> None:
    trace = load_trace(DATA / "friendsforever.json.gz")
    assert isinstance(trace, ConcurrentTrace)
    server_text, agent_texts = replay.replay_concurrent(kind, trace)
    assert server_text == trace.end, first_difference(server_text, trace.end)
    for i, text in enumerate(agent_texts):
        assert text == trace.end, f"agent {i}: " + first_difference(text, trace.end)


def test_concurrent_trace_is_really_concurrent() -> None:
    """Guard against replaying a trace that secretly has no concurrency."""
    trace = load_trace(DATA / "friendsforever.json.gz")
    assert isinstance(trace, ConcurrentTrace)
    vvs = version_vectors(trace)
    own = [0] * trace.num_agents
    behind = 0
    for t, vv in zip(trace.txns, vvs, strict=True):
        others = [a for a in range(trace.num_agents) if a != t.agent]
        if any(vv[a] < own[a] for a in others):
            behind += 1
        own[t.agent] += 1
    assert behind > 1000  # thousands of edits made without having seen the other's latest
