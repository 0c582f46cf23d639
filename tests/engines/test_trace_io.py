"""Reading traces: both shapes, version vectors, and clear errors on malformed files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from benchmarks.trace_io import (
    ConcurrentTrace,
    SequentialTrace,
    TraceFormatError,
    load_trace,
    version_vectors,
)


def write(tmp_path: Path, name: str, data: object, gz: bool = False) -> Path:
    path = tmp_path / name
    raw = json.dumps(data).encode()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def test_a_sequential_trace_loads_from_plain_json(tmp_path: Path) -> None:
    p = write(tmp_path, "t.json", {"startContent": "", "endContent": "ab",
                                   "txns": [{"patches": [[0, 0, "ab"]]}]})
    trace = load_trace(p)
    assert isinstance(trace, SequentialTrace)
    assert trace.name == "t" and trace.edits == 1 and trace.txns == [[(0, 0, "ab")]]


def test_a_concurrent_trace_loads_from_gzip(tmp_path: Path) -> None:
    p = write(tmp_path, "c.json.gz", {"kind": "concurrent", "numAgents": 2, "endContent": "ba",
                                      "txns": [
                                          {"agent": 0, "parents": [], "patches": [[0, 0, "a"]]},
                                          {"agent": 1, "parents": [], "patches": [[0, 0, "b"]]},
                                          {"agent": 0, "parents": [0, 1], "patches": []},
                                      ]}, gz=True)
    trace = load_trace(p)
    assert isinstance(trace, ConcurrentTrace)
    assert version_vectors(trace) == [(0, 0), (0, 0), (1, 1)]


@pytest.mark.parametrize("data", [
    [],
    {"txns": []},
    {"endContent": "", "txns": [{"patches": [[0, "x", "a"]]}]},
    {"endContent": "", "txns": [{"patches": [[-1, 0, "a"]]}]},
    {"kind": "concurrent", "numAgents": 1, "endContent": "",
     "txns": [{"agent": 0, "parents": [0], "patches": []}]},
])
def test_malformed_traces_are_refused_with_a_clear_error(tmp_path: Path, data: object) -> None:
    with pytest.raises(TraceFormatError):
        load_trace(write(tmp_path, "bad.json", data))


def test_a_missing_file_is_a_trace_format_error(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="cannot read"):
        load_trace(tmp_path / "nope.json")
