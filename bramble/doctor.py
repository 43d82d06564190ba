"""Preflight: what breaks Pi clusters, checked on this machine, each with how to fix it.

`bramble doctor` prints every check; the node agent runs the cheap ones at start and logs
what is not ok as warnings (it never refuses to start because of them: a person may know
better, and a Pi whose clock is still syncing fixes itself a minute later).

Functional core, imperative shell: `gather()` is the only code that looks at the machine
(files under /proc and /sys, the adjtimex syscall, `podman`), producing `Facts`; every
check is a pure function of Facts returning a `Check`, so each is tested with a table of
facts. Checks:

- memory cgroup: Raspberry Pi OS boots with it disabled; without it memory limits are not
  enforced and Podman refuses them (cmdline.txt needs `cgroup_enable=memory
  cgroup_memory=1`);
- Podman: present, answering `podman --version`, an OCI runtime (runc or crun) and conmon;
- clock: plausible (not 1970: Pis have no real-time clock) and synchronised (TLS needs a
  sane clock on both ends);
- IP forwarding: pods on other nodes are reached through this host;
- free disk where the node keeps its images and volumes;
- images built for another architecture (they fail with "exec format error"), when
  Podman's storage can be read.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import platform
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
# Before this, the clock cannot be right (pki refuses to make certificates then, too).
EARLIEST_PLAUSIBLE = datetime(2025, 1, 1, tzinfo=UTC)
TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised
GiB = 1024 ** 3
DISK_FAIL_FREE = 1 * GiB
DISK_WARN_FREE = 4 * GiB
DISK_WARN_USED = 0.85  # image garbage collection starts here (node/imagegc.py)
CMDLINE_FILES = ("/boot/firmware/cmdline.txt", "/boot/cmdline.txt")
MEMORY_FLAGS = "cgroup_enable=memory cgroup_memory=1"

# Architectures (Go's names) each machine runs natively, the host's own first: a 64-bit
# Arm kernel runs 32-bit Arm binaries (Raspberry Pi OS does), x86-64 runs 386.
_NATIVE = {"arm64": ("arm64", "arm"), "amd64": ("amd64", "386"), "arm": ("arm",),
           "386": ("386",)}
_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm", "armv6l": "arm", "armhf": "arm", "i686": "386", "i386": "386"}
# binfmt_misc handlers (qemu-user-static) that run foreign images.
_QEMU = {"arm64": "qemu-aarch64", "arm": "qemu-arm", "amd64": "qemu-x86_64",
         "386": "qemu-i386"}


@dataclass(frozen=True)
class Image:
    ref: str
    arch: str  # Go's name, as in the image config
    variant: str = ""


@dataclass(frozen=True)
class Facts:
    """What the checks look at. None: could not be read."""

    proc_cgroups: str | None = None
    cgroup2_controllers: str | None = None
    cmdline: str | None = None
    cmdline_file: str | None = None  # the boot config file that exists, if any
    podman: str | None = None  # path
    podman_version: str | None = None
    podman_error: str = ""
    oci_runtimes: tuple[str, ...] = ()
    conmon: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock_state: int | None = None  # adjtimex's return value
    ip_forward: str | None = None
    disk_path: str = ""
    disk_free: int | None = None
    disk_total: int | None = None
    machine: str = ""
    images: tuple[Image, ...] | None = None  # None: not looked at
    binfmt: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    message: str
    fix: str = ""


# --- the checks (pure) ------------------------------------------------------------------------

def _memory_enabled_v1(proc_cgroups: str) -> bool | None:
    for line in proc_cgroups.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "memory":
            return parts[3] == "1"
    return None


def check_memory_cgroup(f: Facts) -> Check:
    name = "memory cgroup"
    if f.cgroup2_controllers is not None and "memory" in f.cgroup2_controllers.split():
        return Check(name, OK, "enabled (cgroup v2)")
    v1 = _memory_enabled_v1(f.proc_cgroups) if f.proc_cgroups is not None else None
    if v1:
        return Check(name, OK, "enabled (cgroup v1)")
    if v1 is None and f.cgroup2_controllers is None and f.proc_cgroups is None:
        return Check(name, SKIP, "cannot tell: neither /proc/cgroups nor "
                                 "/sys/fs/cgroup/cgroup.controllers can be read")
    where = f.cmdline_file or "/boot/firmware/cmdline.txt (Raspberry Pi OS Bookworm; " \
                              "/boot/cmdline.txt before)"
    why = ""
    if f.cmdline and "cgroup_disable=memory" in f.cmdline.split():
        why = " The kernel command line says cgroup_disable=memory."
    return Check(name, FAIL,
                 "disabled: pods' memory limits cannot be enforced, and Podman refuses to "
                 "start containers that have one." + why,
                 f"add `{MEMORY_FLAGS}` to the end of the single line in {where} "
                 f"(and remove any cgroup_disable=memory), then reboot")


def check_podman(f: Facts) -> Check:
    name = "podman"
    if not f.podman:
        return Check(name, FAIL, "podman is not installed: the node agent runs pods with it",
                     "apt install podman runc")
    if f.podman_version is None:
        return Check(name, FAIL, f"podman does not work: {f.podman_error or 'no answer'}",
                     "reinstall it: apt install --reinstall podman")
    if not f.oci_runtimes:
        return Check(name, FAIL, f"podman {f.podman_version} has no OCI runtime (runc or "
                                 f"crun) to start containers with", "apt install runc")
    if not f.conmon:
        return Check(name, FAIL, f"podman {f.podman_version} has no conmon (it watches "
                                 f"every container)", "apt install conmon")
    return Check(name, OK, f"podman {f.podman_version} with {', '.join(f.oci_runtimes)}")


def check_clock(f: Facts) -> Check:
    name = "clock"
    fix_ntp = ("enable NTP: `timedatectl set-ntp true` (systemd-timesyncd) and give the Pi "
               "network; `apt install fake-hwclock` keeps a sane time across reboots")
    if f.now < EARLIEST_PLAUSIBLE:
        return Check(name, FAIL, f"the clock says {f.now:%Y-%m-%d %H:%M} UTC, which cannot "
                                 f"be right: TLS certificates will not verify (Pis have no "
                                 f"real-time clock)", fix_ntp)
    if f.clock_state is None:
        return Check(name, SKIP, f"{f.now:%Y-%m-%d %H:%M} UTC; whether NTP synchronised it "
                                 f"cannot be read here")
    if f.clock_state == TIME_ERROR:
        return Check(name, WARN, f"{f.now:%Y-%m-%d %H:%M} UTC but not synchronised: a clock "
                                 f"that drifts breaks TLS and makes heartbeats look late",
                     fix_ntp)
    return Check(name, OK, f"synchronised ({f.now:%Y-%m-%d %H:%M} UTC)")


def check_ip_forward(f: Facts) -> Check:
    name = "IP forwarding"
    if f.ip_forward is None:
        return Check(name, SKIP, "cannot read /proc/sys/net/ipv4/ip_forward")
    if f.ip_forward.strip() == "1":
        return Check(name, OK, "on")
    return Check(name, WARN, "off: pods on other nodes and Services cannot be reached "
                             "through this host",
                 "`sysctl -w net.ipv4.ip_forward=1`, and to keep it: "
                 "`echo net.ipv4.ip_forward=1 > /etc/sysctl.d/99-bramble.conf`")


def _gib(n: int) -> str:
    return f"{n / GiB:.1f} GiB"


def check_disk(f: Facts) -> Check:
    name = "free disk"
    if f.disk_free is None or not f.disk_total:
        return Check(name, SKIP, f"cannot read the disk holding {f.disk_path or 'the data dir'}")
    used = 1 - f.disk_free / f.disk_total
    text = (f"{_gib(f.disk_free)} free of {_gib(f.disk_total)} ({used:.0%} used) at "
            f"{f.disk_path}")
    fix = ("free space (`podman image prune` for images no pod uses), or keep the node's "
           "data dir on a larger disk (--data-dir)")
    if f.disk_free < DISK_FAIL_FREE:
        return Check(name, FAIL, text + ": images and pod volumes will not fit", fix)
    if f.disk_free < DISK_WARN_FREE or used > DISK_WARN_USED:
        return Check(name, WARN, text + ": images may not fit; unused ones will be removed",
                     fix)
    return Check(name, OK, text)


def check_images(f: Facts) -> Check:
    name = "image architectures"
    if f.images is None:
        return Check(name, SKIP, "no Podman storage of the node agent to look at")
    host = _GO_ARCH.get(f.machine.lower(), f.machine.lower())
    runnable = set(_NATIVE.get(host, (host,)))
    runnable |= {arch for arch, handler in _QEMU.items() if handler in f.binfmt}
    foreign = [i for i in f.images if i.arch and i.arch not in runnable]
    if not foreign:
        return Check(name, OK, f"{len(f.images)} image(s), all run on {host}")
    listed = ", ".join(f"{i.ref} ({i.arch}{'/' + i.variant if i.variant else ''})"
                       for i in foreign[:5])
    more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
    return Check(name, WARN, f"built for another architecture than this {host} machine, "
                             f"their containers fail with 'exec format error': {listed}{more}",
                 f"build or pull them for linux/{host} (`podman build --platform "
                 f"linux/{host}`), or push a multi-arch image")


CHECKS: tuple[Callable[[Facts], Check], ...] = (
    check_memory_cgroup, check_podman, check_clock, check_ip_forward, check_disk,
    check_images)


def run_checks(f: Facts) -> list[Check]:
    return [check(f) for check in CHECKS]


def report(checks: Sequence[Check]) -> str:
    """Checks as a person reads them: one line each, the fix indented below."""
    lines = []
    for c in checks:
        lines.append(f"[{c.status.upper():4}] {c.name}: {c.message}")
        if c.fix and c.status in (WARN, FAIL):
            lines.append(f"       fix: {c.fix}")
    return "\n".join(lines) + "\n"


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0


# --- gathering (the only code that looks at the machine) -----------------------------------

def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def clock_state() -> int | None:
    """adjtimex(2) with modes 0 (read only): TIME_ERROR (5) when not synchronised."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex is 208 bytes on 64-bit
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state


