"""Key names of the Redis store, and the helpers for the stream ids and values Redis returns.

The layout itself (what each key holds, and why every key carries the ``{doc}`` hash tag) is
described in :mod:`server.store.redis`.  The names live here, apart from the store, because the
relay, the lease and OT home mode name the same keys; they are re-exported by
:mod:`server.store.redis`.
"""

from __future__ import annotations


def keys(doc: str) -> tuple[str, str, str]:
    """The kind, log and snapshot keys of ``doc`` (one hash tag: one Cluster slot)."""
    return f"weft:{{{doc}}}:kind", f"weft:{{{doc}}}:log", f"weft:{{{doc}}}:snap"


def history_key(doc: str) -> str:
    """The checkpoints of ``doc`` kept for history (see :mod:`server.store.redis`)."""
    return f"weft:{{{doc}}}:hist"


def meta_key(doc: str) -> str:
    """The metadata log of ``doc``: a Stream of records, fields ``o`` (origin) and ``p``."""
    return f"weft:{{{doc}}}:meta"


def version_key(doc: str) -> str:
    """The OT version counter of ``doc`` (the sequencer's compare-and-set target)."""
    return f"weft:{{{doc}}}:v"


def fence_key(doc: str) -> str:
    """The fencing counter of ``doc``'s home lease (:mod:`server.lease`)."""
    return f"weft:{{{doc}}}:fence"


def dedup_key(doc: str, src: str) -> str:
    """The last ``seq:version`` committed for ``src`` on ``doc`` (idempotent commits)."""
    return f"weft:{{{doc}}}:seq:{src}"


def parse_id(stream_id: str) -> tuple[int, int]:
    """``"ms-seq"`` as a tuple that orders like Redis orders stream ids."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
