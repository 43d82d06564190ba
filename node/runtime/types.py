"""What the node agent asks of a container runtime, and what it observes back.

Plain data, no Podman types: the pure pod logic (node/pods/) decides from these, and the
runtime module (the only code that talks to Podman) fills them in. Keeping the seam here
lets the pod logic be tested without a runtime and a fake runtime (for benchmarks with
many simulated nodes) honour the same contract as the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Labels on every Podman object bramble creates, so the agent finds its own again.
LABEL_POD_UID = "io.bramble.pod.uid"
LABEL_POD_NAME = "io.bramble.pod.name"
LABEL_POD_NAMESPACE = "io.bramble.pod.namespace"
LABEL_CONTAINER_NAME = "io.bramble.container.name"
LABEL_CONTAINER_HASH = "io.bramble.container.hash"  # of the container's spec: changed -> restart
LABEL_RESTART_COUNT = "io.bramble.container.restarts"
LABEL_INIT = "io.bramble.container.init"  # "true" for init containers
LABEL_MANAGED = "io.bramble.managed"  # "true": bramble owns it (GC may remove it)


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int
    protocol: str = "tcp"  # tcp | udp | sctp
    host_ip: str = ""


@dataclass(frozen=True)
class Mount:
    source: str  # a host path (bramble prepares emptyDir/configMap/secret dirs on the host)
    target: str
    read_only: bool = False
    sub_path: str = ""


@dataclass(frozen=True)
class SandboxSpec:
    """A pod's shared network namespace (a Podman pod with its infra container)."""

    name: str  # unique on the node, e.g. "<namespace>_<name>_<uid[:8]>"
    hostname: str
    labels: dict[str, str]
    ports: tuple[PortMapping, ...] = ()
    host_network: bool = False
    dns_servers: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()  # resolv.conf options, e.g. "ndots:5"
    cgroup_parent: str = ""


@dataclass(frozen=True)
class ContainerSpec:
    name: str  # Podman container name, unique on the node
    image: str
    labels: dict[str, str]
    command: tuple[str, ...] = ()  # entrypoint override (Kubernetes `command`)
    args: tuple[str, ...] = ()  # Kubernetes `args`
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    mounts: tuple[Mount, ...] = ()
    memory_limit: int | None = None  # bytes
    cpu_quota_millis: int | None = None  # limits.cpu in millicores
    user: str = ""  # "uid" or "uid:gid"
    read_only_rootfs: bool = False
    privileged: bool = False
    stdin: bool = False
    tty: bool = False
    stop_signal: int = 15


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str  # the Kubernetes container name (from LABEL_CONTAINER_NAME)
    state: str  # "created" | "running" | "exited" | "unknown"
    labels: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: str = ""  # RFC 3339, "" when never started
    finished_at: str = ""
    image: str = ""
    image_id: str = ""
    error: str = ""  # runtime's message when it failed to start

    @property
    def spec_hash(self) -> str:
        return self.labels.get(LABEL_CONTAINER_HASH, "")

    @property
    def restart_count(self) -> int:
        return int(self.labels.get(LABEL_RESTART_COUNT, "0") or 0)


@dataclass(frozen=True)
class ObservedSandbox:
    id: str
    state: str  # "running" | "exited" | "created" | "unknown"
    ip: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageInfo:
    """One image in the runtime's storage (for image garbage collection)."""

    id: str  # hex, without "sha256:"
    names: tuple[str, ...]
    size: int  # bytes
    created: float  # unix seconds


@dataclass(frozen=True)
class ObservedPod:
    """Everything the runtime holds for one pod uid (possibly several generations of a
    container: the newest per name is current, older ones are its lastState)."""

    uid: str
    sandbox: ObservedSandbox | None = None
    containers: tuple[ObservedContainer, ...] = ()


@dataclass(frozen=True)
class ContainerEvent:
    """A runtime event the agent reacts to at once (a container died, was OOM-killed)."""

    container_id: str
    pod_uid: str
    action: str  # "died" | "start" | "oom" | "remove" | ...
