"""A crash-safe, SD-card-friendly TinyDB storage: one file, a snapshot plus a journal.

TinyDB hands its storage the whole database on every write. Rewriting a file for every
change would wear out an SD card and is not atomic, so this storage keeps the data in
memory and makes a write durable by *appending* only the documents that changed since
the last flush, as one checksummed line, then fsync. Nothing is appended when nothing
changed.

File format (one file, text, one record per line):

    <json>\\t<crc32 of json as 8 hex digits>\\n

The first record is a snapshot ``{"snapshot": 1, "seq": S, "meta": {...}, "tables": {...}}``,
each later one a commit ``{"seq": S, "meta": {...}, "ops": [[table, doc_id, doc|null], ...]}``.
``meta`` carries the caller's small counters (the store's resourceVersion).

Invariants:
- A record is acknowledged only after its line is fsynced, so every acknowledged record
  survives a crash.
- Power loss can tear only the last line. On load a torn or unterminated last line is
  discarded (it was never acknowledged) and truncated away; a bad line *followed by good
  ones* is real corruption and refuses to load rather than silently dropping commits.
- Compaction writes a fresh snapshot to a temporary file, fsyncs it, renames it over the
  old file and fsyncs the directory: at any instant the path names either the old or the
  new complete file.

Documents may hold `orjson.Fragment` values (already-serialised JSON): the store keeps
objects as bytes and they are written out without being parsed again.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from tinydb.storages import Storage

log = logging.getLogger(__name__)

Tables = dict[str, dict[str, Any]]


class CorruptStore(Exception):
    """The store file is damaged in a way a crash cannot explain."""


def _encode(record: dict[str, Any]) -> bytes:
    body = orjson.dumps(record)
    return body + b"\t" + b"%08x" % zlib.crc32(body) + b"\n"


def _decode(line: bytes) -> dict[str, Any] | None:
    """The record in a line, or None when the line is torn or fails its checksum."""
    if not line.endswith(b"\n"):
        return None
    body, sep, crc = line[:-1].rpartition(b"\t")
    if not sep or len(crc) != 8:
        return None
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        record = orjson.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class JournalStorage(Storage):
    """TinyDB storage over an append-only journal with atomic compaction.

    Not thread-safe (nor is TinyDB): one owner thread calls it. `write` only records the
    new state in memory; `flush` makes everything since the last flush durable as one
    record. `version_of(doc)` tells which documents changed: documents carry a version
    (the resourceVersion) and a document whose version differs from the flushed one is
    written again. Comparing versions, not contents, keeps a flush cheap and lets TinyDB
    update documents in place.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        version_of: Callable[[Any], Any] = lambda doc: doc.get("rv"),
        compact_min_bytes: int = 4 << 20,
        fsync: bool = True,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self._version_of = version_of
        self._compact_min = compact_min_bytes
        self._fsync = fsync
        self._data: Tables = {}
        self._flushed: dict[str, dict[str, Any]] = {}  # table -> doc_id -> version
        self.meta: dict[str, Any] = {}
        self._flushed_meta: dict[str, Any] = {}
        self._seq = 0
        self._snapshot_bytes = 0
        self._journal_bytes = 0
        self.bytes_written = 0
        self._file: Any = None
        self._load()

    # -- TinyDB's Storage interface -------------------------------------------------

    def read(self) -> Tables:
        # TinyDB re-keys and reassigns tables in this dict; it is ours to hand out.
        return self._data

    def write(self, data: Tables) -> None:
        self._data = data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- durability -----------------------------------------------------------------

    def flush(self) -> int:
        """Append everything changed since the last flush as one durable record.

        Returns the number of bytes written (0 when nothing changed: no write at all).
        """
        ops: list[list[Any]] = []
        for table, docs in self._data.items():
            flushed = self._flushed.setdefault(table, {})
            for doc_id, doc in docs.items():
                version = self._version_of(doc)
                if flushed.get(doc_id, _MISSING) != version:
                    ops.append([table, doc_id, doc])
                    flushed[doc_id] = version
            if len(flushed) != len(docs):
                for doc_id in [d for d in flushed if d not in docs]:
                    ops.append([table, doc_id, None])
                    del flushed[doc_id]
        for table in [t for t in self._flushed if t not in self._data]:
            for doc_id in self._flushed.pop(table):
                ops.append([table, doc_id, None])
        if not ops and self.meta == self._flushed_meta:
            return 0
        self._seq += 1
        line = _encode({"seq": self._seq, "meta": self.meta, "ops": ops})
        self._append(line)
        self._flushed_meta = dict(self.meta)
        if self._journal_bytes > max(self._compact_min, 2 * self._snapshot_bytes):
            self.compact()
        return len(line)

    def compact(self) -> int:
        """Rewrite the file as one snapshot (atomically) and start a new journal."""
        self._seq += 1
        line = _encode({"snapshot": 1, "seq": self._seq, "meta": self.meta,
                        "tables": self._data})
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, line)
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.close()
        os.replace(tmp, self.path)
        self._sync_dir()
        self._open_append()
        self._snapshot_bytes = len(line)
        self._journal_bytes = 0
        self.bytes_written += len(line)
        self._flushed = {t: {d: self._version_of(doc) for d, doc in docs.items()}
                         for t, docs in self._data.items()}
        self._flushed_meta = dict(self.meta)
        log.info("store compacted", extra={"bytes": len(line), "path": str(self.path)})
        return len(line)

    # -- internals ------------------------------------------------------------------

    def _append(self, line: bytes) -> None:
        if self._file is None:
            self._open_append()
        self._file.write(line)
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self._journal_bytes += len(line)
        self.bytes_written += len(line)

    def _open_append(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)

    def _sync_dir(self) -> None:
        if not self._fsync:
            return
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _load(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        if tmp.exists():
            # A compaction that never reached its rename: the old file is still whole.
            tmp.unlink()
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.compact()  # a new store starts as an empty, valid snapshot
            return
        with open(self.path, "rb") as f:
            lines = f.readlines()
        good_bytes = 0
        for index, line in enumerate(lines):
            record = _decode(line)
            if record is None:
                if index == len(lines) - 1:
                    log.warning("store: discarding a torn last record (never acknowledged)",
                                extra={"path": str(self.path), "bytes": len(line)})
                    break
                raise CorruptStore(
                    f"{self.path}: record {index + 1} of {len(lines)} is damaged and later "
                    "records follow it; this is not crash damage. Restore a backup or move "
                    "the file away to start empty.")
            if index == 0:
                if not record.get("snapshot"):
                    raise CorruptStore(f"{self.path}: does not start with a snapshot record")
                self._data = record["tables"]
                self._snapshot_bytes = len(line)
            else:
                for table, doc_id, doc in record["ops"]:
                    docs = self._data.setdefault(table, {})
                    if doc is None:
                        docs.pop(doc_id, None)
                    else:
                        docs[doc_id] = doc
                self._journal_bytes += len(line)
            self._seq = record["seq"]
            self.meta = dict(record.get("meta", {}))
            good_bytes += len(line)
        if good_bytes < self.path.stat().st_size:
            with open(self.path, "r+b") as f:
                f.truncate(good_bytes)
                if self._fsync:
                    os.fsync(f.fileno())
        self._flushed = {t: {d: self._version_of(doc) for d, doc in docs.items()}
                         for t, docs in self._data.items()}
        self._flushed_meta = dict(self.meta)


_MISSING = object()
