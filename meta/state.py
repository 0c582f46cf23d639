"""A document's metadata: fields -> registers, the write records that change them, and views.

A :class:`Write` is what the server appends to a document's metadata log and relays: one HLC
timestamp, the writer's physical clock reading, and per field the new value (``None``
deletes) and the context the writer had for that field.  :meth:`DocMeta.apply` merges a write
into the state by each field's policy; since every policy's merge is a semilattice join
(:mod:`meta.register`), applying any permutation of a set of writes, with any duplicates, gives
the same state — replicas never need to agree on an order.

Limits are checked before anything changes (a refused write leaves the state as it was).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from meta.errors import BadMetaInput
from meta.hlc import HybridClock, Timestamp
from meta.policies import PolicyTable
from meta.register import (
    Context,
    Register,
    Version,
    covers,
    encode_token,
    frozen,
    join,
    seen_by,
    vector_from_json,
)

MAX_FIELD_NAME = 128
MAX_VALUE_BYTES = 16 * 1024
MAX_FIELDS_PER_WRITE = 64
MAX_FIELDS = 256
MAX_RECORD_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class Write:
    """One metadata write (a log record): ``fields`` maps name -> (value, context)."""

    ts: Timestamp
    physical: int
    fields: tuple[tuple[str, Any, tuple[tuple[str, int, int], ...]], ...]

    def encode(self) -> bytes:
        return orjson.dumps(self.as_json())

    def as_json(self) -> dict[str, Any]:
        return {
            "t": self.ts.encode(), "pt": self.physical,
            "f": {name: {"v": value, "c": {n: [w, lg] for n, w, lg in ctx}}
                  for name, value, ctx in self.fields},
        }

    @classmethod
    def decode(cls, data: bytes | str) -> Write:
        """Parse a record; raise :class:`BadMetaInput` if it is not one."""
        return cls.from_json(_json(data))

    @classmethod
    def from_json(cls, raw: Any) -> Write:
        if not isinstance(raw, dict) or not isinstance(raw.get("f"), dict):
            raise BadMetaInput("metadata record must be an object with 't', 'pt' and 'f'")
        physical = raw.get("pt")
        if not isinstance(physical, int) or isinstance(physical, bool):
            raise BadMetaInput("metadata record 'pt' must be an integer (ms)")
        fields = []
        for name, entry in raw["f"].items():
            check_name(name)
            if not isinstance(entry, dict):
                raise BadMetaInput(f"metadata record field {name!r} must be {{'v', 'c'}}")
            fields.append((name, entry.get("v"), frozen(vector_from_json(entry.get("c", {})))))
        return cls(Timestamp.decode(raw.get("t")), physical, tuple(fields))

    def versions(self) -> Iterable[tuple[str, Version]]:
        for name, value, ctx in self.fields:
            yield name, Version(self.ts, value, self.physical, ctx)


def _json(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadMetaInput(f"metadata record is not JSON: {exc}") from None


def decode_record(data: bytes | str) -> list[Write]:
    """The writes in a log record: one write, or every version of a snapshot record."""
    raw = _json(data)
    if isinstance(raw, dict) and isinstance(raw.get("s"), list):
        return [Write.from_json(entry) for entry in raw["s"]]
    return [Write.from_json(raw)]


@dataclass(frozen=True, slots=True)
class Conflict:
    """Concurrent writes met on one field: what the policy kept, and every value involved."""

    field: str
    policy: str
    values: tuple[Any, ...]
    kept: Any
    # The HLC timestamps of the concurrent versions (same order as ``values``): identifies the
    # conflict, so a notification seen twice can be told apart from a new one.
    hlcs: tuple[str, ...] = ()


def check_name(name: object) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_FIELD_NAME:
        raise BadMetaInput(f"field names must be strings of 1..{MAX_FIELD_NAME} characters, "
                           f"got {name!r}")
    if name.startswith("$") or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise BadMetaInput(f"field name {name!r} must not start with '$' or contain control "
                           "characters")
    return name


def check_changes(changes: object) -> dict[str, Any]:
    """A write's ``{field: value}`` (``None`` deletes), checked; raise :class:`BadMetaInput`."""
    if not isinstance(changes, Mapping) or not changes:
        raise BadMetaInput('metadata writes are a non-empty JSON object like {"title": "Notes"}')
    if len(changes) > MAX_FIELDS_PER_WRITE:
        raise BadMetaInput(f"at most {MAX_FIELDS_PER_WRITE} fields per write, got {len(changes)}")
    out: dict[str, Any] = {}
    for name, value in changes.items():
        check_name(name)
        try:
            size = len(orjson.dumps(value))
        except TypeError as exc:
            raise BadMetaInput(f"field {name!r}: value is not JSON ({exc})") from None
        if size > MAX_VALUE_BYTES:
            raise BadMetaInput(f"field {name!r}: value is {size} bytes of JSON; at most "
                               f"{MAX_VALUE_BYTES}")
        out[name] = value
    return out


