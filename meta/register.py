"""One field's register: the versions written to it and the merges that combine them.

A :class:`Version` is one write of one field: its HLC timestamp (the write's identity, or
*dot*: node + position in that node's sequence), its value (``None``: deleted), the writer's
physical clock reading, and its *context* — a version vector of everything the writer had seen
when it wrote.  Version ``w`` *supersedes* ``v`` when ``w``'s context covers ``v``'s dot.

Contexts are closed under what they cover (a writer that saw ``v`` also saw everything ``v``
saw: the server builds every context as the join of the dots *and* contexts it has seen), so
"supersedes" is a strict partial order.  That is what makes :func:`keep_concurrent` — keep the
versions no other version supersedes — a semilattice join: commutative, associative and
idempotent (dotted version vectors; Riak's siblings).  The two LWW merges keep the maximum by a
total order, which is a semilattice join too.

All merges take and return *registers*: tuples of versions sorted by timestamp, duplicates
(same dot) removed — one canonical form per state, so equal states compare equal.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from meta.errors import BadMetaInput
from meta.hlc import Timestamp

Position = tuple[int, int]
VersionVector = Mapping[str, Position]
"""node -> the highest ``(wall, logical)`` seen from that node."""

MAX_CONTEXT_NODES = 1024


@dataclass(frozen=True, slots=True, eq=False)
class Version:
    """One write of one field (see the module docstring).  Equal iff same dot and value."""

    ts: Timestamp
    value: Any
    physical: int
    context: tuple[tuple[str, int, int], ...] = ()

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Version) and self.ts == other.ts
                and orjson.dumps(self.value) == orjson.dumps(other.value))

    def __hash__(self) -> int:
        return hash(self.ts)

    @property
    def vector(self) -> dict[str, Position]:
        return {node: (wall, logical) for node, wall, logical in self.context}

    def supersedes(self, other: Version) -> bool:
        return covers(self.vector, other.ts)


Register = tuple[Version, ...]


def covers(vector: VersionVector, ts: Timestamp) -> bool:
    seen = vector.get(ts.node)
    return seen is not None and seen >= ts.position


def join(*vectors: VersionVector) -> dict[str, Position]:
    """The least vector covering every given one."""
    out: dict[str, Position] = {}
    for vector in vectors:
        for node, position in vector.items():
            if node not in out or position > out[node]:
                out[node] = position
    return out


def seen_by(versions: Iterable[Version]) -> dict[str, Position]:
    """The vector a writer has after seeing ``versions``: their dots and their contexts."""
    out: dict[str, Position] = {}
    for version in versions:
        out = join(out, version.vector, {version.ts.node: version.ts.position})
    return out


def frozen(vector: VersionVector) -> tuple[tuple[str, int, int], ...]:
    return tuple(sorted((node, wall, logical) for node, (wall, logical) in vector.items()))


def canonical(versions: Iterable[Version]) -> Register:
    """Sorted by timestamp, one version per dot (the same dot is the same write)."""
    by_dot: dict[Timestamp, Version] = {}
    for version in versions:
        by_dot.setdefault(version.ts, version)
    return tuple(sorted(by_dot.values(), key=lambda v: v.ts))


def lww_hlc(a: Register, b: Register) -> Register:
    """Last writer wins by HLC: causally later writes always win; ties broken by node id."""
    both = canonical((*a, *b))
    return both[-1:]


def lww_wall(a: Register, b: Register) -> Register:
    """Last writer wins by the writers' *physical* clocks.  Unsafe: a node whose clock runs
    behind loses even writes it made after seeing the current value.  Offered to show that."""
    both = canonical((*a, *b))
    if not both:
        return ()
    return (max(both, key=lambda v: (v.physical, v.ts.node, v.ts)),)


def keep_concurrent(a: Register, b: Register) -> Register:
    """Keep every version no other version supersedes (the concurrent siblings)."""
    both = canonical((*a, *b))
    return tuple(v for v in both if not any(w is not v and w.supersedes(v) for w in both))


# -- context tokens: what a client echoes back to say "I saw these siblings" ------------------


Context = Mapping[str, VersionVector]
"""Per field, what a reader had seen: a token is one of these.  Per field, not per document:
a node's versions of different fields share one HLC sequence, so a document-wide vector would
claim to have seen versions of one field that were only implied by another field's."""

MAX_TOKEN_CHARS = 256 * 1024


def encode_token(context: Context) -> str:
    """An opaque, URL-safe token for a per-field context."""
    raw = orjson.dumps({field: {node: [wall, logical] for node, (wall, logical)
                                in sorted(vector.items())}
                        for field, vector in sorted(context.items()) if vector})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(token: object) -> dict[str, dict[str, Position]]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise BadMetaInput("context must be the token string a read returned")
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadMetaInput("context token is corrupt: pass the token a read returned") from None
    if not isinstance(raw, dict):
        raise BadMetaInput("context token is corrupt: pass the token a read returned")
    return {str(field): vector_from_json(vector) for field, vector in raw.items()}


def vector_from_json(raw: object) -> dict[str, Position]:
    if not isinstance(raw, dict) or len(raw) > MAX_CONTEXT_NODES:
        raise BadMetaInput("context must map node ids to [wall, logical]")
    out: dict[str, Position] = {}
    for node, position in raw.items():
        if (not isinstance(node, str) or not isinstance(position, list) or len(position) != 2
                or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0
                           for p in position)):
            raise BadMetaInput(f"context entry {node!r}: expected [wall, logical] integers")
        out[node] = (position[0], position[1])
    return out
