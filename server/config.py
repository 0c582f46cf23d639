"""Everything an operator or embedding app can set, in one immutable value.

The CLI builds a :class:`Config` from flags and ``WEFT_*`` environment variables; an embedding
app builds one directly.  Defaults give the README's promise: one replica on loopback, the
embedded SQLite store in ``./weft-data``, no auth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from server.limits import Limits

DEFAULT_PORT = 8765
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def default_web_root() -> Path:
    """``web_client/dist`` next to the package (present once the web client is built)."""
    return Path(__file__).resolve().parent.parent / "web_client" / "dist"


@dataclass(frozen=True, slots=True)
class Config:
    """Server settings.

    ``data_dir=None`` keeps documents in memory only (tests, throw-away embedding).
    ``port=0`` binds a free port; read the bound one from :attr:`WeftServer.port`.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path | None = Path("weft-data")
    auth_secret: str | None = None
    limits: Limits = field(default_factory=Limits)
    # Rooms with no connection for this long are stored and unloaded.
    room_idle_seconds: float = 30.0
    # Group commit: writes queued while a transaction runs always share the next one; a delay
    # > 0 also waits this long before each transaction (more batching, more latency).
    commit_delay_seconds: float = 0.0
    # SQLite's sync level: "FULL" (default) acknowledges a write once the WAL is fsynced, so it
    # survives a power cut; "NORMAL" once it is in the WAL (survives a crash of the process,
    # not of the machine) and avoids the disk's fsync tail (measured here: stalls of 100-300 ms
    # about once per 500-1,000 commits with FULL, none over 9 ms with NORMAL).
    sqlite_synchronous: str = "FULL"
    # Compact a document's log into a snapshot after this many records.
    compact_every: int = 500
    # History (server.history): compaction keeps at least the last this-many versions and every
    # version younger than this-many seconds, with checkpoints to rebuild them; 0 and 0 keep
    # none beyond the current snapshot.  Older versions answer ERR_HISTORY_COMPACTED (410).
    history_keep_versions: int = 1000
    history_keep_seconds: float = 0.0
    web_root: Path | None = field(default_factory=default_web_root)
    ping_interval: float | None = 20.0
    log_level: str = "info"
    # Redis URL: documents live in Redis and replicas relay through its streams (several
    # `weft serve` processes behind one load balancer).  None: the embedded store, one replica.
    redis_url: str | None = None
    # This replica's name in relayed records (None: a random one per process).
    replica_id: str | None = None
    # How replicas order an OT document's ops (server.protocols.ot_replicas): "sequencer"
    # (Redis compare-and-set; conflicts retried) or "home" (one replica per document holds a
    # fenced lease and orders them; the others forward: server.protocols.ot_home).
    ot_ordering: str = "sequencer"
    # Presence across replicas (server.relay.presence): each replica re-publishes its clients'
    # awareness this often, and drops another replica's states not refreshed for the timeout
    # (y-protocols' outdatedTimeout: 30 s) — how a dead replica's users disappear.
    presence_refresh_seconds: float = 15.0
    presence_timeout_seconds: float = 30.0
    # How long a request presenting a causal token (``?after=``, a ShareDB subscribe at a
    # version, a Yjs sync step 1) waits for this replica to reach that state.
    causal_wait_seconds: float = 5.0
    # Hooks (server.hooks): each hook call is cancelled after this many seconds.
    hook_timeout_seconds: float = 5.0
    # Signed webhook (server.hooks.webhook): POST these events as JSON to the URL, signed with
    # the secret (X-Weft-Signature: sha256=<hex HMAC>).  None: no webhook.
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_events: tuple[str, ...] = ("change",)
    # Document metadata (server.metadata): the policy of fields no rule names ("lww-hlc",
    # "lww-wall", "multi-value"), and how far ahead a remote HLC timestamp may be before it
    # is refused rather than adopted.
    meta_default_policy: str = "lww-hlc"
    meta_max_drift_ms: int = 60_000
    # Testing only: shift this replica's physical clock (ms; negative: behind) to show what
    # clock skew does to metadata conflict policies.
    clock_offset_ms: int = 0

    @property
    def open_access(self) -> bool:
        """True when no auth secret is set: every connection may read and write everything."""
        return not self.auth_secret

    @property
    def on_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS
