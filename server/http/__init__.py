"""HTTP on the WebSocket port: request routing and the body-capable connection class."""

from server.http.connection import WeftConnection
from server.http.routes import HttpRoutes

__all__ = ["HttpRoutes", "WeftConnection"]
