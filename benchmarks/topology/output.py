"""The topology results as a Markdown section and two PNG figures (matplotlib, Agg).

Used by ``python -m benchmarks.topology`` and by the whole benchmark's report.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

FIGURES = ("topology_convergence", "topology_messages")
ENGINE_COLOURS = {"ot": "#dd8452", "crdt": "#4c72b0"}

EXPLANATION = (
    "Leaders run in simulated time (a discrete-event loop: seeded, no sleeping) with the real "
    "engines. CRDT: every leader floods its Yjs updates. OT: leader 0 (the hub of the star) "
    "is the sequencer holding the OT engine; other leaders are OT clients whose ops travel to "
    "it hop by hop and whose committed ops are flooded back (the author takes its own as its "
    "ack). Items are deduplicated by (origin, seq); version vectors drive gap pulls and "
    "gossip anti-entropy (one digest per leader per round). *Spread* is, per edit, the time "
    "until every leader's text contained it; *after last edit* is the time from the last edit "
    "until every leader had everything. *Msgs/edit* counts every link crossing of ops, "
    "updates, relays and repairs; digests are counted apart (*ctl/edit*, they scale with run "
    "time and the anti-entropy interval, not with edits). *Bytes/edit* includes digests. "
    "*Redundant* is copies dropped by dedup. Engine CPU is the thread CPU time spent in "
    "engine calls (local edits, merges, commits) summed over all leaders, per edit, the "
    "lowest of the repeated runs (the only real-time measure here; noisy on a busy "
    "machine).")


def _f(x: Any, digits: int = 1) -> str:
    if isinstance(x, int | float) and math.isfinite(x):
        return f"{x:,.{digits}f}"
    return "-"


def table(results: dict[str, Any]) -> list[str]:
    header = ["topology", "engine", "condition", "converged", "after last edit ms",
              "spread p50 ms", "spread p95 ms", "spread max ms", "msgs/edit", "ctl/edit",
              "bytes/edit", "redundant/edit", "repairs", "resends", "engine CPU µs/edit"]
    rows = []
    for r in results.get("runs", []):
        if not r.get("edits"):
            rows.append([r["topology"], r["engine"], r["condition"], "**CRASHED**"]
                        + ["-"] * (len(header) - 4))
            continue
        sp = r["spread_ms"]
        rows.append([r["topology"], r["engine"], r["condition"],
                     "yes" if r["ok"] else "**NO**", _f(r["converged_after_last_edit_ms"]),
                     _f(sp["p50"]), _f(sp["p95"]), _f(sp["max"]),
                     _f(r["payload_messages_per_edit"], 2), _f(r["control_messages_per_edit"], 2),
                     _f(r["bytes_per_edit"], 0), _f(r["redundant_per_edit"], 2),
                     str(r["repairs"]), str(r["retransmissions"]),
                     _f(r["engine_cpu_us_per_edit"])])
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def section(results: dict[str, Any], figures: dict[str, str], stamp: str,
            heading: str = "##") -> list[str]:
    """The Markdown section: plan, explanation, table, figures and any failure."""
    plan = results.get("plan", {})
    lines = [f"{heading} Topologies: multi-leader replication in simulation", "",
             f"{plan.get('leaders')} leaders, {plan.get('edits_per_leader')} edits each at "
             f"{plan.get('rate_per_s')} edits/s, links {plan.get('latency_ms')} ± "
             f"{plan.get('jitter_ms')} ms, loss condition {plan.get('loss', 0):.0%}, partition "
             f"condition: {plan.get('partition')}; anti-entropy every "
             f"{plan.get('ae_interval_ms')} ms; routing {plan.get('routing')}; seed "
             f"{plan.get('seed')}.", "", EXPLANATION, "", *table(results), ""]
    for name, alt in (("topology_convergence", "time until every leader has an edit"),
                      ("topology_messages", "messages per edit")):
        if name in figures:
            lines += [f"![{alt}]({figures[name]})", "", f"*{stamp}*", ""]
    bad = [r for r in results.get("runs", []) if not r["ok"]]
    for r in bad:
        lines.append(f"- **{r['topology']}/{r['engine']}/{r['condition']} did not converge**: "
                     + "; ".join(r["problems"]))
    return lines + ([""] if bad else [])


def _save(fig: Figure, path: Path, stamp: str) -> Path:
    footer = "\n".join(textwrap.wrap(stamp.replace("`", ""), int(fig.get_figwidth() * 21)))
    fig.text(0.01, 0.005, footer, fontsize=6, color="#555555", va="bottom")
    fig.tight_layout(rect=(0, 0.05 + 0.012 * footer.count("\n"), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _panels(results: dict[str, Any], metric: str, ylabel: str, title: str, path: Path,
            stamp: str) -> Path | None:
    runs = [r for r in results.get("runs", []) if r.get("edits")]
    conditions = list(dict.fromkeys(r["condition"] for r in runs))
    if not conditions:
        return None
    topologies = list(dict.fromkeys(r["topology"] for r in runs))
    engines = list(dict.fromkeys(r["engine"] for r in runs))
    fig, axes = plt.subplots(1, len(conditions), figsize=(4.6 * len(conditions), 4.2),
                             squeeze=False)
    width = 0.8 / max(1, len(engines))
    for ax, cond in zip(axes[0], conditions, strict=True):
        for i, eng in enumerate(engines):
            xs, vals, tops, extra = [], [], [], []
            for j, topo in enumerate(topologies):
                match = [r for r in runs if (r["condition"], r["engine"], r["topology"])
                         == (cond, eng, topo)]
                if not match:
                    continue
                r = match[0]
                xs.append(j + (i - (len(engines) - 1) / 2) * width)
                if metric == "spread":
                    vals.append(r["spread_ms"]["p50"])
                    tops.append(r["spread_ms"]["max"])
                else:
                    vals.append(r["payload_messages_per_edit"])
                    extra.append(r["control_messages_per_edit"])
            colour = ENGINE_COLOURS.get(eng)
            ax.bar(xs, vals, width, label=f"{eng} p50" if metric == "spread" else f"{eng} ops",
                   color=colour)
            if metric == "spread":
                ax.scatter(xs, tops, marker="_", s=200, color="black",
                           label="max" if i == 0 else None)
            else:
                ax.bar(xs, extra, width, bottom=vals, color=colour, alpha=0.35,
                       label=f"{eng} digests")
        ax.set_xticks(range(len(topologies)), topologies)
        if metric == "spread":
            ax.set_yscale("log")
        ax.set_title(f"{title}, {cond}")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    return _save(fig, path, stamp)


def figures(results: dict[str, Any], out: Path, stamp: str) -> dict[str, str]:
    """Draw both figures into ``out``; return {figure name: file name}."""
    made: dict[str, str] = {}
    for name, metric, ylabel, title in (
            ("topology_convergence", "spread", "edit → every leader has it (simulated ms)",
             "time until all leaders have an edit"),
            ("topology_messages", "messages", "link messages per edit", "messages per edit")):
        p = _panels(results, metric, ylabel, title, out / f"{name}.png", stamp)
        if p is not None:
            made[name] = p.name
    return made
