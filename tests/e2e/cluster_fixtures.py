"""A real bramble cluster made of processes, for end-to-end tests and benchmarks of the
scheduler and controllers on real node agents and real Podman.

`running_cluster(base)`: `bramble master` as a process (fresh data dir, a free loopback
port, fsync on, the default ControllerSettings) and two `bramble node` agents as processes,
each with its own data dir (its own Podman service and storage), Podman network, /24 and
node port, joined with the cluster's join token; the busybox test images reach every node
through `bramble push`, as a user's would. Any process can be killed (`kill()`: SIGKILL, a
Pi losing power - its heartbeats stop, its containers keep running under conmon) and
started again on the same data dir (`start()`: a restarted master, a Pi powered on again).

Every process runs the real `bramble` command line; the agents' HTTPS servers listen on
loopback (`--node-bind`), as tests use loopback addresses only.

Teardown, every step even when one fails: the agents stopped (SIGTERM), the master stopped
(it must exit 0), then every node's Podman purged through a service of our own (what a
killed agent left: its podman service, conmon, containers, mounts, network; see
tests/node/conftest.py `teardown_node`), the empty pod cgroups Podman 4.3 leaves removed
(tests/node/agent_fixtures.py), and an AssertionError naming anything still left.

`wait_for(...)` waits for a state of a collection from a list and then a watch (re-listing
when the watch ends, e.g. across a master restart); `TIMEOUT` bounds every wait against
hangs and is never a speed expectation.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from bramble.client import Client, ClientError
from bramble.kube.errors import Expired, NotFound, ServiceUnavailable
from bramble.node.runtime.podman import PodmanRuntime, PodmanService
from bramble.node.runtime.types import LABEL_MANAGED
from tests.conftest import (
    MasterHandle,
    _handle,
    free_port,
    start_master_process,
    stop_process,
    wait_healthy,
)
from tests.e2e.test_rollout_kubectl import Kubectl
from tests.images import build_busybox_image
from tests.node.agent_fixtures import created_pod_ids, remove_cgroups
from tests.node.conftest import free_subnet, short_dir, teardown_node

T = TypeVar("T")
Obj = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0  # seconds: a guard against hangs, never a speed expectation
# The second image, for rolling updates: another image id (its own default command).
IMAGE_V2 = "localhost/busybox:v2"
NODES = "/api/v1/nodes"
# How a benchmark's ControllerSettings reach the master process (see `_main`).


def pods_path(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def apps_path(ns: str, plural: str) -> str:
    return f"/apis/apps/v1/namespaces/{ns}/{plural}"


def jobs_path(ns: str) -> str:
    return f"/apis/batch/v1/namespaces/{ns}/jobs"


# --- reading objects --------------------------------------------------------------------

def condition(obj: Obj, kind: str) -> Obj:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return {}


def terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def ready(pod: Obj) -> bool:
    return condition(pod, "Ready").get("status") == "True"


def serving(pod: Obj) -> bool:
    """Running, Ready and not being deleted: a replica that counts."""
    return (pod.get("status") or {}).get("phase") == "Running" and ready(pod) \
        and not terminating(pod)


def live(pods: Mapping[str, Obj]) -> list[Obj]:
    """The pods not being deleted (what workload controllers count)."""
    return [p for p in pods.values() if not terminating(p)]


def serving_pods(app: str, count: int, image: str | None = None,
                 ) -> Callable[[dict[str, Obj]], list[Obj] | None]:
    """A check: exactly `count` live pods of `app`, all Running and Ready (with `image`)."""
    def check(pods: dict[str, Obj]) -> list[Obj] | None:
        mine = [p for p in live(pods) if p["metadata"]["labels"].get("app") == app]
        ok = len(mine) == count and all(serving(p) for p in mine) and (
            image is None or all(p["spec"]["containers"][0]["image"] == image for p in mine))
        return mine if ok else None
    return check


def rolled_out(name: str, replicas: int) -> Callable[[dict[str, Obj]], Obj | None]:
    """A check on Deployments: `name` rolled out as `kubectl rollout status` decides it
    (the spec observed; `replicas` updated, none old left, all of them available)."""
    def check(deploys: dict[str, Obj]) -> Obj | None:
        d = deploys.get(name)
        if d is None:
            return None
        s = d.get("status") or {}
        done = (s.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and all(s.get(k) == replicas for k in ("replicas", "updatedReplicas",
                                                      "availableReplicas")))
        return d if done else None
    return check


class RolloutSampler:
    """Every state of a Deployment's pods seen from a watch while it rolls: the fewest
    Ready pods (not being deleted), the most pods not being deleted, every pod uid."""

    def __init__(self) -> None:
        self.min_ready = math.inf
        self.max_live = 0
        self.samples = 0
        self.uids: set[str] = set()
        self.started = asyncio.Event()

    def __call__(self, pods: dict[str, Obj]) -> None:
        alive = live(pods)
        self.uids.update(p["metadata"]["uid"] for p in pods.values())
        self.min_ready = min(self.min_ready, sum(ready(p) for p in alive))
        self.max_live = max(self.max_live, len(alive))
        self.samples += 1
        self.started.set()


@contextlib.asynccontextmanager
async def sampling(api: Client, path: str, selector: str) -> AsyncIterator[RolloutSampler]:
    """A RolloutSampler fed by a watch of the pods matching `selector` while the block
    runs (from its first list on; across master restarts too)."""
    sampler = RolloutSampler()
    task = asyncio.create_task(
        wait_for(api, path, "(sampling)", sampler, params={"labelSelector": selector},
                 within=24 * 3600), name="sample-pods")
    started = asyncio.create_task(sampler.started.wait(), name="sampling-started")
    try:
        done, _ = await asyncio.wait({task, started}, timeout=TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises what stopped it
        assert started in done, "the sampling watch did not start"
        yield sampler
    finally:
        for t in (task, started):
            t.cancel()
        await asyncio.gather(task, started, return_exceptions=True)


def summary(obj: Obj) -> Any:
    """A short view of an object for failure messages."""
    kind = obj.get("kind") or ("Pod" if "nodeName" in (obj.get("spec") or {}) else "")
    status = obj.get("status") or {}
    if kind == "Pod" or "containerStatuses" in status:
        return {"node": obj["spec"].get("nodeName"), "phase": status.get("phase"),
                "ready": ready(obj), "deleting": terminating(obj),
                "image": obj["spec"]["containers"][0]["image"]}
    return status


# --- waiting ----------------------------------------------------------------------------

async def wait_for(api: Client, path: str, what: str, check: Callable[[dict[str, Obj]], T],
                   *, params: Mapping[str, str] | None = None, within: float = TIMEOUT) -> T:
    """`check(objects by name)` once it returns something truthy (returned), evaluated
    after a list and then after every watch event of the collection at `path`. The watch
    is resumed (listing again) when it ends or the master is away."""
    objects: dict[str, Obj] = {}

    async def run() -> T:
        while True:
            try:
                listed = await api.request("GET", path, params=params)
                objects.clear()
                objects.update({o["metadata"]["name"]: o for o in listed["items"]})
                if result := check(objects):
                    return result
                stream = api.watch(path, {**(params or {}), "allowWatchBookmarks": "true",
                                          "resourceVersion": listed["metadata"]["resourceVersion"]})
                async with contextlib.aclosing(stream):
                    async for kind, obj in stream:
                        if kind == "BOOKMARK":
                            continue
                        name = obj["metadata"]["name"]
                        if kind == "DELETED":
                            objects.pop(name, None)
                        else:
                            objects[name] = obj
                        if result := check(objects):
                            return result
            except (ClientError, Expired, ServiceUnavailable):
                await asyncio.sleep(0.2)  # the master restarts, or history ran out

    try:
        async with asyncio.timeout(within):
            return await run()
    except TimeoutError:
        seen = {name: summary(o) for name, o in objects.items()}
        raise AssertionError(f"timed out after {within:g} s waiting for {what}; "
                             f"last seen: {seen}") from None


async def retry(what: str, call: Callable[[], Any], *, within: float = TIMEOUT) -> Any:
    """`await call()` until it does not raise ClientError/ServiceUnavailable (the master
    or a node agent not there yet)."""
    try:
        async with asyncio.timeout(within):
            while True:
                try:
                    return await call()
                except (ClientError, ServiceUnavailable):
                    await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out after {within:g} s: {what}") from None


# --- processes --------------------------------------------------------------------------

# The ControllerSettings fields `bramble master` takes flags for.
MASTER_FLAGS = {"node_monitor_grace": "node-grace", "default_eviction_seconds": "eviction-delay",
                # HorizontalPodAutoscaler (tests/e2e/test_hpa.py shortens its window)
                "hpa_sync_period": "hpa-sync-period",
                "hpa_downscale_stabilization": "hpa-downscale-stabilization"}


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen:
    """`bramble ARGS` as a process, logging to `log_path`."""
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "bramble", *args], cwd=REPO,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)


@dataclass
class MasterProcess:
    """`bramble master` on a loopback port, restartable on the same data dir and port.
    `controllers`: ControllerSettings fields to change (benchmarks of other tunings)."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    controllers: Mapping[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> MasterHandle:
        assert self.proc is None or self.proc.poll() is not None, "the master runs already"
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        tuning = [f"--{MASTER_FLAGS[field]}={value}" for field, value in
                  self.controllers.items()]
        self.proc = start_master_process(self.data_dir, self.port, "--no-mdns", *tuning)
        await asyncio.to_thread(wait_healthy, self.url, self.proc)
        return _handle(self.url, self.data_dir, process=self.proc)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the master's Pi loses power."""
        assert self.proc is not None and self.proc.poll() is None, "the master is not running"
        self.proc.kill()
        self.proc.wait()

    async def stop(self) -> int:
        if self.proc is None:
            return 0
        return await asyncio.to_thread(stop_process, self.proc)


