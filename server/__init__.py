"""The Weft server: WebSocket endpoints for OT (ShareDB protocol) and CRDT (Yjs sync), HTTP
API, rooms, relay and store.  ``from server import WeftServer, Config`` to embed it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.app import WeftServer
    from server.config import Config
    from server.limits import Limits

__all__ = ["Config", "Limits", "WeftServer"]


def __getattr__(name: str) -> Any:
    # Lazy, so `weft token` and the store/auth modules import without the whole server.
    if name == "WeftServer":
        from server.app import WeftServer

        return WeftServer
    if name == "Config":
        from server.config import Config

        return Config
    if name == "Limits":
        from server.limits import Limits

        return Limits
    raise AttributeError(name)
