"""Reading editing traces in the josephg/editing-traces format.

Two shapes exist (see tests/data/ATTRIBUTION.md):

* sequential — ``{startContent, endContent, txns: [{patches: [[pos, ndel, ins], ...]}]}``;
* concurrent — ``{kind: "concurrent", numAgents, endContent, txns: [{parents, agent, patches}]}``
  where ``parents`` index earlier transactions whose merged state the transaction edits.

Positions count Unicode code points.  Traces are read whole (they are a few MB at most) from
``.json`` or ``.json.gz`` files, so any trace in this format can be replayed, not only ours.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

Patch = tuple[int, int, str]


class TraceFormatError(ValueError):
    """The file is not an editing trace in the expected format; the message says what is off."""


@dataclass(frozen=True, slots=True)
class SequentialTrace:
    name: str
    start: str
    end: str
    txns: list[list[Patch]]

    @property
    def edits(self) -> int:
        return sum(len(p) for p in self.txns)


@dataclass(frozen=True, slots=True)
class ConcurrentTxn:
    agent: int
    parents: tuple[int, ...]
    patches: list[Patch]


@dataclass(frozen=True, slots=True)
class ConcurrentTrace:
    name: str
    end: str
    num_agents: int
    txns: list[ConcurrentTxn]

    @property
    def edits(self) -> int:
        return sum(len(t.patches) for t in self.txns)


Trace = SequentialTrace | ConcurrentTrace


def trace_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".json"):
        name = name.removesuffix(suffix)
    return name


def load_trace(path: str | Path) -> Trace:
    """Load a trace file (``.json`` or ``.json.gz``) of either shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"{path}: cannot read a JSON trace: {exc}") from exc
    if not isinstance(raw, dict) or "txns" not in raw or "endContent" not in raw:
        raise TraceFormatError(f"{path}: expected an object with 'txns' and 'endContent'")
    name = trace_name(path)
    try:
        if raw.get("kind") == "concurrent" or "numAgents" in raw:
            txns = [
                ConcurrentTxn(
                    agent=int(t["agent"]),
                    parents=tuple(int(p) for p in t["parents"]),
                    patches=[_patch(p) for p in t["patches"]],
                )
                for t in raw["txns"]
            ]
            _check_topological(txns, path)
            return ConcurrentTrace(name, raw["endContent"], int(raw["numAgents"]), txns)
        return SequentialTrace(
            name,
            raw.get("startContent", ""),
            raw["endContent"],
            [[_patch(p) for p in t["patches"]] for t in raw["txns"]],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TraceFormatError(f"{path}: malformed transaction: {exc!r}") from exc


def _patch(p: list[object]) -> Patch:
    pos, ndel, ins = p
    if not isinstance(pos, int) or not isinstance(ndel, int) or not isinstance(ins, str):
        raise TypeError(f"patch must be [int, int, str], got {p!r}")
    if pos < 0 or ndel < 0:
        raise ValueError(f"patch has a negative position or length: {p!r}")
    return (pos, ndel, ins)


def _check_topological(txns: list[ConcurrentTxn], path: Path) -> None:
    for i, t in enumerate(txns):
        for p in t.parents:
            if not 0 <= p < i:
                raise TraceFormatError(f"{path}: txn {i} has parent {p}, not an earlier txn")


def version_vectors(trace: ConcurrentTrace) -> list[tuple[int, ...]]:
    """For each transaction, how many transactions of each agent its parents' merged state holds.

    Each agent's own transactions form a chain, so a causal history is exactly a version vector;
    this turns "merge these parents" into "have seen the first n edits of each agent" in O(agents)
    per transaction instead of walking the history graph.
    """
    n = trace.num_agents
    seq_of: list[int] = []  # index of each txn within its agent's chain
    counts = [0] * n
    vvs: list[tuple[int, ...]] = []
    for t in trace.txns:
        vv = [0] * n
        for p in t.parents:
            pv = vvs[p]
            pa = trace.txns[p].agent
            for a in range(n):
                if pv[a] > vv[a]:
                    vv[a] = pv[a]
            if seq_of[p] + 1 > vv[pa]:
                vv[pa] = seq_of[p] + 1
        if vv[t.agent] != counts[t.agent]:
            raise TraceFormatError(
                f"{trace.name}: agent {t.agent}'s transactions do not form a chain "
                f"(it has made {counts[t.agent]}, the parents know {vv[t.agent]})"
            )
        seq_of.append(counts[t.agent])
        counts[t.agent] += 1
        vvs.append(tuple(vv))
    return vvs