def _run(argv: list[str], env: dict[str, str] | None = None,
         timeout: float = 20.0) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return -1, str(err)
    return done.returncode, (done.stdout if done.returncode == 0 else
                             done.stderr.strip() or done.stdout.strip())


def _images(podman: str, env: dict[str, str] | None) -> tuple[Image, ...] | None:
    code, out = _run([podman, "images", "--quiet", "--no-trunc"], env)
    if code != 0:
        return None
    ids = sorted({line.strip() for line in out.splitlines() if line.strip()})
    if not ids:
        return ()
    code, out = _run([podman, "image", "inspect", *ids], env)
    if code != 0:
        return None
    try:
        found = json.loads(out)
    except ValueError:
        return None
    return tuple(Image(ref=(i.get("RepoTags") or [i.get("Id", "")[:12]])[0],
                       arch=i.get("Architecture", ""), variant=i.get("Variant", ""))
                 for i in found if isinstance(i, dict))


def _podman_env(node_data_dir: Path | None) -> dict[str, str] | None:
    """The environment that points podman at the node agent's own storage, when it has
    one; else None (the host's default storage)."""
    if node_data_dir is None:
        return None
    try:
        from bramble.node.runtime.config import podman_environment, podman_paths
    except ImportError:
        return None
    folder = node_data_dir / "podman"
    if not podman_paths(folder).containers_conf.exists():
        return None
    return podman_environment(folder, base=dict(os.environ))


