"""Host facts: capacity arithmetic, conditions and their transitions, Pi sensors, usage."""

from __future__ import annotations

import os
import platform
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bramble.node import host
from bramble.node.host import Gi, Ki, Mi

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=10)

# -- capacity and allocatable -------------------------------------------------------------

RESOURCES = [
    # (cpus, memory, storage, pods, reserved cpu m, reserved memory) -> (capacity, allocatable)
    # A Pi 4 with 4 GiB: 4 - 0.1 cores = 3900m; 4194304Ki - 131072Ki = 4063232Ki.
    ((4, 4 * Gi, 32 * Gi, 110, 100, 128 * Mi),
     {"cpu": "4", "ephemeral-storage": "33554432Ki", "memory": "4194304Ki", "pods": "110"},
     {"cpu": "3900m", "ephemeral-storage": "34359738368", "memory": "4063232Ki", "pods": "110"}),
    # Nothing reserved: allocatable equals capacity (storage in bytes, as the kubelet does).
    ((1, 512 * Mi, 8 * Gi, 16, 0, 0),
     {"cpu": "1", "ephemeral-storage": "8388608Ki", "memory": "524288Ki", "pods": "16"},
     {"cpu": "1", "ephemeral-storage": "8589934592", "memory": "524288Ki", "pods": "16"}),
    # Memory not a whole number of Ki (/proc says kB, psutil may not): rounded down.
    ((2, 1000 * Ki + 1000, 10 * Gi, 32, 250, 0),
     {"cpu": "2", "ephemeral-storage": "10485760Ki", "memory": "1000Ki", "pods": "32"},
     {"cpu": "1750m", "ephemeral-storage": "10737418240", "memory": "1000Ki", "pods": "32"}),
    # Reservations larger than the machine: never negative.
    ((1, 256 * Mi, 4 * Gi, 8, 1500, 512 * Mi),
     {"cpu": "1", "ephemeral-storage": "4194304Ki", "memory": "262144Ki", "pods": "8"},
     {"cpu": "0", "ephemeral-storage": "4294967296", "memory": "0Ki", "pods": "8"}),
]


@pytest.mark.parametrize(("given", "capacity", "allocatable"), RESOURCES)
def test_resources(given: tuple, capacity: dict, allocatable: dict) -> None:
    cpus, memory, storage, pods, cpu_m, mem = given
    got = host.resources(cpus=cpus, memory=memory, storage=storage, max_pods=pods,
                         reserved_cpu_m=cpu_m, reserved_memory=mem)
    assert got.capacity == capacity
    assert got.allocatable == allocatable


def test_capacity_reads_this_host(tmp_path: Path) -> None:
    import psutil

    got = host.capacity(100, 64 * Mi, 50, tmp_path)
    assert got.capacity["cpu"] == str(psutil.cpu_count(logical=True))
    assert got.capacity["memory"] == f"{psutil.virtual_memory().total // Ki}Ki"
    st = os.statvfs(tmp_path)
    assert got.capacity["ephemeral-storage"] == f"{st.f_blocks * st.f_frsize // Ki}Ki"
    assert got.allocatable["pods"] == "50"


# -- conditions ---------------------------------------------------------------------------

def facts(**changes: int | str) -> host.Facts:
    base = {"memory_available": 2 * Gi, "disk_free": 20 * Gi, "disk_total": 32 * Gi,
            "tasks": 300, "pid_max": 32768, "runtime_problem": ""}
    return host.Facts(**{**base, **changes})  # type: ignore[arg-type]


PRESSURES = [
    # (facts, expected pressures)
    (facts(), set()),
    (facts(memory_available=100 * Mi - 1), {"MemoryPressure"}),
    (facts(memory_available=100 * Mi), set()),  # the threshold itself is not below it
    # 10% of 32 GiB is 3.2 GiB: 3 GiB free is pressure.
    (facts(disk_free=3 * Gi), {"DiskPressure"}),
    (facts(disk_free=4 * Gi), set()),
    # 8 GiB card: 10% is 0.8 GiB but the 1 GiB floor applies.
    (facts(disk_total=8 * Gi, disk_free=900 * Mi), {"DiskPressure"}),
    (facts(disk_total=8 * Gi, disk_free=1 * Gi), set()),
    # 90% of 32768 is 29491.2.
    (facts(tasks=29492), {"PIDPressure"}),
    (facts(tasks=29491), set()),
    (facts(pid_max=0), set()),  # unknown pid_max: no verdict
    (facts(memory_available=0, disk_free=0, tasks=40000),
     {"MemoryPressure", "DiskPressure", "PIDPressure"}),
]


