"""The topology simulator (``benchmarks.topology``): N leaders with the real engines over
ring, star and all-to-all links converge — on clean links, with loss and across a partition —
apply every replicated item exactly once, and repair losses through version vectors.

Everything runs in simulated time with a fixed seed, so these are exact, not timing, checks.
"""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.topology.__main__ import main
from benchmarks.topology.clock import EventLoop
from benchmarks.topology.network import (
    TOPOLOGIES,
    Conditions,
    Message,
    Network,
    Partition,
    Topology,
)
from benchmarks.topology.replication import ReplicationStats, Replicator
from benchmarks.topology.scenario import ENGINES, Outcome, Scenario, simulate
from benchmarks.topology.workload import Typing

REPO = Path(__file__).resolve().parents[2]
SEED = 7
TYPING = Typing(edits=12, rate=8.0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(topology: str, engine: str, **kw) -> Outcome:
    scenario = Scenario(topology=topology, engine=engine, leaders=kw.pop("leaders", 5),
                        typing=kw.pop("typing", TYPING), seed=SEED, **kw)
    print(f"seed {SEED}: {scenario.describe()}")
    return simulate(scenario)


def _assert_converged(out: Outcome) -> None:
    r = out.result
    assert r["ok"], (SEED, r["problems"])
    texts = {leader.text for leader in out.leaders}
    assert len(texts) == 1, (SEED, texts)
    assert out.ledger.everyone_has_everything(r["leaders"] * TYPING.edits)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_topology_converges_on_clean_links(topology, engine):
    out = _run(topology, engine)
    _assert_converged(out)
    assert out.result["lost"] == out.result["cut"] == 0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_topology_converges_despite_message_loss(topology, engine):
    out = _run(topology, engine, conditions=Conditions(loss=0.1), condition="loss")
    _assert_converged(out)
    assert out.result["lost"] > 0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_topology_converges_after_a_partition_heals(topology, engine):
    partition = Partition(300.0, 1000.0, frozenset({3, 4}))
    out = _run(topology, engine, conditions=Conditions(partition=partition),
               condition="partition")
    _assert_converged(out)
    assert out.result["cut"] > 0
    # edits made on one side during the partition reached the other side only after it healed
    assert out.result["spread_ms"]["max"] > 300.0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("routing", ["pruned", "flood"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_each_leader_applies_each_item_exactly_once(topology, routing, engine):
    out = _run(topology, engine, routing=routing, conditions=Conditions(loss=0.05))
    _assert_converged(out)
    n = out.result["leaders"]
    streams = [leader.replicator.vv[i] for i, leader in enumerate(out.leaders)]
    expected = {(leader, origin, seq) for leader in range(n) for origin in range(n)
                if origin != leader for seq in range(1, streams[origin] + 1)}
    assert set(out.ledger.applies) == expected
    assert set(out.ledger.applies.values()) == {1}


def test_plain_flooding_on_all_to_all_links_drops_many_duplicates():
    flood = _run("all-to-all", "crdt", routing="flood").result
    pruned = _run("all-to-all", "crdt", routing="pruned").result
    assert pruned["redundant_deliveries"] == 0
    assert flood["redundant_deliveries"] > 0
    assert flood["payload_messages_per_edit"] > pruned["payload_messages_per_edit"]


def test_ot_ops_travel_to_the_sequencer_over_extra_hops_in_a_ring():
    ring = _run("ring", "ot")
    star = _run("star", "ot")
    submissions = {name: len(out.shared.batches) for name, out in (("ring", ring),
                                                                   ("star", star))}
    assert star.result["messages"]["submit"] == submissions["star"]  # one hop from each leaf
    assert ring.result["messages"]["submit"] > submissions["ring"]  # relayed on the way


def test_the_same_seed_gives_the_same_run():
    a = _run("ring", "ot", conditions=Conditions(loss=0.1)).result
    b = _run("ring", "ot", conditions=Conditions(loss=0.1)).result
    for key in ("messages", "bytes", "spread_ms", "converged_after_last_edit_ms", "lost"):
        assert a[key] == b[key], key


def test_unicode_edits_round_trip_through_both_engines():
    typing = dataclasses.replace(TYPING, edits=30)
    texts = [_run("star", engine, typing=typing).leaders[0].text for engine in ENGINES]
    for text in texts:
        assert any(ord(c) > 0xFFFF for c in text), text  # astral-plane emoji survived
        assert any(0x4E00 <= ord(c) <= 0x9FFF for c in text), text  # CJK


# -- version vectors and anti-entropy, on two leaders driven by hand ------------------------


def _pair(drop: set[tuple[int, int]]
          ) -> tuple[EventLoop, Network, list[Replicator], list[list], ReplicationStats]:
    """Two linked leaders; data items (origin, seq) in ``drop`` are lost on the way."""
    loop = EventLoop()
    net = Network(loop, Topology("all-to-all", 2), Conditions(jitter_ms=0.0),
                  random.Random(SEED))
    delivered: list[list] = [[], []]
    stats = ReplicationStats()
    reps = [Replicator(i, net, lambda o, s, p, i=i: delivered[i].append((o, s, p)),
                       ordered=True, routing="pruned", gap_wait_ms=5.0, grace_ms=40.0,
                       stats=stats) for i in range(2)]
    send = net.send

    def lossy(src: int, dst: int, msg: Message) -> None:
        if msg.kind == "data" and not msg.repair and (msg.origin, msg.seq) in drop:
            net.traffic.lost += 1
            return
        send(src, dst, msg)

    net.send = lossy  # type: ignore[method-assign]
    net.deliver = lambda dst, src, msg: reps[dst].receive(msg, src)
    return loop, net, reps, delivered, stats


def test_anti_entropy_repairs_the_loss_of_an_origins_last_item():
    loop, net, reps, delivered, _ = _pair(drop={(0, 3)})
    for _ in range(3):
        reps[0].publish("x", 1)
    loop.run(1000.0)
    assert reps[1].vv == [2, 0]  # nothing later reveals the loss
    loop.after(100.0, reps[0].tick)  # one anti-entropy round, after the grace period
    loop.run(2000.0)
    assert reps[1].vv == [3, 0]
    assert [s for _, s, _ in delivered[1]] == [1, 2, 3]
    assert net.traffic.messages["repair"] == 1


def test_a_gap_is_pulled_by_the_version_vector_without_waiting_for_a_round():
    loop, net, reps, delivered, stats = _pair(drop={(0, 2)})
    for _ in range(3):
        reps[0].publish("x", 1)
    loop.run(1000.0)  # no anti-entropy round is ever scheduled here
    # item 3 revealed the gap; leader 1 sent its digest, leader 0 pushed item 2 once it was
    # older than the grace period
    assert reps[1].vv == [3, 0]
    assert [s for _, s, _ in delivered[1]] == [1, 2, 3]  # in order, each once
    assert stats.gap_pulls == 1
    assert net.traffic.messages["repair"] == 1


def test_command_line_writes_json_markdown_and_figures(tmp_path, capsys):
    out = tmp_path / "topo"
    code = main(["--quick", "--topologies", "star,ring", "--engines", "crdt,ot",
                 "--conditions", "clean,partition", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "topology.json").read_text())
    assert {(r["topology"], r["engine"], r["condition"]) for r in data["runs"]} == {
        (t, e, c) for t in ("star", "ring") for e in ("crdt", "ot")
        for c in ("clean", "partition")}
    assert all(r["ok"] for r in data["runs"])
    md = (out / "topology.md").read_text()
    assert "python -m benchmarks.topology --quick" in md
    for name in ("topology_convergence", "topology_messages"):
        assert (out / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
        assert f"({name}.png)" in md


def test_command_line_rejects_a_partition_naming_unknown_leaders(tmp_path, capsys):
    code = main(["--quick", "--partition", "100:200:9", "--out", str(tmp_path)])
    assert code == 2
    assert "outside" in capsys.readouterr().err


def test_whole_benchmark_runs_the_topology_suite_with_only_topology(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "topology", "--quick", "--no-progress",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert "engine" not in results and "live" not in results
    assert results["topology"]["ok"]
    assert len(results["topology"]["runs"]) == 18  # 3 topologies x 2 engines x 3 conditions
    report = (out / "report.md").read_text()
    assert "## Topologies" in report
    assert "(topology_convergence.png)" in report


def test_command_line_rejects_a_loss_that_is_not_a_probability(tmp_path, capsys):
    code = main(["--quick", "--loss", "1.5", "--out", str(tmp_path)])
    assert code == 2
    assert "probability" in capsys.readouterr().err