@dataclass
class AgentProcess:
    """`bramble node` as a process with its own data dir, Podman network, /24 and port."""

    name: str
    data_dir: Path
    network: str
    subnet: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self, master: str, token: str) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} runs already"
        self.proc = _spawn(
            ["node", "--master", master, "--token", token, "--name", self.name,
             "--data-dir", str(self.data_dir), "--pod-subnet", self.subnet,
             "--network", self.network, "--node-port", str(self.port),
             "--node-bind", "127.0.0.1", "--no-mdns",
             # Several agents share this host's network: its routes and addresses are not
             # theirs to change (tests/e2e/test_multihost.py gives each its own).
             "--no-pod-routes", "--no-service-proxy"],
            self.data_dir.parent / f"{self.name}.log")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the Pi loses power. Its podman service and containers live on."""
        assert self.alive, f"{self.name} is not running"
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return 0
        return await asyncio.to_thread(stop_process, self.proc, 30)

    @contextlib.asynccontextmanager
    async def podman(self) -> AsyncIterator[PodmanRuntime]:
        """A client of the node's own Podman service (the agent's, or the one a killed
        agent left), to look at what really runs there."""
        from bramble.node.runtime import config as podman_config

        socket_path = podman_config.podman_paths(self.data_dir / "podman").socket
        runtime = PodmanRuntime(socket_path, self.network, self.subnet)
        try:
            yield runtime
        finally:
            await runtime.close()

    async def running_pod_uids(self) -> set[str]:
        """The uids of the pods with a running container in the node's Podman."""
        async with self.podman() as runtime:
            observed = await runtime.observe({LABEL_MANAGED: "true"})
        return {uid for uid, pod in observed.items()
                if any(c.state == "running" for c in pod.containers)}

    async def stop_checked(self) -> list[str]:
        """Stop the agent; what went wrong (it must exit 0 on SIGTERM)."""
        try:
            code = await self.stop()
        except subprocess.TimeoutExpired:
            return [f"the agent {self.name} ignored SIGTERM"]
        return [f"the agent {self.name} exited with {code}"] if code != 0 else []

    async def teardown(self) -> list[str]:
        """Stop the agent, remove everything of the node; what is left (nothing)."""
        problems = await self.stop_checked()
        # Our own service on the node's storage: it stops one a killed agent left running.
        service = PodmanService(self.data_dir / "podman")
        runtime: PodmanRuntime | None = PodmanRuntime(
            service.socket_path, self.network, self.subnet, oom_flag_dir=service.oom_flag_dir)
        try:
            await service.start()
        except Exception as err:  # reported; the forced cleanup below still runs
            problems.append(f"cannot start Podman for the teardown of {self.name}: {err!r}")
            assert runtime is not None
            await runtime.close()
            runtime = None
        pod_ids = await asyncio.to_thread(created_pod_ids, self.data_dir / "podman")
        problems += await teardown_node(service, runtime, self.data_dir, "")
        problems += [f"cgroup {d}" for d in await asyncio.to_thread(remove_cgroups, pod_ids)]
        return problems


