"""DaemonSets, Jobs and Endpoints against a real in-process master with every controller
running. Nodes are Node objects played by `FakeKubelets`, which binds the pods pinned to
them, reports them Running and Ready through the status subresource and confirms their
deletion, as kubelets would; Job pods are finished by hand through the status subresource.
Only the API is used: what is asserted is what kubectl would see."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bramble.client import Client
from bramble.kube.errors import Conflict, NotFound
from bramble.master.controllers import ControllerSettings
from tests.api.workload_sim import follow_pods, renew_lease
from tests.conftest import MasterHandle, running_master
from tests.node.agent_fixtures import until

Obj = dict[str, Any]

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
NODES = "/api/v1/nodes"
DAEMONSETS = f"/apis/apps/v1/namespaces/{NS}/daemonsets"
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"
SERVICES = f"/api/v1/namespaces/{NS}/services"
ENDPOINTS = f"/api/v1/namespaces/{NS}/endpoints"
EVENTS = f"/api/v1/namespaces/{NS}/events"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
WAIT = 30.0


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- a simulated kubelet per node ----------------------------------------------------------

def target_node(pod: Obj) -> str:
    if pod["spec"].get("nodeName"):
        return pod["spec"]["nodeName"]
    affinity = ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in affinity.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            if req.get("key") == "metadata.name" and req.get("operator") == "In":
                return req["values"][0]
    return ""


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def running(pod: Obj, ip: str, ready: bool = True) -> Obj:
    """The status a kubelet reports for a pod whose containers run (and pass readiness)."""
    when = stamp()
    value = "True" if ready else "False"
    conditions = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": when},
                  {"type": "Initialized", "status": "True", "lastTransitionTime": when},
                  {"type": "ContainersReady", "status": value, "lastTransitionTime": when},
                  {"type": "Ready", "status": value, "lastTransitionTime": when}]
    return {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
            "startTime": when, "conditions": conditions,
            "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "",
                                   "ready": ready, "started": True, "restartCount": 0,
                                   "state": {"running": {"startedAt": when}}}
                                  for c in pod["spec"]["containers"]]}


class FakeKubelets:
    """The kubelets of simulated nodes: each binds the pods pinned to it (the scheduler may
    be first: then the bind is a 409 and ignored), reports them Running and Ready, and
    finishes deleting them. Only for tests."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.nodes: set[str] = set()
        self._ips = (str(ip) for ip in ipaddress.ip_network("10.77.0.0/16").hosts())

    async def add_node(self, name: str, labels: dict[str, str] | None = None,
                       taints: list[Obj] | None = None) -> None:
        self.nodes.add(name)
        await self.client.request("POST", NODES, json={
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "kubernetes.io/arch": "arm64",
                                                  "kubernetes.io/os": "linux",
                                                  **(labels or {})}},
            "spec": {"taints": taints or []},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True",
                                       "reason": "KubeletReady", "lastHeartbeatTime": stamp(),
                                       "lastTransitionTime": stamp()}]}})

    async def remove_node(self, name: str) -> None:
        self.nodes.discard(name)
        await self.client.request("DELETE", f"{NODES}/{name}")

    async def _heartbeat(self) -> None:
        """Renew each node's Lease, so the node lifecycle controller sees it alive."""
        while True:
            for name in sorted(self.nodes):
                await renew_lease(self.client, name)
            await asyncio.sleep(1.0)

    async def run(self) -> None:
        beat = asyncio.create_task(self._heartbeat(), name="fake-kubelets-heartbeat")
        try:
            await follow_pods(self.client, self._handle, PODS)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _handle(self, pod: Obj) -> None:
        m = pod["metadata"]
        path = f"{PODS}/{m['name']}"
        node = target_node(pod)
        if node not in self.nodes:
            return
        try:
            if m.get("deletionTimestamp"):
                if pod["spec"].get("nodeName"):
                    await self.client.request("DELETE", path, json={
                        "gracePeriodSeconds": 0, "preconditions": {"uid": m["uid"]}})
            elif not pod["spec"].get("nodeName"):
                await self.client.request("POST", f"{path}/binding", json={
                    "apiVersion": "v1", "kind": "Binding", "metadata": {"name": m["name"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
            elif (pod.get("status") or {}).get("phase") in (None, "", "Pending"):
                # On the version seen only: a pod finished meanwhile stays finished.
                await self.client.request("PATCH", f"{path}/status", data=_json(
                    {"metadata": {"resourceVersion": m["resourceVersion"]},
                     "status": running(pod, next(self._ips))}), content_type=MERGE)
        except (NotFound, Conflict):
            pass  # gone or changed meanwhile: the watch brings the new version


def _json(obj: Any) -> bytes:
    import orjson
    return orjson.dumps(obj)


@contextlib.asynccontextmanager
async def kubelets(client: Client) -> AsyncIterator[FakeKubelets]:
    fake = FakeKubelets(client)
    task = asyncio.create_task(fake.run(), name="fake-kubelets")
    try:
        yield fake
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- helpers ----------------------------------------------------------------------------------

@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


@contextlib.asynccontextmanager
async def fast_jobs(tmp_path: Path) -> AsyncIterator[Client]:
    """A master whose Job back-off is short (a failed pod is replaced after 0.2 s, 0.4 s...)."""
    settings = ControllerSettings(job_pod_backoff=0.2, job_pod_backoff_max=1.0)
    async with running_master(tmp_path / "master", controllers=settings) as handle, \
            Client.from_kubeconfig(str(handle.kubeconfig)) as c:
        yield c


async def pods_where(client: Client, selector: str) -> list[Obj]:
    return (await client.request("GET", PODS, params={"labelSelector": selector}))["items"]


async def events_of(client: Client, obj: Obj) -> list[Obj]:
    body = await client.request("GET", EVENTS, params={
        "fieldSelector": f"involvedObject.uid={obj['metadata']['uid']}"})
    return body["items"]


def reasons(events: list[Obj]) -> dict[str, int]:
    found: dict[str, int] = {}
    for e in events:
        found[e["reason"]] = found.get(e["reason"], 0) + e.get("count", 1)
    return found


def condition(obj: Obj, type_: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == type_), None)


def active(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


async def finish_pod(client: Client, pod: Obj, phase: str, exit_code: int = 0) -> None:
    """What a kubelet reports when the pod's containers ended."""
    when = stamp()
    state = {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0
                            else "Error", "startedAt": when, "finishedAt": when}}
    status = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "False", "reason": "PodCompleted",
         "lastTransitionTime": when}],
        "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "",
                               "ready": False, "restartCount": 0, "state": state}
                              for c in pod["spec"]["containers"]]}
    await client.request("PATCH", f"{PODS}/{pod['metadata']['name']}/status",
                         data=_json({"status": status}), content_type=MERGE)


