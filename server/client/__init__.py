"""Python clients for both endpoints, for tests, benchmarks and Python apps.

They live beside the server's wire adapters because they speak exactly the format those define
and reuse their pure codecs (``server.protocols.*_wire``); importing ``server.client`` does not
import or start the server (``server/__init__`` is lazy).
"""

from server.client.crdt_client import CRDTClient
from server.client.ot_client import OTClientError, OTConnection, OTDoc

__all__ = ["CRDTClient", "OTClientError", "OTConnection", "OTDoc"]
