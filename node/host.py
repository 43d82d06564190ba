"""Host facts for the Node object: capacity, conditions, system info, Pi sensors, usage.

Functional core, imperative shell: every decision and every parser here is a pure function
over text or numbers that were read (`resources`, `conditions`, `parse_*`, `cpu_nanocores`,
`working_set`), with table-driven tests. The readers around them are small and synchronous
(procfs, sysfs, statvfs, psutil without an interval): the agent calls them through
`asyncio.to_thread`, never on the event loop. The one subprocess (`vcgencmd`) has an async
reader. A file or command that does not exist (not a Pi, a container) yields nothing,
never an error.

Thresholds (chosen, not copied - the kubelet has no Pi defaults):
- MemoryPressure: MemAvailable below 100Mi (the kubelet's memory.available<100Mi). Linux's
  MemAvailable counts reclaimable cache, which is what "can a new pod start" asks.
- DiskPressure: free space on the data dir's filesystem below 10% of its size (the
  kubelet's nodefs.available<10%) *or* below 1Gi: on an 8 GB SD card 10% is under a gigabyte,
  too little for one image pull to finish.
- PIDPressure: tasks (threads included: they use PIDs too) above 90% of kernel.pid_max.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from bramble import KUBE_MAJOR, KUBE_MINOR, __version__
from bramble.kube.quantity import format_quantity

Ki, Mi, Gi = 1024, 1024**2, 1024**3

ANNOTATION_TEMPERATURE = "bramble.io/soc-temperature"
ANNOTATION_THROTTLED = "bramble.io/throttled"

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
KUBELET_VERSION = f"v{KUBE_MAJOR}.{KUBE_MINOR}.0-bramble.{__version__}"

Condition = dict[str, Any]


# --- capacity and allocatable ------------------------------------------------------------

@dataclass(frozen=True)
class Resources:
    """status.capacity and status.allocatable, as the Node carries them."""

    capacity: dict[str, str]
    allocatable: dict[str, str]


def kibibytes(n: int) -> str:
    """Memory as the kubelet prints it: whole Ki, rounded down ("3884548Ki")."""
    return f"{max(0, n) // Ki}Ki"


def resources(*, cpus: int, memory: int, storage: int, max_pods: int,
              reserved_cpu_m: int = 0, reserved_memory: int = 0) -> Resources:
    """Capacity is what the host has; allocatable is that minus what the system and the
    agent keep for themselves, never below zero.

    E.g. 4 CPUs, 100m reserved -> capacity "4", allocatable "3900m".
    """
    alloc_cpu_m = max(0, cpus * 1000 - reserved_cpu_m)
    capacity = {
        "cpu": format_quantity(cpus),
        "ephemeral-storage": kibibytes(storage),
        "memory": kibibytes(memory),
        "pods": str(max_pods),
    }
    allocatable = {
        "cpu": format_quantity(Fraction(alloc_cpu_m, 1000)),
        # The kubelet prints allocatable storage in bytes and memory in Ki; so does bramble.
        "ephemeral-storage": format_quantity(max(0, storage)),
        "memory": kibibytes(memory - reserved_memory),
        "pods": str(max_pods),
    }
    return Resources(capacity, allocatable)


def capacity(reserved_cpu_m: int, reserved_mem: int, max_pods: int,
             data_dir: Path | str = "/") -> Resources:
    """This host's resources (blocking: call it in a thread). `reserved_*` is the sum of
    what the system (sshd, journald, podman) and the agent itself keep."""
    import psutil

    st = os.statvfs(data_dir)
    return resources(cpus=psutil.cpu_count(logical=True) or 1,
                     memory=psutil.virtual_memory().total,
                     storage=st.f_blocks * st.f_frsize, max_pods=max_pods,
                     reserved_cpu_m=reserved_cpu_m, reserved_memory=reserved_mem)


# --- conditions --------------------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What the conditions are decided from, read at one moment."""

    memory_available: int
    disk_free: int
    disk_total: int
    tasks: int
    pid_max: int
    # "" when the container runtime answers; otherwise why not (-> Ready False).
    runtime_problem: str = ""


