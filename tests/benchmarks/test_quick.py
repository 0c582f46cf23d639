"""``python -m benchmarks --quick`` end to end, against Weft only, into a temporary folder.

Checks the run's shape (raw JSON, report, figures) and that every live run converged.  It
asserts no timing: numbers on a shared 2-core machine are not a pass/fail criterion.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                                 Path]:
    out = tmp_path_factory.mktemp("bench") / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-progress", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )
    return proc, out


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_quick_run_finishes_and_fails_only_on_reported_checks(quick_run):
    proc, out = quick_run
    assert (out / "results.json").exists(), proc.stdout + proc.stderr
    failures = _results(out)["failures"]
    assert proc.returncode == (1 if failures else 0), proc.stdout + proc.stderr


def test_quick_run_drives_both_weft_engines_and_no_peer(quick_run):
    _, out = quick_run
    targets = _results(out)["live"]["targets"]
    assert set(targets) == {"weft-crdt", "weft-ot", "weft-ot-normal"}


def test_report_opens_with_the_headline_table(quick_run):
    _, out = quick_run
    report = (out / "report.md").read_text()
    assert "## Headline" in report
    assert "| weft-ot-normal |" in report.split("## Headline", 1)[1]


def test_the_floor_relay_serves_the_same_load_and_converges(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-progress", "--only", "live",
         "--targets", "floor", "--scenarios", "loads", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    floor = _results(out)["live"]["targets"]["floor"]
    assert floor["family"] == "floor" and floor["errors"] == []
    for run in floor["loads"]:
        assert run["convergence"]["ok"], run["convergence"]
        assert run["delivered"] == run["expected_deliveries"] > 0


def test_every_live_run_converged_without_errors(quick_run):
    _, out = quick_run
    for name, res in _results(out)["live"]["targets"].items():
        assert res["errors"] == [], (name, res["errors"])
        runs = res["loads"] + res["ramp"]["steps"]
        assert runs, name
        for run in runs:
            assert run["convergence"]["ok"], (name, run["scenario"], run["convergence"])
            assert run["delivered"] == run["expected_deliveries"] > 0
            assert run["duplicates"] == 0


def test_live_results_carry_latency_resources_and_generator_cpu(quick_run):
    _, out = quick_run
    for res in _results(out)["live"]["targets"].values():
        load = res["loads"][0]
        for q in ("p50", "p95", "p99", "max"):
            assert math.isfinite(load["delivery_ms"][q])
        assert load["server"]["rss_peak_mb"] > 0
        assert load["generator"]["cpu_core_fraction_max"] >= 0
        assert math.isfinite(res["idle"]["kb_per_connection"])
        assert res["idle"]["connections"] == 100


def test_engine_suite_results_are_recorded(quick_run):
    _, out = quick_run
    engine = _results(out)["engine"]
    assert {r["engine"] for r in engine["traces"]} == {"ot", "crdt"}
    assert {g["engine"] for g in engine["growth"]} == {"ot", "crdt"}


def test_report_and_figures_name_the_command(quick_run):
    _, out = quick_run
    report = (out / "report.md").read_text()
    assert "python -m benchmarks --quick" in report
    for figure in ("latency", "ramp", "memory", "growth"):
        png = out / f"{figure}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, figure
        assert f"({figure}.png)" in report


def test_engine_footprint_measures_both_engines_on_the_sequential_trace(quick_run):
    _, out = quick_run
    rows = _results(out)["engine"]["footprint"]
    assert {r["engine"] for r in rows} == {"ot", "crdt"}
    for r in rows:
        assert r["ok"], r
        # one persisted record and one client message per edit, reloads give the same text
        assert r["history_records"] == r["edits"] > 0
        assert r["history_bytes"] > r["text_bytes"] > 0
        assert r["up_bytes_per_edit"] > 0 and r["down_bytes_per_edit"] > 0
        assert r["load_snapshot_ms"] >= 0 and r["load_log_ms"] > 0
    assert "## Engines: storage, wire and cold load" in (out / "report.md").read_text()
