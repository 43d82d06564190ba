"""Usage reports and metrics.k8s.io: what `kubectl top` reads."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bramble import kubeconfig
from bramble.client import Client
from bramble.kube.errors import BadRequest, Forbidden, Invalid, NotFound, Unauthorized
from bramble.master.api.nodeapi import (
    STALE_AFTER,
    Report,
    UsageCache,
    go_duration,
    parse_report,
)
from bramble.node import host as hostmod
from bramble.node.join import join
from bramble.node.status import Intervals, NodeStatusReporter
from tests.conftest import MasterHandle

KUBECTL = str(Path(sys.executable).parent / "kubectl")
METRICS = "/apis/metrics.k8s.io/v1beta1"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def report(cpu: str = "250000000n", memory: str = "524288Ki", interval: float = 60.0,
           pods: list | None = None) -> dict[str, Any]:
    return {"timestamp": "2026-05-01T12:00:00Z", "window": 5.0, "interval": interval,
            "usage": {"cpu": cpu, "memory": memory}, "pods": pods or []}


def pod(ns: str, name: str, *containers: str) -> dict[str, Any]:
    return {"namespace": ns, "name": name, "containers": [
        {"name": c, "usage": {"cpu": "1000000n", "memory": "2048Ki"}} for c in containers]}


@pytest.fixture
async def admin(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


async def node_client(master: MasterHandle, tmp_path: Path, name: str) -> Client:
    token = master.running.credentials.join_token  # type: ignore[union-attr]
    return Client(kubeconfig.load(await join(master.url, token, name, tmp_path / name)))


# -- pure pieces --------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (5.0, "5s"), (1.5, "1.5s"), (10.062, "10.062s"), (0.2, "0.2s"), (60.0, "1m0s"),
    (90.25, "1m30.25s")])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


@pytest.mark.parametrize(("body", "field"), [
    ({**report(), "window": 0}, "window"),
    ({**report(), "interval": "5s"}, "interval"),
    ({**report(), "usage": {"cpu": "lots", "memory": "1Ki"}}, "usage.cpu"),
    ({**report(), "usage": {"cpu": "1"}}, "usage.memory"),
    ({**report(), "usage": {"cpu": "-1", "memory": "1Ki"}}, "usage.cpu"),
    (report(pods=[{"namespace": "default", "name": "web",
                   "containers": [{"name": "c", "usage": {"cpu": "1", "memory": "x"}}]}]),
     "pods[0].containers[0].usage.memory"),
    (report(pods=[{"name": "web"}]), "pods[0].name"),
])
def test_parse_report_names_the_bad_field(body: dict, field: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_report("pi1", body, 0.0)
    assert field in [c["field"] for c in err.value.causes]


def test_stale_reports_disappear_after_three_intervals() -> None:
    now = [100.0]
    cache = UsageCache(clock=lambda: now[0])
    cache.record(parse_report("pi1", report(interval=5), now[0]))
    cache.record(parse_report("pi2", report(interval=60), now[0]))
    now[0] += STALE_AFTER * 5  # exactly three intervals: still there
    assert [r.node for r in cache.reports()] == ["pi1", "pi2"]
    now[0] += 0.001
    assert [r.node for r in cache.reports()] == ["pi2"]
    # A new report brings it back.
    cache.record(parse_report("pi1", report(interval=5), now[0]))
    assert [r.node for r in cache.reports()] == ["pi1", "pi2"]
    assert isinstance(cache.reports()[0], Report)


# -- the API ------------------------------------------------------------------------------

async def test_discovery_lists_metrics_group(admin: Client) -> None:
    groups = await admin.request("GET", "/apis")
    assert any(g["name"] == "metrics.k8s.io" and g["preferredVersion"]["version"] == "v1beta1"
               for g in groups["groups"])
    aggregated = await admin.request("GET", "/apis", accept=AGGREGATED)
    item = next(i for i in aggregated["items"] if i["metadata"]["name"] == "metrics.k8s.io")
    kinds = {r["resource"]: (r["responseKind"]["kind"], r["scope"])
             for r in item["versions"][0]["resources"]}
    assert kinds == {"nodes": ("NodeMetrics", "Cluster"), "pods": ("PodMetrics", "Namespaced")}
    resources = await admin.request("GET", METRICS)
    assert [r["name"] for r in resources["resources"]] == ["nodes", "pods"]
    assert (await admin.request("GET", "/apis/metrics.k8s.io"))["name"] == "metrics.k8s.io"
    # The stored groups are still there.
    assert any(g["name"] == "apps" for g in groups["groups"])


async def test_posted_usage_appears_as_node_and_pod_metrics(
        master: MasterHandle, admin: Client, tmp_path: Path) -> None:
    await admin.request("POST", "/api/v1/nodes", json={
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi1",
                                                         "labels": {"zone": "shelf"}}})
    async with await node_client(master, tmp_path, "pi1") as node:
        await node.request("POST", "/bramble/v1/nodes/pi1/usage", json=report(pods=[
            pod("default", "web", "nginx", "sidecar"), pod("kube-system", "dns", "coredns")]))

    nodes = await admin.request("GET", f"{METRICS}/nodes")
    assert nodes["kind"] == "NodeMetricsList" and nodes["apiVersion"] == "metrics.k8s.io/v1beta1"
    [item] = nodes["items"]
    assert item["kind"] == "NodeMetrics"
    assert item["metadata"]["name"] == "pi1"
    assert item["metadata"]["labels"] == {"zone": "shelf"}
    assert (item["timestamp"], item["window"]) == ("2026-05-01T12:00:00Z", "5s")
    assert item["usage"] == {"cpu": "250000000n", "memory": "524288Ki"}
    assert (await admin.request("GET", f"{METRICS}/nodes/pi1"))["usage"] == item["usage"]
    selected = await admin.request("GET", f"{METRICS}/nodes", params={"labelSelector": "zone=x"})
    assert selected["items"] == []

    every = await admin.request("GET", f"{METRICS}/pods")
    assert every["kind"] == "PodMetricsList"
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in every["items"]] == [
        ("default", "web"), ("kube-system", "dns")]
    default = await admin.request("GET", f"{METRICS}/namespaces/default/pods")
    assert [p["metadata"]["name"] for p in default["items"]] == ["web"]
    web = await admin.request("GET", f"{METRICS}/namespaces/default/pods/web")
    assert web["kind"] == "PodMetrics"
    assert [c["name"] for c in web["containers"]] == ["nginx", "sidecar"]
    assert web["containers"][0]["usage"] == {"cpu": "1000000n", "memory": "2048Ki"}
    with pytest.raises(NotFound):
        await admin.request("GET", f"{METRICS}/namespaces/default/pods/dns")
    with pytest.raises(NotFound):
        await admin.request("GET", f"{METRICS}/nodes/pi9")


async def test_a_newer_report_replaces_the_node_and_its_pods(admin: Client) -> None:
    await admin.request("POST", "/bramble/v1/nodes/pi1/usage",
                        json=report(pods=[pod("default", "old", "c")]))
    await admin.request("POST", "/bramble/v1/nodes/pi1/usage",
                        json=report(cpu="1", pods=[pod("default", "new", "c")]))
    assert (await admin.request("GET", f"{METRICS}/nodes/pi1"))["usage"]["cpu"] == "1"
    pods = await admin.request("GET", f"{METRICS}/pods")
    assert [p["metadata"]["name"] for p in pods["items"]] == ["new"]


async def test_a_node_may_post_only_its_own_usage(master: MasterHandle,
                                                  tmp_path: Path) -> None:
    async with await node_client(master, tmp_path, "pi1") as node:
        with pytest.raises(Forbidden):
            await node.request("POST", "/bramble/v1/nodes/pi2/usage", json=report())
        # Nor read metrics (metrics-server's readers are people, not kubelets).
        with pytest.raises(Forbidden):
            await node.request("GET", f"{METRICS}/nodes")


async def test_bad_reports_are_refused(admin: Client) -> None:
    with pytest.raises(Invalid):
        await admin.request("POST", "/bramble/v1/nodes/pi1/usage",
                            json={**report(), "usage": {"cpu": "a lot", "memory": "1Ki"}})
    with pytest.raises(BadRequest):
        await admin.request("POST", "/bramble/v1/nodes/pi1/usage", data=b"{not json",
                            content_type="application/json")
    with pytest.raises(BadRequest):
        await admin.request("POST", "/bramble/v1/nodes/Not_A_Name/usage", json=report())


async def test_usage_needs_authentication(master: MasterHandle) -> None:
    cfg = kubeconfig.load(master.kubeconfig)
    async with Client(replace(cfg, token=None)) as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.request("POST", "/bramble/v1/nodes/pi1/usage", json=report())
        with pytest.raises(Unauthorized):
            await anonymous.request("GET", f"{METRICS}/nodes")


async def test_a_node_that_stops_posting_disappears(admin: Client) -> None:
    await admin.request("POST", "/bramble/v1/nodes/pi1/usage",
                        json=report(interval=0.05, pods=[pod("default", "web", "c")]))
    await asyncio.sleep(STALE_AFTER * 0.05 + 0.1)
    assert (await admin.request("GET", f"{METRICS}/nodes"))["items"] == []
    assert (await admin.request("GET", f"{METRICS}/pods"))["items"] == []


async def kubectl(master: MasterHandle, tmp_path: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(master.kubeconfig), "--cache-dir",
        str(tmp_path / "kube-cache"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_kubectl_top_with_a_reporting_node(master: MasterHandle, admin: Client,
                                                 tmp_path: Path) -> None:
    async def pod_usage() -> list[dict[str, Any]]:
        return [pod("default", "web-1", "nginx")]

    async with await node_client(master, tmp_path, "pi1") as client:
        reporter = NodeStatusReporter(client, "pi1", hostmod.LocalHost(tmp_path),
                                      "podman://4.3.1", pod_usage=pod_usage,
                                      intervals=Intervals(retries=1))
        await reporter.beat()  # registers; starts the CPU window
        await asyncio.sleep(0.2)
        await reporter.beat()  # posts usage over those 0.2 s
    assert (await admin.request("GET", f"{METRICS}/nodes"))["items"]
    nodes = await kubectl(master, tmp_path, "top", "nodes")
    pods = await kubectl(master, tmp_path, "top", "pods", "-A")
    header, row = nodes.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "CPU(cores)", "CPU(%)"]
    assert row.split()[0] == "pi1"
    assert row.split()[1].endswith("m") and row.split()[3].endswith("Mi")
    header, row = pods.splitlines()[:2]
    assert header.split() == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert row.split() == ["default", "web-1", "1m", "2Mi"]
