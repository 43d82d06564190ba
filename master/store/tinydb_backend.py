"""The embedded backend: TinyDB over the journal storage, owned by one thread.

TinyDB is not thread-safe and its calls block on disk I/O, so exactly one thread (this
module's executor) ever touches it; the event loop only awaits. Each resource is a TinyDB
table, each object a document ``{"rv": N, "obj": <object JSON>}`` keyed by
``namespace/name``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from tinydb import TinyDB
from tinydb.table import Table

from .backend import Loaded, Op
from .journal import JournalStorage


class ObjectTable(Table):
    """A table keyed by the object's "namespace/name" rather than TinyDB's integer ids."""

    document_id_class = str  # type: ignore[assignment]

    def apply(self, puts: dict[str, dict[str, Any]], deletes: Iterable[str]) -> None:
        """Apply many changes in one table update (one pass over the table, not one per op)."""

        def updater(table: dict[str, Any]) -> None:
            for doc_id in deletes:
                table.pop(doc_id, None)
            table.update(puts)

        self._update_table(updater)


class ObjectDB(TinyDB):
    table_class = ObjectTable


class TinyDBBackend:
    """Store backend on one TinyDB file. All methods are coroutines; the work runs in the
    backend's own thread."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bramble-tinydb")
        self._db: ObjectDB | None = None
        self._storage: JournalStorage | None = None

    @property
    def bytes_written(self) -> int:
        return self._storage.bytes_written if self._storage else 0

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> Loaded:
        return await self._run(self._open)

    async def commit(self, ops: list[Op], meta: dict[str, Any]) -> int:
        return await self._run(self._commit, ops, meta)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    # -- in the backend thread ------------------------------------------------------

    def _open(self) -> Loaded:
        started = time.monotonic()
        self._db = ObjectDB(self.path, storage=JournalStorage, fsync=self._fsync)
        self._storage = self._db.storage  # type: ignore[assignment]
        assert self._storage is not None
        objects: list[tuple[str, str, int, bytes]] = []
        for resource, docs in self._storage.read().items():
            for key, doc in docs.items():
                obj = doc["obj"]
                raw = obj.contents if isinstance(obj, orjson.Fragment) else orjson.dumps(obj)
                # Keep the loaded document as bytes from now on: the store holds objects
                # as JSON bytes, and so does TinyDB's copy (shared, not duplicated).
                doc["obj"] = orjson.Fragment(raw)
                objects.append((resource, key, doc["rv"], raw))
        return Loaded(objects=objects, meta=dict(self._storage.meta),
                      seconds=time.monotonic() - started)

    def _commit(self, ops: list[Op], meta: dict[str, Any]) -> int:
        assert self._db is not None and self._storage is not None
        puts: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        deletes: dict[str, list[str]] = defaultdict(list)
        for op in ops:
            if op.raw is None:
                deletes[op.resource].append(op.key)
                puts[op.resource].pop(op.key, None)
            else:
                puts[op.resource][op.key] = {"rv": op.rv, "obj": orjson.Fragment(op.raw)}
        for resource in puts.keys() | deletes.keys():
            table = self._db.table(resource)
            assert isinstance(table, ObjectTable)
            table.apply(puts.get(resource, {}), deletes.get(resource, ()))
        self._storage.meta = meta
        return self._storage.flush()