@pytest.mark.parametrize(("given", "expected"), PRESSURES)
def test_pressures(given: host.Facts, expected: set[str]) -> None:
    got = host.pressures(given, host.Thresholds())
    assert {k for k, v in got.items() if v} == expected


def by_type(conds: list[dict]) -> dict[str, dict]:
    return {c["type"]: c for c in conds}


def test_conditions_healthy_node_in_kubelet_words() -> None:
    conds = host.conditions(facts(), host.Thresholds(), T0)
    assert [c["type"] for c in conds] == ["MemoryPressure", "DiskPressure", "PIDPressure",
                                          "Ready"]
    c = by_type(conds)
    assert c["Ready"] == {"type": "Ready", "status": "True", "reason": "KubeletReady",
                          "message": "kubelet is posting ready status",
                          "lastHeartbeatTime": "2026-05-01T12:00:00Z",
                          "lastTransitionTime": "2026-05-01T12:00:00Z"}
    assert (c["MemoryPressure"]["status"], c["MemoryPressure"]["reason"]) == (
        "False", "KubeletHasSufficientMemory")
    assert (c["DiskPressure"]["status"], c["DiskPressure"]["reason"]) == (
        "False", "KubeletHasNoDiskPressure")
    assert (c["PIDPressure"]["status"], c["PIDPressure"]["reason"]) == (
        "False", "KubeletHasSufficientPID")


PRESSURE_REASONS = [
    (facts(memory_available=0), "MemoryPressure", "KubeletHasInsufficientMemory",
     "kubelet has insufficient memory available"),
    (facts(disk_free=0), "DiskPressure", "KubeletHasDiskPressure", "kubelet has disk pressure"),
    (facts(tasks=32000), "PIDPressure", "KubeletHasInsufficientPID",
     "kubelet has insufficient PID available"),
]


@pytest.mark.parametrize(("given", "kind", "reason", "message"), PRESSURE_REASONS)
def test_conditions_under_pressure(given: host.Facts, kind: str, reason: str,
                                   message: str) -> None:
    c = by_type(host.conditions(given, host.Thresholds(), T0))[kind]
    assert (c["status"], c["reason"], c["message"]) == ("True", reason, message)
    # Pressure alone does not make the node NotReady (as in Kubernetes).
    assert by_type(host.conditions(given, host.Thresholds(), T0))["Ready"]["status"] == "True"


def test_runtime_problem_makes_the_node_not_ready() -> None:
    c = by_type(host.conditions(facts(runtime_problem="container runtime is down"),
                                host.Thresholds(), T0))["Ready"]
    assert (c["status"], c["reason"], c["message"]) == (
        "False", "KubeletNotReady", "container runtime is down")


def test_transition_time_kept_until_status_changes() -> None:
    first = host.conditions(facts(), host.Thresholds(), T0)
    same = by_type(host.conditions(facts(), host.Thresholds(), T1, first))
    assert same["Ready"]["lastTransitionTime"] == "2026-05-01T12:00:00Z"
    assert same["Ready"]["lastHeartbeatTime"] == "2026-05-01T12:00:10Z"
    changed = by_type(host.conditions(facts(memory_available=0), host.Thresholds(), T1,
                                      first))
    assert changed["MemoryPressure"]["lastTransitionTime"] == "2026-05-01T12:00:10Z"
    assert changed["DiskPressure"]["lastTransitionTime"] == "2026-05-01T12:00:00Z"


def test_custom_thresholds() -> None:
    strict = host.Thresholds(memory_available=4 * Gi, disk_free_fraction=0.9,
                             disk_free_min=0, pid_fraction=0.001)
    assert all(host.pressures(facts(), strict).values())


# -- procfs parsers -----------------------------------------------------------------------

