"""The Markdown report: every table and figure of a run, each naming what produced it."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.footprint import table as footprint_table
from benchmarks.headline import section as headline_section
from benchmarks.provenance import stamp
from benchmarks.topology.output import section as topology_section

# The figures for this kind of 2-core machine, to compare the generator against.
REFERENCE = [
    ("10 editors x 5 keys/s, one doc: p99", "ShareDB 3.9 ms, Hocuspocus 5.1 ms, "
     "y-websocket 6.6 ms, pycrdt-websocket 13.1 ms"),
    ("20 editors on one doc: highest rate", "ShareDB ~1,600 ops/s (p99 < 50 ms), "
     "y-websocket ~1,000 ops/s, pycrdt-websocket near 1,000 ops/s (p99 210 ms)"),
    ("idle memory per connection", "y-websocket 11.6 KB, ShareDB 19.9 KB, "
     "pycrdt-websocket 60.7 KB"),
]


def _f(x: Any, digits: int = 1) -> str:
    if isinstance(x, int | float) and math.isfinite(x):
        return f"{x:,.{digits}f}"
    return "-"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _figure(figures: dict[str, str], name: str, alt: str, caption: str) -> list[str]:
    if name not in figures:
        return []
    return [f"![{alt}]({figures[name]})", "", f"*{caption}*", ""]


def _loads(live: dict[str, Any]) -> list[str]:
    rows = []
    for name, res in live.get("targets", {}).items():
        for ld in res.get("loads", []):
            d = ld["delivery_ms"]
            conv = "yes" if ld["convergence"]["ok"] else "**NO**"
            rows.append([
                name, ld["scenario"], _f(d["p50"]), _f(d["p95"]), _f(d["p99"]), _f(d["max"]),
                _f(ld["edit_seen_by_all_ms"]["p99"]), _f(ld["edits_per_s"], 0),
                _f(ld["deliveries_per_s"], 0), _f(ld["server"]["cpu_cores"] * 100, 0),
                _f(ld["server"]["rss_peak_mb"]), conv,
            ])
    if not rows:
        return []
    return _table(["target", "scenario", "p50 ms", "p95 ms", "p99 ms", "max ms",
                   "seen-by-all p99 ms", "edits/s", "deliveries/s", "server CPU %",
                   "server peak RSS MB", "converged"], rows)


def _ramps(live: dict[str, Any]) -> list[str]:
    out: list[str] = []
    summary = []
    detail = []
    for name, res in live.get("targets", {}).items():
        r = res.get("ramp")
        if not r:
            continue
        note = "top rate held" if r["reached_top"] else (
            "load generator busy at the failing step" if r["limited_by_generator"] else "")
        summary.append([name, str(r["editors"]), _f(r["max_sustained_ops_s"], 0),
                        _f(r["max_sustained_rate"], 1), note])
        for s in sorted(r["steps"], key=lambda s: s["offered_ops_s"]):
            detail.append([name, _f(s["load"]["rate"], 1), _f(s["offered_ops_s"], 0),
                           _f(s.get("messages_per_s", math.nan), 0),
                           _f(s["delivery_ms"]["p50"]), _f(s["delivery_ms"]["p99"]),
                           _f(s["deliveries_per_s"], 0), _f(s["server"]["cpu_cores"] * 100, 0),
                           _f(s["generator"]["cpu_core_fraction_max"] * 100, 0),
                           "yes" if s["sustained"] else "no"])
    if summary:
        out += _table(["target", "editors", "max sustained edits/s", "per editor", "note"],
                      summary)
        out += ["", "<details><summary>every ramp step</summary>", ""]
        out += _table(["target", "keys/s per editor", "offered edits/s", "messages/s", "p50 ms",
                       "p99 ms",
                       "deliveries/s", "server CPU %", "generator CPU % (max worker)",
                       "sustained"], detail)
        out += ["", "</details>", ""]
    return out


def _idle(live: dict[str, Any]) -> list[str]:
    rows = []
    for name, res in live.get("targets", {}).items():
        i = res.get("idle")
        if i:
            rows.append([name, str(i["connections"]), str(i["docs"]), _f(i["rss_before_mb"]),
                         _f(i["rss_after_mb"]), _f(i["kb_per_connection"])])
    if not rows:
        return []
    return _table(["target", "connections", "documents", "RSS before MB", "RSS after MB",
                   "KB per connection"], rows)


def _generator(live: dict[str, Any]) -> list[str]:
    worst_cpu = 0.0
    worst_lag = 0.0
    top_rate = 0.0
    top_cpu = 0.0
    saturated = []
    for name, res in live.get("targets", {}).items():
        steps = list(res.get("loads", [])) + list((res.get("ramp") or {}).get("steps", []))
        for s in steps:
            worst_cpu = max(worst_cpu, s["generator"]["cpu_core_fraction_max"])
            if s["deliveries_per_s"] > top_rate:
                top_rate = s["deliveries_per_s"]
                top_cpu = s["generator"]["cpu_core_fraction_max"]
            lag = s["send_lag_ms"]["p99"]
            if isinstance(lag, float) and math.isfinite(lag):
                worst_lag = max(worst_lag, lag)
            if s["generator"]["saturated"]:
                saturated.append(f"{name} {s['scenario']}")
    lines = [
        f"- Busiest load-generator process: {worst_cpu * 100:.0f}% of one core "
        f"(per-process CPU time / wall time while typing and draining).",
        f"- Worst p99 send lag (keystroke sent after its scheduled time): {worst_lag:.1f} ms.",
        f"- Highest delivery rate measured: {top_rate:,.0f} arrivals/s, with the busiest "
        f"generator process at {top_cpu * 100:.0f}% of a core.",
    ]
    if saturated:
        lines.append("- Runs where the generator may have limited the load (a worker above "
                     "85% of a core or p99 send lag above 50 ms): " + ", ".join(saturated) + ".")
    else:
        lines.append("- No run had a generator process above 85% of a core or a p99 send lag "
                     "above 50 ms.")
    return lines


def _engine(engine: dict[str, Any]) -> list[str]:
    rows = []
    for r in engine.get("traces", []):
        per = r["median_s"] / r["edits"] * 1e6 if r.get("edits") and r.get("ok") else math.nan
        rows.append([r["trace"], r["engine"], r["mode"], f"{r['edits']:,}", _f(r["median_s"], 3),
                     _f(per, 2), _f(r["peak_rss_kb"] / 1024), str(r["snapshot_bytes"]),
                     "ok" if r["ok"] else f"**{r.get('error', 'failed')}**"])
    if not rows:
        return []
    return _table(["trace", "engine", "mode", "edits", "median s", "µs/edit", "peak +MB",
                   "snapshot B", "result"], rows)


def render(results: dict[str, Any], figures: dict[str, str]) -> str:
    prov = results["provenance"]
    st = stamp(prov)
    live = results.get("live") or {}
    engine = results.get("engine") or {}
    lines = [
        "# Weft benchmark report",
        "",
        f"- Command: `{prov['command']}`",
        f"- Started: {prov['started']}; finished: {results.get('finished', '?')} "
        f"({_f(results.get('elapsed_s', math.nan), 0)} s)",
        f"- Code: weft {prov['versions'].get('weft')} at {prov['git_commit']}",
        f"- Machine: {prov['machine']['cores']} cores, {prov['machine']['cpu']}; load average "
        f"at start {', '.join(f'{x:.2f}' for x in prov['machine']['loadavg_at_start'])} "
        "(a busy machine makes every number noisier)",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()),
    ]
    if prov.get("peer_versions"):
        lines.append("- Peers: " + ", ".join(f"{k} {v}" for k, v in
                                              prov["peer_versions"].items()))
    failures = results.get("failures", [])
    lines += ["", "## Checks", ""]
    if failures:
        lines += [f"- **{f['suite']}**: {f['what']}" for f in failures]
    else:
        lines.append("- Every Weft live run converged and every trace replay matched its "
                     "endContent.")
    for finding in results.get("findings", []):
        lines.append(f"- Not a failure of this run (a reference server): {finding}")
    headline = headline_section(live, engine)
    if headline:
        lines += ["", "## Headline", "", *headline]
    if live.get("targets"):
        profile = live.get("profile", {})
        lines += ["", "## Live: servers under test", "",
                  *_table(["target", "engine", "how it runs"],
                          [[n, r.get("engine", ""), r.get("setup", "")]
                           for n, r in live["targets"].items()]),
                  "", f"Load generator: {profile.get('workers', '?')} processes (uvloop), "
                  "raw WebSocket frames over loopback, one connection per editor."]
        if live.get("replicas", 1) > 1:
            lines += ["", f"Weft ran as {live['replicas']} replicas over Redis for the loads and "
                      "the ramp (editors spread over them); peers ran as one process each; idle "
                      "memory is measured on one Weft server with its SQLite store."]
        lines += [
            "", "## Live: latency under load", "",
            "Latency is from a keystroke's scheduled time to its arrival at another editor of "
            "the same document (every delivery counts; *seen-by-all* is the time until the last "
            "other editor has it). Editors type open-loop on a fixed schedule, each keystroke "
            "inserting an 8-character marker; CRDT editors send real Yjs updates made with "
            "pycrdt beforehand, OT editors real ShareDB ops (one in flight, the rest batched "
            "as the npm client does, so an OT editor sends fewer messages than keystrokes "
            "when acks are slow). Server CPU and RSS are sampled from outside (psutil).",
            "",
            *_loads(live), "",
            *_figure(figures, "latency", "latency percentiles", st),
            "## Live: throughput ramp", "",
            f"{profile.get('ramp_editors', '?')} editors on one document; the per-editor rate "
            "rises until p99 exceeds 250 ms (or something is lost), then is bisected. "
            "*Max sustained* is the highest offered rate that held p99 <= 250 ms with every "
            "edit delivered and the document converged.",
            "",
            *_ramps(live),
            *_figure(figures, "ramp", "throughput ramp", st),
            "## Live: idle memory per connection", "",
            "Server RSS after the connections joined minus RSS before (after one warm-up "
            "client came and went), divided by the number of connections. Connections are "
            "spread evenly over the documents; each did the protocol's join (Yjs sync step 1 "
            "and 2; ShareDB handshake and subscribe).",
            "",
            *_idle(live), "",
            *_figure(figures, "memory", "memory per connection", st),
            "## Load generator check", "",
            *_generator(live), "",
        ]
        errors = [e for res in live["targets"].values() for e in res.get("errors", [])]
        if errors:
            lines += ["### Errors", ""]
            lines += [f"- {e['target']} / {e['phase']}: {e['error']}" for e in errors]
            lines.append("")
    if engine:
        lines += ["## Engines: trace replay", "", *_engine(engine), "",
                  *_figure(figures, "traces", "trace replay cost", st)]
        if engine.get("footprint"):
            lines += ["## Engines: storage, wire and cold load", "",
                      "Each sequential trace as the server meets it (one client's ops or "
                      "updates, ingested one by one). *History*: the records the engine "
                      "persists; *snapshot*: the compacted document; *up*: the client's "
                      "message per edit (y-websocket sync update, ShareDB `op` JSON); *down*: "
                      "the server's broadcast per edit to each other client (WebSocket framing "
                      "excluded); *cold load*: opening the engine from the snapshot, and from "
                      "the whole log with no snapshot (median of 3).", "",
                      *footprint_table(engine["footprint"]), ""]
        lines += ["## Engines: cost per op as the document grows", "",
                  "A sequential trace's edits, prepared as one client would send them, "
                  "ingested by a server-side engine document in equal chunks; each point is one "
                  "chunk's mean time per op (the fastest of the repeated ingests), plotted "
                  "against the ops applied so far and against the document length reached.", "",
                  *_figure(figures, "growth", "OT vs CRDT cost as documents grow", st)]
        for g in engine.get("growth", []):
            if not g.get("ok"):
                lines.append(f"- growth {g['engine']}: **{g.get('error')}**")
        lines.append("")
    if results.get("topology"):
        lines += ["", *topology_section(results["topology"], figures, st), ""]
    lines += ["## Reference figures (from the benchmark issue, same kind of machine)", "",
              *_table(["measure", "reference"], [[a, b] for a, b in REFERENCE]), ""]
    return "\n".join(lines)
