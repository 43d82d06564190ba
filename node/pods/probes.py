"""Liveness, readiness and startup probes: when each is due, what a result changes, what to check.

Role: the kubelet's prober worker (pkg/kubelet/prober/worker.go) without its timer and without
the I/O. The agent asks `ContainerProbes.due(now)`, runs each due probe against
`probe_target(...)` (an HTTP GET, a TCP connect, an exec, a gRPC health check - a timeout is
a failure), and feeds the result back with `record(kind, result, now)`, which says what
changed: "restart" (liveness or startup failed failureThreshold times in a row), "ready" /
"unready" (readiness flipped), "started" (the startup probe passed).

Invariants, as in the kubelet:
- One ContainerProbes per container *generation* (container id): a restarted container
  starts over (not started, not ready, liveness presumed healthy).
- Until the startup probe has passed, liveness and readiness are not run; once it has
  passed, the startup probe is not run again.
- Readiness starts as failure, liveness as success, startup as unknown.
- After a liveness/startup failure the probe holds (no more probing) until the container
  is replaced.
- Pure: no clock reads, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bramble import KUBE_MAJOR, KUBE_MINOR
from bramble.node.pods import Obj, generations, parse_time
from bramble.node.runtime.types import ObservedPod

LIVENESS = "liveness"
READINESS = "readiness"
STARTUP = "startup"
FIELDS = {LIVENESS: "livenessProbe", READINESS: "readinessProbe", STARTUP: "startupProbe"}

SUCCESS = "success"
FAILURE = "failure"

# What a recorded result changed.
RESTART = "restart"
READY = "ready"
UNREADY = "unready"
STARTED = "started"

_INITIAL = {LIVENESS: SUCCESS, READINESS: FAILURE, STARTUP: None}
USER_AGENT = f"kube-probe/{KUBE_MAJOR}.{KUBE_MINOR}"


class ProbeError(Exception):
    """The probe cannot be run as written (e.g. a named port the container does not have).
    As in the kubelet, such a run has no result: do not record anything."""


@dataclass(frozen=True)
class ProbeSpec:
    kind: str
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period: int | None = None

    @classmethod
    def from_api(cls, kind: str, probe: Obj) -> ProbeSpec:
        """From a container's probe; unset or zero fields take the API defaults."""
        return cls(kind=kind,
                   initial_delay=probe.get("initialDelaySeconds") or 0,
                   period=probe.get("periodSeconds") or 10,
                   timeout=probe.get("timeoutSeconds") or 1,
                   success_threshold=probe.get("successThreshold") or 1,
                   failure_threshold=probe.get("failureThreshold") or 3,
                   termination_grace_period=probe.get("terminationGracePeriodSeconds"))


class ProbeState:
    """One probe of one container generation."""

    def __init__(self, spec: ProbeSpec, *, started_at: float) -> None:
        self.spec = spec
        self.started_at = started_at
        self.result: str | None = _INITIAL[spec.kind]  # the result in force
        self.last_result: str | None = None  # of the latest run
        self.run = 0  # how many runs in a row gave last_result
        self.on_hold = False
        self.last_probe_at: float | None = None

    def next_due(self) -> float | None:
        """When the next run is due; None while on hold."""
        if self.on_hold:
            return None
        if self.last_probe_at is None:
            return self.started_at + self.spec.initial_delay
        return self.last_probe_at + self.spec.period

    def due(self, now: float) -> bool:
        when = self.next_due()
        return when is not None and now >= when

    def record(self, result: str, now: float) -> str | None:
        """Take one run's result (SUCCESS or FAILURE); returns the transition, if any."""
        if result not in (SUCCESS, FAILURE):
            raise ValueError(f"probe result must be {SUCCESS!r} or {FAILURE!r}, not {result!r}")
        self.last_probe_at = now
        if self.on_hold:
            return None
        if result == self.last_result:
            self.run += 1
        else:
            self.last_result, self.run = result, 1
        threshold = (self.spec.failure_threshold if result == FAILURE
                     else self.spec.success_threshold)
        if self.run < threshold:
            return None  # below threshold: the result in force stands
        previous, self.result = self.result, result
        if self.spec.kind in (LIVENESS, STARTUP) and result == FAILURE:
            self.on_hold, self.run = True, 0
            return RESTART
        if previous == result:
            return None
        if self.spec.kind == READINESS:
            return READY if result == SUCCESS else UNREADY
        if self.spec.kind == STARTUP:
            return STARTED
        return None


