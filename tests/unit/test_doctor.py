"""Preflight checks (bramble/doctor.py): each a pure function of gathered facts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bramble import doctor
from bramble.doctor import FAIL, OK, SKIP, WARN, Facts, Image

GiB = 1024 ** 3
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

V1_ON = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t4\t10\t1\n"
V1_OFF = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t0\t1\t0\n"
PI_CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=1 rootwait cgroup_disable=memory"


@pytest.mark.parametrize(("facts", "status", "says"), [
    (Facts(cgroup2_controllers="cpuset cpu io memory pids"), OK, "cgroup v2"),
    (Facts(proc_cgroups=V1_ON), OK, "cgroup v1"),
    # Raspberry Pi OS: v2 without the memory controller -> the cmdline.txt fix.
    (Facts(cgroup2_controllers="cpuset cpu io pids", proc_cgroups=V1_OFF,
           cmdline_file="/boot/firmware/cmdline.txt"), FAIL, "disabled"),
    (Facts(proc_cgroups=V1_OFF, cmdline=PI_CMDLINE), FAIL, "cgroup_disable=memory"),
    (Facts(), SKIP, "cannot tell"),
])
def test_memory_cgroup(facts: Facts, status: str, says: str) -> None:
    check = doctor.check_memory_cgroup(facts)
    assert check.status == status and says in check.message
    if status == FAIL:
        assert "cgroup_enable=memory cgroup_memory=1" in check.fix
        assert "cmdline.txt" in check.fix


@pytest.mark.parametrize(("facts", "status", "fix"), [
    (Facts(podman="/usr/bin/podman", podman_version="4.3.1", oci_runtimes=("runc",),
           conmon="/usr/bin/conmon"), OK, ""),
    (Facts(), FAIL, "apt install podman"),
    (Facts(podman="/usr/bin/podman", podman_error="exec format error"), FAIL, "reinstall"),
    (Facts(podman="/usr/bin/podman", podman_version="4.3.1", conmon="/c"), FAIL,
     "apt install runc"),
    (Facts(podman="/usr/bin/podman", podman_version="4.3.1", oci_runtimes=("crun",)), FAIL,
     "conmon"),
])
def test_podman(facts: Facts, status: str, fix: str) -> None:
    check = doctor.check_podman(facts)
    assert check.status == status and fix in check.fix


@pytest.mark.parametrize(("facts", "status"), [
    (Facts(now=NOW, clock_state=0), OK),  # TIME_OK
    (Facts(now=NOW, clock_state=doctor.TIME_ERROR), WARN),  # not synchronised
    (Facts(now=NOW, clock_state=None), SKIP),
    # A Pi booted without RTC and network: 1970, whatever adjtimex says.
    (Facts(now=datetime(1970, 1, 1, tzinfo=UTC), clock_state=0), FAIL),
])
def test_clock(facts: Facts, status: str) -> None:
    check = doctor.check_clock(facts)
    assert check.status == status
    if status in (WARN, FAIL):
        assert "timedatectl set-ntp true" in check.fix


@pytest.mark.parametrize(("value", "status"), [("1\n", OK), ("0\n", WARN), (None, SKIP)])
def test_ip_forward(value: str | None, status: str) -> None:
    check = doctor.check_ip_forward(Facts(ip_forward=value))
    assert check.status == status
    if status == WARN:
        assert "net.ipv4.ip_forward=1" in check.fix


@pytest.mark.parametrize(("free", "total", "status"), [
    (20 * GiB, 32 * GiB, OK),  # 37.5% used, 20 GiB free
    (5 * GiB, 64 * GiB, WARN),  # 92% used: above the 85% where image GC starts
    (3 * GiB, 8 * GiB, WARN),  # 62.5% used but under 4 GiB free
    (int(0.5 * GiB), 32 * GiB, FAIL),  # under 1 GiB free
    (None, None, SKIP),
])
def test_disk(free: int | None, total: int | None, status: str) -> None:
    assert doctor.check_disk(Facts(disk_path="/var/lib/bramble", disk_free=free,
                                   disk_total=total)).status == status


@pytest.mark.parametrize(("machine", "images", "binfmt", "status", "named"), [
    ("aarch64", (Image("a:1", "arm64"), Image("b:1", "arm", "v7")), frozenset(), OK, ""),
    ("aarch64", (Image("web:1", "amd64"),), frozenset(), WARN, "web:1 (amd64)"),
    ("aarch64", (Image("web:1", "amd64"),), frozenset({"qemu-x86_64"}), OK, ""),
    ("x86_64", (Image("a:1", "amd64"), Image("pi:1", "arm", "v7")), frozenset(), WARN,
     "pi:1 (arm/v7)"),
    ("armv7l", (Image("a:1", "arm64"),), frozenset(), WARN, "a:1 (arm64)"),
    ("x86_64", (), frozenset(), OK, ""),
    ("x86_64", None, frozenset(), SKIP, ""),
])
def test_images(machine: str, images: tuple | None, binfmt: frozenset, status: str,
                named: str) -> None:
    check = doctor.check_images(Facts(machine=machine, images=images, binfmt=binfmt))
    assert check.status == status
    assert named in check.message
    if status == WARN:
        assert "exec format error" in check.message and "--platform" in check.fix


def test_report_and_exit_code() -> None:
    checks = [doctor.Check("a", OK, "fine"), doctor.Check("b", WARN, "hm", "do x"),
              doctor.Check("c", FAIL, "bad", "do y"), doctor.Check("d", SKIP, "?", "z")]
    assert doctor.report(checks) == ("[OK  ] a: fine\n[WARN] b: hm\n       fix: do x\n"
                                     "[FAIL] c: bad\n       fix: do y\n[SKIP] d: ?\n")
    assert doctor.exit_code(checks) == 1
    assert doctor.exit_code(checks[:2]) == 0


def test_gather_reads_this_machine(tmp_path) -> None:
    # Whatever this machine is, gathering works and every check has an answer.
    facts = doctor.gather(tmp_path / "node", podman=False)
    assert facts.disk_path == str(tmp_path) and facts.disk_total
    assert {c.status for c in doctor.run_checks(facts)} <= {OK, WARN, FAIL, SKIP}
