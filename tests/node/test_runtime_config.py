"""The pure parts of the runtime: Podman's configuration for a host, and the mapping of
bramble's specs onto libpod requests. No Podman needed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bramble.node.runtime import config
from bramble.node.runtime.config import HostFacts
from bramble.node.runtime.podman import (
    ContainerRuntimeError,
    bridge_name,
    container_body,
    container_state,
    cpu_quota,
    demux_frames,
    label_filters,
    mount_source,
    rfc3339,
)
from bramble.node.runtime.types import ContainerSpec, Mount

UNLIMITED = config.UNLIMITED


def facts(mode: str = "hybrid", systemd: bool = False, crun: str = "", runc: str = "/usr/sbin/runc",
          nofile: int = 20000, nproc: int = 96365) -> HostFacts:
    return HostFacts(cgroup_mode=mode, systemd=systemd, crun=crun, runc=runc,
                     nofile_hard=nofile, nproc_hard=nproc)


V2_MOUNTS = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"
HYBRID_MOUNTS = ("tmpfs /sys/fs/cgroup tmpfs ro 0 0\n"
                 "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
                 "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n")
LEGACY_MOUNTS = ("tmpfs /sys/fs/cgroup tmpfs ro 0 0\n"
                 "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n")


@pytest.mark.parametrize(("mounts", "mode"), [
    (V2_MOUNTS, "unified"),       # Raspberry Pi OS bookworm, Debian 12 with systemd
    (HYBRID_MOUNTS, "hybrid"),    # v1 controllers + a v2 mount (this test machine)
    (LEGACY_MOUNTS, "legacy"),
    ("", "legacy"),               # no /proc/self/mounts: assume the oldest
])
def test_cgroup_mode_from_mounts(mounts: str, mode: str) -> None:
    assert config.cgroup_mode_from_mounts(mounts) == mode


@pytest.mark.parametrize(("host", "runtime"), [
    (facts("unified", crun="/usr/bin/crun"), "crun"),
    (facts("unified", crun=""), "runc"),                  # crun not installed
    (facts("hybrid", crun="/usr/bin/crun"), "runc"),      # crun: "hybrid mode not supported"
    (facts("legacy", crun="/usr/bin/crun"), "runc"),
])
def test_oci_runtime(host: HostFacts, runtime: str) -> None:
    assert config.choose_oci_runtime(host) == runtime


@pytest.mark.parametrize(("host", "manager", "cgroupns"), [
    (facts("unified", systemd=True), "systemd", "private"),
    (facts("unified", systemd=False), "cgroupfs", "private"),
    (facts("hybrid", systemd=False), "cgroupfs", "host"),
    (facts("legacy", systemd=True), "systemd", "host"),
])
def test_cgroup_manager_and_namespace(host: HostFacts, manager: str, cgroupns: str) -> None:
    assert config.choose_cgroup_manager(host) == manager
    assert config.choose_cgroupns(host) == cgroupns


@pytest.mark.parametrize(("nofile_hard", "nproc_hard", "expected"), [
    # min(wanted, hard): nofile wants 1048576, nproc wants 32768 (Podman's own cap)
    (20000, 96365, ("nofile=20000:20000", "nproc=32768:32768")),   # this machine
    (UNLIMITED, UNLIMITED, ("nofile=1048576:1048576", "nproc=32768:32768")),
    (2_000_000, 1000, ("nofile=1048576:1048576", "nproc=1000:1000")),
    (1024, 30000, ("nofile=1024:1024", "nproc=30000:30000")),
])
def test_default_ulimits_stay_within_hard_limits(nofile_hard: int, nproc_hard: int,
                                                 expected: tuple[str, str]) -> None:
    assert config.default_ulimits(nofile_hard, nproc_hard) == expected


def test_containers_conf_for_this_kind_of_host() -> None:
    paths = config.podman_paths(Path("/data/node"))
    conf = tomllib.loads(config.render_containers_conf(paths, facts()))
    assert conf["containers"] == {
        "default_ulimits": ["nofile=20000:20000", "nproc=32768:32768"],
        "cgroupns": "host", "log_driver": "k8s-file", "log_size_max": config.LOG_SIZE_MAX}
    assert conf["network"] == {"network_backend": "netavark",
                               "network_config_dir": "/data/node/networks"}
    engine = conf["engine"]
    assert engine["runtime"] == "runc" and engine["runtimes"] == {"runc": ["/usr/sbin/runc"]}
    assert engine["cgroup_manager"] == "cgroupfs" and engine["events_logger"] == "file"
    assert engine["exit_command_delay"] == config.EXIT_COMMAND_DELAY
    assert engine["tmp_dir"] == "/data/node/run/libpod"
    # Nothing of Podman's lands in the user's own folders.
    every_path = [v for section in conf.values() for v in section.values()
                  if isinstance(v, str) and v.startswith("/")]
    assert every_path and all(p.startswith("/data/node/") for p in every_path)


def test_containers_conf_on_a_pi() -> None:
    host = facts("unified", systemd=True, crun="/usr/bin/crun", nofile=UNLIMITED,
                 nproc=UNLIMITED)
    paths = config.podman_paths(Path("/var/lib/bramble/podman"), Path("/run/bramble/podman"))
    conf = tomllib.loads(config.render_containers_conf(paths, host))
    assert conf["engine"]["runtime"] == "crun"
    assert conf["engine"]["cgroup_manager"] == "systemd"
    assert conf["engine"]["tmp_dir"] == "/run/bramble/podman/libpod"  # tmpfs: gone at reboot
    assert conf["containers"]["cgroupns"] == "private"


def test_storage_conf() -> None:
    paths = config.podman_paths(Path("/d"), Path("/r"))
    assert tomllib.loads(config.render_storage_conf(paths)) == {"storage": {
        "driver": "overlay", "graphroot": "/d/storage", "runroot": "/r/storage"}}


def test_podman_environment_replaces_the_users_configuration() -> None:
    base = {"PATH": "/bin", "HOME": "/root", "CONTAINERS_CONF": "/etc/mine.conf",
            "CONTAINERS_REGISTRIES_CONF": "/etc/mine-registries.conf"}
    env = config.podman_environment(Path("/d"), base=base)
    assert env == {"PATH": "/bin", "HOME": "/root", "CONTAINERS_CONF": "/d/containers.conf",
                   "CONTAINERS_STORAGE_CONF": "/d/storage.conf", "TMPDIR": "/d/tmp"}
    assert config.podman_environment(Path("/d"))["PATH"]  # a PATH even from nothing


def test_write_config(tmp_path: Path) -> None:
    paths = config.write_config(tmp_path / "node", facts=facts())
    assert tomllib.loads(paths.containers_conf.read_text())["engine"]["runtime"] == "runc"
    assert tomllib.loads(paths.storage_conf.read_text())["storage"]["graphroot"] == str(
        tmp_path / "node" / "storage")
    for folder in (paths.graphroot, paths.tmp_dir, paths.network_dir, paths.conmon_dir):
        assert folder.is_dir()


def test_detect_host_describes_this_machine() -> None:
    host = config.detect_host()
    assert host.cgroup_mode in ("unified", "hybrid", "legacy")
    assert host.nofile_hard == UNLIMITED or host.nofile_hard > 0


# --- mapping bramble's specs onto libpod -----------------------------------------------------


def spec(**fields: object) -> ContainerSpec:
    return ContainerSpec(name="c", image="img", labels={"a": "b"}, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("command", "args", "entrypoint", "cmd"), [
    # Kubernetes: command replaces ENTRYPOINT (image CMD dropped), args replace CMD
    ((), (), None, None),                        # image ENTRYPOINT + CMD
    ((), ("a1",), None, ["a1"]),                 # image ENTRYPOINT + args
    (("sh", "-c"), (), ["sh", "-c"], None),      # command only
    (("sh", "-c"), ("x",), ["sh", "-c"], ["x"]),
])
def test_command_and_args(command: tuple[str, ...], args: tuple[str, ...],
                          entrypoint: list[str] | None, cmd: list[str] | None) -> None:
    body = container_body("pod1", spec(command=command, args=args))
    assert body.get("entrypoint") == entrypoint and body.get("command") == cmd


def test_container_body() -> None:
    body = container_body("pod1", spec(
        env=(("A", "1"), ("B", "x=y")), working_dir="/w", user="1000:1000",
        memory_limit=64 << 20, cpu_quota_millis=250, read_only_rootfs=True, privileged=True,
        stop_signal=2, mounts=(Mount("/v", "/data", read_only=True),
                               Mount("/v", "/sub", sub_path="a/b"))))
    assert body["pod"] == "pod1" and body["labels"] == {"a": "b", "io.bramble.managed": "true"}
    assert body["env"] == {"A": "1", "B": "x=y"}
    assert (body["work_dir"], body["user"], body["stop_signal"]) == ("/w", "1000:1000", 2)
    assert body["resource_limits"] == {"memory": {"limit": 64 << 20},
                                       "cpu": {"period": 100_000, "quota": 25_000}}
    assert body["read_only_filesystem"] and not body["read_only_tmpfs"] and body["privileged"]
    assert body["mounts"] == [
        {"type": "bind", "source": "/v", "destination": "/data", "options": ["rbind", "ro"]},
        {"type": "bind", "source": "/v/a/b", "destination": "/sub", "options": ["rbind", "rw"]}]
    assert "resource_limits" not in container_body("p", spec())


@pytest.mark.parametrize(("millis", "quota"), [
    (1000, 100_000),   # one CPU: the whole period
    (250, 25_000),
    (2500, 250_000),   # more than one CPU
    (1, 1_000),        # the kernel's minimum quota is 1 ms
])
def test_cpu_quota(millis: int, quota: int) -> None:
    assert cpu_quota(millis) == quota


@pytest.mark.parametrize(("source", "sub_path", "expected"), [
    ("/v", "", "/v"),
    ("/v", "a", "/v/a"),
    ("/v", "a/./b/", "/v/a/b"),
    ("/v", "a/../b", "/v/b"),
])
def test_mount_source(source: str, sub_path: str, expected: str) -> None:
    assert mount_source(source, sub_path) == expected


@pytest.mark.parametrize("sub_path", ["..", "../x", "a/../../x", "/etc"])
def test_mount_source_stays_inside_the_volume(sub_path: str) -> None:
    with pytest.raises(ContainerRuntimeError):
        mount_source("/v", sub_path)


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-23T19:24:32.564799011Z", "2026-11-23T19:24:32Z"),
    ("2026-11-23T20:24:32.5+01:00", "2026-11-23T19:24:32Z"),
    ("2026-11-23T19:24:32Z", "2026-11-23T19:24:32Z"),
    ("0001-01-01T00:00:00Z", ""),   # Podman's "never"
    (1795461872, "2026-11-23T19:24:32Z"),
    (-62135596800, ""),             # the zero time as unix seconds
    ("", ""), (None, ""), ("garbage", ""),
])
def test_rfc3339(value: str | int | None, expected: str) -> None:
    assert rfc3339(value) == expected


@pytest.mark.parametrize(("podman", "state"), [
    ("running", "running"), ("paused", "running"), ("exited", "exited"),
    ("stopped", "exited"), ("created", "created"), ("configured", "created"),
    ("removing", "unknown"), ("", "unknown"),
])
def test_container_state(podman: str, state: str) -> None:
    assert container_state(podman) == state


def test_demux_frames_keeps_partial_frames() -> None:
    frame = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n" + b"\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    buffer = bytearray(frame + frame[:5])
    assert demux_frames(buffer) == [(1, b"hi\n"), (2, b"err\n")]
    assert buffer == bytearray(frame[:5])
    buffer += frame[5:11]
    assert demux_frames(buffer) == [(1, b"hi\n")]


@pytest.mark.parametrize(("network", "bridge"), [
    ("bt-1234", "bt-1234"),
    ("a-network-name-that-is-long", "brmb-"),  # hashed: at most 15 bytes
])
def test_bridge_name(network: str, bridge: str) -> None:
    name = bridge_name(network)
    assert name.startswith(bridge) and len(name) <= 15


def test_label_filters() -> None:
    assert label_filters({"b": "2", "a": "1"}) == {"label": ["a=1", "b=2"]}
    assert label_filters({}) == {}
