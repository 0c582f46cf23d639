"""The matrix of runs: every topology x engine under each link condition — clean links, lossy
links, and a partition that heals — with the same seeded typing in every cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.topology.network import TOPOLOGIES, Conditions, Partition
from benchmarks.topology.replication import ROUTINGS
from benchmarks.topology.scenario import ENGINES, Scenario, run
from benchmarks.topology.workload import Typing

CONDITIONS = ("clean", "loss", "partition")
Progress = Callable[[str, dict[str, Any] | None], None]


@dataclass(frozen=True)
class Plan:
    """What to run.  ``loss`` applies to the ``loss`` condition and ``partition`` to the
    ``partition`` one (``None``: :func:`default_partition`); ``clean`` has neither."""

    leaders: int = 5
    typing: Typing = field(default_factory=Typing)
    latency_ms: float = 20.0
    jitter_ms: float = 5.0
    link_latency_ms: dict[tuple[int, int], float] = field(default_factory=dict)
    loss: float = 0.05
    partition: Partition | None = None
    topologies: tuple[str, ...] = TOPOLOGIES
    engines: tuple[str, ...] = ENGINES
    conditions: tuple[str, ...] = CONDITIONS
    seed: int = 1
    ae_interval_ms: float = 100.0
    routing: str = "pruned"
    cpu_repeats: int = 3  # runs per cell; the lowest engine CPU is reported

    def __post_init__(self) -> None:
        for name, values, known in (("topology", self.topologies, TOPOLOGIES),
                                    ("engine", self.engines, ENGINES),
                                    ("condition", self.conditions, CONDITIONS),
                                    ("routing", (self.routing,), ROUTINGS)):
            unknown = [v for v in values if v not in known]
            if unknown or not values:
                raise ValueError(f"unknown or no {name} {unknown}; expected some of "
                                 f"{', '.join(known)}")
        if type(self.leaders) is not int or self.leaders < 2:
            raise ValueError(f"leaders must be an int >= 2, got {self.leaders!r}")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"loss must be a probability in [0, 1), got {self.loss!r}")
        if self.latency_ms < 0 or self.jitter_ms < 0 or not self.ae_interval_ms > 0:
            raise ValueError("latency and jitter must be >= 0 ms and the anti-entropy "
                             "interval > 0 ms")
        for a, b in self.link_latency_ms:
            if not (0 <= a < self.leaders and 0 <= b < self.leaders) or a == b:
                raise ValueError(f"link {a}-{b} does not join two of leaders "
                                 f"0..{self.leaders - 1}")
        if type(self.cpu_repeats) is not int or self.cpu_repeats < 1:
            raise ValueError(f"cpu_repeats must be an int >= 1, got {self.cpu_repeats!r}")
        if self.partition is not None and not self.partition.side <= set(range(self.leaders)):
            raise ValueError(f"the partition names leaders outside 0..{self.leaders - 1}")

    def describe(self) -> dict[str, Any]:
        part = self.partition or default_partition(self.leaders, self.typing)
        return {"leaders": self.leaders, "edits_per_leader": self.typing.edits,
                "rate_per_s": self.typing.rate, "latency_ms": self.latency_ms,
                "jitter_ms": self.jitter_ms,
                "link_latency_ms": {f"{a}-{b}": v for (a, b), v in self.link_latency_ms.items()},
                "loss": self.loss, "partition": part.describe(), "seed": self.seed,
                "ae_interval_ms": self.ae_interval_ms, "routing": self.routing,
                "cpu_repeats": self.cpu_repeats,
                "topologies": list(self.topologies), "engines": list(self.engines),
                "conditions": list(self.conditions)}


QUICK = Plan(leaders=3, typing=Typing(edits=8, rate=10.0), cpu_repeats=1)


def default_partition(leaders: int, typing: Typing) -> Partition:
    """The last ``leaders // 2`` leaders cut off (never the OT sequencer, leader 0) from 30%
    to 60% of the typing time: typing goes on on both sides, then the links heal."""
    span = typing.duration_ms
    return Partition(round(0.3 * span), round(0.6 * span),
                     frozenset(range(leaders - max(1, leaders // 2), leaders)))


def scenarios(plan: Plan) -> list[Scenario]:
    base = Conditions(plan.latency_ms, plan.jitter_ms, dict(plan.link_latency_ms))
    by_condition = {
        "clean": base,
        "loss": dataclasses.replace(base, loss=plan.loss),
        "partition": dataclasses.replace(
            base, partition=plan.partition or default_partition(plan.leaders, plan.typing)),
    }
    return [Scenario(topology=t, engine=e, leaders=plan.leaders, typing=plan.typing,
                     conditions=by_condition[c], condition=c, seed=plan.seed,
                     ae_interval_ms=plan.ae_interval_ms, routing=plan.routing)
            for c in plan.conditions for t in plan.topologies for e in plan.engines]


def run_all(plan: Plan, progress: Progress | None = None) -> dict[str, Any]:
    """Run the plan; ``ok`` is whether every run converged."""
    for engine in plan.engines:  # warm-up, not reported: first calls pay for cold caches
        run(Scenario(topology="star", engine=engine, leaders=2, typing=Typing(edits=5)))
    runs = []
    for s in scenarios(plan):
        label = f"topology {s.topology}/{s.engine}/{s.condition}"
        if progress is not None:
            progress(label, None)
        try:
            # The simulation is deterministic, so repeats differ only in the engines' CPU
            # time: keep the least-disturbed (lowest) measurement.
            repeats = [run(s) for _ in range(plan.cpu_repeats)]
            result = repeats[0]
            result["engine_cpu_us_per_edit"] = min(r["engine_cpu_us_per_edit"] for r in repeats)
            result["cpu_repeats"] = plan.cpu_repeats
        except Exception as exc:  # a crash is a failed run, reported with the others
            result = {"topology": s.topology, "engine": s.engine, "condition": s.condition,
                      "ok": False, "problems": [f"{type(exc).__name__}: {exc}"],
                      "leaders": s.leaders, "edits": 0}
        runs.append(result)
        if progress is not None:
            progress(label, result)
    return {"plan": plan.describe(), "runs": runs, "ok": all(r["ok"] for r in runs)}


def failures(results: dict[str, Any]) -> list[str]:
    """One line per run that did not converge."""
    return [f"{r['topology']}/{r['engine']}/{r['condition']}: " + "; ".join(r["problems"])
            for r in results.get("runs", []) if not r["ok"]]
