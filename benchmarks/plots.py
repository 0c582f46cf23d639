"""PNG figures for the report (matplotlib, Agg backend: no display needed).

Each figure carries a footer naming the command and versions that produced it (the same line
the report prints under it), so a figure copied elsewhere still says where it came from.
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

P99_BUDGET_MS = 250.0


def _save(fig: Figure, path: Path, stamp: str) -> Path:
    width_chars = int(fig.get_figwidth() * 21)  # ~21 characters per inch at 6 pt
    footer = "\n".join(textwrap.wrap(stamp.replace("`", ""), width_chars))
    fig.text(0.01, 0.005, footer, fontsize=6, color="#555555", va="bottom")
    fig.tight_layout(rect=(0, 0.05 + 0.012 * footer.count("\n"), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def latency(live: dict[str, Any], path: Path, stamp: str) -> Path | None:
    """p50/p95/p99 per target, one panel per timed load."""
    by_scenario: dict[str, list[tuple[str, dict[str, float]]]] = {}
    for name, res in live.get("targets", {}).items():
        for load in res.get("loads", []):
            by_scenario.setdefault(load["scenario"], []).append((name, load["delivery_ms"]))
    if not by_scenario:
        return None
    fig, axes = plt.subplots(1, len(by_scenario), figsize=(6 * len(by_scenario), 4.2),
                             squeeze=False)
    for ax, (scenario, rows) in zip(axes[0], by_scenario.items(), strict=True):
        width = 0.27
        xs = range(len(rows))
        for i, (q, color) in enumerate((("p50", "#4c72b0"), ("p95", "#dd8452"),
                                        ("p99", "#c44e52"))):
            vals = [r[q] if _finite(r[q]) else 0.0 for _, r in rows]
            ax.bar([x + (i - 1) * width for x in xs], vals, width, label=q, color=color)
        ax.set_xticks(list(xs), [n for n, _ in rows], rotation=20, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("edit → other editor (ms)")
        ax.set_title(f"latency, {scenario}")
        ax.legend(fontsize=8)
    return _save(fig, path, stamp)


def ramp(live: dict[str, Any], path: Path, stamp: str) -> Path | None:
    """p99 against offered edits/s per target, with the 250 ms budget."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    drew = False
    for name, res in live.get("targets", {}).items():
        r = res.get("ramp")
        if not r or not r.get("steps"):
            continue
        steps = sorted(r["steps"], key=lambda s: s["offered_ops_s"])
        xs = [s["offered_ops_s"] for s in steps]
        ys = [s["delivery_ms"]["p99"] for s in steps]
        line = ax.plot(xs, ys, marker="o", label=f"{name} (max {r['max_sustained_ops_s']:g}/s)")
        bad = [(x, y) for x, y, s in zip(xs, ys, steps, strict=True) if not s["sustained"]]
        if bad:
            ax.scatter([x for x, _ in bad], [y for _, y in bad], marker="x", s=60,
                       color=line[0].get_color())
        drew = True
    if not drew:
        plt.close(fig)
        return None
    ax.axhline(P99_BUDGET_MS, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered edits/s (all editors, one document)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title("throughput ramp (x: not sustained)")
    ax.legend(fontsize=8)
    return _save(fig, path, stamp)


def memory(live: dict[str, Any], path: Path, stamp: str) -> Path | None:
    rows = [(n, r["idle"]) for n, r in live.get("targets", {}).items() if r.get("idle")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    names = [n for n, _ in rows]
    vals = [i["kb_per_connection"] for _, i in rows]
    colors = ["#4c72b0" if r.get("family") == "weft" else "#8c8c8c"
              for r in live["targets"].values() if r.get("idle")]
    bars = ax.bar(names, vals, color=colors)
    ax.bar_label(bars, [f"{v:.1f}" for v in vals], fontsize=8)
    conns, docs = rows[0][1]["connections"], rows[0][1]["docs"]
    ax.set_ylabel("server RSS per idle connection (KB)")
    ax.set_title(f"idle memory: {conns} connections over {docs} documents")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    return _save(fig, path, stamp)


def growth(engine: dict[str, Any], path: Path, stamp: str) -> Path | None:
    series = [g for g in engine.get("growth", []) if g.get("points")]
    if not series:
        return None
    fig, (by_ops, by_len) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for g in series:
        ops = [p["ops"] for p in g["points"]]
        chars = [p["doc_chars"] for p in g["points"]]
        ys = [p["us_per_op"] for p in g["points"]]
        label = f"{g['engine']} ({g['trace']})"
        by_ops.plot(ops, ys, marker=".", label=label)
        by_len.scatter(chars, ys, s=14, label=label)
    by_ops.set_xlabel("ops applied so far (history)")
    by_len.set_xlabel("document length at that point (code points)")
    by_ops.set_ylabel("server-side ingest cost (µs per op, fastest of the runs)")
    by_ops.set_ylim(bottom=0)
    fig.suptitle("OT vs CRDT cost per op as the document grows")
    by_ops.legend(fontsize=8)
    return _save(fig, path, stamp)


def traces(engine: dict[str, Any], path: Path, stamp: str) -> Path | None:
    rows = [r for r in engine.get("traces", []) if r.get("ok")]
    if not rows:
        return None
    labels = sorted({f"{r['trace']}\n{r['mode']}" for r in rows})
    engines = sorted({r["engine"] for r in rows})
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(labels)), 4.5))
    width = 0.8 / max(1, len(engines))
    for i, eng in enumerate(engines):
        vals = []
        for lab in labels:
            match = [r for r in rows if r["engine"] == eng and f"{r['trace']}\n{r['mode']}" == lab]
            vals.append(match[0]["median_s"] / match[0]["edits"] * 1e6 if match else 0.0)
        ax.bar([x + i * width for x in range(len(labels))], vals, width, label=eng)
    ax.set_xticks([x + width * (len(engines) - 1) / 2 for x in range(len(labels))], labels,
                  fontsize=7)
    ax.set_ylabel("µs per edit (median run)")
    ax.set_title("trace replay through the engine interface")
    ax.legend(fontsize=8)
    return _save(fig, path, stamp)


def all_figures(results: dict[str, Any], out: Path, stamp: str) -> dict[str, str]:
    """Draw every figure the data allows; return {figure name: file name}."""
    made: dict[str, str] = {}
    live = results.get("live") or {}
    engine = results.get("engine") or {}
    for name, fn, data in (("latency", latency, live), ("ramp", ramp, live),
                           ("memory", memory, live), ("growth", growth, engine),
                           ("traces", traces, engine)):
        p = fn(data, out / f"{name}.png", stamp)
        if p is not None:
            made[name] = p.name
    return made
