"""Per-field conflict policies and the table that assigns them to field names.

=============  ==================================================================================
``lww-hlc``    (default) last writer wins, ordered by hybrid logical clock, ties by node id.  A
               write made after seeing another always wins, whatever the clocks say.
``lww-wall``   last writer wins by the writers' physical clocks.  **Unsafe**: a replica whose
               clock runs behind silently loses writes it made after seeing the current value.
               Offered so the difference can be shown (and measured), not for real use.
``multi-value`` concurrent writes are all kept (siblings).  A reader sees every sibling and a
               context token; a write carrying that token replaces exactly the siblings it saw.
``custom``     the embedding app's ``merge(existing, incoming) -> value``: applied on write (the
               new value merged into the current one) and on read (concurrent siblings folded in
               timestamp order).  Storage is multi-value, so no replica's write is lost before
               the app's merge sees it.  The result is order-independent if ``merge`` is
               commutative and associative (a set union is; "append" is not).
=============  ==================================================================================

Every replica must be configured with the same policies, as with a schema: the merge of a
field is decided by its policy, and two replicas merging one field differently would diverge.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meta.errors import MetaError, UnknownPolicy
from meta.register import Register, keep_concurrent, lww_hlc, lww_wall

LWW_HLC = "lww-hlc"
LWW_WALL = "lww-wall"
MULTI_VALUE = "multi-value"
CUSTOM = "custom"
BUILT_IN = (LWW_HLC, LWW_WALL, MULTI_VALUE)
NAMES = (*BUILT_IN, CUSTOM)

MergeFn = Callable[[Any, Any], Any]
_MERGES: dict[str, Callable[[Register, Register], Register]] = {
    LWW_HLC: lww_hlc, LWW_WALL: lww_wall, MULTI_VALUE: keep_concurrent, CUSTOM: keep_concurrent,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """How one field merges concurrent writes (see the module docstring)."""

    name: str = LWW_HLC
    merge_fn: MergeFn | None = None

    def __post_init__(self) -> None:
        if self.name not in NAMES:
            raise UnknownPolicy(f"unknown metadata policy {self.name!r}; expected one of "
                                f"{', '.join(NAMES)}")
        if (self.name == CUSTOM) != (self.merge_fn is not None):
            raise UnknownPolicy("a 'custom' policy needs a merge(existing, incoming) callable, "
                                "and only a custom policy takes one")

    @property
    def multi(self) -> bool:
        """True when reads may show several concurrent values (siblings)."""
        return self.name == MULTI_VALUE

    def merge(self, a: Register, b: Register) -> Register:
        return _MERGES[self.name](a, b)

    def read(self, field: str, register: Register) -> tuple[bool, Any]:
        """``(present, value)``; a multi-value value is the list of live sibling values."""
        values = [v.value for v in register if v.value is not None]
        if not values:
            return False, None
        if self.name == MULTI_VALUE:
            return True, values
        if self.merge_fn is None:
            return True, values[-1]  # LWW registers hold one version
        return True, self._fold(field, values)

    def on_write(self, field: str, register: Register, incoming: Any) -> Any:
        """The value actually written: a custom merge folds the current value in."""
        if self.merge_fn is None or incoming is None:
            return incoming
        present, current = self.read(field, register)
        return self._call(field, current, incoming) if present else incoming

    def _fold(self, field: str, values: list[Any]) -> Any:
        result = values[0]
        for value in values[1:]:
            result = self._call(field, result, value)
        return result

    def _call(self, field: str, existing: Any, incoming: Any) -> Any:
        merge = self.merge_fn
        if merge is None:  # not a custom policy: the newer value simply replaces
            return incoming
        try:
            return merge(existing, incoming)
        except Exception as exc:
            raise MetaError(f"custom merge of field {field!r} failed: "
                            f"{type(exc).__name__}: {exc}") from exc


def policy_from(spec: str | Policy | MergeFn) -> Policy:
    """A policy from its name, a :class:`Policy`, or a bare merge callable (``custom``)."""
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, str):
        return Policy(spec)
    if callable(spec):
        return Policy(CUSTOM, spec)
    raise UnknownPolicy(f"a policy is a name ({', '.join(BUILT_IN)}), a Policy or a merge "
                        f"callable; got {type(spec).__name__}")


class PolicyTable:
    """Field name -> policy: exact names first, then glob patterns in the order they were
    added (``"x-*"``), then the default."""

    def __init__(self, default: str | Policy = LWW_HLC,
                 rules: dict[str, str | Policy | MergeFn] | None = None) -> None:
        self.default = policy_from(default)
        self._exact: dict[str, Policy] = {}
        self._patterns: dict[str, Policy] = {}
        for pattern, spec in (rules or {}).items():
            self.set(pattern, spec)

    def set(self, pattern: str, spec: str | Policy | MergeFn) -> Policy:
        if not isinstance(pattern, str) or not pattern:
            raise UnknownPolicy("a policy rule needs a non-empty field name or glob pattern")
        policy = policy_from(spec)
        target = self._patterns if any(ch in pattern for ch in "*?[") else self._exact
        target[pattern] = policy
        return policy

    def for_field(self, field: str) -> Policy:
        exact = self._exact.get(field)
        if exact is not None:
            return exact
        for pattern, policy in self._patterns.items():
            if fnmatch.fnmatchcase(field, pattern):
                return policy
        return self.default

    def describe(self) -> dict[str, str]:
        """Rules by pattern, for the REST view (custom callables are named, not shown)."""
        rules = {**self._exact, **self._patterns}
        return {"*default*": self.default.name, **{k: p.name for k, p in rules.items()}}
