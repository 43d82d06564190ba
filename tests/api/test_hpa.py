"""HorizontalPodAutoscalers against a real in-process master with all controllers: pods made
Ready by a simulated kubelet (tests/api/workload_sim.py), usage posted to the usage endpoint
as a node agent posts it - the figures `kubectl top pods` shows and the autoscaler reads.

The master runs with a short sync period and stabilisation window (ControllerSettings, as
`bramble master --hpa-sync-period/--hpa-downscale-stabilization` set them), and without
the cpu initialisation period, so that freshly Ready simulated pods count at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bramble.client import Client
from bramble.kube.errors import Conflict, Invalid
from bramble.master.api import conversion
from bramble.master.controllers import ControllerSettings
from tests.api.workload_sim import sim_kubelet
from tests.conftest import MasterHandle, running_master
from tests.node.agent_fixtures import until

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOYS = f"/apis/apps/v1/namespaces/{NS}/deployments"
RSS = f"/apis/apps/v1/namespaces/{NS}/replicasets"
RCS = f"/api/v1/namespaces/{NS}/replicationcontrollers"
HPAS = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
HPAS_V1 = f"/apis/autoscaling/v1/namespaces/{NS}/horizontalpodautoscalers"
EVENTS = f"/api/v1/namespaces/{NS}/events"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
NODE = "sim-node"

Obj = dict[str, Any]

SETTINGS = ControllerSettings(hpa_sync_period=0.3, hpa_downscale_stabilization=1.5,
                              hpa_cpu_initialization_period=0.0)


@pytest.fixture
async def master(tmp_path: Path) -> AsyncIterator[MasterHandle]:
    async with running_master(tmp_path / "master", controllers=SETTINGS) as handle:
        yield handle


@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


def workload(kind: str, name: str, replicas: int = 1, cpu: str = "100m") -> Obj:
    template = {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                         "resources": {"requests": {"cpu": cpu,
                                                                    "memory": "64Mi"}}}]}}
    if kind == "ReplicationController":
        return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name},
                "spec": {"replicas": replicas, "selector": {"app": name},
                         "template": template}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template}}


def autoscaler(name: str, target: str = "web", kind: str = "Deployment",
               api_version: str = "apps/v1", **spec: Any) -> Obj:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": api_version, "kind": kind,
                                        "name": target},
                     "minReplicas": 1, "maxReplicas": 4,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 50}}}], **spec}}


class Usage:
    """Posts, as the node agent would, `cpu` millicores per pod of `app` every 0.2 s."""

    def __init__(self, client: Client, app: str, cpu: int) -> None:
        self.client, self.app, self.cpu = client, app, cpu

    async def post_once(self) -> None:
        pods = (await self.client.request("GET", PODS, params={
            "labelSelector": f"app={self.app}"}))["items"]
        await self.client.request("POST", f"/bramble/v1/nodes/{NODE}/usage", json={
            "timestamp": "2030-01-01T00:00:00Z", "window": 5.0, "interval": 60.0,
            "usage": {"cpu": "1", "memory": "1Gi"},
            "pods": [{"namespace": NS, "name": p["metadata"]["name"], "containers": [
                {"name": "c", "usage": {"cpu": f"{self.cpu}m", "memory": "10Mi"}}]}
                for p in pods]})

    async def run(self) -> None:
        while True:
            await self.post_once()
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def usage(client: Client, app: str, cpu: int) -> AsyncIterator[Usage]:
    feeder = Usage(client, app, cpu)
    task = asyncio.create_task(feeder.run(), name="usage-feeder")
    try:
        yield feeder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def get(client: Client, path: str) -> Obj:
    return await client.request("GET", path)


def condition(hpa: Obj, kind: str) -> tuple[str, str]:
    for c in (hpa.get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return c["status"], c["reason"]
    return "", ""


async def events(client: Client, obj: Obj) -> list[tuple[str, str]]:
    body = await client.request("GET", EVENTS, params={
        "fieldSelector": f"involvedObject.uid={obj['metadata']['uid']}"})
    return [(e["reason"], e["message"]) for e in body["items"]]


async def replicas_become(client: Client, path: str, count: int) -> Obj:
    async def check() -> Obj | None:
        obj = await get(client, path)
        return obj if obj["spec"]["replicas"] == count else None
    return await until(f"{path} at {count} replicas", check, within=30)


async def test_scales_up_to_max_then_down_after_the_window(client: Client) -> None:
    async with sim_kubelet(client):
        await client.request("POST", DEPLOYS, json=workload("Deployment", "web"))
        hpa = await client.request("POST", HPAS, json=autoscaler("web"))
        # Before any usage: the reason is spelled out, as kubectl describe shows it.
        await until("ScalingActive False", lambda: _condition_is(
            client, "web", "ScalingActive", ("False", "FailedGetResourceMetric")), within=30)
        async with usage(client, "web", 100):
            # 100m of 100m requested is 100% of a 50% target: 2 x 1 -> 2, then 2 x 2 -> 4.
            await replicas_become(client, f"{DEPLOYS}/web", 4)
            scaled = await until("status at 4", lambda: _status_replicas(client, "web", 4),
                                 within=30)
        assert condition(scaled, "ScalingLimited") == ("True", "TooManyReplicas")
        assert condition(scaled, "AbleToScale")[0] == "True"
        assert scaled["status"]["currentMetrics"] == [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": 100, "averageValue": "100m"}}}]
        assert scaled["status"]["lastScaleTime"]
        reasons = await events(client, hpa)
        assert ("SuccessfulRescale", "New size: 2; reason: cpu resource utilization "
                "(percentage of request) above target") in reasons
        assert ("SuccessfulRescale", "New size: 4; reason: cpu resource utilization "
                "(percentage of request) above target") in reasons
        assert any(r == "FailedGetResourceMetric" for r, _ in reasons)
        # The table kubectl get hpa prints.
        table = await client.request("GET", HPAS, accept=TABLE)
        assert table["rows"][0]["cells"][:6] == ["web", "Deployment/web", "cpu: 100%/50%", "1",
                                                 4, 4]
        # Idle: after the (short) stabilisation window it goes back to minReplicas.
        async with usage(client, "web", 0):
            await replicas_become(client, f"{DEPLOYS}/web", 1)
        down = ("SuccessfulRescale", "New size: 1; reason: All metrics below target")
        await until("the scale-down event", lambda: _has_event(client, hpa, down), within=30)


async def _has_event(client: Client, obj: Obj, event: tuple[str, str]) -> bool:
    return event in await events(client, obj)


async def _condition_is(client: Client, name: str, kind: str,
                        expected: tuple[str, str]) -> Obj | None:
    hpa = await get(client, f"{HPAS}/{name}")
    return hpa if condition(hpa, kind) == expected else None


async def _status_replicas(client: Client, name: str, count: int) -> Obj | None:
    hpa = await get(client, f"{HPAS}/{name}")
    status = hpa.get("status") or {}
    return hpa if status.get("currentReplicas") == count and \
        status.get("desiredReplicas") == count else None


async def test_behavior_limits_the_rate(client: Client) -> None:
    async with sim_kubelet(client):
        await client.request("POST", DEPLOYS, json=workload("Deployment", "web"))
        await client.request("POST", HPAS, json=autoscaler("web", maxReplicas=6, behavior={
            "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}))
        async with usage(client, "web", 200):
            await replicas_become(client, f"{DEPLOYS}/web", 2)
            # One pod per minute: the next sync wants more but may not add any.
            limited = await until("ScaleUpLimit", lambda: _condition_is(
                client, "web", "ScalingLimited", ("True", "ScaleUpLimit")), within=30)
        assert (await get(client, f"{DEPLOYS}/web"))["spec"]["replicas"] == 2
        assert limited["spec"]["behavior"]["scaleUp"]["selectPolicy"] == "Max"  # defaulted


@pytest.mark.parametrize("kind", ["ReplicaSet", "ReplicationController"])
async def test_other_scale_targets(client: Client, kind: str) -> None:
    path, api_version = (RSS, "apps/v1") if kind == "ReplicaSet" else (RCS, "v1")
    async with sim_kubelet(client):
        await client.request("POST", path, json=workload(kind, "web"))
        await client.request("POST", HPAS, json=autoscaler(
            "web", kind=kind, api_version=api_version, maxReplicas=3))
        async with usage(client, "web", 100):
            await replicas_become(client, f"{path}/web", 3)


async def test_target_and_metric_failures_are_explained(client: Client) -> None:
    hpa = await client.request("POST", HPAS, json=autoscaler("ghost", target="nothing"))
    got = await until("FailedGetScale", lambda: _condition_is(
        client, "ghost", "AbleToScale", ("False", "FailedGetScale")), within=30)
    assert got["status"]["conditions"][0]["message"] == (
        "the HPA controller was unable to get the target's current scale: "
        'deployments.apps "nothing" not found')
    assert ("FailedGetScale", 'deployments.apps "nothing" not found') in \
        await events(client, hpa)
    await client.request("POST", HPAS, json=autoscaler("odd", target="x", kind="Widget"))
    await until("no such kind", lambda: _condition_is(
        client, "odd", "AbleToScale", ("False", "FailedGetScale")), within=30)


async def test_v1_and_v2_are_one_object(client: Client) -> None:
    await client.request("POST", DEPLOYS, json=workload("Deployment", "web"))
    created = await client.request("POST", HPAS_V1, json={
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "web"},
                 "maxReplicas": 3, "targetCPUUtilizationPercentage": 60}})
    assert created["apiVersion"] == "autoscaling/v1" and created["spec"]["minReplicas"] == 1
    v2 = await get(client, f"{HPAS}/web")
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 60}}}]

    # A v2 client adds a memory metric and a behavior ...
    def add_memory_and_behavior(v2: Obj) -> None:
        v2["spec"]["metrics"].insert(0, {"type": "Resource", "resource": {
            "name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}})
        v2["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 30}}
    await read_modify_write(client, f"{HPAS}/web", add_memory_and_behavior)
    # ... a v1 client sees them in its annotations, changes maxReplicas and writes back ...
    v1 = await get(client, f"{HPAS_V1}/web")
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 60
    assert orjson.loads(v1["metadata"]["annotations"][conversion.METRIC_SPECS]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}]
    v1 = await read_modify_write(client, f"{HPAS_V1}/web",
                                 lambda v1: v1["spec"].update(maxReplicas=5))
    assert v1["spec"]["maxReplicas"] == 5
    # ... and nothing v2 had is lost; the annotations are not stored.
    v2 = await get(client, f"{HPAS}/web")
    assert v2["spec"]["maxReplicas"] == 5
    assert [m["resource"]["name"] for m in v2["spec"]["metrics"]] == ["memory", "cpu"]
    assert v2["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 30
    assert "annotations" not in v2["metadata"]
    # Merge patches apply to the version named; lists and watches speak it too.
    patched = await client.request("PATCH", f"{HPAS_V1}/web", json={
        "spec": {"targetCPUUtilizationPercentage": 70}},
        content_type="application/merge-patch+json")
    assert patched["spec"]["targetCPUUtilizationPercentage"] == 70
    listed = await client.request("GET", HPAS_V1)
    assert listed["kind"] == "HorizontalPodAutoscalerList"
    assert listed["apiVersion"] == "autoscaling/v1"
    assert listed["items"][0]["apiVersion"] == "autoscaling/v1"
    stream = client.watch(HPAS_V1, {"resourceVersion": "0", "timeoutSeconds": "1"})
    async with contextlib.aclosing(stream):
        async for kind, obj in stream:
            assert (kind, obj["apiVersion"]) == ("ADDED", "autoscaling/v1")
            assert obj["spec"]["targetCPUUtilizationPercentage"] == 70
            break
    gone = await client.request("DELETE", f"{HPAS_V1}/web")
    assert gone["apiVersion"] == "autoscaling/v1"


async def read_modify_write(client: Client, path: str, change: Any) -> Obj:
    """GET, change, PUT - again on a conflict (the autoscaler writes the status meanwhile)."""
    while True:
        obj = await get(client, path)
        change(obj)
        try:
            return await client.request("PUT", path, json=obj)
        except Conflict:
            continue


@pytest.mark.parametrize(("path", "body", "field"), [
    (HPAS, autoscaler("a", minReplicas=0), "spec.minReplicas"),
    (HPAS, autoscaler("a", minReplicas=5, maxReplicas=2), "spec.maxReplicas"),
    (HPAS, {**autoscaler("a"), "spec": {"maxReplicas": 2}}, "spec.scaleTargetRef.kind"),
    (HPAS, autoscaler("a", metrics=[{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 0}}}]),
     "spec.metrics[0].resource.target.averageUtilization"),
    # v1 errors name the stored (v2) field, as the apiserver names its internal one.
    (HPAS_V1, {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "a"},
               "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                        "maxReplicas": 2, "targetCPUUtilizationPercentage": 0}},
     "spec.metrics[0].resource.target.averageUtilization"),
])
async def test_validation_errors_name_the_field(client: Client, path: str, body: Obj,
                                                field: str) -> None:
    with pytest.raises(Invalid) as err:
        await client.request("POST", path, json=body)
    assert field in [c["field"] for c in err.value.causes]


async def test_strict_v1_fields_and_status_subresource(client: Client) -> None:
    with pytest.raises(Exception) as err:
        await client.request("POST", HPAS_V1, params={"fieldValidation": "Strict"}, json={
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "a"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                     "maxReplicas": 2, "metrics": []}})
    assert 'unknown field "spec.metrics"' in str(err.value)
    await client.request("POST", HPAS, json=autoscaler("a"))
    status = await get(client, f"{HPAS_V1}/a/status")
    assert status["apiVersion"] == "autoscaling/v1"
