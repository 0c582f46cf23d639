"""Document metadata with explicit conflict policies: a pure core (no I/O, no server imports).

A document carries a small map of fields (title, tags, owner, ...).  Every write is stamped by
a hybrid logical clock (:mod:`meta.hlc`), and each field merges concurrent writes by the policy
configured for it (:mod:`meta.policies`): last-writer-wins by HLC, wall-clock LWW (unsafe,
offered to show why), multi-value (keep concurrent siblings), or an app's own merge function.
:mod:`meta.state` holds the per-document state and a merge that is commutative, associative and
idempotent for the built-in policies, so replicas may apply writes in any order, any number of
times, and agree.  The server (``server/metadata/``) stores and relays the records.
"""

from meta.errors import BadMetaInput, ClockDriftError, MetaError, UnknownPolicy
from meta.hlc import HybridClock, Timestamp
from meta.policies import Policy, PolicyTable
from meta.state import DocMeta, Version

__all__ = [
    "BadMetaInput",
    "ClockDriftError",
    "DocMeta",
    "HybridClock",
    "MetaError",
    "Policy",
    "PolicyTable",
    "Timestamp",
    "UnknownPolicy",
    "Version",
]
