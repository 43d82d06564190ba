"""The node status reporter against a real master: registration, Lease, status, retries."""

from __future__ import annotations

import asyncio
import platform
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from bramble import __version__, kubeconfig
from bramble.client import Client
from bramble.kube.errors import Unauthorized
from bramble.node import host as hostmod
from bramble.node.join import join
from bramble.node.status import (
    Intervals,
    NodeStatusReporter,
    backoff,
    lease_spec,
    micro_time,
    node_labels,
    significant,
    status_due,
)
from tests.conftest import MasterHandle, eventually, free_port

FAST = Intervals(heartbeat=0.1, status_report=0.5, retries=2, retry_initial=0.01,
                 retry_max=0.05)
LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"

# -- the pure pieces ----------------------------------------------------------------------


def test_node_labels() -> None:
    assert node_labels("pi1", "arm64") == {
        "kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": "pi1", "beta.kubernetes.io/arch": "arm64",
        "beta.kubernetes.io/os": "linux"}


def test_micro_time_and_lease_spec() -> None:
    now = datetime(2026, 5, 1, 12, 0, 0, 42, tzinfo=UTC)
    assert micro_time(now) == "2026-05-01T12:00:00.000042Z"
    assert lease_spec("pi1", now, 40) == {"holderIdentity": "pi1", "leaseDurationSeconds": 40,
                                          "renewTime": "2026-05-01T12:00:00.000042Z"}


def _status(ready: str, beat: str) -> dict:
    return {"conditions": [{"type": "Ready", "status": ready, "lastHeartbeatTime": beat}],
            "capacity": {"cpu": "4"}}


def test_significant_ignores_heartbeats_and_temperature() -> None:
    a = significant(_status("True", "t0"), {"bramble.io/soc-temperature": "50.0C",
                                             "bramble.io/throttled": "no"})
    b = significant(_status("True", "t1"), {"bramble.io/soc-temperature": "51.2C",
                                             "bramble.io/throttled": "no"})
    assert a == b
    assert a != significant(_status("False", "t1"), {"bramble.io/throttled": "no"})
    assert a != significant(_status("True", "t1"), {"bramble.io/throttled": "throttled"})


@pytest.mark.parametrize(("sent", "current", "last", "now", "due"), [
    (None, "x", None, 0.0, True),  # never reported
    ("x", "x", 100.0, 130.0, False),  # unchanged, reported 30 s ago
    ("x", "x", 100.0, 160.0, True),  # unchanged, but 60 s passed
    ("x", "y", 100.0, 101.0, True),  # changed: at once
])
def test_status_due(sent: Any, current: Any, last: float | None, now: float,
                    due: bool) -> None:
    assert status_due(sent, current, last, now, 60.0) is due


@pytest.mark.parametrize(("initial", "cap", "attempts", "waits"), [
    (0.2, 7.0, 5, [0.2, 0.4, 0.8, 1.6]),
    (1.0, 2.5, 4, [1.0, 2.0, 2.5]),
    (0.2, 7.0, 1, []),
    (0.2, 7.0, 0, []),
])
def test_backoff(initial: float, cap: float, attempts: int, waits: list[float]) -> None:
    assert list(backoff(initial, cap, attempts)) == waits


# -- against a master ---------------------------------------------------------------------


@dataclass
class ScriptedHost(hostmod.LocalHost):
    """This machine, except for the facts the conditions are decided from."""

    override: Callable[[hostmod.Facts], hostmod.Facts] | None = None

    def facts(self, runtime_problem: str = "") -> hostmod.Facts:
        got = super().facts(runtime_problem)
        return self.override(got) if self.override else got