class ContainerProbes:
    """The probes of one container generation, with startup gating the other two."""

    def __init__(self, container: Obj, *, container_id: str, started_at: float) -> None:
        self.name: str = container.get("name", "")
        self.container_id = container_id
        self.started_at = started_at
        self.probes: dict[str, ProbeState] = {
            kind: ProbeState(ProbeSpec.from_api(kind, container[field]), started_at=started_at)
            for kind, field in FIELDS.items() if container.get(field)}

    @property
    def started(self) -> bool:
        """No startup probe, or it has passed (status containerStatuses[].started)."""
        startup = self.probes.get(STARTUP)
        return startup is None or startup.result == SUCCESS

    @property
    def ready(self) -> bool:
        """Started, and no readiness probe or it passes (the caller adds "is running")."""
        readiness = self.probes.get(READINESS)
        return self.started and (readiness is None or readiness.result == SUCCESS)

    @property
    def failed(self) -> str | None:
        """LIVENESS or STARTUP when that probe failed: the container must be killed."""
        for kind in (LIVENESS, STARTUP):
            state = self.probes.get(kind)
            if state is not None and state.result == FAILURE:
                return kind
        return None

    def _active(self) -> list[str]:
        kinds = [LIVENESS, READINESS] if self.started else [STARTUP]
        return [k for k in kinds if k in self.probes]

    def due(self, now: float) -> list[str]:
        """The kinds to run now."""
        return [k for k in self._active() if self.probes[k].due(now)]

    def next_due(self) -> float | None:
        """The earliest time any probe is due (for the agent's timer); None: nothing to run."""
        times = [t for k in self._active() if (t := self.probes[k].next_due()) is not None]
        return min(times, default=None)

    def record(self, kind: str, result: str, now: float) -> str | None:
        return self.probes[kind].record(result, now)


def sync_probes(pod: Obj, observed: ObservedPod, previous: Mapping[str, ContainerProbes], *,
                now: float) -> dict[str, ContainerProbes]:
    """Probe states for the pod's running app containers that have probes: the previous one
    while the container id is the same, a fresh one for a new container. Containers that
    are not running get none (they are neither started nor ready)."""
    gens = generations(observed.containers)
    result: dict[str, ContainerProbes] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        name = container.get("name", "")
        if not any(container.get(f) for f in FIELDS.values()) or name not in gens:
            continue
        current = gens[name][0]
        if current.state != "running":
            continue
        kept = previous.get(name)
        if kept is not None and kept.container_id == current.id:
            result[name] = kept
        else:
            started = parse_time(current.started_at)
            result[name] = ContainerProbes(container, container_id=current.id,
                                           started_at=now if started is None else started)
    return result


# --- what a probe checks -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeTarget:
    """One probe run, fully resolved. `kind`: "http", "tcp", "exec" or "grpc"."""

    kind: str
    timeout: float
    scheme: str = ""  # http: "http" | "https"
    host: str = ""
    port: int = 0
    path: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    service: str = ""  # grpc health service name

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if _is_ipv6(self.host) else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def probe_target(probe: Obj, pod_ip: str, *, container: Obj | None = None) -> ProbeTarget:
    """What to check for `probe` (a container's livenessProbe/readinessProbe/startupProbe).

    An httpGet or tcpSocket without host checks the pod's IP; a named port is looked up in
    `container`'s ports. httpGet gets the kubelet's User-Agent and Accept headers unless the
    probe sets its own (an empty Accept removes it). Raises ProbeError when unresolvable.
    """
    timeout = float(probe.get("timeoutSeconds") or 1)
    if probe.get("exec") is not None:
        return ProbeTarget("exec", timeout,
                           command=tuple(str(c) for c in probe["exec"].get("command") or []))
    if probe.get("httpGet") is not None:
        http = probe["httpGet"]
        path = http.get("path") or "/"
        if not path.startswith("/"):
            path = "/" + path
        return ProbeTarget("http", timeout,
                           scheme=str(http.get("scheme") or "HTTP").lower(),
                           host=http.get("host") or pod_ip,
                           port=resolve_port(http.get("port"), container),
                           path=path,
                           headers=_headers(http.get("httpHeaders") or []))
    if probe.get("tcpSocket") is not None:
        tcp = probe["tcpSocket"]
        return ProbeTarget("tcp", timeout, host=tcp.get("host") or pod_ip,
                           port=resolve_port(tcp.get("port"), container))
    if probe.get("grpc") is not None:
        grpc = probe["grpc"]
        return ProbeTarget("grpc", timeout, host=pod_ip,
                           port=resolve_port(grpc.get("port"), container),
                           service=grpc.get("service") or "")
    raise ProbeError("missing probe handler")


def resolve_port(port: Any, container: Obj | None) -> int:
    """A port number, or a port name from the container's ports (ResolveContainerPort)."""
    if isinstance(port, str):
        number = next((p.get("containerPort") for p in (container or {}).get("ports") or []
                       if p.get("name") == port), None)
        if number is None:
            if not port.isdigit():
                raise ProbeError(f"port {port} not found")
            number = int(port)
        port = number
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ProbeError(f"invalid port number: {port}")
    return port


def _canonical(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _headers(items: list[Obj]) -> tuple[tuple[str, str], ...]:
    headers = [(_canonical(h.get("name", "")), str(h.get("value", ""))) for h in items]
    names = {n for n, _ in headers}
    if "User-Agent" not in names:
        headers.append(("User-Agent", USER_AGENT))
    if "Accept" not in names:
        headers.append(("Accept", "*/*"))
    elif not any(v for n, v in headers if n == "Accept"):
        headers = [(n, v) for n, v in headers if n != "Accept"]
    return tuple(headers)


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False
