"""Relays between replicas: the interface and the in-process implementation (Redis later)."""

from server.relay.base import Relay, RelayMessage
from server.relay.local import LocalHub, LocalRelay

__all__ = ["LocalHub", "LocalRelay", "Relay", "RelayMessage"]
