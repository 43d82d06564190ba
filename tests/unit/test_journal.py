"""The journal storage survives a crash at any byte, and refuses real corruption."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bramble.master.store.journal import CorruptStore, JournalStorage


def _write_commits(path: Path, n: int) -> list[int]:
    """n commits, one document each; returns the file size after each commit."""
    storage = JournalStorage(path, fsync=False)
    sizes = []
    data: dict = {"t": {}}
    for i in range(n):
        data["t"][f"k{i}"] = {"rv": i + 1, "obj": {"n": i}}
        storage.write(data)
        storage.meta = {"rv": i + 1}
        storage.flush()
        sizes.append(path.stat().st_size)
    storage.close()
    return sizes


def test_reload_returns_every_flushed_document(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _write_commits(path, 5)
    storage = JournalStorage(path, fsync=False)
    assert sorted(storage.read()["t"]) == [f"k{i}" for i in range(5)]
    assert storage.meta == {"rv": 5}


def test_crash_at_every_byte_of_the_last_commit(tmp_path: Path) -> None:
    """Power loss can leave any prefix of the last record: load keeps all earlier ones."""
    path = tmp_path / "s.db"
    sizes = _write_commits(path, 4)
    full = path.read_bytes()
    for cut in range(sizes[2], sizes[3]):
        path.write_bytes(full[:cut])
        storage = JournalStorage(path, fsync=False)
        docs = storage.read()["t"]
        assert sorted(docs) == ["k0", "k1", "k2"], cut
        storage.close()
        # The torn tail is gone, so later appends start on a clean line.
        assert path.stat().st_size == sizes[2]


def test_nothing_written_when_nothing_changed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    storage = JournalStorage(path, fsync=False)
    storage.write({"t": {"a": {"rv": 1}}})
    assert storage.flush() > 0
    size = path.stat().st_size
    storage.write({"t": {"a": {"rv": 1}}})
    assert storage.flush() == 0
    assert path.stat().st_size == size


def test_deletions_are_journalled(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    storage = JournalStorage(path, fsync=False)
    storage.write({"t": {"a": {"rv": 1}, "b": {"rv": 2}}})
    storage.flush()
    storage.write({"t": {"b": {"rv": 2}}})
    storage.flush()
    storage.close()
    assert list(JournalStorage(path, fsync=False).read()["t"]) == ["b"]


def test_compaction_is_atomic_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    storage = JournalStorage(path, fsync=False, compact_min_bytes=2000)
    data: dict = {"t": {}}
    for i in range(200):
        data["t"]["same"] = {"rv": i, "obj": "x" * 50}
        storage.write(data)
        storage.flush()
    # 200 versions of one document were written; compaction keeps the file near one.
    assert path.stat().st_size < 4000
    assert not path.with_name("s.db.tmp").exists()
    storage.close()
    assert JournalStorage(path, fsync=False).read()["t"]["same"]["rv"] == 199


def test_leftover_compaction_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _write_commits(path, 2)
    path.with_name("s.db.tmp").write_bytes(b'{"snapshot": 1, "tables": {"t": {}}')
    storage = JournalStorage(path, fsync=False)
    assert sorted(storage.read()["t"]) == ["k0", "k1"]
    assert not path.with_name("s.db.tmp").exists()


def test_damage_before_later_records_refuses_to_load(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    sizes = _write_commits(path, 3)
    raw = bytearray(path.read_bytes())
    raw[sizes[0] + 5] ^= 0xFF  # flip a byte inside the second record
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptStore, match="not crash damage"):
        JournalStorage(path, fsync=False)


def test_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _write_commits(path, 1)
    assert os.stat(path).st_mode & 0o777 == 0o600
