"""The live suite: every scenario of a profile against every target, one fresh server each.

A target is started once for its timed loads and ramp (documents are fresh per run), and once
more for the idle-memory measurement so that its baseline is a server that has done nothing.
A failure in one phase is recorded in the results and the suite goes on.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.live.scenarios import Load, idle_memory, ramp, run_load
from benchmarks.live.targets import Running, Target

# What a target is put through, in this order (``--scenarios`` picks some).
SCENARIOS = ("loads", "ramp", "idle")


@dataclass(frozen=True)
class Profile:
    name: str
    loads: tuple[Load, ...]
    ramp_editors: int
    ramp_rates: tuple[float, ...]
    ramp_seconds: float
    ramp_bisect: int
    idle_connections: int
    idle_docs: int
    workers: int = 2

    def steps_per_target(self, scenarios: frozenset[str] = frozenset(SCENARIOS)) -> int:
        return ((len(self.loads) if "loads" in scenarios else 0)
                + (len(self.ramp_rates) + self.ramp_bisect if "ramp" in scenarios else 0)
                + (1 if "idle" in scenarios else 0))


QUICK = Profile(
    name="quick",
    loads=(Load("4x5-one-doc", 4, 1, 5.0, 2.0, drain_timeout=5.0),),
    ramp_editors=4,
    ramp_rates=(10.0, 40.0),
    ramp_seconds=1.5,
    ramp_bisect=0,
    idle_connections=100,
    idle_docs=10,
)

DEFAULT = Profile(
    name="default",
    loads=(
        Load("10x5-one-doc", 10, 1, 5.0, 10.0),
        Load("100x2-20-docs", 100, 20, 2.0, 10.0),
    ),
    ramp_editors=20,
    ramp_rates=(5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0),
    ramp_seconds=5.0,
    ramp_bisect=1,
    idle_connections=1000,
    idle_docs=100,
)

Progress = Callable[[str, dict[str, Any] | None], None]


def _phase(errors: list[dict[str, Any]], target: str, phase: str,
           fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:
        errors.append({"target": target, "phase": phase, "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc()})
        return None


def run_target(target: Target, profile: Profile, log_dir: Path,
               progress: Progress, replicas: int = 1,
               scenarios: frozenset[str] = frozenset(SCENARIOS)) -> dict[str, Any]:
    out: dict[str, Any] = {"loads": [], "ramp": None, "idle": None, "errors": []}
    n = replicas if target.family == "weft" else 1  # peers run as one process
    out["replicas"] = n
    if "loads" in scenarios or "ramp" in scenarios:
        _timed(target, profile, log_dir, progress, n, scenarios, out)
    if "idle" in scenarios:
        _idle(target, profile, log_dir, progress, out)
    return out


def _timed(target: Target, profile: Profile, log_dir: Path, progress: Progress, n: int,
           scenarios: frozenset[str], out: dict[str, Any]) -> None:
    errors: list[dict[str, Any]] = out["errors"]
    running: Running | None = _phase(errors, target.name, "start",
                                     lambda: target.start(log_dir, n))
    if running is None:
        progress(f"{target.name}: failed to start", None)
        return
    try:
        for load in profile.loads if "loads" in scenarios else ():
            load = Load(load.name, load.editors, load.docs, load.rate, load.seconds,
                        profile.workers, load.drain_timeout)
            progress(f"{target.name} {load.name}", None)
            result = _phase(errors, target.name, load.name,
                            functools.partial(run_load, running, load, target.name))
            if result is not None:
                out["loads"].append(result)
            progress(f"{target.name} {load.name}", result or {})
            if not running.alive():
                errors.append({"target": target.name, "phase": load.name,
                               "error": "server exited", "log": running.log_tail()})
                return
        if "ramp" not in scenarios:
            return
        progress(f"{target.name} ramp", None)
        out["ramp"] = _phase(errors, target.name, "ramp", lambda: ramp(
            running, target.name, profile.ramp_editors, list(profile.ramp_rates),
            profile.ramp_seconds, profile.workers, profile.ramp_bisect,
            progress=lambda r: progress(f"{target.name} ramp", r)))
    finally:
        running.stop()


def _idle(target: Target, profile: Profile, log_dir: Path, progress: Progress,
          out: dict[str, Any]) -> None:
    errors: list[dict[str, Any]] = out["errors"]
    progress(f"{target.name} idle", None)
    idle_server: Running | None = _phase(errors, target.name, "start (idle)",
                                         lambda: target.start(log_dir, 1))
    if idle_server is not None:
        try:
            out["idle"] = _phase(errors, target.name, "idle", lambda: idle_memory(
                idle_server, target.name, profile.idle_connections, profile.idle_docs,
                profile.workers))
        finally:
            idle_server.stop()
    progress(f"{target.name} idle", out["idle"] or {})


def run(targets: list[Target], profile: Profile, log_dir: Path,
        progress: Progress, replicas: int = 1,
        scenarios: frozenset[str] = frozenset(SCENARIOS)) -> dict[str, Any]:
    """Run ``profile`` on every target.  ``replicas`` > 1 is the multi-replica hook: Weft
    targets start that many servers over one Redis and editors are spread over them (idle
    memory is always measured on a single server)."""
    results: dict[str, Any] = {"profile": asdict(profile), "targets": {}, "replicas": replicas,
                               "scenarios": [s for s in SCENARIOS if s in scenarios]}
    for target in targets:
        res = run_target(target, profile, log_dir, progress, replicas, scenarios)
        res.update(engine=target.engine, protocol=target.protocol, family=target.family,
                   durability=target.durability,
                   setup=target.describe(replicas if target.family == "weft" else 1))
        results["targets"][target.name] = res
    return results
