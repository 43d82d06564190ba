"""Podman configuration for a bramble-owned store under the node's data dir.

The node agent runs its own `podman system service` with its own containers.conf
(selected by CONTAINERS_CONF, which replaces every other containers.conf), its own
storage.conf (CONTAINERS_STORAGE_CONF: a private graphroot/runroot) and a private tmp_dir,
network config dir and image copy dir. So bramble never reads or writes the user's
/etc/containers or /var/lib/containers, and two nodes simulated on one machine do not see
each other's containers, images, networks or events.

Every decision that depends on the host (OCI runtime, cgroup manager, cgroup namespace,
ulimits) is a pure function of `HostFacts`; `detect_host()` is the only code that looks at
the machine, and `write_config()` the only code that writes files.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

UNLIMITED = -1  # resource.RLIM_INFINITY, normalised

# Podman's rootful default for open files, when the host's hard limit allows it.
WANTED_NOFILE = 1048576
# Podman lowers its own RLIMIT_NPROC hard limit to 32768 at startup (it cannot raise it
# without CAP_SYS_RESOURCE), and runc cannot give a container more than its parent has:
# asking for Podman's default 4194304 fails with EPERM. Root in a container is exempt
# from RLIMIT_NPROC anyway; the pids cgroup is the real bound.
WANTED_NPROC = 32768

# k8s-file (the CRI log format the kubelet also writes; Podman's "json-file" is only an
# alias of it) is the one file driver that serves `logs` and `logs --follow` through the
# API without journald, which a node without systemd does not have. Capped like the
# kubelet's containerLogMaxSize, because a Pi's SD card is small.
LOG_DRIVER = "k8s-file"
LOG_SIZE_MAX = 10 * 1024 * 1024

# How long Podman keeps a finished exec session (and its two conmon processes) so that its
# exit code can be read. Podman's 300 s keeps processes around for minutes, and removing a
# container waits for its pending exec cleanups; 0 loses the exit code before the exec's
# caller reads it (which it does within milliseconds of the end of the output).
EXIT_COMMAND_DELAY = 2


@dataclass(frozen=True)
class HostFacts:
    cgroup_mode: str  # "unified" (v2 only) | "hybrid" (v1 + a v2 mount) | "legacy" (v1)
    systemd: bool  # systemd runs as PID 1 (sd_booted)
    crun: str  # path, "" when not installed
    runc: str
    nofile_hard: int  # UNLIMITED when infinite
    nproc_hard: int


@dataclass(frozen=True)
class PodmanPaths:
    data_dir: Path
    graphroot: Path
    runroot: Path
    tmp_dir: Path
    image_tmp_dir: Path
    network_dir: Path
    containers_conf: Path
    storage_conf: Path
    socket: Path
    service_log: Path
    service_pid: Path
    conmon_dir: Path  # the service's cwd: conmon drops its `oom` marker here


def podman_paths(data_dir: Path, run_dir: Path | None = None) -> PodmanPaths:
    """Where everything lives. `run_dir` holds state that must not survive a reboot
    (runroot, tmp_dir): on a real node pass a folder on tmpfs such as /run/bramble."""
    data_dir = Path(data_dir)
    run = Path(run_dir) if run_dir is not None else data_dir / "run"
    return PodmanPaths(
        data_dir=data_dir,
        graphroot=data_dir / "storage",
        runroot=run / "storage",
        tmp_dir=run / "libpod",
        image_tmp_dir=data_dir / "tmp",
        network_dir=data_dir / "networks",
        containers_conf=data_dir / "containers.conf",
        storage_conf=data_dir / "storage.conf",
        socket=data_dir / "podman.sock",
        service_log=data_dir / "podman-service.log",
        service_pid=data_dir / "podman-service.pid",
        conmon_dir=data_dir / "conmon",
    )


def cgroup_mode_from_mounts(mounts: str) -> str:
    """The cgroup layout from the text of /proc/self/mounts."""
    types: dict[str, str] = {}
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            types[fields[1]] = fields[2]
    if types.get("/sys/fs/cgroup") == "cgroup2":
        return "unified"
    if types.get("/sys/fs/cgroup/unified") == "cgroup2":
        return "hybrid"
    return "legacy"


def choose_oci_runtime(facts: HostFacts) -> str:
    """crun is Podman's default and the lighter one, but it refuses hybrid cgroups."""
    if facts.cgroup_mode == "unified" and facts.crun:
        return "crun"
    return "runc"


def choose_cgroup_manager(facts: HostFacts) -> str:
    return "systemd" if facts.systemd else "cgroupfs"


