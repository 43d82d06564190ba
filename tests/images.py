"""Container images for tests, built locally: there is no registry here.

`build_busybox_image(dest_dir)` writes a docker-archive (the format of `podman save` /
`docker save`: manifest.json + an image config + one layer.tar) holding a rootfs with the
static busybox binary of Debian's `busybox-static` and symlinks for the applets below,
plus /etc/passwd, /etc/group and /tmp. `PodmanRuntime.load_image(path)` loads it and
returns its name, `localhost/busybox:test` by default. Only the symlinked applets exist.

The archive is deterministic (fixed mtimes and owners), so the image id is stable.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path

BUSYBOX_IMAGE = "localhost/busybox:test"

APPLETS = (
    "sh", "sleep", "cat", "echo", "ls", "ps", "hostname", "env", "nc", "httpd", "dd", "true",
    "false", "wget", "id", "touch", "mkdir", "rm", "kill", "date", "grep", "head", "tail",
    "yes", "printf", "test", "[", "pwd", "wc", "seq", "sed", "stat", "tr", "ip", "nslookup",
)

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
           "i686": "386"}


def busybox_binary() -> Path:
    for candidate in ("/bin/busybox", shutil.which("busybox") or ""):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("busybox not found: install Debian's busybox-static")


def _add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.linkname = link
    if data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def rootfs_tar(applets: Sequence[str] = APPLETS) -> bytes:
    """An uncompressed tar of the busybox rootfs (also fine for `podman import`)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in ("bin", "etc", "root", "proc", "sys", "dev"):
            _add(tar, folder, kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "tmp", kind=tarfile.DIRTYPE, mode=0o1777)
        _add(tar, "bin/busybox", data=busybox_binary().read_bytes(), mode=0o755)
        for applet in applets:
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tar, "etc/passwd", data=PASSWD.encode())
        _add(tar, "etc/group", data=GROUP.encode())
    return buf.getvalue()


def build_busybox_image(dest_dir: Path, name: str = BUSYBOX_IMAGE, *,
                        entrypoint: Sequence[str] = (), cmd: Sequence[str] = ("sh",),
                        workdir: str = "/") -> Path:
    """Write `<dest_dir>/<name>.tar` as a docker-archive and return its path."""
    layer = rootfs_tar()
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": _GOARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": [PATH_ENV], "Cmd": list(cmd) or None,
                   "Entrypoint": list(entrypoint) or None, "WorkingDir": workdir},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/images.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [name],
                 "Layers": [f"{layer_digest}/layer.tar"]}]
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / (name.rsplit("/", 1)[-1].replace(":", "_") + ".tar")
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, layer_digest, kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, f"{layer_digest}/layer.tar", data=layer)
        _add(tar, config_name, data=config_bytes)
        _add(tar, "manifest.json", data=json.dumps(manifest).encode())
    return path
