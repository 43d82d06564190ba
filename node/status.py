"""Registering this node's Node and keeping it fresh: the kubelet's node status and lease.

Three cadences, as in the kubelet since node leases:
- every `lease_renew` (default 2 s) the Lease kube-node-lease/NAME is renewed (cheap: Leases
  live in the master's memory; it is how the master learns within seconds that a Pi lost
  power), and every `heartbeat` (default 5 s) the node's usage is posted for metrics.k8s.io;
- the Node's status is patched only when something significant changed (a condition,
  capacity, an address, system info, the throttling state) or every `status_report`
  (default 60 s) - Nodes are stored on the master's SD card, so a write per heartbeat
  per node would wear it for nothing. The SoC temperature is refreshed with the periodic
  report only, for the same reason;
- registration (create, or adopt an existing Node) happens first and again if the Node
  is deleted under us.

Failures: each request is retried a bounded number of times with exponential backoff;
what still fails is logged and tried again at the next heartbeat, so an unreachable
master never makes a busy loop and never stops the reporter. A rejected credential
(401) is fatal: nothing will work until the node joins again, so `run()` raises and the
agent's supervisor stops the process with that reason.

Pure pieces (`node_labels`, `lease_spec`, `micro_time`, `significant`, `status_due`,
`backoff`) decide; `NodeStatusReporter` does the I/O.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from bramble.client import MERGE_PATCH, Client, ClientError
from bramble.kube.errors import (
    AlreadyExists,
    Conflict,
    InternalError,
    NotFound,
    ServiceUnavailable,
    StatusError,
    Unauthorized,
)

from . import host as hostmod

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
NODES = "/api/v1/nodes"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
KUBELET_PORT = 10250

Obj = dict[str, Any]
# Per-pod usage the agent provides each heartbeat:
# [{"namespace", "name", "containers": [{"name", "usage": {"cpu", "memory"}}]}]
PodUsage = Callable[[], Awaitable[list[Obj]]]
# "" when the container runtime is healthy, else why not (the Node goes NotReady).
RuntimeProblem = Callable[[], Awaitable[str]]

# Worth a retry: the master is away, busy, restarting, or we raced another writer.
TRANSIENT: tuple[type[Exception], ...] = (ClientError, ServiceUnavailable, InternalError,
                                          Conflict, OSError)


class Host(Protocol):
    """The host facts the reporter needs (node.host.LocalHost in production). The sync
    methods may block briefly; the reporter calls them in a thread."""

    def resources(self) -> hostmod.Resources: ...
    def facts(self, runtime_problem: str = "") -> hostmod.Facts: ...
    def node_info(self, runtime_version: str) -> dict[str, str]: ...
    def addresses(self, master_host: str | None) -> list[dict[str, str]]: ...
    def usage(self) -> hostmod.Usage: ...
    async def sensors(self) -> dict[str, str]: ...

    @property
    def thresholds(self) -> hostmod.Thresholds: ...


@dataclass(frozen=True)
class Intervals:
    heartbeat: float = 5.0
    # The Lease alone, more often: it costs the master only memory, and it is what tells
    # the master a Pi lost power (replacement pods start ~grace + eviction after that).
    lease_renew: float = 2.0
    status_report: float = 60.0
    lease_duration: int = 40  # seconds; the kubelet's default
    retries: int = 5  # attempts per request per heartbeat
    retry_initial: float = 0.2
    retry_max: float = 7.0


# --- pure pieces -------------------------------------------------------------------------

def node_labels(name: str, arch: str, os_name: str = "linux") -> dict[str, str]:
    """The well-known labels the kubelet sets (and a scheduler's nodeSelector uses)."""
    return {"kubernetes.io/arch": arch, "kubernetes.io/os": os_name,
            "kubernetes.io/hostname": name, "beta.kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": os_name}


def micro_time(now: datetime) -> str:
    """A MicroTime: RFC 3339 with exactly six fractional digits, UTC."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(name: str, now: datetime, duration: int) -> Obj:
    return {"holderIdentity": name, "leaseDurationSeconds": duration,
            "renewTime": micro_time(now)}


def significant(status: Mapping[str, Any], annotations: Mapping[str, str]) -> Any:
    """What must reach the master at once when it changes: the status without heartbeat
    times, and the annotations without the (always moving) temperature."""
    s = copy.deepcopy(dict(status))
    for c in s.get("conditions") or []:
        c.pop("lastHeartbeatTime", None)
    marks = {k: v for k, v in annotations.items() if k != hostmod.ANNOTATION_TEMPERATURE}
    return (s, marks)


def status_due(sent: Any, current: Any, last_report: float | None, now: float,
               every: float) -> bool:
    """Patch the status now? When it changed, or it was not reported for `every` s."""
    return last_report is None or sent != current or now - last_report >= every


def backoff(initial: float, cap: float, attempts: int) -> Iterator[float]:
    """The waits between `attempts` tries: initial, doubling, at most cap."""
    delay = initial
    for _ in range(max(0, attempts - 1)):
        yield min(delay, cap)
        delay *= 2


# --- the reporter ------------------------------------------------------------------------

class NodeStatusReporter:
    """Registers the Node, renews its Lease, patches its status, posts its usage."""

    def __init__(self, client: Client, name: str, host: Host, runtime_version: str, *,
                 intervals: Intervals | None = None,
                 kubelet_port: int = KUBELET_PORT, pod_usage: PodUsage | None = None,
                 runtime_problem: RuntimeProblem | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.name = name
        self.host = host
        self.runtime_version = runtime_version
        self.intervals = intervals or Intervals()
        self.kubelet_port = kubelet_port
        self.pod_usage = pod_usage
        self.runtime_problem = runtime_problem
        self._clock = clock
        self.registered = asyncio.Event()
        self._uid = ""
        self._conditions: list[Obj] = []  # as last sent (for lastTransitionTime)
        self._sent: Any = None
        self._sent_annotations: dict[str, str] = {}
        self._last_report: float | None = None
        self._lease: Obj | None = None
        self._renewed_at: float | None = None  # self._clock() of the last renewal
        self._master_host = urlsplit(client.server).hostname

    @property
    def node_path(self) -> str:
        return f"{NODES}/{self.name}"

    # -- one heartbeat --------------------------------------------------------------

    async def run(self) -> None:
        """Heartbeat until cancelled; raises Unauthorized if the credential is rejected."""
        separate = self.intervals.lease_renew < self.intervals.heartbeat
        lease = asyncio.create_task(self._renew_every(self.intervals.lease_renew),
                                    name="node-lease") if separate else None
        try:
            await self._every(self.intervals.heartbeat,
                              lambda: self.beat(renew_lease=not separate), lease)
        finally:
            if lease is not None:
                lease.cancel()
                await asyncio.gather(lease, return_exceptions=True)

    async def _every(self, every: float, step: Callable[[], Awaitable[None]],
                     partner: asyncio.Task[None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if partner is not None and partner.done():
                partner.result()  # the lease loop died (Unauthorized): so do we
            started = loop.time()
            await step()
            # Sleep at least a tenth of the period even after a slow step: never spin.
            await asyncio.sleep(max(every * 0.1, every - (loop.time() - started)))

    async def _renew_every(self, every: float) -> None:
        await self.registered.wait()
        await self._every(every, self._renew_step)

    async def _renew_step(self) -> None:
        renewed = await self._step("renew lease", self.renew_lease)
        now = self._clock()
        # A renewal that got through only after retries (a cable pulled for a few
        # seconds) is as good as a missed one: the master may have marked this node
        # Unknown meanwhile. Either way, report in full as soon as it listens again, not
        # up to a status period later.
        late = (self._renewed_at is not None
                and now - self._renewed_at > 2 * self.intervals.lease_renew)
        if not renewed or late:
            self._sent = None
        if renewed:
            self._renewed_at = now

    async def ensure_registered(self) -> None:
        """Register, retrying (capped back-off) until the master has the Node: the agent
        needs it before anything else (its podCIDR comes with it)."""
        delay = self.intervals.retry_initial
        while not self.registered.is_set():
            if not await self._step("register", self.register):
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.intervals.retry_max)

    async def beat(self, *, renew_lease: bool = True) -> None:
        """Register if needed, then renew the Lease (unless a faster lease loop does),
        report status if due, post usage. Each step fails on its own; only Unauthorized
        escapes."""
        if not self.registered.is_set():
            if not await self._step("register", self.register):
                return
        if renew_lease:
            await self._renew_step()
        await self._step("report status", self.report_status)
        await self._step("post usage", self.post_usage)

    async def _step(self, what: str, op: Callable[[], Awaitable[None]]) -> bool:
        try:
            await self._retrying(what, op)
            return True
        except Unauthorized:
            log.error("the master rejected this node's credential; join the node again",
                      extra={"node": self.name, "step": what})
            raise
        except (*TRANSIENT, StatusError) as err:
            log.warning("node heartbeat step failed", extra={"node": self.name, "step": what,
                                                             "error": str(err)})
            return False

    async def _retrying(self, what: str, op: Callable[[], Awaitable[None]]) -> None:
        i = self.intervals
        for delay in backoff(i.retry_initial, min(i.retry_max, i.heartbeat), i.retries):
            try:
                return await op()
            except TRANSIENT as err:
                log.info("retrying", extra={"node": self.name, "step": what,
                                            "error": str(err), "retry_in": delay})
                await asyncio.sleep(delay)
        await op()

    # -- registration ---------------------------------------------------------------

    async def _status(self, now: datetime) -> tuple[Obj, dict[str, str]]:
        problem = await self.runtime_problem() if self.runtime_problem else ""
        h = self.host
        res, facts, info, addrs = await asyncio.to_thread(
            lambda: (h.resources(), h.facts(problem), h.node_info(self.runtime_version),
                     h.addresses(self._master_host)))
        status = {
            "capacity": res.capacity,
            "allocatable": res.allocatable,
            "conditions": hostmod.conditions(facts, h.thresholds, now, self._conditions),
            "addresses": addrs,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": info,
        }
        return status, await h.sensors()

    async def register(self) -> None:
        """Create the Node, or adopt the existing one (keeping its condition history)."""
        now = datetime.now(UTC)
        status, annotations = await self._status(now)
        arch = status["nodeInfo"]["architecture"]
        labels = node_labels(self.name, arch)
        node: Obj = {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": self.name, "labels": labels,
                                  "annotations": annotations},
                     "spec": {},  # the podCIDR is the master's to give (nodeipam)
                     "status": status}
        try:
            created = await self.client.request("POST", NODES, json=node)
            self._adopt(created, status, annotations)
            log.info("node registered", extra={"node": self.name})
        except AlreadyExists:
            existing = await self.client.request("GET", self.node_path)
            self._conditions = (existing.get("status") or {}).get("conditions") or []
            patch: Obj = {"metadata": {"labels": labels, "annotations": annotations}}
            updated = await self.client.request("PATCH", self.node_path, json=patch,
                                                content_type=MERGE_PATCH)
            self._uid = updated["metadata"].get("uid", "")
            self._sent_annotations = dict(annotations)
            self._sent, self._last_report = None, None  # report the status at once
            log.info("node already registered; adopted it", extra={"node": self.name})
        self.registered.set()
        await self.report_status()

    def _adopt(self, node: Obj, status: Obj, annotations: dict[str, str]) -> None:
        self._uid = node["metadata"].get("uid", "")
        self._conditions = status["conditions"]
        self._sent = significant(status, annotations)
        self._sent_annotations = dict(annotations)
        self._last_report = self._clock()

    # -- status ---------------------------------------------------------------------

    async def report_status(self) -> None:
        """Patch status (and annotations) if something significant changed or the
        periodic report is due."""
        now = datetime.now(UTC)
        status, annotations = await self._status(now)
        current = significant(status, annotations)
        if not status_due(self._sent, current, self._last_report, self._clock(),
                          self.intervals.status_report):
            return
        try:
            await self.client.request("PATCH", f"{self.node_path}/status",
                                      json={"status": status}, content_type=MERGE_PATCH)
            if annotations != self._sent_annotations:
                await self.client.request(
                    "PATCH", self.node_path, content_type=MERGE_PATCH,
                    json={"metadata": {"annotations": annotations}})
        except NotFound:
            # Someone deleted our Node: register it again at the next heartbeat.
            log.warning("the Node is gone; registering again", extra={"node": self.name})
            self.registered.clear()
            self._lease = None
            return
        self._conditions = status["conditions"]
        self._sent = current
        self._sent_annotations = dict(annotations)
        self._last_report = self._clock()

    # -- lease ----------------------------------------------------------------------

    async def renew_lease(self) -> None:
        """Renew kube-node-lease/NAME, creating it when missing (Leases are in-memory on
        the master: after its restart they are gone and nodes create them again)."""
        now = datetime.now(UTC)
        spec = lease_spec(self.name, now, self.intervals.lease_duration)
        path = f"{LEASES}/{self.name}"
        if self._lease is None:
            try:
                self._lease = await self.client.request("GET", path)
            except NotFound:
                self._lease = await self.client.request("POST", LEASES, json=self._new_lease(spec))
                return
        lease = copy.deepcopy(self._lease)
        lease.setdefault("spec", {}).update(spec)
        try:
            self._lease = await self.client.request("PUT", path, json=lease)
        except (Conflict, NotFound):
            self._lease = None  # read it again (or create it) on the retry
            raise Conflict(f'lease "{self.name}" changed or vanished; reading it again') \
                from None

    def _new_lease(self, spec: Obj) -> Obj:
        meta: Obj = {"name": self.name, "namespace": LEASE_NAMESPACE}
        if self._uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node",
                                        "name": self.name, "uid": self._uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": spec}

    # -- usage ----------------------------------------------------------------------

    async def post_usage(self) -> None:
        usage = await asyncio.to_thread(self.host.usage)
        if usage.window <= 0:
            return  # the first sample only starts the measuring window
        pods = await self.pod_usage() if self.pod_usage else []
        await self.client.request("POST", f"/bramble/v1/nodes/{self.name}/usage", json={
            "timestamp": hostmod.rfc3339(usage.timestamp),
            "window": round(usage.window, 3),
            "interval": self.intervals.heartbeat,
            "usage": usage.as_quantities(),
            "pods": pods,
        })
