"""bramble and all its dependencies as wheels for the Pi (aarch64), so first boot needs
no PyPI: `pip install --no-index --find-links` from what the image carries.

bramble's own wheel is built from the source tree this module runs from; the others come
from `pip download` for the image's Python version and manylinux aarch64, cached under
~/.cache/bramble/wheels (pip skips files already there). Blocking: runs pip.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from bramble.image.disk import ImageError

# glibc of Raspberry Pi OS Bookworm is 2.36; pip needs every tag spelled out.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_31_aarch64",
             "manylinux_2_34_aarch64", "manylinux_2_36_aarch64")


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


def collect(dest: Path, python_version: str, cache: Path | None = None) -> list[Path]:
    """bramble's wheel and its dependencies' aarch64 wheels, copied into `dest`."""
    root = source_tree()
    cache = cache or cache_dir()
    tag = f"cp{python_version.replace('.', '')}-aarch64"
    deps = cache / tag
    deps.mkdir(parents=True, exist_ok=True)
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(dest), str(root))
    platform_args = [a for p in PLATFORMS for a in ("--platform", p)]
    _pip("download", "--quiet", "--only-binary=:all:", *platform_args,
         "--python-version", python_version, "--implementation", "cp",
         "--dest", str(deps), *requirements(root))
    # Only what this resolution needs: an older cache may hold other versions too, and
    # the Pi's pip would still pick the newest; carrying them all only costs room.
    _pip("download", "--quiet", "--no-index", "--find-links", str(deps), "--only-binary=:all:",
         *platform_args, "--python-version", python_version, "--implementation", "cp",
         "--dest", str(dest), *requirements(root))
    return sorted(dest.glob("*.whl"))
