"""Hooks an embedding app registers (connect, load, change, store, meta_conflict) and the
optional signed webhook.  See :mod:`server.hooks.core` for the API and semantics."""

from server.hooks.core import EVENTS, Hooks
from server.hooks.events import (
    Allow,
    ConnectDecision,
    ConnectRequest,
    Deny,
    Endpoint,
    LoadEvent,
    StoreEvent,
)

__all__ = ["EVENTS", "Allow", "ConnectDecision", "ConnectRequest", "Deny", "Endpoint", "Hooks",
           "LoadEvent", "StoreEvent"]
