"""Our op type against the real npm ``ot-text-unicode``, on thousands of seeded random cases.

All cases go to one node process (tests/npm/ot_crosscheck.js) per batch.  Results must be equal
exactly — the same normalized op, not merely an equivalent one — and both sides must reject the
same malformed inputs.  Where we are deliberately stricter than the npm type, the last test pins
down each difference.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ot.cursor import transform_position, transform_selection
from ot.errors import InvalidOpError
from ot.invert import invert, is_invertible, make_invertible, strip_invertible
from ot.text_op import apply, check, delete_op, insert_op, normalize
from ot.transform import compose, transform
from tests.ot.ot_random import random_op, random_text

NPM = Path(__file__).resolve().parent.parent / "npm"
SCRIPT = NPM / "ot_crosscheck.js"

pytestmark = [
    pytest.mark.npm,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]


def _check_op_true(op: object) -> bool:
    check(op)
    return True


OURS: dict[str, Callable[..., Any]] = {
    "apply": apply,
    "transform": transform,
    "compose": compose,
    "normalize": normalize,
    "checkOp": _check_op_true,
    "transformPosition": transform_position,
    "transformSelection": lambda sel, op: (list(r) if isinstance(r := transform_selection(
        tuple(sel) if isinstance(sel, list) else sel, op), tuple) else r),
    "makeInvertible": lambda op, doc: make_invertible(op, doc),
    "invert": invert,
    "stripInvertible": strip_invertible,
    "isInvertible": is_invertible,
    "insert": insert_op,
    "remove": delete_op,
}


def run_npm(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payload = json.dumps(cases, ensure_ascii=False).encode()
    proc = subprocess.run(["node", str(SCRIPT)], input=payload, capture_output=True,
                          cwd=NPM, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    assert len(results) == len(cases)
    return results


def run_ours(case: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"ok": OURS[case["fn"]](*json.loads(json.dumps(case["args"])))}
    except InvalidOpError as exc:
        return {"err": str(exc)}


def _invalid_op(rng: random.Random, doc: str) -> object:
    """A malformed op of a kind the npm type rejects too."""
    return rng.choice([
        [0, "x"], [-3, "x"], [1, 1, "x"], ["x", 2], [2], [""], [1, ""], [{"d": 0}],
        [{"d": -2}], [{"d": ""}], [1, {"d": None}], [None], [["x"]], "abc", 5, None, {"d": 1},
        [len(doc) + 1 + rng.randint(0, 3), "x"],  # skips past the end
        [{"x": 1}], [1, {"d": []}],
    ])


def _loose_op(rng: random.Random) -> list[Any]:
    parts: list[Any] = []
    for _ in range(rng.randint(0, 7)):
        kind = rng.randrange(5)
        if kind == 0:
            parts.append(rng.randint(0, 4))
        elif kind == 1:
            parts.append(random_text(rng, 3))
        elif kind == 2:
            parts.append({"d": rng.randint(0, 3)})
        elif kind == 3:
            parts.append({"d": random_text(rng, 3)})
        else:
            parts.append(rng.choice(["", 0, {"d": 0}, {"d": ""}]))
    return parts


def make_cases(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cases: list[dict[str, Any]] = []
    while len(cases) < count:
        doc = random_text(rng, rng.choice((0, 3, 12, 30)))
        a = random_op(rng, doc, text_deletes=rng.random())
        b = random_op(rng, doc, text_deletes=rng.random())
        after = apply(doc, a)
        c = random_op(rng, after, text_deletes=rng.random())
        cursor = rng.randint(0, len(doc))
        bad = _invalid_op(rng, doc)
        cases += [
            {"fn": "apply", "args": [doc, a]},
            {"fn": "apply", "args": [doc, bad]},
            {"fn": "transform", "args": [a, b, "left"]},
            {"fn": "transform", "args": [a, b, "right"]},
            {"fn": "transform", "args": [b, a, rng.choice(("left", "right"))]},
            {"fn": "transform", "args": [a, bad, "left"] if rng.random() < 0.5
             else [bad, a, "right"]},
            {"fn": "compose", "args": [a, c]},
            {"fn": "compose", "args": [bad, c] if rng.random() < 0.5 else [a, bad]},
            {"fn": "normalize", "args": [_loose_op(rng)]},
            {"fn": "checkOp", "args": [rng.choice((a, bad, _loose_op(rng)))]},
            {"fn": "transformPosition", "args": [cursor, a]},
            {"fn": "transformSelection", "args": [[cursor, rng.randint(0, len(doc))], b]},
            {"fn": "makeInvertible", "args": [a, doc]},
            {"fn": "invert", "args": [make_invertible(a, doc) if rng.random() < 0.8 else a]},
            {"fn": "stripInvertible", "args": [a]},
            {"fn": "isInvertible", "args": [a]},
            {"fn": "insert", "args": [rng.randint(0, 5), random_text(rng, 3)]},
            {"fn": "remove", "args": [rng.randint(0, 5), rng.choice((rng.randint(0, 3),
                                                                   random_text(rng, 3)))]},
        ]
    return cases


def outcome(result: dict[str, Any]) -> tuple[str, Any]:
    return ("ok", result["ok"]) if "ok" in result else ("err", None)


@pytest.mark.parametrize("seed", range(4))
def test_random_cases_agree_with_npm_ot_text_unicode(seed: int) -> None:
    cases = make_cases(seed, 2500)
    theirs = run_npm(cases)
    mismatches = []
    for case, npm in zip(cases, theirs, strict=True):
        ours = run_ours(case)
        if outcome(ours) != outcome(npm):
            mismatches.append((case, ours, npm))
    assert not mismatches, f"seed {seed}: {len(mismatches)} mismatches, first: {mismatches[0]}"


def test_both_sides_reject_malformed_inputs_in_the_batch() -> None:
    """The random batch really exercises rejection (not only the happy path)."""
    cases = make_cases(99, 500)
    rejected = [c for c, r in zip(cases, run_npm(cases), strict=True) if "err" in r]
    assert len(rejected) > 50
    assert all("err" in run_ours(c) for c in rejected)


# Inputs the npm type accepts and we refuse, on purpose: each would let a client corrupt the
# document or the log (wrong text deleted, bools/floats as lengths, fields we would drop).
STRICTER = [
    ("apply", ["abc", [True, "x"]]),
    ("apply", ["abc", [1.5, "x"]]),
    ("apply", ["abc", [{"d": 1, "x": 2}]]),
    ("apply", ["abc", [1, {"d": 5}]]),  # delete past the end: npm silently deletes less
    ("apply", ["abc", [{"d": "zz"}]]),  # delete text mismatch: npm deletes "ab" anyway
    ("checkOp", [[False]]),
    ("transform", [[2.5, "x"], ["y"], "left"]),
]


def test_where_we_are_stricter_than_npm() -> None:
    cases = [{"fn": fn, "args": args} for fn, args in STRICTER]
    for case, npm in zip(cases, run_npm(cases), strict=True):
        assert "ok" in npm, f"npm now rejects {case}: drop it from STRICTER"
        assert "err" in run_ours(case), case
