"""The scheduler against a real master: bindings, conditions, events, retries.

Most tests run the scheduler alone next to a master whose own control loops are off, so
that hand-made pods (with an ownerReference to a ReplicaSet that does not exist) are left
to the scheduler; one test checks the master runs it. Nodes are plain Node objects with
the status a node agent would report; nothing runs the pods.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bramble.client import Client
from bramble.master.scheduler.loop import Scheduler
from tests.conftest import MasterHandle, eventually, running_master

PODS = "/api/v1/namespaces/default/pods"
NODES = "/api/v1/nodes"
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[Client, Scheduler]]:
    async with running_master(tmp_path / "master", run_controllers=False) as handle:
        scheduler = Scheduler(handle.running.api, workers=4,  # type: ignore[union-attr]
                              backoff_initial=0.05, backoff_max=0.2)
        task = asyncio.create_task(scheduler.run(), name="test-scheduler")
        try:
            async with Client.from_kubeconfig(str(handle.kubeconfig)) as client:
                yield client, scheduler
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def node(name: str, cpu: str = "4", memory: str = "8Gi", *, labels: dict | None = None,
         taints: list | None = None, unschedulable: bool = False) -> dict:
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110"}
    spec: dict[str, Any] = {"unschedulable": unschedulable}
    if taints:
        spec["taints"] = taints
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "spec": spec,
            "status": {"capacity": allocatable, "allocatable": allocatable,
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str = "100m", memory: str = "64Mi", **spec: Any) -> dict:
    metadata = {"name": name, **spec.pop("metadata", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "c", "image": "busybox", **spec.pop("c", {}),
                                     "resources": {"requests": {"cpu": cpu,
                                                                "memory": memory}}}],
                     **spec}}



async def bound_to(client: Client, name: str) -> str:
    async def check() -> str | None:
        return (await client.request("GET", f"{PODS}/{name}"))["spec"].get("nodeName")
    return await eventually(check)


async def unschedulable(client: Client, name: str) -> dict:
    async def check() -> dict | None:
        got = await client.request("GET", f"{PODS}/{name}")
        for c in (got.get("status") or {}).get("conditions") or []:
            if c["type"] == "PodScheduled" and c["status"] == "False":
                return got
        return None
    return await eventually(check)


async def events(client: Client, name: str) -> list[dict]:
    body = await client.request("GET", "/api/v1/namespaces/default/events",
                                params={"fieldSelector": f"involvedObject.name={name}"})
    return body["items"]


async def test_pods_are_bound_to_nodes_that_fit(cluster: tuple[Client, Scheduler]) -> None:
    client, _ = cluster
    await client.request("POST", NODES, json=node("small", memory="1Gi"))
    await client.request("POST", NODES, json=node("big", memory="8Gi"))
    await client.request("POST", PODS, json=pod("web", memory="2Gi"))
    assert await bound_to(client, "web") == "big"
    got = await client.request("GET", f"{PODS}/web")
    [scheduled] = [c for c in got["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled["status"] == "True"
    [event] = await eventually(lambda: events(client, "web"))
    assert (event["type"], event["reason"], event["message"]) == (
        "Normal", "Scheduled", "Successfully assigned default/web to big")
    assert event["source"] == {"component": "default-scheduler"}


async def test_a_pod_too_big_waits_for_a_node_big_enough(
        cluster: tuple[Client, Scheduler], tmp_path: Path) -> None:
    client, scheduler = cluster
    await client.request("POST", NODES, json=node("pi1", memory="4Gi"))
    await client.request("POST", NODES, json=node("pi2", memory="4Gi"))
    await client.request("POST", NODES, json=node("pi3", memory="8Gi", taints=[UNREACHABLE]))
    await client.request("POST", PODS, json=pod("huge", memory="6Gi"))
    got = await unschedulable(client, "huge")
    message = ("0/3 nodes are available: 1 node(s) had untolerated taint "
               "{node.kubernetes.io/unreachable: }, 2 Insufficient memory. preemption: 0/3 "
               "nodes are available: 3 Preemption is not helpful for scheduling.")
    [condition] = got["status"]["conditions"]
    assert (condition["reason"], condition["message"]) == ("Unschedulable", message)
    assert got["status"]["phase"] == "Pending"
    [event] = await eventually(lambda: events(client, "huge"))
    assert (event["type"], event["reason"], event["message"]) == (
        "Warning", "FailedScheduling", message)

    # A change that does not help: the pod is tried again, but its unchanged condition is
    # not written again (nor is the folded Event).
    rv = got["metadata"]["resourceVersion"]
    tries = scheduler._waiting[("default", "huge")].attempts  # noqa: SLF001
    await client.request("PATCH", f"{NODES}/pi1", data=b'{"metadata":{"labels":{"x":"y"}}}',
                         content_type="application/merge-patch+json")
    await eventually(lambda: _attempts_above(scheduler, "huge", tries))
    assert (await client.request("GET", f"{PODS}/huge"))["metadata"]["resourceVersion"] == rv
    assert [e["count"] for e in await events(client, "huge")] == [1]
    # With nothing changing, it is not tried again (the next look is the 5 min flush):
    # no busy loop, even though its back-off (at most 0.2 s here) has long passed.
    tries = scheduler._waiting[("default", "huge")].attempts  # noqa: SLF001
    await asyncio.sleep(0.6)
    assert scheduler._waiting[("default", "huge")].attempts == tries  # noqa: SLF001

    await client.request("POST", NODES, json=node("pi4", memory="16Gi"))
    assert await bound_to(client, "huge") == "pi4"
    got = await client.request("GET", f"{PODS}/huge")
    [condition] = got["status"]["conditions"]
    assert condition["status"] == "True"


async def _attempts_above(scheduler: Scheduler, name: str, n: int) -> bool:
    waiting = scheduler._waiting.get(("default", name))  # noqa: SLF001
    return waiting is not None and waiting.attempts > n


async def test_a_deleted_pod_makes_room(cluster: tuple[Client, Scheduler]) -> None:
    client, _ = cluster
    await client.request("POST", NODES, json=node("pi1", cpu="1"))
    await client.request("POST", PODS, json=pod("first", cpu="800m"))
    assert await bound_to(client, "first") == "pi1"
    await client.request("POST", PODS, json=pod("second", cpu="800m"))
    got = await unschedulable(client, "second")
    assert got["status"]["conditions"][0]["message"].startswith(
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod.")
    await client.request("DELETE", f"{PODS}/first", json={"gracePeriodSeconds": 0})
    assert await bound_to(client, "second") == "pi1"


async def test_a_finished_pod_makes_room(cluster: tuple[Client, Scheduler]) -> None:
    client, _ = cluster
    await client.request("POST", NODES, json=node("pi1", cpu="1"))
    await client.request("POST", PODS, json=pod("job", cpu="800m", restartPolicy="Never"))
    assert await bound_to(client, "job") == "pi1"
    await client.request("POST", PODS, json=pod("next", cpu="800m"))
    await unschedulable(client, "next")
    done = await client.request("GET", f"{PODS}/job")
    done["status"]["phase"] = "Succeeded"
    await client.request("PUT", f"{PODS}/job/status", json=done)
    assert await bound_to(client, "next") == "pi1"


async def test_cordoned_nodes_are_skipped(cluster: tuple[Client, Scheduler]) -> None:
    client, _ = cluster
    await client.request("POST", NODES, json=node("open"))
    await client.request("POST", NODES, json=node("closed", unschedulable=True))
    for i in range(4):
        await client.request("POST", PODS, json=pod(f"p{i}"))
    assert {await bound_to(client, f"p{i}") for i in range(4)} == {"open"}
    await client.request("PATCH", f"{NODES}/open", data=b'{"spec":{"unschedulable":true}}',
                         content_type="application/merge-patch+json")
    await client.request("POST", PODS, json=pod("late"))
    got = await unschedulable(client, "late")
    assert got["status"]["conditions"][0]["message"].startswith(
        "0/2 nodes are available: 2 node(s) were unschedulable.")
    await client.request("PATCH", f"{NODES}/closed", data=b'{"spec":{"unschedulable":false}}',
                         content_type="application/merge-patch+json")
    assert await bound_to(client, "late") == "closed"


async def test_taints_and_tolerations(cluster: tuple[Client, Scheduler]) -> None:
    client, _ = cluster
    gpu = {"key": "gpu", "value": "yes", "effect": "NoSchedule"}
    await client.request("POST", NODES, json=node("gpu", taints=[gpu]))
    await client.request("POST", NODES, json=node("soft", taints=[
        {"key": "spare", "effect": "PreferNoSchedule"}]))
    # Without a toleration: never the gpu node; the PreferNoSchedule node only if needed.
    for i in range(3):
        await client.request("POST", PODS, json=pod(f"plain{i}"))
        assert await bound_to(client, f"plain{i}") == "soft"
    # Tolerating the gpu taint (and the soft one not at all): the gpu node scores higher.
    tolerant = pod("tolerant", tolerations=[{"key": "gpu", "operator": "Equal",
                                             "value": "yes", "effect": "NoSchedule"}])
    await client.request("POST", PODS, json=tolerant)
    assert await bound_to(client, "tolerant") == "gpu"
    # A NoExecute taint filters too; nothing left.
    await client.request("PATCH", f"{NODES}/soft", data=b'{"spec":{"taints":[{"key":'
                         b'"maintenance","effect":"NoExecute"}]}}',
                         content_type="application/merge-patch+json")
    await client.request("POST", PODS, json=pod("stuck"))
    got = await unschedulable(client, "stuck")
    assert got["status"]["conditions"][0]["message"].startswith(
        "0/2 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 1 node(s) had "
        "untolerated taint {maintenance: }.")


async def test_node_selector_and_affinity(cluster: tuple[Client, Scheduler]) -> None:
    client, _ = cluster
    await client.request("POST", NODES, json=node("pi", labels={
        "kubernetes.io/arch": "arm64", "cores": "4"}))
    await client.request("POST", NODES, json=node("pc", labels={
        "kubernetes.io/arch": "amd64", "cores": "16"}))
    await client.request("POST", PODS, json=pod("arm", nodeSelector={
        "kubernetes.io/arch": "arm64"}))
    assert await bound_to(client, "arm") == "pi"

    def required(*exprs: dict) -> dict:
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": list(exprs)}]}}}

    await client.request("POST", PODS, json=pod("x86", affinity=required(
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]})))
    assert await bound_to(client, "x86") == "pc"
    await client.request("POST", PODS, json=pod("many-cores", affinity=required(
        {"key": "cores", "operator": "Gt", "values": ["8"]})))
    assert await bound_to(client, "many-cores") == "pc"
    # What a DaemonSet pod looks like: pinned to one node by name.
    await client.request("POST", PODS, json=pod("daemon", affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["pi"]}]}
        ]}}}))
    assert await bound_to(client, "daemon") == "pi"
    # Preferred: a soft wish.
    await client.request("POST", PODS, json=pod("likes-arm", affinity={"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {
            "matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In",
                                  "values": ["arm64"]}]}}]}}))
    assert await bound_to(client, "likes-arm") == "pi"
    await client.request("POST", PODS, json=pod("riscv", nodeSelector={
        "kubernetes.io/arch": "riscv64"}))
    got = await unschedulable(client, "riscv")
    assert got["status"]["conditions"][0]["message"] == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")


async def test_one_replicasets_pods_are_spread(cluster: tuple[Client, Scheduler]) -> None:
    client, _ = cluster
    for name in ("pi1", "pi2", "pi3"):
        await client.request("POST", NODES, json=node(name))
    owner = {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                  "name": "web-7d9f", "controller": True,
                                  "uid": "6f1c9a52-1d7e-4c1b-9d0e-2b1f0a3c4d5e"}]}
    for i in range(6):
        await client.request("POST", PODS, json=pod(f"web-{i}", cpu="1m", memory="1Mi",
                                                    metadata=dict(owner)))
    placed = [await bound_to(client, f"web-{i}") for i in range(6)]
    assert sorted(placed.count(n) for n in ("pi1", "pi2", "pi3")) == [2, 2, 2]


async def test_host_ports_conflict(cluster: tuple[Client, Scheduler]) -> None:
    client, _ = cluster
    await client.request("POST", NODES, json=node("pi1"))
    await client.request("POST", NODES, json=node("pi2"))
    ports = {"ports": [{"containerPort": 80, "hostPort": 8080}]}
    await client.request("POST", PODS, json=pod("a", c=ports))
    await client.request("POST", PODS, json=pod("b", c=ports))
    assert {await bound_to(client, "a"), await bound_to(client, "b")} == {"pi1", "pi2"}
    await client.request("POST", PODS, json=pod("c", c=ports))
    got = await unschedulable(client, "c")
    assert got["status"]["conditions"][0]["message"] == (
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod "
        "ports. preemption: 0/2 nodes are available: 2 No preemption victims found for "
        "incoming pod.")


async def test_pods_of_other_schedulers_and_gated_pods_are_left(
        cluster: tuple[Client, Scheduler]) -> None:
    client, scheduler = cluster
    await client.request("POST", NODES, json=node("pi1"))
    await client.request("POST", PODS, json=pod("mine-later", schedulingGates=[
        {"name": "example.com/quota"}]))
    await client.request("POST", PODS, json=pod("theirs", schedulerName="other-scheduler"))
    got = await eventually(lambda: _condition_reason(client, "mine-later"))
    assert got == ("SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates")
    await client.request("POST", PODS, json=pod("marker"))
    await bound_to(client, "marker")  # the scheduler is past the others
    theirs = await client.request("GET", f"{PODS}/theirs")
    assert not theirs["spec"].get("nodeName") and not theirs["status"].get("conditions")
    # Removing the gates (an update of the pod itself) lets it be scheduled.
    gated = await client.request("GET", f"{PODS}/mine-later")
    gated["spec"]["schedulingGates"] = []
    await client.request("PUT", f"{PODS}/mine-later", json=gated)
    assert await bound_to(client, "mine-later") == "pi1"


async def _condition_reason(client: Client, name: str) -> tuple[str, str] | None:
    got = await client.request("GET", f"{PODS}/{name}")
    for c in (got.get("status") or {}).get("conditions") or []:
        if c["type"] == "PodScheduled":
            return c.get("reason"), c.get("message")
    return None


async def test_pending_pods_are_scheduled_after_a_restart(tmp_path: Path) -> None:
    # Pods created while no scheduler runs, and pods already bound, are picked up from
    # the store when it starts: the bound ones count, the pending ones get placed.
    async with running_master(tmp_path / "master", run_controllers=False) as handle:
        async with Client.from_kubeconfig(str(handle.kubeconfig)) as client:
            await client.request("POST", NODES, json=node("pi1", cpu="1"))
            await client.request("POST", NODES, json=node("pi2", cpu="1"))
            await client.request("POST", PODS, json=pod("old", cpu="700m", nodeName="pi1"))
            await client.request("POST", PODS, json=pod("new", cpu="700m"))
            scheduler = Scheduler(handle.running.api, workers=2)  # type: ignore[union-attr]
            task = asyncio.create_task(scheduler.run(), name="test-scheduler")
            try:
                assert await bound_to(client, "new") == "pi2"
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


async def test_the_master_runs_the_scheduler(master: MasterHandle) -> None:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as client:
        await client.request("POST", NODES, json=node("pi1"))
        await client.request("POST", PODS, json=pod("hello"))
        assert await bound_to(client, "hello") == "pi1"