MEMINFO = """MemTotal:        3884548 kB
MemFree:          512000 kB
MemAvailable:    2900000 kB
Buffers:           12345 kB
Inactive(file):  1000000 kB
HugePages_Total:       0
"""


def test_parse_meminfo_and_working_set() -> None:
    info = host.parse_meminfo(MEMINFO)
    assert info["MemTotal"] == 3884548 * Ki
    assert info["MemAvailable"] == 2900000 * Ki
    assert info["HugePages_Total"] == 0
    # (3884548 - 512000 - 1000000) kB
    assert host.working_set(info) == 2372548 * Ki
    assert host.working_set({}) == 0


@pytest.mark.parametrize(("text", "tasks"), [
    ("0.52 0.58 0.59 3/467 12345\n", 467),
    ("0.00 0.01 0.05 1/80 2", 80),
    ("garbage", None),
    ("", None),
])
def test_parse_loadavg_tasks(text: str, tasks: int | None) -> None:
    assert host.parse_loadavg_tasks(text) == tasks


def test_read_facts_on_this_host(tmp_path: Path) -> None:
    got = host.read_facts(tmp_path, "runtime down")
    assert got.memory_available > 0 and got.disk_total >= got.disk_free > 0
    assert got.tasks > 0 and got.pid_max > 0 and got.runtime_problem == "runtime down"


# -- Raspberry Pi sensors ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "celsius"), [
    ("52312\n", 52.312), ("-5000", -5.0), ("", None), (None, None), ("hot", None)])
def test_parse_soc_temperature(text: str | None, celsius: float | None) -> None:
    assert host.parse_soc_temperature(text) == celsius


THROTTLED = [
    ("throttled=0x0\n", []),
    ("throttled=0x1", ["under-voltage"]),
    ("throttled=0x5", ["under-voltage", "throttled"]),
    ("throttled=0x50005", ["under-voltage", "throttled", "under-voltage-occurred",
                           "throttled-occurred"]),
    ("throttled=0x80008", ["soft-temp-limit", "soft-temp-limit-occurred"]),
    ("throttled=0x20002", ["arm-freq-capped", "arm-freq-capped-occurred"]),
    ("throttled=0xE0000", ["arm-freq-capped-occurred", "throttled-occurred",
                           "soft-temp-limit-occurred"]),
    ("VCHI initialization failed", None),
    ("throttled=zz", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "flags"), THROTTLED)
def test_parse_throttled(text: str | None, flags: list[str] | None) -> None:
    assert host.parse_throttled(text) == flags


@pytest.mark.parametrize(("temperature", "throttled", "annotations"), [
    ("52312", "throttled=0x5", {"bramble.io/soc-temperature": "52.3C",
                                "bramble.io/throttled": "under-voltage,throttled"}),
    ("48000", "throttled=0x0", {"bramble.io/soc-temperature": "48.0C",
                                "bramble.io/throttled": "no"}),
    (None, None, {}),  # not a Pi
    ("61049", None, {"bramble.io/soc-temperature": "61.0C"}),  # no vcgencmd
])
def test_sensor_annotations(temperature: str | None, throttled: str | None,
                            annotations: dict) -> None:
    assert host.sensor_annotations(temperature, throttled) == annotations


async def test_read_sensors_from_files_and_command(tmp_path: Path) -> None:
    thermal = tmp_path / "temp"
    thermal.write_text("47250\n")
    vcgencmd = tmp_path / "vcgencmd"
    vcgencmd.write_text("#!/bin/sh\necho throttled=0x50000\n")
    vcgencmd.chmod(vcgencmd.stat().st_mode | stat.S_IXUSR)
    got = await host.read_sensors(thermal, str(vcgencmd))
    assert got == {"bramble.io/soc-temperature": "47.2C",
                   "bramble.io/throttled": "under-voltage-occurred,throttled-occurred"}


async def test_read_sensors_missing_gives_nothing(tmp_path: Path) -> None:
    assert await host.read_sensors(tmp_path / "absent", str(tmp_path / "no-vcgencmd")) == {}
    assert await host.read_sensors(tmp_path / "absent", None) == {}


# -- system info --------------------------------------------------------------------------

