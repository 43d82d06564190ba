"""Node lifecycle and pod GC against a real master, with test "kubelets" that post a Node
and renew its Lease and that can stop doing so (a Pi losing power), and come back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bramble.client import MERGE_PATCH, Client
from bramble.kube.errors import NotFound, StatusError
from bramble.master.controllers import ControllerSettings
from tests.conftest import MasterHandle, eventually, running_master

Obj = dict[str, Any]
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
PODS = "/api/v1/namespaces/default/pods"
UNREACHABLE = "node.kubernetes.io/unreachable"

# Short, but with room: a test kubelet renews every 0.2 s, ten times within the grace.
FAST = ControllerSettings(node_monitor_grace=2.0, default_eviction_seconds=1,
                          pod_gc_orphan_quarantine=0.5, pod_gc_terminated_threshold=2)


def now(micro: bool = False) -> str:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.now(UTC).strftime(fmt)


class Kubelet:
    """Plays a node agent through the API: a Ready Node, a Lease renewed every 0.2 s."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self._task: asyncio.Task[None] | None = None

    def ready_status(self) -> Obj:
        return {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": t, "status": s, "reason": r, "message": "",
                                "lastHeartbeatTime": now(), "lastTransitionTime": now()}
                               for t, s, r in (("Ready", "True", "KubeletReady"),
                                               ("MemoryPressure", "False", "Sufficient"),
                                               ("DiskPressure", "False", "Sufficient"),
                                               ("PIDPressure", "False", "Sufficient"))]}

    async def start(self) -> None:
        try:
            await self.client.request("POST", "/api/v1/nodes", json={
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name},
                "status": self.ready_status()})
        except StatusError as err:
            if err.code != 409:
                raise
            await self.post_status()
        self.renewing()

    async def post_status(self) -> None:
        await self.client.request("PATCH", f"/api/v1/nodes/{self.name}/status",
                                  json={"status": self.ready_status()},
                                  content_type=MERGE_PATCH)

    def renewing(self) -> None:
        self._task = asyncio.create_task(self._renew(), name=f"test-lease-{self.name}")

    async def _renew(self) -> None:
        while True:
            spec = {"holderIdentity": self.name, "leaseDurationSeconds": 40,
                    "renewTime": now(micro=True)}
            with contextlib.suppress(StatusError, OSError):
                try:
                    await self.client.request("PATCH", f"{LEASES}/{self.name}",
                                              json={"spec": spec}, content_type=MERGE_PATCH)
                except NotFound:
                    await self.client.request("POST", LEASES, json={
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name}, "spec": spec})
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """The Pi loses power: nothing is renewed or posted any more."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


@contextlib.asynccontextmanager
async def kubelets(client: Client, *names: str) -> AsyncIterator[list[Kubelet]]:
    started = [Kubelet(client, n) for n in names]
    try:
        for k in started:
            await k.start()
        yield started
    finally:
        for k in started:
            await k.stop()


@pytest.fixture
async def fast_master(tmp_path: Path) -> AsyncIterator[MasterHandle]:
    async with running_master(tmp_path / "master", controllers=FAST) as handle:
        yield handle


@pytest.fixture
async def client(fast_master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(fast_master.kubeconfig)) as c:
        yield c



async def get(client: Client, path: str) -> Obj | None:
    try:
        return await client.request("GET", path)
    except NotFound:
        return None


def ready(node: Obj) -> str | None:
    for c in node["status"].get("conditions") or []:
        if c["type"] == "Ready":
            return c["status"]
    return None


async def running_pod(client: Client, name: str, node: str, *tolerations: Obj) -> Obj:
    """A pod bound to `node` and reported Running and Ready, as its agent would."""
    spec: Obj = {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1.36"}]}
    if tolerations:
        spec["tolerations"] = list(tolerations)
    pod = await client.request("POST", PODS, json={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    pod["status"].update(phase="Running", conditions=[
        {"type": "Ready", "status": "True", "lastTransitionTime": now()}])
    return await client.request("PUT", f"{PODS}/{name}/status", json=pod)


def marked(client: Client, name: str) -> Callable[[], Awaitable[Obj | None]]:
    async def check() -> Obj | None:
        pod = await get(client, f"{PODS}/{name}")
        return pod if pod and pod["metadata"].get("deletionTimestamp") else None
    return check


async def events(client: Client, **selector: str) -> list[Obj]:
    fields = ",".join(f"{k}={v}" for k, v in selector.items())
    body = await client.request("GET", "/api/v1/events", params={"fieldSelector": fields})
    return body["items"]


# -- a node that stops heartbeating -------------------------------------------------------

async def test_silent_node_is_tainted_its_pods_evicted_and_it_comes_back(
        client: Client) -> None:
    async with kubelets(client, "healthy", "lost") as (_, lost):
        own = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
        await running_pod(client, "plain", "lost")
        await running_pod(client, "patient", "lost", {**own, "tolerationSeconds": 6})
        await running_pod(client, "forever", "lost", own)
        await running_pod(client, "safe", "healthy")
        await lost.stop()

        async def unknown() -> Obj | None:
            node = await get(client, "/api/v1/nodes/lost")
            return node if node and ready(node) == "Unknown" else None

        node = await eventually(unknown)
        for c in node["status"]["conditions"]:
            assert (c["status"], c["reason"], c["message"]) == (
                "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")

        async def tainted() -> Obj | None:
            n = await get(client, "/api/v1/nodes/lost")
            found = {(t["key"], t["effect"]) for t in n.get("spec", {}).get("taints") or []}
            return n if {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} <= found \
                else None

        node = await eventually(tainted)
        assert all(t.get("timeAdded") for t in node["spec"]["taints"])
        [ev] = await eventually(lambda: events(client, reason="NodeNotReady",
                                               **{"involvedObject.kind": "Node"}))
        assert ev["message"] == "Node lost status is now: NodeNotReady"
        assert ev["source"]["component"] == "node-controller"

        # The default (1 s) evicts "plain"; "patient" tolerates for 6 s of its own.
        plain = await eventually(marked(client, "plain"))
        assert (await get(client, f"{PODS}/patient"))["metadata"].get(
            "deletionTimestamp") is None
        disruption = [c for c in plain["status"]["conditions"]
                      if c["type"] == "DisruptionTarget"]
        assert disruption and disruption[0]["reason"] == "DeletionByTaintManager"
        # Marked not ready when the node went silent, so Services stopped using it.
        assert [c["status"] for c in plain["status"]["conditions"] if c["type"] == "Ready"] \
            == ["False"]
        [ev] = await eventually(lambda: events(client, reason="TaintManagerEviction",
                                               **{"involvedObject.name": "plain"}))
        assert ev["message"] == "Marking for deletion Pod default/plain"
        await eventually(marked(client, "patient"))
        # Tolerating without tolerationSeconds: forever. The healthy node's pod is left.
        for name in ("forever", "safe"):
            pod = await get(client, f"{PODS}/{name}")
            assert pod is not None and pod["metadata"].get("deletionTimestamp") is None

        # Evicted pods stay (terminating) while their node is away: nobody confirms.
        assert await get(client, f"{PODS}/plain") is not None

        # The Pi comes back: its agent posts Ready and renews again; the taints go.
        await lost.post_status()
        lost.renewing()

        async def untainted() -> Obj | None:
            n = await get(client, "/api/v1/nodes/lost")
            return n if ready(n) == "True" and not n.get("spec", {}).get("taints") else None

        await eventually(untainted)
        # Its agent stops the evicted pods and confirms: they go for good.
        for name in ("plain", "patient"):
            pod = await get(client, f"{PODS}/{name}")
            await client.request("DELETE", f"{PODS}/{name}", json={
                "gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}})
            assert await get(client, f"{PODS}/{name}") is None
        forever = await get(client, f"{PODS}/forever")
        assert forever is not None and forever["metadata"].get("deletionTimestamp") is None


async def test_a_lone_node_is_never_evicted_from(client: Client) -> None:
    # With every node silent the master is the likely problem (Kubernetes' full
    # disruption): the node is Unknown and unschedulable, but nothing is evicted.
    async with kubelets(client, "only") as (only,):
        await running_pod(client, "stay", "only")
        await only.stop()

        async def noschedule() -> Obj | None:
            n = await get(client, "/api/v1/nodes/only")
            keys = [(t["key"], t["effect"]) for t in n.get("spec", {}).get("taints") or []]
            return keys if (UNREACHABLE, "NoSchedule") in keys else None

        assert await eventually(noschedule) == [(UNREACHABLE, "NoSchedule")]
        pod = await get(client, f"{PODS}/stay")
        assert pod is not None and pod["metadata"].get("deletionTimestamp") is None


async def test_master_restart_gives_nodes_a_fresh_grace_period(tmp_path: Path) -> None:
    data = tmp_path / "master"
    async with running_master(data, controllers=FAST) as m:
        async with Client.from_kubeconfig(str(m.kubeconfig)) as c, kubelets(
                c, "steady", "gone"):
            pass
    # The master was down for longer than the grace period: no lease was renewed.
    await asyncio.sleep(FAST.node_monitor_grace + 0.5)
    async with running_master(data, controllers=FAST) as m:
        started = datetime.now(UTC)
        async with Client.from_kubeconfig(str(m.kubeconfig)) as c:
            steady = Kubelet(c, "steady")
            steady.renewing()  # back within the fresh grace period
            try:
                async def gone_unknown() -> Obj | None:
                    n = await get(c, "/api/v1/nodes/gone")
                    return n if ready(n) == "Unknown" else None

                gone = await eventually(gone_unknown)
                transition = next(x["lastTransitionTime"]
                                  for x in gone["status"]["conditions"] if x["type"] == "Ready")
                # Not declared dead at startup: only a full grace period after it
                # (timestamps have whole seconds, hence the 1 s).
                elapsed = (datetime.fromisoformat(transition.replace("Z", "+00:00"))
                           - started).total_seconds()
                assert elapsed >= FAST.node_monitor_grace - 1
                assert ready(await get(c, "/api/v1/nodes/steady")) == "True"
            finally:
                await steady.stop()


# -- pod GC -------------------------------------------------------------------------------

async def test_pods_of_a_deleted_node_are_force_deleted(client: Client) -> None:
    async with kubelets(client, "keeper"):
        retired = await client.request("POST", "/api/v1/nodes", json={
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "retired"}})
        # Its lease is owned by the Node, as node agents make it: it goes with the Node.
        await client.request("POST", LEASES, json={
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "retired", "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": "retired",
                "uid": retired["metadata"]["uid"]}]},
            "spec": {"holderIdentity": "retired", "renewTime": now(micro=True)}})
        await running_pod(client, "left-behind", "retired")
        await running_pod(client, "terminating", "retired")
        await client.request("DELETE", f"{PODS}/terminating")
        await client.request("POST", PODS, json={
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "never-joined"},
            "spec": {"nodeName": "no-such-node",
                     "containers": [{"name": "c", "image": "busybox:1.36"}]}})
        await running_pod(client, "kept", "keeper")
        assert (await get(client, f"{PODS}/terminating"))["metadata"]["deletionTimestamp"]
        await client.request("DELETE", "/api/v1/nodes/retired")
        for name in ("left-behind", "terminating", "never-joined"):
            await eventually(lambda n=name: _gone(client, f"{PODS}/{n}"))
        await eventually(lambda: _gone(client, f"{LEASES}/retired"))
        assert await get(client, f"{PODS}/kept") is not None


async def _gone(client: Client, path: str) -> bool:
    return await get(client, path) is None


async def test_terminated_pods_beyond_the_threshold_go_oldest_first(client: Client) -> None:
    async with kubelets(client, "batch"):
        for i in range(4):
            pod = await running_pod(client, f"t{i}", "batch")
            pod["status"]["phase"] = "Succeeded"
            await client.request("PUT", f"{PODS}/t{i}/status", json=pod)

        async def remaining() -> list[str] | None:
            body = await client.request("GET", PODS)
            names = sorted(p["metadata"]["name"] for p in body["items"])
            return names if len(names) == 2 else None

        # Threshold 2: of four, the two oldest (same second: by name) are deleted.
        assert await eventually(remaining) == ["t2", "t3"]
