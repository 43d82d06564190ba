"""A master and a node agent in this process, on a real Podman, for end-to-end agent tests.

`agent` (one per test module): an in-process master, and `bramble node` as `serve(...)` in
the same event loop with its own data dir (its own Podman service, store and network: a
name and a /24 of 10.99.0.0/16 no route of this machine uses), the busybox test image
loaded through the agent's runtime. `AgentNode.restart()` stops the agent and serves again
on the same data dir, as an upgrade or a crash would. Teardown stops the agent, removes
every pod, container and the network through a Podman service of its own, stops it, and
fails if anything is left (tests/node/conftest.py's `teardown_node` / `leftovers`), after
removing the empty pod cgroups Podman 4.3 leaves here (pods found in Podman's event log).

`pods` (one per test): creates pods through the API and, afterwards, deletes them and
waits until the agent removed them from Podman and their volumes from the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from bramble.client import Client
from bramble.kube.errors import NotFound
from bramble.node.agent import NodeConfig, RunningNode, serve
from bramble.node.runtime import config as podman_config
from bramble.node.runtime.podman import PodmanRuntime, PodmanService
from bramble.node.runtime.types import LABEL_POD_UID
from tests.conftest import MasterHandle, running_master
from tests.images import build_busybox_image
from tests.node.conftest import _cgroup_dirs, free_subnet, short_dir, teardown_node

T = TypeVar("T")

NODE = "pi1"
NAMESPACE = "default"
WAIT = 30.0  # seconds: a guard against hangs, never a speed assertion
START_TIMEOUT = 60.0

async def until(what: str, check: Callable[[], Awaitable[T | None]], *,
                within: float = WAIT, interval: float = 0.1,
                describe: Callable[[], Any] | None = None) -> T:
    """Call `check` until it returns something truthy (returned); fail after `within`
    seconds (also when a check itself hangs) with `what` and `describe()` of the last state."""
    try:
        async with asyncio.timeout(within):
            while True:
                if result := await check():
                    return result
                await asyncio.sleep(interval)
    except TimeoutError:
        detail = f"; last seen: {describe()}" if describe is not None else ""
        raise AssertionError(f"timed out after {within:g} s waiting for {what}{detail}") from None


# Without a cgroup parent of its own (the agent sets none), Podman puts each pod's cgroup
# at /libpod_parent/<pod id>, shared with every other cgroupfs Podman of the machine.
DEFAULT_CGROUP_PARENT = "/libpod_parent"


def leftover_cgroups(pod_ids: list[str]) -> list[str]:
    """The cgroup dirs of these Podman pods that still exist, in any hierarchy."""
    return [str(d) for pid in pod_ids for d in _cgroup_dirs(f"{DEFAULT_CGROUP_PARENT}/{pid}")]


def remove_cgroups(pod_ids: list[str]) -> list[str]:
    """rmdir what is left of these pods' cgroups (empty once their processes are gone);
    returns what could not be removed."""
    for path in leftover_cgroups(pod_ids):
        for folder, _dirs, _files in os.walk(path, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
    return leftover_cgroups(pod_ids)


def created_pod_ids(podman_dir: Path) -> list[str]:
    """Every Podman pod (sandbox) this node's service ever created, from its event log."""
    log = podman_config.podman_paths(podman_dir).tmp_dir / "events" / "events.log"
    ids = []
    with contextlib.suppress(FileNotFoundError):
        for line in log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("Type") == "pod" and event.get("Status") == "create":
                    ids.append(event["ID"])
    return ids