@pytest.mark.parametrize(("machine", "arch"), [
    ("x86_64", "amd64"), ("aarch64", "arm64"), ("armv7l", "arm"), ("armv6l", "arm"),
    ("arm64", "arm64"), ("riscv64", "riscv64")])
def test_kube_arch(machine: str, arch: str) -> None:
    assert host.kube_arch(machine) == arch


@pytest.mark.parametrize(("text", "image"), [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n',
     "Debian GNU/Linux 12 (bookworm)"),
    ("NAME='Raspbian'\n", "Raspbian"),
    ("", "Linux"),
])
def test_parse_os_release(text: str, image: str) -> None:
    assert host.parse_os_release(text) == image


def test_node_info_from_a_fabricated_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('PRETTY_NAME="Raspberry Pi OS"\n')
    (tmp_path / "etc/machine-id").write_text("abc123\n")
    info = host.node_info("podman://4.3.1", root=tmp_path)
    assert info["osImage"] == "Raspberry Pi OS"
    assert info["machineID"] == "abc123"
    assert info["bootID"] == ""  # missing files give empty strings, not errors
    assert info["containerRuntimeVersion"] == "podman://4.3.1"
    assert info["kubeletVersion"].startswith("v1.") and "-bramble." in info["kubeletVersion"]
    assert info["operatingSystem"] == "linux"
    assert info["architecture"] == host.kube_arch(platform.machine())


def test_addresses() -> None:
    assert host.addresses("pi1", "192.168.1.20") == [
        {"type": "InternalIP", "address": "192.168.1.20"},
        {"type": "Hostname", "address": "pi1"}]
    assert host.addresses("pi1", None) == [{"type": "Hostname", "address": "pi1"}]
    assert host.source_address("127.0.0.1") == "127.0.0.1"


# -- usage --------------------------------------------------------------------------------

@pytest.mark.parametrize(("before", "after", "nanocores"), [
    # 1.5 CPU-seconds busy over 1 s on a 4-core machine = 1.5 cores.
    ((10.0, 100.0), (11.5, 101.0), 1_500_000_000),
    ((10.0, 100.0), (10.0, 105.0), 0),
    ((10.0, 100.0), (10.25, 100.5), 500_000_000),
    ((10.0, 100.0), (20.0, 100.0), 0),  # no time passed: no division by zero
    ((10.0, 100.0), (9.0, 101.0), 0),  # counters never go backwards; if they do, 0
])
def test_cpu_nanocores(before: tuple, after: tuple, nanocores: int) -> None:
    assert host.cpu_nanocores(before[0], before[1], after[0], after[1]) == nanocores


def test_busy_seconds_excludes_idle_iowait_and_double_counted_guest() -> None:
    times = {"user": 10.0, "nice": 1.0, "system": 4.0, "idle": 100.0, "iowait": 5.0,
             "irq": 0.5, "softirq": 0.5, "steal": 0.0, "guest": 2.0, "guest_nice": 1.0}
    assert host.busy_seconds(times) == 16.0


def test_usage_sampler_measures_since_the_previous_call() -> None:
    clock = iter([0.0, 2.0, 3.0])
    busy = iter([{"user": 1.0, "idle": 5.0}, {"user": 2.0, "idle": 6.0},
                 {"user": 4.0, "idle": 6.0}])
    sampler = host.UsageSampler(cpu_times=lambda: next(busy), meminfo=lambda: MEMINFO,
                                clock=lambda: next(clock))
    start = sampler.usage()  # starts the window
    assert (start.cpu_nanocores, start.window) == (0, 0.0)
    first = sampler.usage()
    assert (first.cpu_nanocores, first.window) == (500_000_000, 2.0)
    second = sampler.usage()
    assert (second.cpu_nanocores, second.window) == (2_000_000_000, 1.0)
    assert second.memory_working_set == 2372548 * Ki
    assert second.as_quantities() == {"cpu": "2000000000n", "memory": "2372548Ki"}


def test_usage_on_this_host_does_not_block(tmp_path: Path) -> None:
    h = host.LocalHost(tmp_path)
    assert h.usage().window == 0
    got = h.usage()
    assert got.window > 0 and got.cpu_nanocores >= 0 and got.memory_working_set > 0
