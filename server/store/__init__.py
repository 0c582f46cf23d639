"""Document storage: the interface and its implementations (in-memory, SQLite; Redis later)."""

from server.store.base import Store, StoredDoc
from server.store.memory import MemoryStore
from server.store.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "Store", "StoredDoc"]