@pytest.fixture
async def admin(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


async def node_client(master: MasterHandle, tmp_path: Path, name: str) -> Client:
    token = master.running.credentials.join_token  # type: ignore[union-attr]
    path = await join(master.url, token, name, tmp_path / f"node-{name}")
    return Client(kubeconfig.load(path))



async def running(reporter: NodeStatusReporter) -> asyncio.Task:
    return asyncio.create_task(reporter.run(), name=f"reporter-{reporter.name}")


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_registers_node_with_labels_capacity_and_conditions(
        master: MasterHandle, admin: Client, tmp_path: Path) -> None:
    async with await node_client(master, tmp_path, "pi1") as client:
        reporter = NodeStatusReporter(client, "pi1", hostmod.LocalHost(tmp_path),
                                      "podman://4.3.1",
                                      intervals=FAST, kubelet_port=10250)
        task = await running(reporter)

        async def with_cidr() -> dict | None:
            got = await admin.request("GET", "/api/v1/nodes/pi1")
            return got if got["spec"].get("podCIDR") else None

        try:
            await asyncio.wait_for(reporter.registered.wait(), 10)
            # The master's node IPAM gives the pod subnet (a node may not pick its own).
            node = await eventually(with_cidr)
        finally:
            await stop(task)
    arch = hostmod.kube_arch(platform.machine())
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == arch
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "pi1"
    assert not any("node-role" in k for k in node["metadata"]["labels"])
    assert node["spec"]["podCIDR"] == "10.42.0.0/24"
    status = node["status"]
    assert status["capacity"]["cpu"] == str(psutil.cpu_count(logical=True))
    assert status["capacity"]["pods"] == "110"
    assert status["allocatable"]["memory"].endswith("Ki")
    assert [c["type"] for c in status["conditions"]] == [
        "MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    ready = status["conditions"][-1]
    assert (ready["reason"], ready["message"]) == ("KubeletReady",
                                                   "kubelet is posting ready status")
    assert {"type": "Hostname", "address": reporter.host.hostname} in status["addresses"]
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert status["nodeInfo"]["containerRuntimeVersion"] == "podman://4.3.1"
    assert status["nodeInfo"]["kubeletVersion"].endswith(f"-bramble.{__version__}")


async def test_renews_its_lease(master: MasterHandle, admin: Client, tmp_path: Path) -> None:
    reporter = NodeStatusReporter(admin, "pi1", hostmod.LocalHost(tmp_path), "podman://4",
                                  intervals=FAST)
    task = await running(reporter)
    try:
        first = await eventually(lambda: _lease(admin, "pi1"))
        renewed = await eventually(lambda: _renewed_after(admin, "pi1",
                                                          first["spec"]["renewTime"]))
    finally:
        await stop(task)
    spec = renewed["spec"]
    assert spec["holderIdentity"] == "pi1"
    assert spec["leaseDurationSeconds"] == 40
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", spec["renewTime"])
    node = await admin.request("GET", "/api/v1/nodes/pi1")
    assert renewed["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "pi1", "uid": node["metadata"]["uid"]}]


async def _lease(client: Client, name: str) -> dict | None:
    leases = await client.request("GET", LEASE)
    return next((i for i in leases["items"] if i["metadata"]["name"] == name), None)


async def _renewed_after(client: Client, name: str, before: str) -> dict | None:
    lease = await _lease(client, name)
    return lease if lease and lease["spec"]["renewTime"] > before else None


async def test_node_credential_may_renew_its_own_lease(master: MasterHandle,
                                                        tmp_path: Path) -> None:
    async with await node_client(master, tmp_path, "pi1") as client:
        reporter = NodeStatusReporter(client, "pi1", hostmod.LocalHost(tmp_path), "podman://4",
                                      intervals=FAST)
        await reporter.register()
        await reporter.renew_lease()


async def test_condition_change_is_reported_at_once(master: MasterHandle, admin: Client,
                                                    tmp_path: Path) -> None:
    h = ScriptedHost(tmp_path)
    # The periodic report is an hour away: only a change can trigger a patch.
    intervals = replace(FAST, status_report=3600)
    async with await node_client(master, tmp_path, "pi1") as client:
        reporter = NodeStatusReporter(client, "pi1", h, "podman://4", intervals=intervals)
        task = await running(reporter)
        try:
            await asyncio.wait_for(reporter.registered.wait(), 10)
            before = await admin.request("GET", "/api/v1/nodes/pi1")
            assert _condition(before, "MemoryPressure")["status"] == "False"
            h.override = lambda f: replace(f, memory_available=0)
            after = await eventually(lambda: _with_condition(admin, "MemoryPressure", "True"))
        finally:
            await stop(task)
    pressure = _condition(after, "MemoryPressure")
    assert pressure["reason"] == "KubeletHasInsufficientMemory"
    assert pressure["lastTransitionTime"] >= _condition(before, "MemoryPressure")[
        "lastTransitionTime"]
    # Unchanged conditions keep their transition time.
    assert _condition(after, "Ready")["lastTransitionTime"] == _condition(
        before, "Ready")["lastTransitionTime"]


def _condition(node: dict, kind: str) -> dict:
    return next(c for c in node["status"]["conditions"] if c["type"] == kind)


async def _with_condition(client: Client, kind: str, status: str) -> dict | None:
    node = await client.request("GET", "/api/v1/nodes/pi1")
    return node if _condition(node, kind)["status"] == status else None


async def test_runtime_problem_makes_node_not_ready(master: MasterHandle, admin: Client,
                                                    tmp_path: Path) -> None:
    async def runtime_problem() -> str:
        return "container runtime is down"

    reporter = NodeStatusReporter(admin, "pi1", hostmod.LocalHost(tmp_path), "podman://4",
                                  intervals=FAST, runtime_problem=runtime_problem)
    await reporter.beat()
    ready = _condition(await admin.request("GET", "/api/v1/nodes/pi1"), "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "KubeletNotReady", "container runtime is down")


async def test_adopts_an_existing_node_and_registers_again_when_deleted(
        master: MasterHandle, admin: Client, tmp_path: Path) -> None:
    first = NodeStatusReporter(admin, "pi1", hostmod.LocalHost(tmp_path), "podman://4",
                               intervals=FAST)
    await first.beat()
    created = await admin.request("GET", "/api/v1/nodes/pi1")
    # An agent restart: the Node exists; its condition history is kept.
    second = NodeStatusReporter(admin, "pi1", hostmod.LocalHost(tmp_path), "podman://5",
                                intervals=FAST)
    await second.beat()
    adopted = await admin.request("GET", "/api/v1/nodes/pi1")
    assert adopted["metadata"]["uid"] == created["metadata"]["uid"]
    assert adopted["status"]["nodeInfo"]["containerRuntimeVersion"] == "podman://5"
    assert _condition(adopted, "Ready")["lastTransitionTime"] == _condition(
        created, "Ready")["lastTransitionTime"]
    # Deleted under it: the next due report notices, the beat after registers again.
    await admin.request("DELETE", "/api/v1/nodes/pi1")
    second._last_report = None  # noqa: SLF001 - make the report due now
    await second.beat()
    assert not second.registered.is_set()
    await second.beat()
    again = await admin.request("GET", "/api/v1/nodes/pi1")
    assert again["metadata"]["uid"] != created["metadata"]["uid"]


class CountingClient(Client):
    calls = 0

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls += 1
        return await super().request(method, path, **kwargs)


async def test_unreachable_master_is_retried_with_backoff_never_a_busy_loop(
        tmp_path: Path) -> None:
    cfg = kubeconfig.KubeConfig(path=tmp_path / "x", context="x",
                                server=f"https://127.0.0.1:{free_port()}", insecure=True,
                                token="t")
    async with CountingClient(cfg, timeout=1) as client:
        reporter = NodeStatusReporter(client, "pi1", hostmod.LocalHost(tmp_path), "podman://4",
                                      intervals=FAST)
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = await running(reporter)
        await asyncio.sleep(1.0)
        assert not task.done()  # an unreachable master never stops the reporter
        await stop(task)
        elapsed = loop.time() - started
    # A heartbeat starts at most every 0.1 s and makes at most `retries` (2) attempts to
    # register, sleeping between them: a busy loop would have made thousands of calls.
    assert 2 <= client.calls <= 2 * (elapsed / 0.1 + 1)
    assert not reporter.registered.is_set()


async def test_rejected_credential_is_fatal(master: MasterHandle, tmp_path: Path) -> None:
    cfg = kubeconfig.load(master.kubeconfig)
    async with Client(replace(cfg, token="revoked")) as client:
        reporter = NodeStatusReporter(client, "pi1", hostmod.LocalHost(tmp_path), "podman://4",
                                      intervals=FAST)
        with pytest.raises(Unauthorized):
            await asyncio.wait_for(reporter.run(), 10)


async def test_a_late_lease_renewal_reports_the_whole_status_again(
        master: MasterHandle, admin: Client, tmp_path: Path) -> None:
    # A cable pulled for longer than the node grace: the master marks the node Unknown,
    # and when the cable is back the first renewals get through. The status must follow
    # at once, not when the (here: hour-long) status period ends.
    now = [1000.0]
    intervals = replace(FAST, status_report=3600, lease_renew=0.05)
    async with await node_client(master, tmp_path, "pi1") as client:
        reporter = NodeStatusReporter(client, "pi1", hostmod.LocalHost(tmp_path), "podman://4",
                                      intervals=intervals, clock=lambda: now[0])
        task = await running(reporter)
        try:
            await asyncio.wait_for(reporter.registered.wait(), 10)
            await eventually(lambda: _with_condition(admin, "Ready", "True"))
            await admin.request("PATCH", "/api/v1/nodes/pi1/status", json={"status": {
                "conditions": [{"type": "Ready", "status": "Unknown",
                                "reason": "NodeStatusUnknown",
                                "message": "Kubelet stopped posting node status."}]}},
                content_type="application/strategic-merge-patch+json")
            assert await _with_condition(admin, "Ready", "Unknown")
            now[0] += 60  # the next renewal comes a minute after the last
            await eventually(lambda: _with_condition(admin, "Ready", "True"))
        finally:
            await stop(task)
