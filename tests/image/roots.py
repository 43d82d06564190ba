"""Debian roots that boot what a bramble card carries: the tier-1 (systemd-nspawn) and
tier-2 (qemu) test beds.

- `debian_root(arch, packages)`: a debootstrapped Debian root, cached under
  ~/.cache/bramble/roots/ keyed by suite, architecture and package list, built into a
  temporary directory beside it and renamed only when complete (a lock file keeps two
  test runs from building the same one). Tests never write into it.
- `scratch_root(cache, work)`: an overlayfs with the cached root as its read-only lower
  layer and a scratch upper layer; what a boot writes persists across boots of the same
  scratch root (the first-boot marker, the venv) and vanishes with it.
- `boot_nspawn(root, ...)`: one boot of a root in systemd-nspawn - private network
  (loopback only), no registration with machined, its own cgroup when the host runs
  without systemd - that ends when the container powers itself off (the report unit
  below) or, past the timeout, is shut down (SIGTERM makes nspawn send SIGRTMIN+3, an
  orderly poweroff) and then killed.
- `install_report(root)`: a test-only unit that runs once multi-user.target is reached,
  writes what the test checks as JSON into /bramble-test (a bind mount), and powers off.

Needs root (debootstrap, mount, systemd-nspawn); callers skip otherwise. Leaves no mounts,
cgroups or processes behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bramble.image import overlay

SUITE = "bookworm"
MIRROR = os.environ.get("BRAMBLE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What a bramble Pi needs from its OS, as Raspberry Pi OS Lite has it: systemd as init,
# D-Bus (systemctl enable/disable talk to it), Python 3.11 with venv.
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv")
# Bump when the recipe below changes in a way the package list does not show.
RECIPE = 1
DPKG_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


class BedError(Exception):
    """The test bed cannot be set up; the message says what to install or fix."""


def cache_dir() -> Path:
    return Path.home() / ".cache" / "bramble" / "roots"


def host_arch() -> str:
    return os.uname().machine


def root_key(arch: str, packages: Sequence[str]) -> str:
    recipe = json.dumps([RECIPE, SUITE, arch, "minbase", sorted(packages)])
    return f"debian-{SUITE}-{DPKG_ARCH[arch]}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def debian_root(arch: str, packages: Sequence[str] = BASE_PACKAGES) -> Path:
    """The cached root for `arch`; built (from the Debian mirror) when missing. A foreign
    architecture's packages are configured through qemu-user (binfmt_misc)."""
    cache = cache_dir()
    final = cache / root_key(arch, packages)
    if final.is_dir():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building the same root
        if final.is_dir():
            return final
        partial = cache / f".{final.name}.partial-{os.getpid()}"
        try:
            with _binfmt(arch):
                proc = subprocess.run(
                    ["debootstrap", "--variant=minbase", f"--arch={DPKG_ARCH[arch]}",
                     f"--include={','.join(packages)}", SUITE, str(partial), MIRROR],
                    capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                log = partial / "debootstrap/debootstrap.log"
                tail = log.read_text()[-3000:] if log.is_file() else proc.stderr[-3000:]
                raise BedError(f"debootstrap {arch} failed:\n{tail}")
            # Downloaded packages and indexes only cost room in every cached root.
            for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for f in (partial / sub).glob("*"):
                    if f.is_file():
                        f.unlink()
            partial.rename(final)
        finally:
            if partial.exists():
                unmount_below(partial)  # a failed second stage may leave proc/sys mounted
                shutil.rmtree(partial)
    return final


@contextlib.contextmanager
def _binfmt(arch: str) -> Iterator[None]:
    """Foreign binaries run through qemu-user while inside; binfmt_misc is unmounted
    again afterwards if it was mounted here."""
    if arch == host_arch():
        yield
        return
    misc = Path("/proc/sys/fs/binfmt_misc")
    mounted = False
    if not (misc / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)],
                       capture_output=True, check=False)
        mounted = (misc / "status").exists()
    try:
        if not (misc / f"qemu-{arch}").exists():
            subprocess.run(["update-binfmts", "--enable", f"qemu-{arch}"],
                           capture_output=True, check=False)
        if not (misc / f"qemu-{arch}").exists():
            raise BedError(f"cannot run {arch} binaries: apt-get install qemu-user-static "
                           f"binfmt-support")
        yield
    finally:
        if mounted:
            subprocess.run(["umount", str(misc)], capture_output=True, check=False)