@dataclass
class Cluster:
    master: MasterProcess
    handle: MasterHandle
    api: Client  # admin
    nodes: list[AgentProcess]
    kubectl: Kubectl
    base: Path

    @property
    def token(self) -> str:
        return (self.master.data_dir / "join-token").read_text().strip()

    async def start_node(self, node: AgentProcess) -> None:
        """Start (or restart) an agent and wait for its Node to be Ready."""
        node.start(self.master.url, self.token)
        await self.wait_nodes_ready([node.name])

    async def wait_nodes_ready(self, names: Iterable[str]) -> dict[str, Obj]:
        wanted = set(names)

        def check(nodes: dict[str, Obj]) -> dict[str, Obj] | None:
            for n in self.nodes:
                if n.name in wanted and not n.alive:
                    raise AssertionError(f"the agent {n.name} is not running; see "
                                         f"{self.base / (n.name + '.log')}")
            ok = all(condition(nodes[w], "Ready").get("status") == "True"
                     and not any(t.get("key") == "node.kubernetes.io/unreachable"
                                 for t in nodes[w]["spec"].get("taints") or [])
                     for w in wanted if w in nodes)
            return nodes if ok and wanted <= set(nodes) else None

        return await wait_for(self.api, NODES, f"nodes {sorted(wanted)} Ready", check)

    async def push(self, archive: Path, node: str) -> None:
        """`bramble push ARCHIVE --node NODE`, retried until the node's agent registered
        its endpoint with the master."""
        async def push() -> None:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bramble", "push", "--kubeconfig",
                str(self.handle.kubeconfig), str(archive), "--node", node,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            if proc.returncode != 0 and b"has not registered its agent endpoint" in err:
                raise ServiceUnavailable(err.decode())
            assert proc.returncode == 0 and out.decode().startswith(f"{node}: loaded "), \
                (proc.returncode, out, err)
        await retry(f"bramble push {archive.name} to {node}", push)

    async def namespace(self, name: str) -> str:
        await self.api.request("POST", "/api/v1/namespaces", json={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name

    async def delete_namespace(self, name: str) -> None:
        """Delete a namespace and wait until it is gone: everything in it removed, its
        pods stopped and confirmed by their agents."""
        with contextlib.suppress(NotFound):
            await self.api.request("DELETE", f"/api/v1/namespaces/{name}")
        await wait_for(self.api, "/api/v1/namespaces", f"namespace {name} gone",
                       lambda nss: name not in nss)


async def _first_start(cluster: Cluster) -> None:
    images = cluster.base / "images"
    archives = await asyncio.gather(
        asyncio.to_thread(build_busybox_image, images),
        asyncio.to_thread(build_busybox_image, images, IMAGE_V2, cmd=("sh", "-c", "v2")))
    for node in cluster.nodes:
        node.start(cluster.master.url, cluster.token)
    await cluster.wait_nodes_ready(n.name for n in cluster.nodes)
    await asyncio.gather(*(cluster.push(a, n.name) for a in archives for n in cluster.nodes))


def _subnets(count: int) -> list[str]:
    """Distinct free /24s (free_subnet only knows the routes of networks made already)."""
    subnets: list[str] = []
    while len(subnets) < count:
        if (s := free_subnet(range(97, 98))) not in subnets:
            subnets.append(s)
    return subnets


async def stop_processes(master: MasterProcess, agents: Iterable[AgentProcess]) -> list[str]:
    """Stop the agents (pods keep running), then the master, which must exit 0."""
    for agent in agents:
        with contextlib.suppress(subprocess.TimeoutExpired):
            await agent.stop()
    try:
        code = await master.stop()
    except subprocess.TimeoutExpired:
        return ["the master ignored SIGTERM"]
    return [f"the master exited with {code}"] if code != 0 else []


@contextlib.asynccontextmanager
async def running_cluster(base: Path, nodes: int = 2, *,
                          controllers: Mapping[str, Any] | None = None,
                          ) -> AsyncIterator[Cluster]:
    """The master and `nodes` agents (pi-<tag>-1..) as processes under `base` (keep it
    short: the Podman socket path has a size limit); torn down and checked on exit.
    `controllers` changes fields of the master's ControllerSettings (benchmarks only;
    tests use the defaults)."""
    tag = uuid.uuid4().hex[:6]
    master = MasterProcess(base / "master", controllers=controllers or {})
    agents = [AgentProcess(f"pi-{tag}-{i + 1}", base / f"n{i + 1}", f"blc-{tag}-{i + 1}", s)
              for i, s in enumerate(_subnets(nodes))]
    problems: list[str] = []
    try:
        handle = await master.start()
        async with Client.from_kubeconfig(str(handle.kubeconfig)) as api:
            cluster = Cluster(master, handle, api, agents,
                              Kubectl(handle, base / "kubectl-cache"), base)
            await _first_start(cluster)
            yield cluster
    finally:
        problems += await stop_processes(master, agents)
        for agent in agents:
            problems += await agent.teardown()
        if not problems:
            shutil.rmtree(base, ignore_errors=True)
    assert not problems, f"the cluster left things behind (logs in {base}): {problems}"


# --- pytest fixtures (import them into a test module) -------------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="module", name="cluster")
async def cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """One cluster per test module (its setup is the slow part); tests share it through
    namespaces of their own."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    async with running_cluster(short_dir(tmp_path_factory, "cl")) as cluster:
        yield cluster


@pytest_asyncio.fixture(loop_scope="module", name="ns")
async def namespace_fixture(cluster: Cluster) -> AsyncIterator[str]:
    """A namespace for one test, deleted (and waited for: its pods stopped and gone)
    afterwards, with every agent still running."""
    name = await cluster.namespace(f"t-{uuid.uuid4().hex[:8]}")
    try:
        yield name
    finally:
        # A test that failed with the master or an agent killed: start it again, or its
        # pods (and so the namespace) could never go.
        if not cluster.master.alive:
            await cluster.master.start()
        dead = [n for n in cluster.nodes if not n.alive]
        for node in dead:
            await cluster.start_node(node)
        await cluster.delete_namespace(name)
        assert not dead, f"agents were not running after the test: {[n.name for n in dead]}"