def gather(data_dir: Path | None = None, *, podman: bool = True,
           images: bool = True) -> Facts:
    """Look at this machine (blocking: run it in a thread from async code). `data_dir` is
    the node agent's; `podman=False` skips running podman (the agent checks it by
    starting its service), `images=False` skips reading its image storage."""
    podman_path = shutil.which("podman")
    version, error = None, ""
    if podman and podman_path:
        code, out = _run([podman_path, "--version"])
        if code == 0:
            version = out.strip().removeprefix("podman version ").strip()
        else:
            error = out
    elif podman_path:
        version = "(not run)"
    disk_path = data_dir or Path("/var/lib")
    while not disk_path.exists() and disk_path != disk_path.parent:
        disk_path = disk_path.parent
    try:
        usage = shutil.disk_usage(disk_path)
        free, total = usage.free, usage.total
    except OSError:
        free = total = None
    binfmt = frozenset(os.listdir("/proc/sys/fs/binfmt_misc")) \
        if os.path.isdir("/proc/sys/fs/binfmt_misc") else frozenset()
    found = None
    if podman and images and podman_path:
        found = _images(podman_path, _podman_env(data_dir))
    return Facts(
        proc_cgroups=_read("/proc/cgroups"),
        cgroup2_controllers=_read("/sys/fs/cgroup/cgroup.controllers"),
        cmdline=_read("/proc/cmdline"),
        cmdline_file=next((p for p in CMDLINE_FILES if os.path.exists(p)), None),
        podman=podman_path, podman_version=version, podman_error=error,
        oci_runtimes=tuple(r for r in ("crun", "runc") if shutil.which(r)),
        conmon=shutil.which("conmon") or next(
            (p for p in ("/usr/libexec/podman/conmon", "/usr/bin/conmon")
             if os.path.exists(p)), None),
        now=datetime.now(UTC), clock_state=clock_state(),
        ip_forward=_read("/proc/sys/net/ipv4/ip_forward"),
        disk_path=str(disk_path), disk_free=free, disk_total=total,
        machine=platform.machine(), images=found, binfmt=binfmt)


def main(data_dir: Path | None) -> int:
    """`bramble doctor`: print every check; exit 1 when one fails."""
    checks = run_checks(gather(data_dir))
    print(report(checks), end="", flush=True)
    return exit_code(checks)


def log_problems(checks: Sequence[Check], logger: logging.Logger) -> None:
    """The node agent's start: what is not ok, as warnings with the fix."""
    for c in checks:
        if c.status in (WARN, FAIL):
            logger.warning(f"preflight: {c.name}: {c.message}", extra={"fix": c.fix})