async def set_running(client: Client, pod: Obj, ip: str, ready: bool = True) -> None:
    await client.request("PATCH", f"{PODS}/{pod['metadata']['name']}/status",
                         data=_json({"status": running(pod, ip, ready)}), content_type=MERGE)


# --- Jobs ----------------------------------------------------------------------------------------

def job(name: str, **spec: Any) -> Obj:
    restart = spec.pop("restartPolicy", "Never")
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": {
                "restartPolicy": restart,
                "containers": [{"name": "work", "image": "busybox:1.36"}]}}, **spec}}


async def test_job_with_three_completions_two_at_a_time(tmp_path: Path) -> None:
    async with fast_jobs(tmp_path) as client:
        created = await client.request("POST", JOBS, json=job("calc", completions=3,
                                                              parallelism=2))
        uid = created["metadata"]["uid"]
        # The API generated the selector and the template labels.
        assert created["spec"]["selector"] == {
            "matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        selector = f"batch.kubernetes.io/controller-uid={uid}"
        finished = 0
        while finished < 3:
            pods = await until("a running pod to finish", lambda: _active(client, selector))
            # Never more than parallelism at once, never more than what is left to do.
            assert len(pods) <= min(2, 3 - finished)
            await finish_pod(client, pods[0], "Succeeded")
            finished += 1
        done = await until("the job to complete", lambda: _with_condition(
            client, f"{JOBS}/calc", "Complete"))
        status = done["status"]
        assert status["succeeded"] == 3 and "failed" not in status and "active" not in status
        assert status["ready"] == 0 and status["terminating"] == 0
        assert status["uncountedTerminatedPods"] == {}
        assert status["startTime"] <= status["completionTime"]
        interim = condition(done, "SuccessCriteriaMet")
        assert interim is not None and interim["status"] == "True"
        for c in (interim, condition(done, "Complete")):
            assert c["reason"] == "CompletionsReached"
            assert c["message"] == "Reached expected number of succeeded pods"
        pods = await pods_where(client, selector)
        assert len(pods) == 3
        for pod in pods:
            labels = pod["metadata"]["labels"]
            assert labels["batch.kubernetes.io/job-name"] == labels["job-name"] == "calc"
            assert labels["batch.kubernetes.io/controller-uid"] == labels["controller-uid"] == uid
            assert pod["metadata"]["generateName"] == "calc-"
            assert not pod["metadata"].get("finalizers")  # counted: the tracking one is gone
            [ref] = pod["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["uid"], ref["controller"]) == ("Job", uid, True)
        seen = reasons(await events_of(client, done))
        assert seen["SuccessfulCreate"] == 3 and seen["Completed"] == 1


async def _active(client: Client, selector: str) -> list[Obj]:
    return active(await pods_where(client, selector))


async def _with_condition(client: Client, path: str, type_: str) -> Obj | None:
    obj = await client.request("GET", path)
    c = condition(obj, type_)
    return obj if c is not None and c["status"] == "True" else None


async def test_job_that_exhausts_its_backoff_limit(tmp_path: Path) -> None:
    async with fast_jobs(tmp_path) as client:
        created = await client.request("POST", JOBS, json=job("flaky", backoffLimit=2))
        selector = f"batch.kubernetes.io/controller-uid={created['metadata']['uid']}"
        # backoffLimit 2: the third failure fails the Job (failed > backoffLimit).
        for _ in range(3):
            [pod] = await until("a replacement pod", lambda: _active(client, selector))
            await finish_pod(client, pod, "Failed", exit_code=1)
        failed = await until("the job to fail", lambda: _with_condition(
            client, f"{JOBS}/flaky", "Failed"))
        c = condition(failed, "Failed")
        assert c["reason"] == "BackoffLimitExceeded"
        assert c["message"] == "Job has reached the specified backoff limit"
        assert condition(failed, "FailureTarget")["reason"] == "BackoffLimitExceeded"
        assert failed["status"]["failed"] == 3 and "succeeded" not in failed["status"]
        assert "completionTime" not in failed["status"]
        assert not await _active(client, selector)
        seen = reasons(await events_of(client, failed))
        assert seen["SuccessfulCreate"] == 3 and seen["BackoffLimitExceeded"] == 1


async def test_job_past_its_active_deadline_is_stopped(tmp_path: Path) -> None:
    async with fast_jobs(tmp_path) as client:
        created = await client.request("POST", JOBS, json=job(
            "slow", parallelism=2, completions=4, activeDeadlineSeconds=2))
        selector = f"batch.kubernetes.io/controller-uid={created['metadata']['uid']}"
        pods = await until("two pods", lambda: _count(client, selector, 2))
        for i, pod in enumerate(pods):
            await set_running(client, pod, f"10.88.0.{i + 1}")
        failed = await until("the deadline", lambda: _with_condition(
            client, f"{JOBS}/slow", "Failed"))
        c = condition(failed, "Failed")
        assert (c["reason"], c["message"]) == ("DeadlineExceeded",
                                               "Job was active longer than specified deadline")
        # Its running pods were stopped and counted as failed.
        assert failed["status"]["failed"] == 2 and "active" not in failed["status"]
        assert await pods_where(client, selector) == []  # unbound: gone at once
        assert reasons(await events_of(client, failed))["DeadlineExceeded"] == 1


async def _count(client: Client, selector: str, n: int) -> list[Obj] | None:
    pods = await _active(client, selector)
    return pods if len(pods) == n else None


async def test_finished_job_is_deleted_after_its_ttl(tmp_path: Path) -> None:
    async with fast_jobs(tmp_path) as client:
        created = await client.request("POST", JOBS, json=job("once",
                                                              ttlSecondsAfterFinished=1))
        selector = f"batch.kubernetes.io/controller-uid={created['metadata']['uid']}"
        [pod] = await until("the pod", lambda: _active(client, selector))
        await finish_pod(client, pod, "Succeeded")
        await until("the job to complete", lambda: _with_condition(
            client, f"{JOBS}/once", "Complete"))
        await until("the job to be deleted", lambda: _gone(client, f"{JOBS}/once"))


async def _gone(client: Client, path: str) -> bool:
    try:
        await client.request("GET", path)
    except NotFound:
        return True
    return False


# --- DaemonSets ------------------------------------------------------------------------------

def daemonset(name: str, image: str = "busybox:1.36", **spec: Any) -> Obj:
    pod_spec = {"containers": [{"name": "agent", "image": image}],
                **spec.pop("pod_spec", {})}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
                     **spec}}


