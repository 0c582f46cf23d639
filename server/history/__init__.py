"""Document history on the server: versions, text at a version or time, restore, undo/redo.

The algorithms are pure (:mod:`engines.history`); this package reads what the store kept and
commits restores and undos through the same room path as REST edits.
"""

from server.history.service import History, HistoryCompacted, NothingToUndo, VersionNotFound

__all__ = ["History", "HistoryCompacted", "NothingToUndo", "VersionNotFound"]
