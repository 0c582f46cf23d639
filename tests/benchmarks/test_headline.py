"""The headline table: Weft's figures beside the peers', divided by the best peer's."""

from __future__ import annotations

from typing import Any

from benchmarks.headline import section


def _target(family: str, p99: float, sustained: float, kb: float,
            engine: str = "crdt") -> dict[str, Any]:
    return {
        "family": family, "engine": engine, "durability": f"{family} durability",
        "loads": [{"scenario": "10x5-one-doc", "delivery_ms": {"p50": p99 / 2, "p99": p99}}],
        "ramp": {"max_sustained_ops_s": sustained, "reached_top": False},
        "idle": {"kb_per_connection": kb},
    }


def _rows(lines: list[str]) -> dict[str, list[str]]:
    rows = [line.strip("|").split(" | ") for line in lines if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows[1:]}


LIVE = {"targets": {
    "weft-crdt": _target("weft", 3.0, 6400, 8.0),
    "floor": _target("floor", 1.0, 99999, 1.0),
    "peer-a": _target("peer", 6.0, 3200, 16.0),
    "peer-b": _target("peer", 4.0, 1600, 20.0),
}}
ENGINE = {"traces": [
    {"trace": "automerge-paper", "engine": "crdt", "mode": "local", "median_s": 8.0, "ok": True},
    {"trace": "automerge-paper", "engine": "ot", "mode": "local", "median_s": 1.0, "ok": True},
]}


def test_weft_figures_are_divided_by_the_best_peer_never_by_the_floor() -> None:
    row = _rows(section(LIVE, ENGINE))["weft-crdt"]
    assert row[2] == "3.0 (x0.75)"  # best peer p99: 4.0, not the floor's 1.0
    assert row[3] == "6,400 (x2.00)"  # best peer rate: 3,200
    assert row[4] == "8.0 (x0.50)"  # best peer memory: 16 KB


def test_peers_get_no_ratio_and_weft_gets_its_engines_replay_time() -> None:
    rows = _rows(section(LIVE, ENGINE))
    assert rows["peer-b"][2] == "4.0"
    assert rows["weft-crdt"][5] == "local 8.00 s"
    assert rows["peer-a"][5] == ""
    assert rows["weft-crdt"][6] == "weft durability"


def test_a_run_without_peers_still_renders_without_ratios() -> None:
    row = _rows(section({"targets": {"weft-crdt": LIVE["targets"]["weft-crdt"]}}, {}))["weft-crdt"]
    assert row[2] == "3.0"


def test_no_live_results_no_headline() -> None:
    assert section({}, ENGINE) == []


def _step(ok: bool) -> dict[str, Any]:
    return {"scenario": "ramp20x640", "convergence": {"ok": ok, "problems": ["3 missing"]}}


def test_a_peer_losing_edits_is_a_finding_and_weft_losing_edits_fails_the_run() -> None:
    from benchmarks.__main__ import failures, findings

    results = {"live": {"targets": {
        "weft-crdt": {"family": "weft", "loads": [_step(False)], "ramp": None, "errors": []},
        "y-websocket": {"family": "peer", "loads": [], "ramp": {"steps": [_step(False)]},
                        "errors": []},
        "floor": {"family": "floor", "loads": [_step(True)], "ramp": None, "errors": []},
    }}}
    assert [f["what"].split()[0] for f in failures(results)] == ["weft-crdt"]
    assert [line.split()[0] for line in findings(results)] == ["y-websocket"]
