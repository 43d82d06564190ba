"""`bramble node`: the node agent (the kubelet of a Pi), its startup, supervision and stop.

Startup: data dir -> join (or reuse this node's kubeconfig) -> Podman (our own service
under the data dir, or an existing socket) -> the Node registered (NotReady: "pod network
not ready") -> its podCIDR from the master, the Podman network made with it -> Ready ->
cluster DNS on the pod gateway -> pods: list and watch the pods bound here, adopt what
already runs, remove what the API no longer has. Root tasks (named; if one dies the
agent stops and systemd restarts it): the status reporter, the pod source, the runtime
event stream, the shutdown trigger, the node server (node/server.py: registers with the
master, which streams logs/exec through it), the Node/Service/Endpoints informers, the
pod routes (node/podnet.py) and the service proxy and DNS fed by the informers.

Stopping leaves the pods running: a restarted agent adopts them (their containers carry
bramble's labels), so a Pi's agent upgrade or crash does not restart its workloads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import time
from collections import defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bramble import doctor
from bramble.client import Client
from bramble.daemon import run_until_signal
from bramble.kube.quantity import format_quantity

from . import host as hostmod
from . import imagegc, join, podnet
from .events import EventRecorder
from .netsetup import NetworkOptions, NodeNetwork, start_network
from .podsource import PodSource
from .runtime.podman import (
    ContainerRuntimeError,
    NetworkInUseError,
    PodmanRuntime,
    PodmanService,
)
from .runtime.types import (
    LABEL_CONTAINER_NAME,
    LABEL_MANAGED,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
)
from .server import DEFAULT_PORT, NodeServer
from .status import Intervals, NodeStatusReporter
from .sync import PodSyncer
from .volumes import PodVolumes
from .workers import PodWorkers

log = logging.getLogger(__name__)


@dataclass
class NodeConfig:
    data_dir: Path
    master: str  # https://host:port; "" finds the master on the LAN (mDNS)
    token: str = ""  # the cluster's join token (needed only for the first start)
    cluster: str = ""  # without --master: join only the cluster with this id
    lan: bool = True  # advertise the node on the LAN (and find the master there)
    name: str = ""  # default: the hostname
    podman_socket: Path | None = None  # attach to this service instead of starting ours
    network: str = "bramble"
    # The pod subnet; "" (the default): the spec.podCIDR the master assigns this Node
    # (a /24 of 10.42.0.0/16). A fixed one is for nodes outside the flat network (tests
    # of several agents on one host).
    subnet: str = ""
    # host-gw: routes to the other nodes' podCIDRs and NAT exceptions (node/podnet.py).
    pod_routes: bool = True
    # The userspace service proxy: ClusterIPs made local on this host, NodePorts bound.
    service_proxy: bool = True
    # Cluster DNS for pods, served at the pod gateway (the first address of the subnet).
    cluster_dns: bool = True
    cluster_domain: str = "cluster.local"
    resolv_conf: Path = Path("/etc/resolv.conf")  # the upstreams of the cluster DNS
    max_pods: int = 110
    reserved_cpu_m: int = 100
    reserved_memory: int = 128 * 1024 * 1024
    allow_privileged: bool = False
    heartbeat_seconds: float = 5.0
    # Run Podman inside something, e.g. ("nsenter", "--net=/run/netns/pi1") in tests
    # where each "Pi" is a network namespace.
    podman_prefix: tuple[str, ...] = ()
    # The node server (node/server.py) the master streams `kubectl logs/exec` through.
    server_bind: str = "0.0.0.0"
    server_port: int = DEFAULT_PORT  # 0: any free port (tests)
    # Unused images go when the disk holding the agent's Podman storage fills (only in
    # storage the agent owns: never with podman_socket).
    image_gc: imagegc.Policy = field(default_factory=imagegc.Policy)

    @property
    def node_name(self) -> str:
        return self.name or socket.gethostname().lower()


@dataclass
class RunningNode:
    name: str
    runtime: PodmanRuntime
    client: Client
    workers: PodWorkers
    source: PodSource
    reporter: NodeStatusReporter
    events: EventRecorder
    server: NodeServer
    owns_storage: bool
    net: NodeNetwork


async def _pod_usage(runtime: PodmanRuntime, previous: dict[str, tuple[float, int]]
                     ) -> list[dict[str, Any]]:
    """Per-pod, per-container cpu (nanocores over the last interval) and memory."""
    stats = await runtime.stats()
    observed = await runtime.observe({LABEL_MANAGED: "true"})
    now = time.monotonic()
    pods: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for pod in observed.values():
        for c in pod.containers:
            if c.id not in stats or c.state != "running":
                continue
            cpu_ns, mem = stats[c.id]
            before = previous.get(c.id)
            previous[c.id] = (now, cpu_ns)
            nanocores = 0
            if before is not None and now > before[0]:
                nanocores = int(max(cpu_ns - before[1], 0) / (now - before[0]))
            key = (c.labels.get(LABEL_POD_NAMESPACE, ""), c.labels.get(LABEL_POD_NAME, ""))
            pods[key].append({"name": c.labels.get(LABEL_CONTAINER_NAME, c.name), "usage": {
                "cpu": f"{nanocores}n", "memory": format_quantity(mem, "BinarySI")}})
    return [{"namespace": ns, "name": name, "containers": containers}
            for (ns, name), containers in pods.items() if ns and name]


def _raise_nofile() -> None:
    """The soft descriptor limit up to the hard one: a proxied connection holds two
    sockets (and two pipes with splice), and 1024 would cap the proxy near 250."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def start(config: NodeConfig, stack: AsyncExitStack) -> RunningNode:
    _raise_nofile()
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    name = config.node_name
    # Preflight (bramble/doctor.py): what breaks Pi clusters, as warnings, never fatal.
    doctor.log_problems(doctor.run_checks(await asyncio.to_thread(
        doctor.gather, data_dir, podman=False)), log)
    kubeconfig = await join.connect(config.master, config.token, name, data_dir, stack,
                                    cluster=config.cluster, port=config.server_port,
                                    lan=config.lan)
    client = await stack.enter_async_context(Client.from_kubeconfig(kubeconfig))

    service = PodmanService(None if config.podman_socket else data_dir / "podman",
                            socket_path=config.podman_socket,
                            command_prefix=config.podman_prefix)
    await service.start()
    # Stopping the service does not stop containers (conmon keeps them): pods survive.
    stack.push_async_callback(service.close)
    runtime = PodmanRuntime(service.socket_path, config.network, config.subnet,
                            oom_flag_dir=service.oom_flag_dir)
    stack.push_async_callback(runtime.close)
    version = await runtime.version()

    host = hostmod.LocalHost(data_dir, reserved_cpu_m=config.reserved_cpu_m,
                             reserved_memory=config.reserved_memory, max_pods=config.max_pods)
    usage_state: dict[str, tuple[float, int]] = {}
    network_problem = ["pod network not ready: waiting for this node's pod subnet"]

    async def runtime_problem() -> str:
        return network_problem[0]

    reporter = NodeStatusReporter(
        client, name, host, f"podman://{version}",
        intervals=Intervals(heartbeat=config.heartbeat_seconds),
        pod_usage=lambda: _pod_usage(runtime, usage_state), runtime_problem=runtime_problem)
    # The Node first (NotReady: nothing is scheduled here yet), then its podCIDR.
    await reporter.ensure_registered()
    pod_cidr = config.subnet or await podnet.wait_pod_cidr(client, name)
    try:
        await runtime.ensure_network(pod_cidr)
    except NetworkInUseError:
        # A podCIDR never changes for one Node object: this node was removed from the
        # cluster (its pods with it) and joined again. What still runs here belongs to
        # the old membership and holds the old subnet.
        log.warning("this node's pod subnet changed; removing the pods of its earlier "
                    "membership", extra={"subnet": pod_cidr})
        for pod in (await runtime.observe({LABEL_MANAGED: "true"})).values():
            if pod.sandbox is not None:
                await runtime.remove_sandbox(pod.sandbox.id)
            for container in pod.containers:
                await runtime.remove_container(container.id)
        await runtime.ensure_network(pod_cidr)
    network_problem[0] = ""
    await reporter.report_status()  # Ready now, not a heartbeat later
    log.info("pod network ready", extra={"network": config.network, "subnet": pod_cidr})

    master_host = client.server.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    host_ip = hostmod.source_address(master_host) or "127.0.0.1"
    net = await start_network(client, name, pod_cidr, host_ip, stack, NetworkOptions(
        pod_routes=config.pod_routes and not config.subnet,
        service_proxy=config.service_proxy, cluster_dns=config.cluster_dns,
        cluster_domain=config.cluster_domain, resolv_conf=config.resolv_conf))
    events = EventRecorder(client, name)
    syncer = PodSyncer(runtime, client, PodVolumes(data_dir / "pods"), node_name=name,
                       host_ip=host_ip, allow_privileged=config.allow_privileged,
                       events=events, services=net.services.values,
                       cluster_dns=net.dns_servers, cluster_domain=config.cluster_domain,
                       host_search=net.host_search)
    stack.push_async_callback(syncer.close)
    workers = PodWorkers(syncer.sync)
    stack.push_async_callback(workers.stop)
    def on_pod(uid: str, pod: dict[str, Any] | None) -> None:
        syncer.hurry(uid, pod)  # a force delete cuts a running grace period short
        workers.update(uid, pod)

    source = PodSource(client, name, on_pod)
    # --- node server (node/server.py): serve now, register with the master in serve() ---
    server = NodeServer(runtime, data_dir / "server", name, bind=config.server_bind,
                        port=config.server_port, advertise=host_ip)
    await server.start()
    stack.push_async_callback(server.close)  # unwound first: stop serving, then the rest
    # --- end node server ---
    return RunningNode(name, runtime, client, workers, source, reporter, events, server,
                       owns_storage=service.owned, net=net)