class DocMeta:
    """The merged metadata of one document (see the module docstring)."""

    def __init__(self, policies: PolicyTable | None = None) -> None:
        self.policies = policies or PolicyTable()
        self.fields: dict[str, Register] = {}

    def apply(self, write: Write) -> tuple[list[str], list[Conflict]]:
        """Merge ``write``; returns the fields whose register changed and conflicts met."""
        changed: list[str] = []
        conflicts: list[Conflict] = []
        for name, version in write.versions():
            policy = self.policies.for_field(name)
            before = self.fields.get(name, ())
            if version in before:
                continue
            concurrent = [v for v in before if v.ts != version.ts
                          and not version.supersedes(v) and not v.supersedes(version)]
            after = policy.merge(before, (version,))
            if after != before:
                self.fields[name] = after
                changed.append(name)
            if concurrent:
                involved = (*concurrent, version)
                conflicts.append(Conflict(name, policy.name, tuple(v.value for v in involved),
                                          policy.read(name, after)[1],
                                          tuple(v.ts.encode() for v in involved)))
        return changed, conflicts

    def merge(self, other: DocMeta) -> None:
        """Join another replica's state into this one (field by field, by policy)."""
        for name, register in other.fields.items():
            policy = self.policies.for_field(name)
            self.fields[name] = policy.merge(self.fields.get(name, ()), register)

    def snapshot(self) -> bytes:
        """One record holding every live version: replaces the records it was merged from
        (applying it is the same as applying them, by the merge's idempotence)."""
        writes = [Write(v.ts, v.physical, ((name, v.value, v.context),)).as_json()
                  for name, register in sorted(self.fields.items()) for v in register]
        return orjson.dumps({"s": writes})

    def context(self) -> dict[str, dict[str, tuple[int, int]]]:
        """Per field, everything this state has seen (the context token of a read)."""
        return {name: seen_by(register) for name, register in self.fields.items()}

    def make_write(self, clock: HybridClock, changes: object,
                   context: Context | None = None) -> Write:
        """A new write of ``changes`` stamped by ``clock`` (not yet applied).

        Without ``context`` the writer has seen this whole state (a server-side or REST write
        replaces what is there).  With one — a token a client got from a read — the write
        supersedes only the versions that token covers: siblings written meanwhile stay.
        """
        checked = check_changes(changes)
        new_fields = [n for n in checked if n not in self.fields]
        if len(self.fields) + len(new_fields) > MAX_FIELDS:
            raise BadMetaInput(f"a document has at most {MAX_FIELDS} metadata fields")
        fields = []
        for name, incoming in checked.items():
            policy = self.policies.for_field(name)
            register = self.fields.get(name, ())
            value = policy.on_write(name, register, incoming)
            check_changes({name: value})
            known = seen_by(register)
            if context is None or policy.merge_fn is not None:
                seen = known  # (a custom merge folded every sibling into the value)
            else:
                # Never claim more than this state knows (a forged or stale token), and see
                # what the versions seen had seen: contexts stay closed, the merge associative.
                claimed = context.get(name, {})
                given = {n: min(p, known[n]) for n, p in claimed.items() if n in known}
                seen = join(given, *(v.vector for v in register if covers(given, v.ts)))
            fields.append((name, value, frozen(seen)))
        ts = clock.now()
        write = Write(ts, clock.physical(), tuple(fields))
        if len(write.encode()) > MAX_RECORD_BYTES:
            raise BadMetaInput(f"metadata write is larger than {MAX_RECORD_BYTES} bytes")
        return write

    def view(self) -> dict[str, Any]:
        """What readers get: plain values, per-field detail, and the context token."""
        meta: dict[str, Any] = {}
        detail: dict[str, Any] = {}
        for name in sorted(self.fields):
            register = self.fields[name]
            policy = self.policies.for_field(name)
            present, value = policy.read(name, register)
            if not present:
                continue
            meta[name] = value
            live = [v for v in register if v.value is not None]
            entry: dict[str, Any] = {"policy": policy.name, "hlc": register[-1].ts.encode()}
            if policy.multi:
                entry["values"] = value
            else:
                entry["value"] = value
            if len(live) > 1:
                entry["siblings"] = [v.value for v in live]
            detail[name] = entry
        return {"meta": meta, "fields": detail, "context": encode_token(self.context())}

    def field_view(self, name: str) -> Any:
        return self.policies.for_field(name).read(name, self.fields.get(name, ()))[1]
