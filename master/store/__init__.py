"""The master's store: objects in memory, durable through a backend, watchable.

`Store` is what the API uses; `TinyDBBackend` is the embedded default backend.
"""

from .entry import Entry
from .store import KeyExists, KeyNotFound, Store, VersionConflict
from .tinydb_backend import TinyDBBackend
from .watch import ADDED, DELETED, MODIFIED, Change, Watcher

__all__ = ["ADDED", "DELETED", "MODIFIED", "Change", "Entry", "KeyExists", "KeyNotFound",
           "Store", "TinyDBBackend", "VersionConflict", "Watcher"]