async def _runtime_events(node: RunningNode) -> None:
    """React to container exits at once (Podman's events), not at the next resync."""
    while True:
        async for event in node.runtime.events():
            if event.pod_uid:
                node.workers.poke(event.pod_uid)
        await asyncio.sleep(1)  # the stream ended (service restarted): follow it again


async def _pods_after_services(node: RunningNode) -> None:
    """Pods start once the Services are known, so that their containers get the service
    variables of everything that exists (the kubelet waits for its service informer too)."""
    await node.net.services.synced.wait()
    await node.source.run()


async def _adopt_and_collect(node: RunningNode) -> None:
    """After the first list: pods still in the API are adopted by their workers (which
    find their running containers); pods the API no longer has - deleted while this agent
    was down - are stopped and removed."""
    await node.source.synced.wait()
    delay = 1.0
    while True:
        try:
            observed = await node.runtime.observe({LABEL_MANAGED: "true"})
            break
        except ContainerRuntimeError as err:
            # Podman can fail a whole listing for one broken container (e.g. its netns
            # file gone): keep running the pods that work and look again, rather than
            # stopping the agent - a restart would meet the same listing.
            log.error("cannot list this node's containers; trying again",
                      extra={"error": str(err), "retry_in": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
    for uid in observed:
        if uid not in node.source.pods:
            log.info("removing a pod deleted while the agent was away",
                     extra={"pod_uid": uid})
            node.workers.update(uid, None)
    # Stay running until cancelled: a root task that returns would stop the agent.
    await asyncio.Event().wait()


async def serve(config: NodeConfig, shutdown: asyncio.Event | None = None,
                started: asyncio.Future[RunningNode] | None = None) -> None:
    shutdown = shutdown or asyncio.Event()
    async with AsyncExitStack() as stack:
        # Joining may wait for a person's approval or for a master to appear on the LAN:
        # a stop request must end that wait too.
        starting = asyncio.create_task(start(config, stack), name="agent-start")
        stopping = asyncio.create_task(shutdown.wait(), name="shutdown-while-starting")
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, stopping, return_exceptions=True)
            log.info("node agent stopped before it started")
            return
        await asyncio.gather(stopping, return_exceptions=True)
        node = starting.result()
        if started is not None and not started.done():
            started.set_result(node)
        roots = {
            asyncio.create_task(shutdown.wait(), name="shutdown-trigger"),
            asyncio.create_task(node.reporter.run(), name="node-status"),
            asyncio.create_task(_pods_after_services(node), name="pod-source"),
            asyncio.create_task(_runtime_events(node), name="runtime-events"),
            asyncio.create_task(_adopt_and_collect(node), name="adopt-and-collect"),
            asyncio.create_task(node.events.run(), name="event-recorder"),
            asyncio.create_task(node.server.run(node.client), name="node-server"),
        }
        roots |= {asyncio.create_task(coro, name=task_name)
                  for task_name, coro in node.net.tasks().items()}
        if node.owns_storage:
            roots.add(asyncio.create_task(imagegc.run(
                node.runtime, config.data_dir, config.image_gc, time.time), name="image-gc"))
        log.info("node agent ready", extra={"node": node.name, "master": node.client.server})
        done, pending = await asyncio.wait(roots, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.get_name() != "shutdown-trigger" and task.exception() is not None:
                log.critical("a root task failed; stopping", extra={"task": task.get_name()})
                raise task.exception()  # type: ignore[misc]
        log.info("node agent stopping (pods keep running)")


def run(config: NodeConfig) -> int:
    """Blocking entry point for `bramble node`: serve until SIGTERM or SIGINT."""
    run_until_signal(lambda shutdown, started: serve(config, shutdown, started))
    return 0
