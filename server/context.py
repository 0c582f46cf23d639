"""What every protocol session shares: the server's services, handed down explicitly.

One object instead of module globals, so two servers can run in one process (tests run two
replicas sharing a relay hub) and so sessions never import the app module (imports point down).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.auth import Authenticator
from server.config import Config
from server.metrics import Metrics
from server.rooms.registry import Rooms


@dataclass(slots=True)
class Context:
    config: Config
    metrics: Metrics
    auth: Authenticator
    rooms: Rooms
    # Protocol-owned shared state (e.g. ShareDB presence channels), keyed by protocol name.
    shared: dict[str, Any] = field(default_factory=dict)
