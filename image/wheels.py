"""bramble and all its dependencies as wheels for the Pi (aarch64), so first boot needs
no PyPI: `pip install --no-index --find-links` from what the image carries.

bramble's own wheel is built from the source tree this module runs from; the others come
from `pip download` for the image's Python version and manylinux on the target machine
(aarch64 for a Pi; x86_64 for the test roots that boot in systemd-nspawn), cached under
~/.cache/bramble/wheels/cpXY-ARCH. The cache answers first: when it satisfies every
requirement, no index is asked (an offline build; delete the cache to pick up newer
releases). Blocking: runs pip.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from bramble.image.disk import ImageError

# glibc of Raspberry Pi OS Bookworm and Debian 12 is 2.36; pip needs every tag spelled out.
MANYLINUX = ("manylinux2014", "manylinux_2_28", "manylinux_2_31", "manylinux_2_34",
             "manylinux_2_36")
ARCHES = ("aarch64", "x86_64")


def platforms(arch: str) -> list[str]:
    if arch not in ARCHES:
        raise ImageError(f"no wheels for {arch!r}: one of {', '.join(ARCHES)}")
    return [f"{tag}_{arch}" for tag in MANYLINUX]


def cache_dir() -> Path:
    return Path.home() / ".cache" / "bramble" / "wheels"


def source_tree() -> Path:
    """The checkout bramble runs from (its pyproject.toml beside the image folder)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise ImageError("bramble is not running from a source checkout, so it cannot "
                         "build its own wheel: give --wheels DIR with bramble-*.whl and "
                         "its dependencies for aarch64")
    return root


def requirements(root: Path) -> list[str]:
    return list(tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"])


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise ImageError(f"pip {args[0]} failed:\n{tail}")


def collect(dest: Path, python_version: str, cache: Path | None = None,
            arch: str = "aarch64") -> list[Path]:
    """bramble's wheel and its dependencies' wheels for `arch`, copied into `dest`."""
    root = source_tree()
    cache = cache or cache_dir()
    deps = cache / f"cp{python_version.replace('.', '')}-{arch}"
    deps.mkdir(parents=True, exist_ok=True)
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(dest), str(root))
    target = [*(a for p in platforms(arch) for a in ("--platform", p)), "--only-binary=:all:",
              "--python-version", python_version, "--implementation", "cp"]
    # Only what this resolution needs goes into `dest`: an older cache may hold other
    # versions too, and the Pi's pip would still pick the newest; carrying them all only
    # costs room.
    offline = ["download", "--quiet", "--no-index", "--find-links", str(deps), *target,
               "--dest", str(dest), *requirements(root)]
    try:
        _pip(*offline)
    except ImageError:
        _pip("download", "--quiet", *target, "--dest", str(deps), *requirements(root))
        _pip(*offline)
    return sorted(dest.glob("*.whl"))