def unmount_below(path: Path) -> None:
    """Unmount everything mounted at or below `path`, deepest first."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if Path(point) == path or Path(point).is_relative_to(path):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@contextlib.contextmanager
def scratch_root(lower: Path, work: Path) -> Iterator[Path]:
    """An overlay of the read-only `lower` with a scratch upper layer in `work`."""
    upper, scratch, merged = work / "upper", work / "overlay-work", work / "root"
    for d in (upper, scratch, merged):
        d.mkdir(parents=True)
    proc = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={lower},upperdir={upper},workdir={scratch}", str(merged)],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BedError(f"cannot mount an overlay: {proc.stderr.strip()}")
    try:
        yield merged
    finally:
        unmount_below(merged)


# --- systemd-nspawn ------------------------------------------------------------------------

REPORT_UNIT = "bramble-test-report.service"
REPORT_SCRIPT = "/usr/local/lib/bramble-test/report"
REPORT_DIR = "/bramble-test"
REPORT_MARK = "BRAMBLE-TEST-REPORT "
DAEMONS = ("bramble-master.service", "bramble-node.service", "bramble-up.service")
_PROPS = ("ActiveState", "SubState", "Result", "StatusText", "ExecMainPID", "ConditionResult",
          "NRestarts", "UnitFileState")

_REPORT = f"""#!/usr/bin/python3
# Test-only: what the test checks, as JSON, once multi-user.target is reached.
import json, os, subprocess