@dataclass(frozen=True)
class Thresholds:
    memory_available: int = 100 * Mi
    disk_free_fraction: float = 0.10
    disk_free_min: int = 1 * Gi
    pid_fraction: float = 0.90


# type -> (status when True, reason, message) for both outcomes, in the kubelet's words.
_PRESSURE = {
    "MemoryPressure": (("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
                       ("KubeletHasSufficientMemory", "kubelet has sufficient memory available")),
    "DiskPressure": (("KubeletHasDiskPressure", "kubelet has disk pressure"),
                     ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")),
    "PIDPressure": (("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
                    ("KubeletHasSufficientPID", "kubelet has sufficient PID available")),
}


def pressures(facts: Facts, thresholds: Thresholds) -> dict[str, bool]:
    """Which pressure conditions hold (pure)."""
    disk_floor = max(thresholds.disk_free_min, facts.disk_total * thresholds.disk_free_fraction)
    return {
        "MemoryPressure": facts.memory_available < thresholds.memory_available,
        "DiskPressure": facts.disk_free < disk_floor,
        "PIDPressure": facts.pid_max > 0 and facts.tasks > facts.pid_max * thresholds.pid_fraction,
    }


def rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(facts: Facts, thresholds: Thresholds, now: datetime,
               previous: Sequence[Condition] | None = None) -> list[Condition]:
    """The Node's conditions, in the kubelet's order. lastHeartbeatTime is `now`;
    lastTransitionTime is carried over from `previous` unless the status changed."""
    before = {c.get("type"): c for c in previous or () if isinstance(c, dict)}
    stamp = rfc3339(now)
    decided: list[tuple[str, str, str, str]] = []
    for kind, holds in pressures(facts, thresholds).items():
        (reason, message) = _PRESSURE[kind][0 if holds else 1]
        decided.append((kind, "True" if holds else "False", reason, message))
    if facts.runtime_problem:
        decided.append(("Ready", "False", "KubeletNotReady", facts.runtime_problem))
    else:
        decided.append(("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
    out = []
    for kind, status, reason, message in decided:
        old = before.get(kind)
        transition = stamp
        if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
            transition = old["lastTransitionTime"]
        out.append({"type": kind, "status": status, "lastHeartbeatTime": stamp,
                    "lastTransitionTime": transition, "reason": reason, "message": message})
    return out


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes by field name ("MemAvailable": 123 * 1024)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts or not parts[0].isdigit():
            continue
        unit = parts[1].lower() if len(parts) > 1 else ""
        out[key.strip()] = int(parts[0]) * (Ki if unit == "kb" else 1)
    return out


def parse_loadavg_tasks(text: str) -> int | None:
    """The number of tasks from /proc/loadavg ("0.1 0.2 0.3 2/345 6789" -> 345)."""
    fields = text.split()
    if len(fields) < 4 or "/" not in fields[3]:
        return None
    total = fields[3].split("/", 1)[1]
    return int(total) if total.isdigit() else None


def read_facts(data_dir: Path | str = "/", runtime_problem: str = "") -> Facts:
    """Read the facts the conditions need (blocking, cheap: call it in a thread)."""
    meminfo = parse_meminfo(_read("/proc/meminfo") or "")
    available = meminfo.get("MemAvailable")
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    st = os.statvfs(data_dir)
    tasks = parse_loadavg_tasks(_read("/proc/loadavg") or "") or 0
    pid_max_text = (_read("/proc/sys/kernel/pid_max") or "").strip()
    return Facts(memory_available=available, disk_free=st.f_bavail * st.f_frsize,
                 disk_total=st.f_blocks * st.f_frsize, tasks=tasks,
                 pid_max=int(pid_max_text) if pid_max_text.isdigit() else 0,
                 runtime_problem=runtime_problem)


# --- Raspberry Pi sensors ----------------------------------------------------------------

# vcgencmd get_throttled bits; 16-19 are the same conditions "has occurred since boot".
THROTTLE_BITS = {0: "under-voltage", 1: "arm-freq-capped", 2: "throttled",
                 3: "soft-temp-limit"}


def parse_soc_temperature(text: str | None) -> float | None:
    """Degrees Celsius from thermal_zone0/temp (millidegrees: "52312" -> 52.312)."""
    value = (text or "").strip()
    try:
        return int(value) / 1000
    except ValueError:
        return None


def format_temperature(celsius: float) -> str:
    return f"{celsius:.1f}C"


def parse_throttled(text: str | None) -> list[str] | None:
    """The flags in `vcgencmd get_throttled` output ("throttled=0x50005" ->
    ["under-voltage", "throttled", "under-voltage-occurred", "throttled-occurred"]);
    None when the text is not such output."""
    _, sep, value = (text or "").strip().partition("=")
    if not sep:
        return None
    try:
        bits = int(value.strip(), 16)
    except ValueError:
        return None
    flags = [name for bit, name in THROTTLE_BITS.items() if bits & (1 << bit)]
    flags += [f"{name}-occurred" for bit, name in THROTTLE_BITS.items()
              if bits & (1 << (bit + 16))]
    return flags


def sensor_annotations(temperature_text: str | None,
                       throttled_text: str | None) -> dict[str, str]:
    """The Node annotations the Pi sensors give; a sensor that gave nothing adds nothing."""
    out: dict[str, str] = {}
    celsius = parse_soc_temperature(temperature_text)
    if celsius is not None:
        out[ANNOTATION_TEMPERATURE] = format_temperature(celsius)
    flags = parse_throttled(throttled_text)
    if flags is not None:
        out[ANNOTATION_THROTTLED] = ",".join(flags) or "no"
    return out


async def read_sensors(thermal: Path = THERMAL_ZONE, vcgencmd: str | None = "vcgencmd",
                       command_timeout: float = 2.0) -> dict[str, str]:
    """Read the SoC temperature and throttling state; {} on a machine without them."""
    temperature = await asyncio.to_thread(_read, thermal)
    throttled = None
    command = shutil.which(vcgencmd) if vcgencmd else None
    if command is not None:
        try:
            proc = await asyncio.create_subprocess_exec(
                command, "get_throttled", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL)
        except OSError:
            proc = None
        if proc is not None:
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), command_timeout)
                if proc.returncode == 0:
                    throttled = out.decode(errors="replace")
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return sensor_annotations(temperature, throttled)


# --- system info and addresses -----------------------------------------------------------

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "armv6l": "arm", "armhf": "arm", "i686": "386", "i386": "386"}


def kube_arch(machine: str) -> str:
    """platform.machine() in Kubernetes' (Go's) names: aarch64 -> arm64, armv7l -> arm."""
    return _ARCH.get(machine.lower(), machine.lower())


def parse_os_release(text: str) -> str:
    """PRETTY_NAME from /etc/os-release, else NAME, else "Linux"."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            values[key] = value.strip().strip("\"'")
    return values.get("PRETTY_NAME") or values.get("NAME") or "Linux"


def node_info(runtime_version: str, *, root: Path = Path("/")) -> dict[str, str]:
    """status.nodeInfo (blocking: reads a few small files). `runtime_version` is the
    caller's "podman://4.3.1"."""
    return {
        "architecture": kube_arch(platform.machine()),
        "bootID": (_read(root / "proc/sys/kernel/random/boot_id") or "").strip(),
        "containerRuntimeVersion": runtime_version,
        "kernelVersion": platform.release(),
        "kubeProxyVersion": KUBELET_VERSION,
        "kubeletVersion": KUBELET_VERSION,
        "machineID": (_read(root / "etc/machine-id") or "").strip(),
        "operatingSystem": "linux",
        "osImage": parse_os_release(_read(root / "etc/os-release") or ""),
        "systemUUID": (_read(root / "sys/class/dmi/id/product_uuid") or "").strip(),
    }


def source_address(host: str, port: int = 443) -> str | None:
    """The local address this host uses to reach `host`: the node's InternalIP as the
    master sees it. A UDP connect sends nothing; it only asks the routing table."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError:
        return None
    for family, kind, proto, _, addr in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.connect(addr)
                return str(s.getsockname()[0])
        except OSError:
            continue
    return None


def addresses(hostname: str, internal_ip: str | None) -> list[dict[str, str]]:
    out = []
    if internal_ip:
        out.append({"type": "InternalIP", "address": internal_ip})
    out.append({"type": "Hostname", "address": hostname})
    return out


# --- usage -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Usage:
    """Node usage over `window` seconds ending at `timestamp`."""

    cpu_nanocores: int
    memory_working_set: int
    window: float
    timestamp: datetime

    def as_quantities(self) -> dict[str, str]:
        """As metrics-server reports them: cpu in n, memory in Ki."""
        return {"cpu": f"{self.cpu_nanocores}n", "memory": kibibytes(self.memory_working_set)}


def busy_seconds(times: Mapping[str, float]) -> float:
    """CPU seconds spent not idle, summed over CPUs (as psutil's cpu_percent counts:
    guest time is already inside user/nice on Linux, so it is not added twice)."""
    total = sum(times.values()) - times.get("guest", 0.0) - times.get("guest_nice", 0.0)
    return total - times.get("idle", 0.0) - times.get("iowait", 0.0)


def cpu_nanocores(busy_before: float, at_before: float, busy_now: float,
                  at_now: float) -> int:
    """Average cores used between two samples, in nanocores (1 core = 1e9)."""
    elapsed = at_now - at_before
    if elapsed <= 0:
        return 0
    return max(0, round((busy_now - busy_before) / elapsed * 1e9))


def working_set(meminfo: Mapping[str, int]) -> int:
    """The node's memory working set as the kubelet defines it: used memory minus the
    inactive file cache (which the kernel drops first)."""
    used = meminfo.get("MemTotal", 0) - meminfo.get("MemFree", 0)
    return max(0, used - meminfo.get("Inactive(file)", 0))


def _cpu_times() -> dict[str, float]:
    import psutil

    return dict(psutil.cpu_times()._asdict())


class UsageSampler:
    """CPU over the interval since the previous call (never a psutil call with an
    interval: nothing here sleeps or blocks beyond reading /proc). The first call only
    starts the window: it reports window 0 and no CPU."""

    def __init__(self, cpu_times: Callable[[], Mapping[str, float]] = _cpu_times,
                 meminfo: Callable[[], str] = lambda: _read("/proc/meminfo") or "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cpu_times = cpu_times
        self._meminfo = meminfo
        self._clock = clock
        self._last: tuple[float, float] | None = None

    def usage(self) -> Usage:
        busy, at = busy_seconds(self._cpu_times()), self._clock()
        before_busy, before_at = self._last or (busy, at)
        self._last = (busy, at)
        return Usage(cpu_nanocores=cpu_nanocores(before_busy, before_at, busy, at),
                     memory_working_set=working_set(parse_meminfo(self._meminfo())),
                     window=max(0.0, at - before_at), timestamp=datetime.now(UTC))


# --- the provider the status reporter reads ----------------------------------------------

@dataclass
class LocalHost:
    """This machine as the status reporter sees it. Synchronous methods block briefly
    (call them in a thread); `sensors` is async."""

    data_dir: Path
    reserved_cpu_m: int = 100
    reserved_memory: int = 128 * Mi
    max_pods: int = 110
    thresholds: Thresholds = field(default_factory=Thresholds)
    hostname: str = field(default_factory=socket.gethostname)
    _sampler: UsageSampler = field(default_factory=UsageSampler, repr=False)

    def resources(self) -> Resources:
        return capacity(self.reserved_cpu_m, self.reserved_memory, self.max_pods,
                        self.data_dir)

    def facts(self, runtime_problem: str = "") -> Facts:
        return read_facts(self.data_dir, runtime_problem)

    def node_info(self, runtime_version: str) -> dict[str, str]:
        return node_info(runtime_version)

    def addresses(self, master_host: str | None) -> list[dict[str, str]]:
        ip = source_address(master_host) if master_host else None
        return addresses(self.hostname, ip)

    def usage(self) -> Usage:
        return self._sampler.usage()

    async def sensors(self) -> dict[str, str]:
        return await read_sensors()


def _read(path: Path | str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(65536)
    except OSError:
        return None
