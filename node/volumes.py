"""Prepare a pod's volumes on the host: the I/O around `pods.spec.volume_plan`.

Each volume is a directory under `<data>/pods/<uid>/volumes/<name>` (hostPath excepted),
bind-mounted into containers. ConfigMap and Secret volumes are written as kubelet's
AtomicWriter does: the files live in a versioned directory, a `..data` symlink is swapped
to the new version in one rename, and each key is a symlink through `..data` - so a
container never reads a half-updated set, and updates appear without a restart.
Blocking file work runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .pods.spec import VolumeNeed


class VolumeError(Exception):
    """A volume cannot be prepared; the message is what kubectl describe should say."""


@dataclass(frozen=True)
class Payload:
    """Resolved file contents for a configMap/secret volume: relative path -> (bytes, mode)."""

    files: Mapping[str, tuple[bytes, int]]


def payload_for(need: VolumeNeed, obj: dict[str, Any] | None) -> Payload | None:
    """The files a configMap/secret volume shows, or None when the object is missing and
    optional. Pure."""
    kind = "ConfigMap" if need.kind == "configMap" else "Secret"
    if obj is None:
        if need.optional:
            return Payload({})
        noun = "configmap" if need.kind == "configMap" else "secret"
        raise VolumeError(f'{noun} "{need.source_name}" not found')
    data: dict[str, bytes] = {}
    if need.kind == "configMap":
        for key, value in (obj.get("data") or {}).items():
            data[key] = str(value).encode()
        for key, value in (obj.get("binaryData") or {}).items():
            data[key] = base64.b64decode(value)
    else:
        for key, value in (obj.get("data") or {}).items():
            data[key] = base64.b64decode(value)
    mode = need.default_mode if need.default_mode is not None else 0o644
    if not need.items:
        return Payload({key: (value, mode) for key, value in data.items()})
    files = {}
    for item in need.items:
        if item.key not in data:
            if need.optional:
                continue
            raise VolumeError(f"configmap references non-existent config key: {item.key}"
                              if kind == "ConfigMap" else
                              f"secret references non-existent secret key: {item.key}")
        files[item.path] = (data[item.key], item.mode if item.mode is not None else mode)
    return Payload(files)


def _write_atomic(target: Path, payload: Payload) -> bool:
    """Publish `payload` in `target` (AtomicWriter layout). Returns True if it changed."""
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / "..data"
    if data_link.is_symlink():
        current = target / os.readlink(data_link)
        if _matches(current, payload):
            return False
    version = target / f"..{time.time_ns()}"
    version.mkdir()
    for rel, (content, mode) in payload.files.items():
        path = version / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(version.name, tmp_link)
    old = os.readlink(data_link) if data_link.is_symlink() else None
    os.replace(tmp_link, data_link)
    top_level = {rel.split("/", 1)[0] for rel in payload.files}
    for name in top_level:
        link = target / name
        if not link.is_symlink():
            os.symlink(f"..data/{name}", link)
    for entry in target.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in top_level:
            entry.unlink()
    if old:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _matches(current: Path, payload: Payload) -> bool:
    try:
        found = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
        if found != set(payload.files):
            return False
        return all((current / rel).read_bytes() == content and
                   (os.stat(current / rel).st_mode & 0o777) == mode
                   for rel, (content, mode) in payload.files.items())
    except OSError:
        return False


def _host_path(need: VolumeNeed) -> str:
    path = Path(need.path)
    kind = need.host_path_type
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    elif kind == "Directory" and not path.is_dir():
        raise VolumeError(f"hostPath type check failed: {path} is not a directory")
    elif kind == "File" and not path.is_file():
        raise VolumeError(f"hostPath type check failed: {path} is not a file")
    elif kind == "Socket" and not path.is_socket():
        raise VolumeError(f"hostPath type check failed: {path} is not a socket")
    return str(path)


class PodVolumes:
    """The volumes of the pods on this node, under `root` (one directory per pod uid)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    async def prepare(self, uid: str, needs: list[VolumeNeed],
                      objects: Mapping[tuple[str, str], dict[str, Any] | None]) -> dict[str, str]:
        """Create or refresh every volume; return volume name -> host path.

        `objects` maps ("configMap"|"secret", name) to the object (None: not found).
        """
        return await asyncio.to_thread(self._prepare, uid, needs, objects)

    def _prepare(self, uid: str, needs: list[VolumeNeed],
                 objects: Mapping[tuple[str, str], dict[str, Any] | None]) -> dict[str, str]:
        paths: dict[str, str] = {}
        base = self.pod_dir(uid) / "volumes"
        for need in needs:
            if need.kind == "hostPath":
                paths[need.name] = _host_path(need)
                continue
            target = base / need.name
            if need.kind == "emptyDir":
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, 0o777)  # as kubelet: any container user may write
                if need.memory and not os.path.ismount(target):
                    size = f",size={need.size_limit}" if need.size_limit else ""
                    _run(["mount", "-t", "tmpfs", "-o", f"mode=0777{size}", "tmpfs",
                          str(target)], f"emptyDir {need.name}: cannot mount a tmpfs")
            elif need.kind in ("configMap", "secret"):
                payload = payload_for(need, objects.get((need.kind, need.source_name)))
                assert payload is not None
                _write_atomic(target, payload)
            else:
                raise VolumeError(f'volume "{need.name}": {need.kind} volumes are not '
                                  "supported by bramble")
            paths[need.name] = str(target)
        return paths

    async def remove(self, uid: str) -> None:
        await asyncio.to_thread(self._remove, uid)

    def _remove(self, uid: str) -> None:
        pod_dir = self.pod_dir(uid)
        if not pod_dir.exists():
            return
        volumes = pod_dir / "volumes"
        if volumes.exists():
            for entry in volumes.iterdir():
                if os.path.ismount(entry):
                    _run(["umount", str(entry)], f"cannot unmount {entry}")
        shutil.rmtree(pod_dir, ignore_errors=True)

    def known_uids(self) -> set[str]:
        return {p.name for p in self.root.iterdir()} if self.root.exists() else set()


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise VolumeError(f"{what}: {proc.stderr.strip() or proc.returncode}")
