"""A multi-host test bed on one machine: "Raspberry Pis" that are network namespaces.

`netns_bed(base)`: a bridge in a namespace of its own (`bd<tag>-br`: the host's network is
never touched) and, per `add_host(NAME)`, a namespace `bd<tag>-NAME` with a veth on that
bridge (`eth0`, an address in a random 10.77.X.0/24, no default route and no multicast
route: only explicit interface choices make mDNS work, as on a Pi with Podman's bridge).
Processes run inside a host with `nsenter --net=/run/netns/NS` - never `ip netns exec`,
which remounts /sys so that runc (under Podman) finds no cgroups. Teardown stops every
process started through the bed, deletes every namespace (the veths and the bridge go
with them) and fails if one is left.

`running_bed(base)`: a bramble cluster on such a bed, as it runs on real Pis - the master in
the namespace `master` (`bramble master --bind ITS_ADDRESS`, mDNS on), node agents pi1..piN
in their own namespaces with nothing but a join token (no --master: they find it by mDNS;
no --pod-subnet: the master hands out podCIDRs, from a random 10.X.0.0/16 of the bed's own
rather than the default 10.42.0.0/16 - see `Bed.cluster_cidr`), each agent starting its own
Podman service and storage under its data dir, inside its namespace; and a namespace `lan`
with no bramble in it (a phone or laptop on the LAN). The test process stays in the host's namespace and
reaches the master's API through a `Forwarder`: a 127.0.0.1 listener whose connections are
relayed to a socket opened inside the master's namespace (the master's certificate covers
127.0.0.1). `BedCluster` is a tests/e2e/cluster_fixtures.Cluster (so its push, namespace
and wait helpers, the admin Client and the real kubectl all work here, through the
forwarder) plus the bed.

Teardown, every step even when one fails: agents stopped (SIGTERM), the master stopped (it
must exit 0), then every node's Podman purged through a service of our own started inside
the node's namespace (pods, containers, the network; then conmon, overlay mounts, cgroups
and files: tests/node/conftest.py `teardown_node`), the forwarder closed, the namespaces
deleted; an AssertionError names anything still left (processes naming the bed's folder,
mounts under it, namespaces).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bramble.client import Client
from bramble.kubeconfig import build as build_kubeconfig
from bramble.kubeconfig import load as load_kubeconfig
from bramble.kubeconfig import write as write_kubeconfig
from bramble.node import netns
from bramble.node.runtime import config as podman_config
from bramble.node.runtime.podman import PodmanRuntime, PodmanService
from tests.conftest import MasterHandle, wait_healthy
from tests.e2e.cluster_fixtures import (
    MASTER_FLAGS,
    AgentProcess,
    Cluster,
    MasterProcess,
    stop_processes,
)
from tests.e2e.test_rollout_kubectl import Kubectl
from tests.images import build_busybox_image
from tests.node.agent_fixtures import created_pod_ids, remove_cgroups
from tests.node.conftest import _mounts_under, _procs_mentioning, teardown_node

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0  # a guard against hangs, never a speed expectation
API_PORT = 6443


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


# --- the bed: namespaces on a bridge --------------------------------------------------------

@dataclass
class Proc:
    """A process started in a host of the bed; its JSON stdout lines land in `lines`
    (tests/e2e/test_discovery.py pumps them)."""

    popen: subprocess.Popen
    err_path: Path
    lines: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> list[dict[str, Any]]:
        return self.lines

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")


@dataclass
class Bed:
    """Namespaces on one bridge; `hosts[name]` is a host's address."""

    tag: str
    subnet: str  # the LAN's first three octets
    base: Path
    # The pod network of a cluster on this bed. Not the default 10.42.0.0/16: netavark
    # puts every pod's netns in the machine-wide /run/netns, and test teardowns on this
    # machine sweep those by subnet (tests/node/conftest.py force_cleanup) - two clusters
    # with the same pod subnets would take each other's pods' namespaces away.
    cluster_cidr: str = ""
    hosts: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    def ns(self, host: str) -> str:
        return f"bd{self.tag}-{host}"

    def netns(self, host: str) -> str:
        return f"/run/netns/{self.ns(host)}"

    def link(self, host: str) -> str:
        """The bridge side of the host's veth (in the bridge's namespace)."""
        return f"bd{self.tag}{list(self.hosts).index(host) + 1}"

    def add_host(self, host: str) -> str:
        index = len(self.hosts) + 1
        ns, veth = self.ns(host), f"bd{self.tag}{index}"
        address = f"{self.subnet}.{index}"
        sh("ip", "netns", "add", ns)
        self.hosts[host] = address
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", veth, "netns", self.ns("br"))
        sh("ip", "-n", self.ns("br"), "link", "set", veth, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return address

    def set_link(self, host: str, up: bool) -> None:
        """Plug the host's cable into the bridge, or pull it out."""
        sh("ip", "-n", self.ns("br"), "link", "set", self.link(host), "up" if up else "down")

    def command(self, host: str, *argv: str) -> list[str]:
        # nsenter keeps the host's mount namespace (and so /sys and its cgroups).
        return ["nsenter", f"--net={self.netns(host)}", *argv]

    def spawn(self, host: str, argv: list[str], log_path: Path) -> subprocess.Popen:
        """Start a long-running process in `host`'s namespace, logging to `log_path`."""
        with open(log_path, "ab") as log:  # the child keeps its own copy
            return subprocess.Popen(self.command(host, *argv), cwd=REPO,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def run(self, host: str, *argv: str) -> Proc:
        """Start a process in `host`'s namespace; its JSON stdout lines are collected."""
        err_path = self.base / f"{host}-{len(self.procs)}.log"
        with open(err_path, "wb") as err:  # the child keeps its own copy
            popen = subprocess.Popen(
                self.command(host, *argv), cwd=REPO, stdout=subprocess.PIPE, stderr=err,
                text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        proc = Proc(popen, err_path)
        self.procs.append(proc)
        return proc

    def helper(self, host: str, *args: str) -> Proc:
        return self.run(host, sys.executable, "-m", "tests.e2e.mdns_helper", *args)

    def bramble(self, host: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(host, sys.executable, "-m", "bramble", *args),
                              cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)


@contextlib.contextmanager
def netns_bed(base: Path) -> Iterator[Bed]:
    tag = secrets.token_hex(3)
    bed = Bed(tag, f"10.77.{secrets.randbelow(150) + 100}", base,
              cluster_cidr=f"10.{secrets.randbelow(90) + 100}.0.0/16")
    try:
        sh("ip", "netns", "add", bed.ns("br"))
        sh("ip", "-n", bed.ns("br"), "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", bed.ns("br"), "link", "set", "br0", "up")
        yield bed
    finally:
        for proc in bed.procs:
            stop(proc)
        for host in [*bed.hosts, "br"]:
            subprocess.run(["ip", "netns", "del", bed.ns(host)], capture_output=True)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"bd{tag}-" not in left, f"namespaces left behind: {left}"


def stop(proc: Proc) -> None:
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(15)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()
    if proc.popen.stdout is not None:
        proc.popen.stdout.close()


# --- reaching into a namespace from the test process ------------------------------------------

class Forwarder:
    """127.0.0.1:`port` here, relayed to `host`:`target_port` as seen from inside `netns`:
    each accepted connection opens its peer inside the namespace (node/netns.py) and the
    bytes are copied both ways, half-closes included. `close()` ends every relay."""

    def __init__(self, netns_path: str, host: str, target_port: int) -> None:
        self.netns_path = netns_path
        self.host = host
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            try:
                peer_reader, peer_writer = await netns.open_connection(
                    self.netns_path, self.target_port, host=self.host)
            except OSError:
                return  # the master is not listening (yet, or any more): a refused connect
            try:
                await asyncio.gather(_copy(reader, peer_writer), _copy(peer_reader, writer))
            finally:
                peer_writer.close()
        finally:
            writer.close()
            self._relays.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()  # the other side went: end this direction too


async def connect_from(netns_path: str, host: str, port: int, send: bytes,
                       *, timeout: float = 10.0) -> bytes:  # noqa: ASYNC109 - a bound
    """Send `send` to host:port from inside `netns_path`, half-close, and return the
    answer up to EOF (a client on the LAN, or in a pod's namespace)."""
    reader, writer = await netns.open_connection(netns_path, port, host=host, timeout=timeout)
    try:
        writer.write(send)
        await writer.drain()
        writer.write_eof()
        async with asyncio.timeout(timeout):
            return await reader.read()
    finally:
        writer.close()


# --- a cluster on the bed ---------------------------------------------------------------------

@dataclass
class NetnsMaster(MasterProcess):
    """`bramble master` in the bed's `master` namespace on its LAN address, reached through
    the forwarder (`url`); mDNS on. Restartable on the same data dir."""

    bed: Bed | None = None
    forwarder: Forwarder | None = None
    cluster_cidr: str = ""

    @property
    def url(self) -> str:
        assert self.forwarder is not None
        return f"https://127.0.0.1:{self.forwarder.port}"

    async def start(self) -> MasterHandle:
        assert self.bed is not None and self.forwarder is not None
        assert self.proc is None or self.proc.poll() is not None, "the master runs already"
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        tuning = [f"--{MASTER_FLAGS[name]}={value}" for name, value in self.controllers.items()]
        self.proc = self.bed.spawn("master", [
            sys.executable, "-m", "bramble", "master", "--data-dir", str(self.data_dir),
            "--bind", self.bed.hosts["master"], "--port", str(API_PORT),
            *(["--cluster-cidr", self.cluster_cidr] if self.cluster_cidr else []), *tuning],
            self.data_dir.parent / "master.log")
        await asyncio.to_thread(wait_healthy, self.url, self.proc, TIMEOUT)
        # The admin's credential with the forwarder as the server (127.0.0.1 is in the
        # master's certificate, so TLS is verified as usual).
        admin = load_kubeconfig(self.data_dir / "admin.kubeconfig")
        assert admin.ca_data is not None and admin.token is not None
        path = self.data_dir.parent / "admin.kubeconfig"
        write_kubeconfig(path, build_kubeconfig(self.url, admin.ca_data, admin.token))
        ca_file = self.data_dir.parent / "ca.pem"
        ca_file.write_bytes(admin.ca_data)
        return MasterHandle(url=self.url, data_dir=self.data_dir, kubeconfig=path,
                            token=admin.token, ca_file=ca_file, process=self.proc)


@dataclass
class NetnsAgent(AgentProcess):
    """`bramble node` in its own namespace with nothing but the join token: no --master,
    no --pod-subnet; its own Podman service (started by the agent, so inside the
    namespace) and storage under its data dir. `subnet` is learnt once it runs."""

    bed: Bed | None = None
    host: str = ""
    _service: PodmanService | None = field(default=None, repr=False)
    _runtime: PodmanRuntime | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        assert self.bed is not None
        return self.bed.hosts[self.host]

    @property
    def netns(self) -> str:
        assert self.bed is not None
        return self.bed.netns(self.host)

    def start(self, master: str, token: str) -> None:  # master: found on the LAN instead
        assert self.bed is not None
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} runs already"
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.proc = self.bed.spawn(self.host, [
            sys.executable, "-m", "bramble", "node", "--data-dir", str(self.data_dir),
            "--name", self.name, "--network", self.network, "--token", token],
            self.data_dir.parent / f"{self.name}.log")

    async def learn_subnet(self) -> str:
        """The subnet of the node's Podman network, as the agent made it (for the
        teardown's checks and the runtime clients of tests)."""
        socket_path = podman_config.podman_paths(self.data_dir / "podman").socket
        async with aiohttp.UnixConnector(path=str(socket_path)) as conn, \
                aiohttp.ClientSession(connector=conn) as session, \
                session.get(f"http://d/v4.0.0/libpod/networks/{self.network}/json") as r:
            r.raise_for_status()
            self.subnet = (await r.json())["subnets"][0]["subnet"]
        return self.subnet

    async def release(self) -> list[str]:
        """Stop the agent and empty the node's Podman (pods, containers, network) through
        a service of our own in its namespace - netavark tears pod networking down there.
        The service stays up for `clean()`. Returns the problems met."""
        problems = await self.stop_checked()
        self._service = PodmanService(self.data_dir / "podman",
                                      command_prefix=("nsenter", f"--net={self.netns}"))
        self._runtime = PodmanRuntime(self._service.socket_path, self.network, self.subnet,
                                      oom_flag_dir=self._service.oom_flag_dir)
        try:
            await self._service.start()
            await self._runtime.purge()
        except Exception as err:  # reported; the forced cleanup of clean() still runs
            problems.append(f"cannot empty the Podman of {self.name}: {err!r}")
        return problems

    async def clean(self) -> list[str]:
        """After `release()`: stop the service, remove what Podman left (conmon, mounts,
        cgroups, files); returns what is still left."""
        assert self._service is not None and self._runtime is not None
        pod_ids = await asyncio.to_thread(created_pod_ids, self.data_dir / "podman")
        problems = await teardown_node(self._service, self._runtime, self.data_dir, "")
        problems += [f"cgroup {d}" for d in await asyncio.to_thread(remove_cgroups, pod_ids)]
        return problems


@dataclass
class BedCluster(Cluster):
    """cluster_fixtures.Cluster on the bed: `master` is a NetnsMaster, `nodes` NetnsAgents."""

    bed: Bed | None = None

    @property
    def agents(self) -> dict[str, NetnsAgent]:
        return {n.name: n for n in self.nodes}  # type: ignore[misc]

    def node_kubeconfig(self, name: str) -> Path:
        """A node's own credential (from its data dir), pointed at the forwarder."""
        node = self.agents[name]
        cfg = load_kubeconfig(node.data_dir / "node.kubeconfig")
        assert cfg.ca_data is not None and cfg.token is not None
        path = self.base / f"{name}.kubeconfig"
        write_kubeconfig(path, build_kubeconfig(self.master.url, cfg.ca_data, cfg.token))
        return path

    def node_client(self, name: str) -> Client:
        return Client.from_kubeconfig(str(self.node_kubeconfig(name)))


async def _join_and_push(cluster: BedCluster) -> None:
    images = cluster.base / "images"
    archive = await asyncio.to_thread(build_busybox_image, images)
    for node in cluster.nodes:
        node.start(cluster.master.url, cluster.token)
    await cluster.wait_nodes_ready(n.name for n in cluster.nodes)
    for node in cluster.agents.values():
        await node.learn_subnet()
    await asyncio.gather(*(cluster.push(archive, n.name) for n in cluster.nodes))


@contextlib.asynccontextmanager
async def running_bed(base: Path, nodes: int = 3, *,
                      controllers: Mapping[str, Any] | None = None,
                      ) -> AsyncIterator[BedCluster]:
    """The master, `nodes` agents (pi1..) and the `lan` namespace on a fresh bed under
    `base` (keep it short: the Podman socket path has a size limit); torn down and checked
    on exit. `controllers`: ControllerSettings fields with a `bramble master` flag."""
    problems: list[str] = []
    with netns_bed(base) as bed:
        bed.add_host("master")
        agents = []
        for i in range(1, nodes + 1):
            bed.add_host(f"pi{i}")
            agents.append(NetnsAgent(f"pi{i}", base / f"n{i}", f"bl-{bed.tag}-{i}", "",
                                     bed=bed, host=f"pi{i}"))
        bed.add_host("lan")
        forwarder = Forwarder(bed.netns("master"), bed.hosts["master"], API_PORT)
        await forwarder.start()
        master = NetnsMaster(base / "master", controllers=controllers or {}, bed=bed,
                             forwarder=forwarder, cluster_cidr=bed.cluster_cidr)
        try:
            handle = await master.start()
            async with Client.from_kubeconfig(str(handle.kubeconfig)) as api:
                cluster = BedCluster(master, handle, api, list(agents),
                                     Kubectl(handle, base / "kubectl-cache"), base, bed=bed)
                await _join_and_push(cluster)
                yield cluster
        finally:
            problems += await stop_processes(master, agents)
            # Every node emptied before any is cleaned: a cleanup must not take away
            # what another node's Podman still has to tear down.
            for agent in agents:
                problems += await agent.release()
            for agent in agents:
                problems += await agent.clean()
            await forwarder.close()
    # The namespaces are gone (netns_bed checked); nothing may run or be mounted under base.
    problems += [f"process {pid}: {cmd}"
                 for pid, cmd in _procs_mentioning(f"{base}/").items()]
    problems += [f"mount {m}" for m in _mounts_under(str(base))]
    if not problems:
        shutil.rmtree(base, ignore_errors=True)
    assert not problems, f"the bed left things behind (logs in {base}): {problems}"