def choose_cgroupns(facts: HostFacts) -> str:
    # A private cgroup namespace needs a v2 hierarchy to be useful; on hybrid hosts runc
    # cannot set it up, so containers share the host's view (Podman's v1 default).
    return "private" if facts.cgroup_mode == "unified" else "host"


def _within(wanted: int, hard: int) -> int:
    return wanted if hard == UNLIMITED else min(wanted, hard)


def default_ulimits(nofile_hard: int, nproc_hard: int) -> tuple[str, ...]:
    """soft=hard limits for containers that the runtime can set without CAP_SYS_RESOURCE:
    Podman's rootful defaults fail with EPERM where the host's hard limits are lower."""
    nofile = _within(WANTED_NOFILE, nofile_hard)
    nproc = _within(WANTED_NPROC, nproc_hard)
    return (f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}")


def _toml(value: object) -> str:
    # JSON strings, integers and arrays of strings are valid TOML.
    return json.dumps(value)


def render_containers_conf(paths: PodmanPaths, facts: HostFacts) -> str:
    runtime = choose_oci_runtime(facts)
    runtime_path = facts.crun if runtime == "crun" else facts.runc
    lines = [
        "# Written by bramble; replaced on every start.",
        "[containers]",
        f"default_ulimits = {_toml(list(default_ulimits(facts.nofile_hard, facts.nproc_hard)))}",
        f"cgroupns = {_toml(choose_cgroupns(facts))}",
        f"log_driver = {_toml(LOG_DRIVER)}",
        f"log_size_max = {LOG_SIZE_MAX}",
        "",
        "[network]",
        'network_backend = "netavark"',
        f"network_config_dir = {_toml(str(paths.network_dir))}",
        "",
        "[engine]",
        f"runtime = {_toml(runtime)}",
        f"cgroup_manager = {_toml(choose_cgroup_manager(facts))}",
        'events_logger = "file"',
        f"events_logfile_path = {_toml(str(paths.tmp_dir / 'events' / 'events.log'))}",
        f"exit_command_delay = {EXIT_COMMAND_DELAY}",
        f"tmp_dir = {_toml(str(paths.tmp_dir))}",
        f"image_copy_tmp_dir = {_toml(str(paths.image_tmp_dir))}",
        f"static_dir = {_toml(str(paths.graphroot / 'libpod'))}",
        f"volume_path = {_toml(str(paths.graphroot / 'volumes'))}",
    ]
    if runtime_path:
        lines += ["", "[engine.runtimes]", f"{runtime} = {_toml([runtime_path])}"]
    return "\n".join(lines) + "\n"


def render_storage_conf(paths: PodmanPaths, driver: str = "overlay") -> str:
    return "\n".join([
        "# Written by bramble; replaced on every start.",
        "[storage]",
        f"driver = {_toml(driver)}",
        f"graphroot = {_toml(str(paths.graphroot))}",
        f"runroot = {_toml(str(paths.runroot))}",
    ]) + "\n"


def podman_environment(data_dir: Path, run_dir: Path | None = None,
                       base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the `podman system service` process (pure: `base` is the
    inherited environment, os.environ by default is the caller's business)."""
    paths = podman_paths(data_dir, run_dir)
    env = {k: v for k, v in (base or {}).items() if not k.startswith("CONTAINERS_")}
    env.update({
        "CONTAINERS_CONF": str(paths.containers_conf),
        "CONTAINERS_STORAGE_CONF": str(paths.storage_conf),
        "TMPDIR": str(paths.image_tmp_dir),
    })
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env


def _hard(limit: int) -> int:
    hard = resource.getrlimit(limit)[1]
    return UNLIMITED if hard == resource.RLIM_INFINITY else hard


def detect_host() -> HostFacts:
    """Look at the machine (blocking but tiny: call it from an executor in async code)."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        mounts = ""
    return HostFacts(
        cgroup_mode=cgroup_mode_from_mounts(mounts),
        systemd=os.path.isdir("/run/systemd/system"),
        crun=shutil.which("crun") or "",
        runc=shutil.which("runc") or "",
        nofile_hard=_hard(resource.RLIMIT_NOFILE),
        nproc_hard=_hard(resource.RLIMIT_NPROC),
    )


def write_config(data_dir: Path, run_dir: Path | None = None,
                 facts: HostFacts | None = None) -> PodmanPaths:
    """Create the folders and (re)write both config files; returns the paths."""
    paths = podman_paths(data_dir, run_dir)
    facts = facts or detect_host()
    for folder in (paths.data_dir, paths.graphroot, paths.runroot, paths.tmp_dir,
                   paths.image_tmp_dir, paths.network_dir, paths.conmon_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.containers_conf.write_text(render_containers_conf(paths, facts))
    paths.storage_conf.write_text(render_storage_conf(paths))
    return paths
