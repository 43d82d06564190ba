"""A simulated kubelet for workload tests: pods come up Ready without containers.

`SimKubelet` plays the kubelet of one Node through the API, as a real one would: it
registers the Node (Ready) and renews its Lease, binds pods that have no node yet to itself
(so tests do not depend on the scheduler), reports them Running and Ready through the
status subresource (after `ready_delay` seconds, and only those `ready(pod)` allows), and
finishes the deletion of pods marked for deletion (as a kubelet does once their containers
stopped). Only for tests: nothing here runs on a product path.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bramble.client import Client
from bramble.kube.errors import AlreadyExists, Conflict, Expired, NotFound, StatusError
from bramble.node.status import LEASE_NAMESPACE, LEASES, lease_spec

Obj = dict[str, Any]

PODS = "/api/v1/pods"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def renew_lease(client: Client, node: str) -> None:
    """What a kubelet does every few seconds (node/status.py's Lease), so that the node
    lifecycle controller sees a simulated node alive."""
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": node, "namespace": LEASE_NAMESPACE},
            "spec": lease_spec(node, datetime.now(UTC), 40)}
    with contextlib.suppress(AlreadyExists, Conflict):
        try:
            await client.request("PUT", f"{LEASES}/{node}", json=body)
        except NotFound:
            await client.request("POST", LEASES, json=body)


async def follow_pods(client: Client, handle: Callable[[Obj], Awaitable[None]],
                      path: str = PODS) -> None:
    """Every pod at `path`, listed and then as it is added or changed, to `handle` (a
    simulated kubelet's view); listed again when the watch's history ran out."""
    while True:
        listing = await client.request("GET", path)
        for pod in listing["items"]:
            await handle(pod)
        try:
            async for kind, pod in client.watch(path, {
                    "resourceVersion": listing["metadata"]["resourceVersion"]}):
                if kind in ("ADDED", "MODIFIED"):
                    await handle(pod)
        except Expired:
            continue


def running_status(pod: Obj, when: str) -> Obj:
    """The status a kubelet reports for a pod whose containers all run and are ready."""
    status = copy.deepcopy(pod.get("status") or {})
    status["phase"] = "Running"
    status.setdefault("hostIP", "127.0.0.1")
    status.setdefault("podIP", "10.99.0.1")
    status.setdefault("startTime", when)
    kept = [c for c in status.get("conditions") or []
            if c.get("type") not in ("Initialized", "ContainersReady", "Ready")]
    status["conditions"] = kept + [
        {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": when}
        for t in ("Initialized", "ContainersReady", "Ready")]
    status["containerStatuses"] = [
        {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
         "started": True, "restartCount": 0, "state": {"running": {"startedAt": when}},
         "containerID": f"sim://{pod['metadata']['uid']}-{c['name']}"}
        for c in pod["spec"].get("containers") or []]
    return status


class SimKubelet:
    def __init__(self, client: Client, node: str = "sim-node", *,
                 ready: Callable[[Obj], bool] = lambda pod: True,
                 ready_delay: float = 0.0) -> None:
        self.client = client
        self.node = node
        self.ready = ready
        self.ready_delay = ready_delay
        self._pending: dict[str, asyncio.Task[None]] = {}

    async def _register(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node,
                             "labels": {"kubernetes.io/hostname": self.node,
                                        "kubernetes.io/arch": "arm64",
                                        "kubernetes.io/os": "linux"}},
                "status": {"capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                           "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                           "conditions": [{"type": "Ready", "status": "True",
                                           "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status",
                                           "lastHeartbeatTime": now(),
                                           "lastTransitionTime": now()}]}}
        with contextlib.suppress(AlreadyExists):
            await self.client.request("POST", "/api/v1/nodes", json=body)

    async def _heartbeat(self) -> None:
        while True:
            await renew_lease(self.client, self.node)
            await asyncio.sleep(1.0)

    async def run(self) -> None:
        await self._register()
        beat = asyncio.create_task(self._heartbeat(), name="sim-kubelet-heartbeat")
        try:
            await follow_pods(self.client, self._handle)
        finally:
            beat.cancel()
            for task in [beat, *self._pending.values()]:
                task.cancel()
            await asyncio.gather(beat, *self._pending.values(), return_exceptions=True)

    async def _handle(self, pod: Obj) -> None:
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        node = pod["spec"].get("nodeName")
        try:
            if meta.get("deletionTimestamp"):
                if node == self.node:
                    await self.client.request("DELETE", path, json={
                        "gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}})
                return
            if not node:
                await self.client.request("POST", f"{path}/binding", json={
                    "apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}})
                return
            if node != self.node or _is_ready(pod) or not self.ready(pod):
                return
            uid = meta["uid"]
            if uid not in self._pending or self._pending[uid].done():
                self._pending[uid] = asyncio.create_task(self._make_ready(path),
                                                         name=f"sim-ready-{meta['name']}")
        except (NotFound, Conflict):
            pass  # gone, or changed meanwhile: the watch brings the new version

    async def _make_ready(self, path: str) -> None:
        await asyncio.sleep(self.ready_delay)
        for _ in range(20):
            try:
                pod = await self.client.request("GET", path)
                if pod["metadata"].get("deletionTimestamp") or _is_ready(pod):
                    return
                pod["status"] = running_status(pod, now())
                await self.client.request("PUT", f"{path}/status", json=pod)
                return
            except NotFound:
                return
            except Conflict:
                continue
            except StatusError:
                raise


def _is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


@contextlib.asynccontextmanager
async def sim_kubelet(client: Client, **kwargs: Any) -> AsyncIterator[SimKubelet]:
    """A running SimKubelet, stopped (and awaited) on exit."""
    kubelet = SimKubelet(client, **kwargs)
    task = asyncio.create_task(kubelet.run(), name="sim-kubelet")
    try:
        yield kubelet
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
