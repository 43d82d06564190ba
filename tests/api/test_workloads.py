"""ReplicaSets and Deployments against a real in-process master with all controllers, pods
made Ready by a simulated kubelet (tests/api/workload_sim.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bramble.client import Client
from bramble.master.controllers.rollout import compute_hash
from tests.api.workload_sim import sim_kubelet
from tests.conftest import MasterHandle, running_master
from tests.node.agent_fixtures import until

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
RSS = f"/apis/apps/v1/namespaces/{NS}/replicasets"
DEPLOYS = f"/apis/apps/v1/namespaces/{NS}/deployments"
EVENTS = f"/api/v1/namespaces/{NS}/events"
MERGE = "application/merge-patch+json"

Obj = dict[str, Any]


@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


def template(app: str, image: str = "busybox:1.36") -> Obj:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def replica_set(name: str, replicas: int, **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(name), **spec}}


def deployment(name: str, replicas: int, image: str = "busybox:1.36", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(name, image), **spec}}


async def pods_of(client: Client, app: str) -> list[Obj]:
    body = await client.request("GET", PODS, params={"labelSelector": f"app={app}"})
    return body["items"]


def active(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and p["status"].get("phase") not in ("Succeeded", "Failed")]


def ready(pod: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions") or [])


def image_of(obj: Obj) -> str:
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return spec["containers"][0]["image"]


async def events_of(client: Client, obj: Obj) -> list[Obj]:
    body = await client.request("GET", EVENTS, params={
        "fieldSelector": f"involvedObject.uid={obj['metadata']['uid']}"})
    return body["items"]


async def get(client: Client, path: str) -> Obj:
    return await client.request("GET", path)


# --- ReplicaSet -----------------------------------------------------------------------------

async def test_replicaset_keeps_its_replicas(client: Client) -> None:
    async with sim_kubelet(client):
        rs = await client.request("POST", RSS, json=replica_set("web", 3))

        async def three_ready() -> Obj | None:
            current = await get(client, f"{RSS}/web")
            s = current.get("status") or {}
            return current if (s.get("replicas"), s.get("readyReplicas"),
                               s.get("availableReplicas")) == (3, 3, 3) else None

        current = await until("3 ready replicas", three_ready)
        assert current["status"]["fullyLabeledReplicas"] == 3
        assert current["status"]["observedGeneration"] == 1
        pods = await pods_of(client, "web")
        assert len(pods) == 3
        for pod in pods:
            assert pod["metadata"]["name"].startswith("web-")
            assert pod["metadata"]["generateName"] == "web-"
            [ref] = pod["metadata"]["ownerReferences"]
            assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                           "uid": rs["metadata"]["uid"], "controller": True,
                           "blockOwnerDeletion": True}
        messages = sorted(e["message"] for e in await events_of(client, rs)
                          if e["reason"] == "SuccessfulCreate")
        assert messages == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)

        # A pod that goes is replaced.
        victim = pods[0]["metadata"]["name"]
        await client.request("DELETE", f"{PODS}/{victim}")

        async def replaced() -> bool:
            names = {p["metadata"]["name"] for p in active(await pods_of(client, "web"))}
            return len(names) == 3 and victim not in names

        await until("a replacement pod", replaced)

        # Scaling down deletes the surplus, with events.
        await client.request("PATCH", f"{RSS}/web", json={"spec": {"replicas": 1}},
                             content_type=MERGE)

        async def one_left() -> list[Obj] | None:
            pods = await pods_of(client, "web")
            return pods if len(pods) == 1 else None

        await until("one pod left", one_left)
        deleted = [e for e in await events_of(client, rs) if e["reason"] == "SuccessfulDelete"]
        assert len(deleted) == 2 and all(e["message"].startswith("Deleted pod: web-")
                                         for e in deleted)


async def test_replicaset_adopts_orphans_and_releases_strays(client: Client) -> None:
    async with sim_kubelet(client):
        await client.request("POST", PODS, json={
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "orphan", "labels": {"app": "adopt"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}})
        rs = await client.request("POST", RSS, json=replica_set("adopt", 2))

        async def two_owned() -> list[Obj] | None:
            pods = await pods_of(client, "adopt")
            owned = [p for p in pods if (p["metadata"].get("ownerReferences") or [{}])[0].get(
                "uid") == rs["metadata"]["uid"]]
            return owned if len(pods) == 2 and len(owned) == 2 else None

        owned = await until("the orphan adopted and one pod made", two_owned)
        assert "orphan" in {p["metadata"]["name"] for p in owned}
        # Relabelled, the pod is let go (no ownerReference) and replaced.
        await client.request("PATCH", f"{PODS}/orphan",
                             json={"metadata": {"labels": {"app": "elsewhere"}}},
                             content_type=MERGE)

        async def released() -> bool:
            pod = await get(client, f"{PODS}/orphan")
            return not pod["metadata"].get("ownerReferences") and len(
                active(await pods_of(client, "adopt"))) == 2

        await until("the relabelled pod released and replaced", released)


async def test_replicaset_min_ready_seconds(client: Client) -> None:
    async with sim_kubelet(client):
        await client.request("POST", RSS, json=replica_set("slow", 2, minReadySeconds=2))

        async def status() -> Obj:
            return (await get(client, f"{RSS}/slow")).get("status") or {}

        await until("2 ready", lambda: _has(status, readyReplicas=2))
        # Ready, not yet available; nothing else changes, yet it becomes available: the
        # controller looks again when minReadySeconds have passed.
        await until("2 available", lambda: _has(status, availableReplicas=2))


async def _has(status: Any, **expected: int) -> bool:
    s = await status()
    return all(s.get(k) == v for k, v in expected.items())


# --- Deployment -----------------------------------------------------------------------------

async def wait_rolled_out(client: Client, name: str, replicas: int,
                          within: float = 60.0) -> Obj:
    """As `kubectl rollout status` decides it: observed, all updated, none old, available."""
    async def done() -> Obj | None:
        d = await get(client, f"{DEPLOYS}/{name}")
        s = d.get("status") or {}
        ok = (s.get("observedGeneration", 0) >= d["metadata"]["generation"]
              and s.get("updatedReplicas", 0) == replicas and s.get("replicas", 0) == replicas
              and s.get("availableReplicas", 0) == replicas)
        return d if ok else None

    return await until(f"deployment {name} rolled out with {replicas}", done, within=within)


def condition(d: Obj, type_: str) -> Obj:
    return next(c for c in d["status"]["conditions"] if c["type"] == type_)


async def replica_sets_of(client: Client, app: str) -> list[Obj]:
    body = await client.request("GET", RSS, params={"labelSelector": f"app={app}"})
    return body["items"]


async def set_image(client: Client, name: str, image: str) -> None:
    await client.request("PATCH", f"{DEPLOYS}/{name}", json={"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": image}]}}}},
        content_type="application/strategic-merge-patch+json")


async def test_deployment_with_three_replicas(client: Client) -> None:
    async with sim_kubelet(client):
        created = await client.request("POST", DEPLOYS, json=deployment("web", 3))
        d = await wait_rolled_out(client, "web", 3)
        assert d["status"]["readyReplicas"] == 3 and "unavailableReplicas" not in d["status"]
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        [rs] = await replica_sets_of(client, "web")
        pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{pod_hash}"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web",
                                                         "pod-template-hash": pod_hash}
        assert rs["metadata"]["annotations"] == {
            "deployment.kubernetes.io/revision": "1",
            "deployment.kubernetes.io/desired-replicas": "3",
            "deployment.kubernetes.io/max-replicas": "4"}  # 3 + 25% surge rounded up
        assert rs["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
        pods = await pods_of(client, "web")
        assert len(pods) == 3 and all(p["metadata"]["labels"]["pod-template-hash"] == pod_hash
                                      for p in pods)
        available, progressing = condition(d, "Available"), condition(d, "Progressing")
        assert (available["status"], available["reason"]) == ("True",
                                                              "MinimumReplicasAvailable")
        assert (progressing["status"], progressing["reason"]) == ("True",
                                                                  "NewReplicaSetAvailable")
        assert progressing["message"] == \
            f'ReplicaSet "web-{pod_hash}" has successfully progressed.'
        messages = [e["message"] for e in await events_of(client, d)]
        assert f"Scaled up replica set web-{pod_hash} from 0 to 3" in messages


async def test_rolling_update_keeps_enough_pods_ready(client: Client) -> None:
    """4 replicas, maxSurge 1, maxUnavailable 1: at every step (every pod change) at least
    4 - 1 = 3 pods are ready and not being deleted."""
    async with sim_kubelet(client, ready_delay=0.1):
        await client.request("POST", DEPLOYS, json=deployment(
            "roll", 4, strategy={"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}))
        await wait_rolled_out(client, "roll", 4)
        listing = await client.request("GET", PODS, params={"labelSelector": "app=roll"})
        pods = {p["metadata"]["name"]: p for p in listing["items"]}
        lowest = [4]
        seen_images: set[str] = set()

        async def follow() -> None:
            async for kind, pod in client.watch(PODS, {
                    "labelSelector": "app=roll",
                    "resourceVersion": listing["metadata"]["resourceVersion"]}):
                if kind == "DELETED":
                    pods.pop(pod["metadata"]["name"], None)
                elif kind in ("ADDED", "MODIFIED"):
                    pods[pod["metadata"]["name"]] = pod
                    seen_images.add(image_of(pod))
                serving = [p for p in pods.values() if ready(p) and p in active([p])]
                lowest[0] = min(lowest[0], len(serving))

        watcher = asyncio.create_task(follow())
        try:
            await set_image(client, "roll", "busybox:2")
            d = await wait_rolled_out(client, "roll", 4)

            async def only_new() -> bool:
                return {image_of(p) for p in pods.values()} == {"busybox:2"} and len(pods) == 4

            await until("the old pods gone", only_new)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        assert lowest[0] >= 3
        assert "busybox:2" in seen_images
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        rss = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]:
               rs["spec"]["replicas"] for rs in await replica_sets_of(client, "roll")}
        assert rss == {"1": 0, "2": 4}


async def test_recreate_stops_old_pods_before_new_ones_start(client: Client) -> None:
    async with sim_kubelet(client, ready_delay=0.1):
        await client.request("POST", DEPLOYS, json=deployment(
            "re", 3, strategy={"type": "Recreate"}))
        await wait_rolled_out(client, "re", 3)
        listing = await client.request("GET", PODS, params={"labelSelector": "app=re"})
        pods = {p["metadata"]["name"]: p for p in listing["items"]}
        overlaps: list[set[str]] = []

        async def follow() -> None:
            async for kind, pod in client.watch(PODS, {
                    "labelSelector": "app=re",
                    "resourceVersion": listing["metadata"]["resourceVersion"]}):
                if kind == "DELETED":
                    pods.pop(pod["metadata"]["name"], None)
                else:
                    pods[pod["metadata"]["name"]] = pod
                images = {image_of(p) for p in pods.values()}
                if len(images) > 1:
                    overlaps.append(images)

        watcher = asyncio.create_task(follow())
        try:
            await set_image(client, "re", "busybox:2")
            await wait_rolled_out(client, "re", 3)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        assert overlaps == []  # never old and new pods at the same time
        assert {image_of(p) for p in await pods_of(client, "re")} == {"busybox:2"}


async def test_scale_to_zero_and_back(client: Client) -> None:
    async with sim_kubelet(client):
        await client.request("POST", DEPLOYS, json=deployment("zero", 3))
        await wait_rolled_out(client, "zero", 3)
        await client.request("PATCH", f"{DEPLOYS}/zero/scale", json={"spec": {"replicas": 0}},
                             content_type=MERGE)
        d = await wait_rolled_out(client, "zero", 0)

        async def no_pods() -> bool:
            return not await pods_of(client, "zero")

        await until("no pods", no_pods)
        assert condition(d, "Available")["status"] == "True"
        await client.request("PATCH", f"{DEPLOYS}/zero/scale", json={"spec": {"replicas": 2}},
                             content_type=MERGE)
        await wait_rolled_out(client, "zero", 2)
        [rs] = await replica_sets_of(client, "zero")  # the same ReplicaSet, resized
        assert rs["spec"]["replicas"] == 2
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "2"


async def test_pause_and_resume(client: Client) -> None:
    async with sim_kubelet(client):
        await client.request("POST", DEPLOYS, json=deployment("pz", 2))
        await wait_rolled_out(client, "pz", 2)
        await client.request("PATCH", f"{DEPLOYS}/pz", json={"spec": {"paused": True}},
                             content_type=MERGE)
        await set_image(client, "pz", "busybox:2")

        async def paused() -> Obj | None:
            d = await get(client, f"{DEPLOYS}/pz")
            ok = d["status"].get("observedGeneration") == d["metadata"]["generation"] and \
                condition(d, "Progressing")["reason"] == "DeploymentPaused"
            return d if ok else None

        d = await until("the pause observed", paused)
        assert condition(d, "Progressing")["status"] == "Unknown"
        assert condition(d, "Progressing")["message"] == "Deployment is paused"
        assert len(await replica_sets_of(client, "pz")) == 1  # no rollout while paused
        await client.request("PATCH", f"{DEPLOYS}/pz", json={"spec": {"paused": False}},
                             content_type=MERGE)
        d = await wait_rolled_out(client, "pz", 2)
        assert {image_of(p) for p in active(await pods_of(client, "pz"))} == {"busybox:2"}
        reasons = {e["reason"] for e in await events_of(client, d)}
        assert "ScalingReplicaSet" in reasons


async def test_progress_deadline_exceeded(client: Client) -> None:
    never = "registry.invalid/never-ready:1"
    async with sim_kubelet(client, ready=lambda pod: image_of(pod) != never):
        await client.request("POST", DEPLOYS, json=deployment(
            "stuck", 2, progressDeadlineSeconds=2))
        await wait_rolled_out(client, "stuck", 2)
        await set_image(client, "stuck", never)

        async def timed_out() -> Obj | None:
            d = await get(client, f"{DEPLOYS}/stuck")
            cond = condition(d, "Progressing")
            return d if cond["reason"] == "ProgressDeadlineExceeded" else None

        d = await until("the deadline exceeded", timed_out)
        cond = condition(d, "Progressing")
        new = [rs for rs in await replica_sets_of(client, "stuck")
               if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"]
        assert cond["status"] == "False"
        assert cond["message"] == \
            f'ReplicaSet "{new[0]["metadata"]["name"]}" has timed out progressing.'
        # The old pods keep serving: maxUnavailable 25% of 2 rounds down to 0.
        assert condition(d, "Available")["status"] == "True"


async def test_scaling_mid_rollout_is_proportional(client: Client) -> None:
    never = "registry.invalid/never-ready:1"
    async with sim_kubelet(client, ready=lambda pod: image_of(pod) != never):
        await client.request("POST", DEPLOYS, json=deployment(
            "prop", 10, strategy={"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}))
        await wait_rolled_out(client, "prop", 10)
        await set_image(client, "prop", never)

        async def stalled() -> dict[str, int] | None:
            # 10 + 3 surge: new 5 (not ready), old 8 (10 - 2 unavailable).
            sizes = {rs["spec"]["template"]["spec"]["containers"][0]["image"]:
                     rs["spec"]["replicas"] for rs in await replica_sets_of(client, "prop")}
            return sizes if sizes == {"busybox:1.36": 8, never: 5} else None

        await until("the rollout stalled at 8 old + 5 new", stalled)
        await client.request("PATCH", f"{DEPLOYS}/prop/scale",
                             json={"spec": {"replicas": 20}}, content_type=MERGE)

        async def grown() -> dict[str, int] | None:
            # 20 + 3 = 23 allowed, 13 there: +10 shared 8:5 -> old round(8 * 23/13) = 14
            # (+6), new the other +4 -> 9.
            sizes = {rs["spec"]["template"]["spec"]["containers"][0]["image"]:
                     rs["spec"]["replicas"] for rs in await replica_sets_of(client, "prop")}
            return sizes if sum(sizes.values()) == 23 else None

        assert await until("proportional growth", grown) == {"busybox:1.36": 14, never: 9}


async def test_hash_collision_bumps_collision_count(client: Client) -> None:
    # Paused from the start: nothing is rolled out, so the test can take the name first.
    await client.request("POST", DEPLOYS, json=deployment("col", 1, paused=True))
    d = await get(client, f"{DEPLOYS}/col")
    pod_hash = compute_hash(d["spec"]["template"], None)
    squatter = replica_set(f"col-{pod_hash}", 0)
    squatter["spec"]["selector"] = {"matchLabels": {"app": "squat"}}
    squatter["spec"]["template"]["metadata"]["labels"] = {"app": "squat"}
    await client.request("POST", RSS, json=squatter)
    async with sim_kubelet(client):
        await client.request("PATCH", f"{DEPLOYS}/col", json={"spec": {"paused": False}},
                             content_type=MERGE)
        d = await wait_rolled_out(client, "col", 1)
    assert d["status"]["collisionCount"] == 1
    [rs] = await replica_sets_of(client, "col")
    assert rs["metadata"]["name"] == f"col-{compute_hash(d['spec']['template'], 1)}"
    squatted = await get(client, f"{RSS}/col-{pod_hash}")
    assert not squatted["metadata"].get("ownerReferences")  # never adopted: not selected


async def test_master_restart_mid_rollout(tmp_path: Path) -> None:
    """Stopped mid-rollout, the master finishes it after a restart on the same data dir,
    with exactly the replicas asked for and no duplicate ReplicaSets."""
    data = tmp_path / "master"
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    async with running_master(data) as m, \
            Client.from_kubeconfig(str(m.kubeconfig)) as client, \
            sim_kubelet(client, ready_delay=0.3):
        await client.request("POST", DEPLOYS, json=deployment("mid", 6, strategy=strategy))
        await wait_rolled_out(client, "mid", 6)
        await set_image(client, "mid", "busybox:2")

        async def halfway() -> bool:
            d = await get(client, f"{DEPLOYS}/mid")
            return 2 <= (d["status"].get("updatedReplicas") or 0) < 6

        await until("the rollout halfway", halfway, interval=0.02)
    async with running_master(data) as m, \
            Client.from_kubeconfig(str(m.kubeconfig)) as client, \
            sim_kubelet(client, ready_delay=0.3):
        d = await wait_rolled_out(client, "mid", 6)

        async def settled() -> list[Obj] | None:
            pods = await pods_of(client, "mid")
            return pods if len(pods) == 6 else None

        pods = await until("only the new pods left", settled)
        assert {image_of(p) for p in pods} == {"busybox:2"}
        rss = await replica_sets_of(client, "mid")
        assert sorted((rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                       rs["spec"]["replicas"], rs["status"].get("replicas", 0))
                      for rs in rss) == [("1", 0, 0), ("2", 6, 6)]
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


async def test_refused_pods_show_as_replica_failure(client: Client) -> None:
    # A template the API accepts but whose pods it refuses: a node named while a
    # scheduling gate is still closed.
    body = deployment("gated", 2)
    body["spec"]["template"]["spec"].update(nodeName="sim-node",
                                            schedulingGates=[{"name": "wait"}])
    await client.request("POST", DEPLOYS, json=body)

    async def failing() -> Obj | None:
        d = await get(client, f"{DEPLOYS}/gated")
        conds = [c for c in d["status"].get("conditions") or []
                 if c["type"] == "ReplicaFailure"]
        return d if conds else None

    d = await until("the failure reported", failing)
    cond = condition(d, "ReplicaFailure")
    assert (cond["status"], cond["reason"]) == ("True", "FailedCreate")
    assert "schedulingGates" in cond["message"]
    [rs] = await replica_sets_of(client, "gated")
    [rs_cond] = rs["status"]["conditions"]
    assert (rs_cond["type"], rs_cond["reason"]) == ("ReplicaFailure", "FailedCreate")
    failed = [e for e in await events_of(client, rs) if e["reason"] == "FailedCreate"]
    assert failed and failed[0]["type"] == "Warning"
    assert failed[0]["message"].startswith("Error creating: ")
    async with sim_kubelet(client):
        await client.request("PATCH", f"{DEPLOYS}/gated", json={"spec": {"template": {
            "spec": {"schedulingGates": None}}}}, content_type=MERGE)
        d = await wait_rolled_out(client, "gated", 2)

        async def healed() -> bool:
            d = await get(client, f"{DEPLOYS}/gated")
            return all(c["type"] != "ReplicaFailure" for c in d["status"]["conditions"])

        await until("the failure condition gone", healed)