def sh(*argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr

units = {{}}
for unit in ("bramble-firstboot.service",) + {DAEMONS!r}:
    _, out = sh("systemctl", "show", "-p", {",".join(_PROPS)!r}, unit)
    units[unit] = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    pid = units[unit].get("ExecMainPID", "0")
    if pid != "0" and os.path.exists(f"/proc/{{pid}}/cmdline"):
        with open(f"/proc/{{pid}}/cmdline", "rb") as f:
            units[unit]["cmdline"] = f.read().decode().split("\\0")[:-1]
_, failed = sh("systemctl", "list-units", "--failed", "--plain", "--no-legend")
_, done = sh("journalctl", "-u", "bramble-firstboot.service", "-o", "cat", "--no-pager")
kubectl = ("/opt/bramble/venv/bin/bramble", "--kubeconfig",
           "/var/lib/bramble/master/admin.kubeconfig", "get")
marker = "/var/lib/bramble/firstboot.done"
report = {{
    "units": units,
    "failed": [line.split()[0] for line in failed.splitlines() if line.strip()],
    "firstboot_runs": done.count("bramble-firstboot: done:"),
    "marker": open(marker).read() if os.path.exists(marker) else None,
    "hostname": open("/etc/hostname").read().strip(),
    "api": sh(*kubectl, "namespaces"),
    "nodes": sh(*kubectl, "nodes"),
}}
# One line on the console (qemu's serial port), a file where the test bound a folder.
print("{REPORT_MARK}" + json.dumps(report), flush=True)
if os.path.isdir("{REPORT_DIR}"):
    boots = len([n for n in os.listdir("{REPORT_DIR}") if n.startswith("boot-")])
    with open(f"{REPORT_DIR}/boot-{{boots + 1}}.json", "w") as f:
        json.dump(report, f, indent=1)
"""

# DefaultDependencies=no: a unit a target wants is otherwise ordered before that target,
# which would contradict After=multi-user.target.
_UNIT = f"""[Unit]
Description=bramble test: report the boot, then power off
DefaultDependencies=no
After=multi-user.target
Conflicts=shutdown.target
Before=shutdown.target

[Service]
Type=oneshot
ExecStart={REPORT_SCRIPT}
StandardOutput=journal+console
ExecStopPost=/bin/systemctl poweroff --no-block

[Install]
WantedBy=multi-user.target
"""


def install_report(root: Path) -> None:
    """The test-only report unit, enabled (it goes into the scratch layer only), written
    as the card's own units are."""
    unit = f"{overlay.UNIT_DIR}/{REPORT_UNIT}"
    overlay.write_tree(root, [overlay.Item(REPORT_SCRIPT, 0o755, _REPORT.encode()),
                              overlay.Item(unit, 0o644, _UNIT.encode()),
                              overlay.Item(f"{overlay.WANTS}/{REPORT_UNIT}", 0o777, link=unit)])


def nspawn_problem() -> str | None:
    """Why systemd-nspawn cannot boot roots here, or None."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, an overlay mount, systemd-nspawn)"
    for tool, package in (("systemd-nspawn", "systemd-container"),
                          ("debootstrap", "debootstrap")):
        if shutil.which(tool) is None:
            return f"needs {tool}: apt-get install {package}"
    return None


def _systemd_booted() -> bool:
    return Path("/run/systemd/system").is_dir()


@dataclass
class Boot:
    returncode: int
    console: str
    timed_out: bool


def boot_nspawn(root: Path, binds: dict[Path, str], *, timeout: float = 300) -> Boot:
    """Boot `root` until it powers off (or `timeout` passes: then shut it down)."""
    name = f"bramble-test-{uuid.uuid4().hex[:8]}"
    argv = ["systemd-nspawn", f"--directory={root}", f"--machine={name}", "--boot",
            "--register=no", "--private-network", "--console=pipe", "--quiet",
            *(f"--bind={host}:{inside}" for host, inside in binds.items())]
    with _own_cgroup(name) as enter:
        if enter:
            # Without systemd on the host nspawn cannot get a scope of its own: it runs in
            # its caller's cgroup (--keep-unit) and makes its payload/supervisor groups
            # there, so give it a fresh one per boot, removed afterwards.
            argv = ["sh", "-c", f'{enter}; exec "$@"', "sh", *argv[:1], "--keep-unit",
                    *argv[1:]]
        # On SIGTERM nspawn sends SIGRTMIN+3 to the container's init: an orderly poweroff.
        return _run_until_exit(argv, timeout)


def _run_until_exit(argv: Sequence[str], timeout: float) -> Boot:
    """Run a machine until it exits by itself; past `timeout` SIGTERM, then SIGKILL."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    return Boot(proc.returncode, out.decode(errors="replace"), timed_out)


@contextlib.contextmanager
def _own_cgroup(name: str) -> Iterator[str]:
    """A shell snippet that moves the shell into a fresh cgroup in each hierarchy nspawn
    manages (systemd's named v1 and the unified one), or "" on a systemd host; the groups
    and whatever the container left in them are removed afterwards."""
    nspawn_dir = Path("/run/systemd/nspawn")
    had_nspawn_dir = nspawn_dir.exists()
    made: list[Path] = []
    if not _systemd_booted():
        own = dict(_self_cgroups())
        for hierarchy, key in (("systemd", "name=systemd"), ("unified", "")):
            base = Path("/sys/fs/cgroup") / hierarchy
            if key in own and (base / "cgroup.procs").exists():
                group = base / own[key].lstrip("/") / name
                group.mkdir()
                made.append(group)
    try:
        yield "; ".join(f"echo $$ > {g}/cgroup.procs" for g in made)
    finally:
        for group in made:
            for dirpath, _, _ in sorted(os.walk(group), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)
        if not had_nspawn_dir:
            # nspawn's own runtime folders (locks, mount propagation), empty by now.
            for sub in ("propagate", "locks", ""):
                with contextlib.suppress(OSError):
                    os.rmdir(nspawn_dir / sub)


def _self_cgroups() -> Iterator[tuple[str, str]]:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        yield controllers, path


def reports(report_dir: Path) -> list[dict]:  # type: ignore[type-arg]
    names = sorted(report_dir.glob("boot-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    return [json.loads(p.read_text()) for p in names]


def journal(root: Path) -> str:
    """The booted root's persistent journal, for a failing test's message."""
    proc = subprocess.run(["journalctl", "-D", str(root / "var/log/journal"), "--no-pager",
                           "-o", "short-monotonic"], capture_output=True, text=True,
                          check=False)
    return proc.stdout[-20000:] + proc.stderr[-2000:]


# --- qemu ----------------------------------------------------------------------------------

def qemu_problem() -> str | None:
    """Why an arm64 image cannot boot in qemu here, or None."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, an overlay mount)"
    for tool, package in (("qemu-system-aarch64", "qemu-system-arm"),
                          ("qemu-aarch64-static", "qemu-user-static"),
                          ("update-binfmts", "binfmt-support"), ("debootstrap", "debootstrap")):
        if shutil.which(tool) is None:
            return f"needs {tool}: apt-get install {package} (./dev does with BRAMBLE_SLOW=1)"
    return None


def kernel_and_initrd(root: Path) -> tuple[Path, Path]:
    """Debian's kernel and initramfs in a root (linux-image-arm64 installed)."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise BedError(f"no kernel in {root}/boot")
    kernel = kernels[-1]
    initrd = root / "boot" / kernel.name.replace("vmlinuz-", "initrd.img-")
    if not initrd.is_file():
        raise BedError(f"no {initrd.name} in {root}/boot")
    return kernel, initrd


def boot_qemu(image: Path, kernel: Path, initrd: Path, *, root_device: str = "/dev/vda2",
              timeout: float = 1800) -> Boot:
    """Boot a disk image on an emulated arm64 machine (TCG: KVM cannot run arm64 here)
    with no network at all, until it powers off; the console is the serial port."""
    argv = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2",
            "-m", "2048", "-accel", "tcg", "-nographic", "-nic", "none", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", f"root={root_device} rootwait rw console=ttyAMA0 panic=1",
            "-drive", f"file={image},format=raw,if=virtio"]
    return _run_until_exit(argv, timeout)


def console_report(console: str) -> dict | None:  # type: ignore[type-arg]
    for line in console.splitlines():
        _, mark, rest = line.partition(REPORT_MARK)
        if mark:
            return json.loads(rest)  # type: ignore[no-any-return]
    return None
