"""``python -m benchmarks.traces`` checks results and says so in its exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import traces

SEQ = {"startContent": "", "endContent": "héllo 😀",
       "txns": [{"patches": [[0, 0, "hello"]]}, {"patches": [[1, 1, "é"]]},
                {"patches": [[5, 0, " 😀"]]}]}
CONC = {"kind": "concurrent", "numAgents": 2, "endContent": "Xbc😀",
        "txns": [{"agent": 0, "parents": [], "patches": [[0, 0, "ab"]]},
                 {"agent": 1, "parents": [0], "patches": [[2, 0, "c😀"]]},
                 {"agent": 0, "parents": [0], "patches": [[0, 1, ""]]},
                 {"agent": 1, "parents": [1, 2], "patches": [[0, 0, "X"]]}]}


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_replaying_correct_traces_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             ) -> None:
    out = tmp_path / "results.json"
    code = traces.main([write(tmp_path, "s.json", SEQ), write(tmp_path, "c.json", CONC),
                        "--runs", "1", "--json", str(out)])
    assert code == 0
    results = json.loads(out.read_text())
    assert {(r["engine"], r["mode"]) for r in results} == {
        ("ot", "local"), ("ot", "ingest"), ("crdt", "local"), ("crdt", "ingest"),
        ("ot", "concurrent"), ("crdt", "concurrent")}
    assert all(r["ok"] for r in results)
    assert "ok" in capsys.readouterr().out


def test_a_trace_whose_end_content_is_not_reached_exits_non_zero(tmp_path: Path) -> None:
    wrong = dict(SEQ, endContent="something else")
    assert traces.main([write(tmp_path, "w.json", wrong), "--runs", "1"]) == 1
