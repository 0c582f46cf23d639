"""Document metadata on the server: the service (store, relay, listeners) and wire formats.

The pure merge logic is the top-level :mod:`meta` package; this package does the I/O.
"""

from server.metadata.service import MetaService

__all__ = ["MetaService"]