async def daemons(client: Client, name: str) -> dict[str, list[Obj]]:
    """The DaemonSet's pods that are not being deleted, by the node they are pinned to."""
    found: dict[str, list[Obj]] = {}
    for pod in active(await pods_where(client, f"app={name}")):
        found.setdefault(target_node(pod), []).append(pod)
    return found


def on_nodes(client: Client, name: str, nodes: set[str],
             check: Callable[[Obj], bool] = is_ready) -> Callable[[], Any]:
    """A check: exactly one pod on each of `nodes` (and none elsewhere), each passing
    `check`, and the status agreeing."""
    async def done() -> Any:
        found = await daemons(client, name)
        if set(found) != nodes or any(len(p) != 1 or not check(p[0]) for p in found.values()):
            return None
        ds = await client.request("GET", f"{DAEMONSETS}/{name}")
        status = ds.get("status") or {}
        n = len(nodes)
        if (status.get("desiredNumberScheduled"), status.get("currentNumberScheduled"),
                status.get("numberReady"), status.get("numberAvailable", 0)) != (n, n, n, n):
            return None
        return ds
    return done


async def test_daemonset_follows_nodes_labels_and_taints(tmp_path: Path) -> None:
    # The pods of a deleted node are the pod garbage collector's: a short quarantine here.
    settings = ControllerSettings(pod_gc_orphan_quarantine=0.5)
    async with running_master(tmp_path / "master", controllers=settings) as handle, \
            Client.from_kubeconfig(str(handle.kubeconfig)) as client, \
            kubelets(client) as fake:
        for name in ("pi1", "pi2"):
            await fake.add_node(name)
        await client.request("POST", DAEMONSETS, json=daemonset("logs"))
        ds = await until("a daemon on each node", on_nodes(client, "logs", {"pi1", "pi2"}))
        status = ds["status"]
        assert status["updatedNumberScheduled"] == 2 and status["numberMisscheduled"] == 0
        assert status["observedGeneration"] == ds["metadata"]["generation"]
        assert "numberUnavailable" not in status
        pod = (await daemons(client, "logs"))["pi1"][0]
        # Pinned by node affinity, the scheduler's way; tolerating what daemons tolerate.
        terms = pod["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                           "values": ["pi1"]}]}]
        tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
        assert ("node.kubernetes.io/unreachable", "NoExecute") in tolerated
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerated
        assert all("tolerationSeconds" not in t for t in pod["spec"]["tolerations"])
        assert pod["metadata"]["labels"]["controller-revision-hash"]

        # A node joins: it gets its daemon.
        await fake.add_node("pi3")
        await until("a daemon on the new node", on_nodes(client, "logs", {"pi1", "pi2", "pi3"}))

        # A NoSchedule taint keeps the running daemon (it is misscheduled now) ...
        await client.request("PATCH", f"{NODES}/pi2", data=_json({"spec": {"taints": [
            {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}),
            content_type=MERGE)

        async def misscheduled() -> Any:
            got = await client.request("GET", f"{DAEMONSETS}/logs")
            s = got["status"]
            return (s["desiredNumberScheduled"], s["numberMisscheduled"]) == (2, 1) and got
        await until("pi2 counted as misscheduled", misscheduled)
        assert set(await daemons(client, "logs")) == {"pi1", "pi2", "pi3"}
        # ... a NoExecute one evicts it.
        await client.request("PATCH", f"{NODES}/pi2", data=_json({"spec": {"taints": [
            {"key": "dedicated", "value": "db", "effect": "NoExecute"}]}}),
            content_type=MERGE)
        await until("the daemon off pi2", on_nodes(client, "logs", {"pi1", "pi3"}))

        # A node leaves: its daemon goes with it (once the pod garbage collector's quarantine
        # for returning nodes is over).
        await fake.remove_node("pi3")
        await until("the daemon of the removed node gone", on_nodes(client, "logs", {"pi1"}))
        seen = reasons(await events_of(client, ds))
        # It deleted the evicted daemon; the removed node's was the pod GC's.
        assert seen["SuccessfulCreate"] == 3 and seen["SuccessfulDelete"] == 1


async def test_daemonset_node_selector_follows_labels(client: Client) -> None:
    async with kubelets(client) as fake:
        await fake.add_node("pi1", labels={"disk": "ssd"})
        await fake.add_node("pi2")
        await client.request("POST", DAEMONSETS, json=daemonset(
            "cache", pod_spec={"nodeSelector": {"disk": "ssd"}}))
        await until("a daemon only on the ssd node", on_nodes(client, "cache", {"pi1"}))
        await client.request("PATCH", f"{NODES}/pi2", data=_json(
            {"metadata": {"labels": {"disk": "ssd"}}}), content_type=MERGE)
        await until("a daemon on the relabelled node", on_nodes(client, "cache",
                                                                 {"pi1", "pi2"}))
        await client.request("PATCH", f"{NODES}/pi1", data=_json(
            {"metadata": {"labels": {"disk": None}}}), content_type=MERGE)
        await until("no daemon where the label went", on_nodes(client, "cache", {"pi2"}))


async def test_daemonset_rolling_update_one_node_at_a_time(client: Client) -> None:
    nodes = {"pi1", "pi2", "pi3"}
    async with kubelets(client) as fake:
        for name in sorted(nodes):
            await fake.add_node(name)
        await client.request("POST", DAEMONSETS, json=daemonset("agent", "agent:1"))
        await until("version 1 everywhere", on_nodes(client, "agent", nodes))
        # Watch the rollout: with maxUnavailable 1 at most one node lacks a ready daemon.
        worst = 0
        stop = asyncio.Event()

        async def observe() -> None:
            nonlocal worst
            while not stop.is_set():
                found = await daemons(client, "agent")
                lacking = sum(1 for n in nodes if not any(is_ready(p) for p in found.get(n, [])))
                worst = max(worst, lacking)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(observe())
        await client.request("PATCH", f"{DAEMONSETS}/agent", data=_json({"spec": {"template": {
            "spec": {"containers": [{"name": "agent", "image": "agent:2"}]}}}}),
            content_type=STRATEGIC)

        def new_image(pod: Obj) -> bool:
            return is_ready(pod) and pod["spec"]["containers"][0]["image"] == "agent:2"
        ds = await until("version 2 everywhere", on_nodes(client, "agent", nodes, new_image))
        stop.set()
        await watcher
        assert worst <= 1
        assert ds["status"]["updatedNumberScheduled"] == 3
        assert ds["status"]["observedGeneration"] == ds["metadata"]["generation"] == 2
        hashes = {p[0]["metadata"]["labels"]["controller-revision-hash"]
                  for p in (await daemons(client, "agent")).values()}
        assert len(hashes) == 1


async def test_daemonset_surge_update_never_leaves_a_node_without_a_daemon(
        client: Client) -> None:
    nodes = {"pi1", "pi2"}
    async with kubelets(client) as fake:
        for name in sorted(nodes):
            await fake.add_node(name)
        await client.request("POST", DAEMONSETS, json=daemonset(
            "net", "net:1", updateStrategy={"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": 1, "maxUnavailable": 0}}))
        await until("version 1 everywhere", on_nodes(client, "net", nodes))
        worst = 0
        stop = asyncio.Event()

        async def observe() -> None:
            nonlocal worst
            while not stop.is_set():
                found = await daemons(client, "net")
                lacking = sum(1 for n in nodes if not any(is_ready(p) for p in found.get(n, [])))
                worst = max(worst, lacking)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(observe())
        await client.request("PATCH", f"{DAEMONSETS}/net", data=_json({"spec": {"template": {
            "spec": {"containers": [{"name": "agent", "image": "net:2"}]}}}}),
            content_type=STRATEGIC)
        await until("version 2 everywhere", on_nodes(
            client, "net", nodes,
            lambda p: is_ready(p) and p["spec"]["containers"][0]["image"] == "net:2"))
        stop.set()
        await watcher
        assert worst == 0  # the new daemon was ready before the old one went


async def test_daemonset_on_delete_replaces_only_deleted_pods(client: Client) -> None:
    async with kubelets(client) as fake:
        for name in ("pi1", "pi2"):
            await fake.add_node(name)
        await client.request("POST", DAEMONSETS, json=daemonset(
            "od", "od:1", updateStrategy={"type": "OnDelete"}))
        await until("version 1", on_nodes(client, "od", {"pi1", "pi2"}))
        await client.request("PATCH", f"{DAEMONSETS}/od", data=_json({"spec": {"template": {
            "spec": {"containers": [{"name": "agent", "image": "od:2"}]}}}}),
            content_type=STRATEGIC)

        async def observed() -> Any:
            got = await client.request("GET", f"{DAEMONSETS}/od")
            return got["status"].get("observedGeneration") == 2 and got
        ds = await until("the new template observed", observed)
        assert "updatedNumberScheduled" not in ds["status"]  # nothing replaced by itself
        old = (await daemons(client, "od"))["pi1"][0]
        await client.request("DELETE", f"{PODS}/{old['metadata']['name']}")

        def image(pod: Obj) -> str:
            return pod["spec"]["containers"][0]["image"]
        found = await until("pi1 replaced with version 2", lambda: _replaced(client, old))
        assert image(found["pi1"][0]) == "od:2" and image(found["pi2"][0]) == "od:1"


async def _replaced(client: Client, old: Obj) -> dict[str, list[Obj]] | None:
    found = await daemons(client, "od")
    pods = found.get("pi1") or []
    return found if pods and pods[0]["metadata"]["uid"] != old["metadata"]["uid"] \
        and is_ready(pods[0]) else None


# --- Endpoints -------------------------------------------------------------------------------

def pod(name: str, app: str, ports: list[Obj] | None = None, **meta: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": app}, **meta},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                     "ports": ports or []}]}}


async def endpoints_of(client: Client, name: str) -> Obj | None:
    try:
        return await client.request("GET", f"{ENDPOINTS}/{name}")
    except NotFound:
        return None


def addresses(ep: Obj) -> list[tuple[str, tuple, tuple]]:
    """(kind, pod names, ports) per subset and readiness, sorted."""
    found = []
    for subset in ep.get("subsets") or []:
        ports = tuple(sorted((p.get("name", ""), p["port"]) for p in subset.get("ports") or []))
        for kind in ("addresses", "notReadyAddresses"):
            names = tuple(sorted(a["targetRef"]["name"] for a in subset.get(kind) or []))
            if names:
                found.append((kind, names, ports))
    return sorted(found)


async def test_endpoints_track_ready_pods_and_named_ports(client: Client) -> None:
    await client.request("POST", SERVICES, json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web",
                                                            "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9090, "targetPort": 9100}]}})
    http = [{"name": "http", "containerPort": 8080}]
    made = {}
    for name, ports in (("a", http), ("b", [{"name": "http", "containerPort": 8081}]),
                        ("c", None), ("d", http), ("e", http)):
        made[name] = await client.request("POST", PODS, json=pod(
            name, "web", ports, **({"finalizers": ["test.bramble.io/hold"]}
                                   if name == "e" else {})))
    await set_running(client, made["a"], "10.1.0.1")
    await set_running(client, made["b"], "10.1.0.2", ready=False)
    await set_running(client, made["c"], "10.1.0.3")  # no port named http
    # d has no IP yet: not an endpoint. e is terminating: not an endpoint.
    await set_running(client, made["e"], "10.1.0.5")
    await client.request("DELETE", f"{PODS}/e")

    # Repacked as Kubernetes does: one subset per set of addresses behind the same port.
    want = [("addresses", ("a",), (("http", 8080),)),
            ("addresses", ("a", "c"), (("metrics", 9100),)),
            ("notReadyAddresses", ("b",), (("http", 8081),)),
            ("notReadyAddresses", ("b",), (("metrics", 9100),))]

    seen: list[Any] = [None]

    async def current() -> Obj | None:
        ep = seen[0] = await endpoints_of(client, "web")
        return ep if ep is not None and addresses(ep) == want else None
    ep = await until("the endpoints", current, describe=lambda: seen[0])
    assert ep["metadata"]["labels"] == {"tier": "front"}
    [a] = [s for s in ep["subsets"] if s.get("ports") == [
        {"name": "http", "port": 8080, "protocol": "TCP"}]]
    assert a["addresses"] == [{"ip": "10.1.0.1", "targetRef": {
        "kind": "Pod", "namespace": NS, "name": "a", "uid": made["a"]["metadata"]["uid"]}}]

    # b becomes ready: it joins the metrics subset; its http port is its own.
    await set_running(client, made["b"], "10.1.0.2", ready=True)
    want = [("addresses", ("a",), (("http", 8080),)),
            ("addresses", ("a", "b", "c"), (("metrics", 9100),)),
            ("addresses", ("b",), (("http", 8081),))]
    rv = (await until("b ready", current))["metadata"]["resourceVersion"]
    # Nothing changed for the service: no write (the resourceVersion stays).
    await client.request("PATCH", f"{PODS}/c", data=_json(
        {"metadata": {"annotations": {"note": "x"}}}), content_type=MERGE)
    await asyncio.sleep(0.3)
    assert (await endpoints_of(client, "web"))["metadata"]["resourceVersion"] == rv

    # The Service goes: its Endpoints go with it.
    await client.request("DELETE", f"{SERVICES}/web")
    await until("the endpoints deleted", lambda: _gone(client, f"{ENDPOINTS}/web"))
    await client.request("PATCH", f"{PODS}/e", data=_json({"metadata": {"finalizers": None}}),
                         content_type=MERGE)


async def test_endpoints_publish_not_ready_and_leave_user_endpoints_alone(
        client: Client) -> None:
    await client.request("POST", SERVICES, json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "peers"},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": {"app": "peers"}, "ports": [{"port": 7000}]}})
    p = await client.request("POST", PODS, json=pod("p1", "peers"))
    await set_running(client, p, "10.2.0.1", ready=False)

    async def published() -> Obj | None:
        ep = await endpoints_of(client, "peers")
        return ep if ep is not None and addresses(ep) == [
            ("addresses", ("p1",), (("", 7000),))] else None
    ep = await until("not-ready pod published", published)
    assert ep["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}

    # A Service without a selector: its Endpoints are the user's, before and after it goes.
    await client.request("POST", SERVICES, json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "external"},
        "spec": {"ports": [{"port": 5432}]}})
    mine = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external"},
            "subsets": [{"addresses": [{"ip": "192.168.1.50"}], "ports": [{"port": 5432}]}]}
    await client.request("POST", ENDPOINTS, json=mine)
    await client.request("DELETE", f"{SERVICES}/external")
    await client.request("DELETE", f"{SERVICES}/peers")
    await until("the managed endpoints deleted", lambda: _gone(client, f"{ENDPOINTS}/peers"))
    kept = await endpoints_of(client, "external")
    assert kept is not None and kept["subsets"][0]["addresses"] == [{"ip": "192.168.1.50"}]


# --- a master restart --------------------------------------------------------------------------

async def test_master_restart_creates_no_duplicates(tmp_path: Path) -> None:
    settings = ControllerSettings(job_pod_backoff=0.2, job_pod_backoff_max=1.0)
    data = tmp_path / "master"
    async with running_master(data, controllers=settings) as handle, \
            Client.from_kubeconfig(str(handle.kubeconfig)) as client:
        async with kubelets(client) as fake:
            for name in ("pi1", "pi2"):
                await fake.add_node(name)
            await client.request("POST", DAEMONSETS, json=daemonset("logs"))
            await until("daemons", on_nodes(client, "logs", {"pi1", "pi2"}))
        created = await client.request("POST", JOBS, json=job("batch", completions=4,
                                                              parallelism=2))
        selector = f"batch.kubernetes.io/controller-uid={created['metadata']['uid']}"
        before = await until("two job pods", lambda: _count(client, selector, 2))
        await finish_pod(client, before[0], "Succeeded")
        await until("a replacement", lambda: _count(client, selector, 2))
        job_pods = {p["metadata"]["name"] for p in await pods_where(client, selector)}
        daemon_pods = {p["metadata"]["name"] for p in await pods_where(client, "app=logs")}
    async with running_master(data, controllers=settings) as handle, \
            Client.from_kubeconfig(str(handle.kubeconfig)) as client:
        async with kubelets(client) as fake:
            fake.nodes |= {"pi1", "pi2"}
            # Let every controller look at everything once more.
            await asyncio.sleep(1.0)
            assert {p["metadata"]["name"] for p in await pods_where(client, selector)} \
                == job_pods
            assert {p["metadata"]["name"] for p in await pods_where(client, "app=logs")} \
                == daemon_pods
            got = await client.request("GET", f"{JOBS}/batch")
            assert got["status"]["succeeded"] == 1 and got["status"]["active"] == 2
            for pod in await _active(client, selector):
                await finish_pod(client, pod, "Succeeded")
            last = await until("the last pod", lambda: _count(client, selector, 1))
            await finish_pod(client, last[0], "Succeeded")
            seen: list[Any] = [None]

            async def complete() -> Any:
                seen[0] = (await client.request("GET", f"{JOBS}/batch"),
                           await pods_where(client, selector))
                return await _with_condition(client, f"{JOBS}/batch", "Complete")
            done = await until("complete", complete, describe=lambda: seen[0])
            assert done["status"]["succeeded"] == 4
            assert len(await pods_where(client, selector)) == 4