@dataclass
class AgentNode:
    """The node agent under test, and the API client the tests use."""

    master: MasterHandle
    api: Client
    data_dir: Path
    network: str
    subnet: str
    node: RunningNode | None = None
    task: asyncio.Task[None] | None = None
    _shutdown: asyncio.Event = field(default_factory=asyncio.Event)

    def config(self) -> NodeConfig:
        extra: dict[str, Any] = {}
        if "server_port" in {f.name for f in dataclasses.fields(NodeConfig)}:
            # The node server (being added): loopback only, any free port.
            extra = {"server_bind": "127.0.0.1", "server_port": 0}
        return NodeConfig(data_dir=self.data_dir, master=self.master.url,
                          token=self.master.running.credentials.join_token,  # type: ignore[union-attr]
                          name=NODE, network=self.network, subnet=self.subnet,
                          heartbeat_seconds=0.5, pod_routes=False, service_proxy=False,
                          **extra)

    @property
    def runtime(self) -> PodmanRuntime:
        assert self.node is not None, "the agent is not running"
        return self.node.runtime

    async def start(self) -> RunningNode:
        assert self.task is None, "the agent runs already"
        self._shutdown = asyncio.Event()
        started: asyncio.Future[RunningNode] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(serve(self.config(), self._shutdown, started),
                                        name="test-node-agent")
        done, _ = await asyncio.wait({self.task, started}, timeout=START_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        if started not in done:
            task, self.task = self.task, None
            if task in done:
                task.result()  # raises the startup error
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise AssertionError(f"the node agent did not start within {START_TIMEOUT:g} s")
        self.node = started.result()
        return self.node

    async def stop(self) -> None:
        """Stop the agent as SIGTERM would (its pods keep running); raises what it died of."""
        task, self.task, self.node = self.task, None, None
        if task is None:
            return
        self._shutdown.set()
        await asyncio.wait_for(task, START_TIMEOUT)

    async def restart(self) -> RunningNode:
        await self.stop()
        return await self.start()

    def check_alive(self) -> None:
        """Fail with the agent's own error if it stopped by itself."""
        assert self.task is not None, "the agent is not running"
        if self.task.done():
            self.task.result()
            raise AssertionError("the node agent stopped by itself")

    async def teardown(self) -> list[str]:
        """Stop the agent, remove everything through Podman, stop it; what is left."""
        problems: list[str] = []
        try:
            await self.stop()
        except Exception as err:  # reported; the rest of the teardown still runs
            problems.append(f"the agent failed: {err!r}")
        service = PodmanService(self.data_dir / "podman")
        runtime: PodmanRuntime | None = PodmanRuntime(
            service.socket_path, self.network, self.subnet, oom_flag_dir=service.oom_flag_dir)
        try:
            await service.start()
        except Exception as err:
            problems.append(f"cannot start Podman for the teardown: {err!r}")
            assert runtime is not None
            await runtime.close()
            runtime = None
        pod_ids = await asyncio.to_thread(created_pod_ids, self.data_dir / "podman")
        assert pod_ids, "no pod found in the node's Podman event log"
        problems += await teardown_node(service, runtime, self.data_dir, "")
        # Podman 4.3 leaves each pod's (empty) cgroup in the name=systemd and unified
        # hierarchies: see test_removed_pod_leaves_no_cgroup.
        problems += [f"cgroup {d}" for d in await asyncio.to_thread(remove_cgroups, pod_ids)]
        return problems


@pytest_asyncio.fixture(scope="module", loop_scope="module", name="agent")
async def agent_fixture(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AgentNode]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    base = short_dir(tmp_path_factory, "ag")
    async with running_master(base / "master") as master, \
            Client.from_kubeconfig(str(master.kubeconfig)) as api:
        node = AgentNode(master=master, api=api, data_dir=base / "node",
                         network=f"bta-{uuid.uuid4().hex[:8]}", subnet=free_subnet(range(99, 100)))
        try:
            await node.start()
            # There is no registry and no `bramble push` yet: load it into the node's Podman.
            image = await asyncio.to_thread(build_busybox_image, base / "images")
            await node.runtime.load_image(image)
            yield node
        finally:
            left = await node.teardown()
            shutil.rmtree(base, ignore_errors=True)
            assert not left, f"the node left things behind: {left}"


def pod_path(name: str, namespace: str = NAMESPACE) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{name}"


class Pods:
    """The pods one test created; `cleanup()` deletes them and waits until they are gone
    from the API, from Podman and from the node's disk."""

    def __init__(self, agent: AgentNode) -> None:
        self.agent = agent
        self.created: dict[str, str] = {}  # name -> uid

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        pod = await self.agent.api.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods",
                                           json=manifest)
        self.created[pod["metadata"]["name"]] = pod["metadata"]["uid"]
        return pod

    async def get(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.agent.api.request("GET", pod_path(name))
        except NotFound:
            return None

    async def wait(self, name: str, what: str, predicate: Callable[[dict[str, Any]], bool],
                   within: float = WAIT) -> dict[str, Any]:
        """The pod, once `predicate(pod)` holds."""
        last: dict[str, Any] = {}

        async def check() -> dict[str, Any] | None:
            nonlocal last
            pod = await self.get(name)
            last = pod or {}
            return pod if pod is not None and predicate(pod) else None

        return await until(f"pod {name}: {what}", check, within=within,
                           describe=lambda: last.get("status"))

    async def gone_from_node(self, uid: str) -> bool:
        observed = await self.agent.runtime.observe({LABEL_POD_UID: uid})
        volumes = self.agent.data_dir / "pods" / uid
        return uid not in observed and not await asyncio.to_thread(volumes.exists)

    async def cleanup(self) -> None:
        for name in self.created:
            with contextlib.suppress(NotFound):
                await self.agent.api.request("DELETE", pod_path(name),
                                             json={"gracePeriodSeconds": 0})
        if self.agent.node is None:
            return  # a test that failed with the agent stopped: the module teardown purges
        for name, uid in self.created.items():
            await until(f"pod {name} ({uid}) removed from Podman and the disk",
                        lambda uid=uid: self.gone_from_node(uid))


@pytest_asyncio.fixture(loop_scope="module", name="pods")
async def pods_fixture(agent: AgentNode) -> AsyncIterator[Pods]:
    tracker = Pods(agent)
    try:
        yield tracker
    finally:
        if agent.task is None:  # a test stopped the agent and failed before restarting it
            await agent.start()
        agent.check_alive()
        await tracker.cleanup()
