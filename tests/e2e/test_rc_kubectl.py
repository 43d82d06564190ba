"""`kubectl apply|get|describe|scale|delete rc` and `bramble get|describe|scale rc` - the
pinned, real kubectl and the bramble CLI - against an in-process master whose pods a
simulated kubelet makes Ready (tests/api/workload_sim.py)."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import Awaitable, Callable

from bramble.client import Client
from tests.api.workload_sim import sim_kubelet
from tests.conftest import MasterHandle, eventually
from tests.e2e.test_rollout_kubectl import (  # noqa: F401  (the fixtures: client, kubectl)
    Kubectl,
    Result,
    client,
    kubectl,
)

# The 1.0 way of writing it: no selector (the template's labels), no replicas field.
MANIFEST = textwrap.dedent("""\
    apiVersion: v1
    kind: ReplicationController
    metadata:
      name: web
    spec:
      replicas: 3
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: busybox:1.36
    """)
PODS = "/api/v1/namespaces/default/pods"
LIMIT = 60  # a bound against hangs, not a speed expectation


async def bramble(master: MasterHandle, *args: str) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bramble", *args, "--kubeconfig", str(master.kubeconfig),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), LIMIT)
    return Result(proc.returncode or 0, out.decode(), err.decode())


def ready_pods(api: Client, count: int) -> Callable[[], Awaitable[bool]]:
    """A check: exactly `count` web pods not being deleted, all Ready."""
    async def check() -> bool:
        pods = (await api.request("GET", PODS, params={"labelSelector": "app=web"}))["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return len(live) == count and all(
            any(c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions") or []) for p in live)
    return check


async def test_kubectl_apply_get_describe_scale_delete(
        client: Client, kubectl: Kubectl, master: MasterHandle) -> None:  # noqa: F811
    async with sim_kubelet(client, ready_delay=0.05):
        applied = await kubectl("apply", "-f", "-", stdin=MANIFEST)
        assert applied.out.strip() == "replicationcontroller/web created"
        assert (await kubectl("apply", "-f", "-", stdin=MANIFEST)).out.strip() == \
            "replicationcontroller/web unchanged"  # the defaulted selector is no change
        await eventually(ready_pods(client, 3), LIMIT)

        async def ready_column() -> list[str] | None:
            out = (await kubectl("get", "rc")).out.splitlines()
            row = out[1].split() if len(out) > 1 else []
            return out if row[:4] == ["web", "3", "3", "3"] else None

        out = await eventually(ready_column, LIMIT)
        assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
        wide = (await kubectl("get", "replicationcontrollers", "-o", "wide")).out.splitlines()
        assert wide[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS",
                                   "IMAGES", "SELECTOR"]
        assert wide[1].split()[5:] == ["web", "busybox:1.36", "app=web"]
        assert "replicationcontroller/web" in (await kubectl("get", "all")).out
        explained = (await kubectl("explain", "rc.spec")).out  # from the OpenAPI v3 schema
        assert "ReplicationControllerSpec" in explained and "selector" in explained

        described = (await kubectl("describe", "rc", "web")).out
        for line in ("Name:         web", "Selector:     app=web", "Labels:       app=web",
                     "Replicas:     3 current / 3 desired",
                     "Pods Status:  3 Running / 0 Waiting / 0 Succeeded / 0 Failed"):
            assert line in described, described
        assert "SuccessfulCreate" in described and "replication-controller" in described
        pod = (await client.request("GET", PODS, params={"labelSelector": "app=web"}))[
            "items"][0]["metadata"]["name"]
        assert "Controlled By:  ReplicationController/web" in (
            await kubectl("describe", "pod", pod)).out

        scaled = await kubectl("scale", "rc", "web", "--replicas=1")
        assert scaled.out.strip() == "replicationcontroller/web scaled"
        await eventually(ready_pods(client, 1), LIMIT)
        doc = json.loads((await kubectl("get", "rc", "web", "-o", "json")).out)
        assert doc["spec"]["replicas"] == 1 and doc["spec"]["selector"] == {"app": "web"}

        # The bramble CLI reads the same API.
        got = await bramble(master, "get", "rc")
        assert got.code == 0 and got.out.splitlines()[0].split()[:4] == [
            "NAME", "DESIRED", "CURRENT", "READY"], got.err
        scaled_b = await bramble(master, "scale", "rc/web", "--replicas=2")
        assert (scaled_b.code, scaled_b.out.strip()) == (0, "replicationcontroller/web scaled")
        await eventually(ready_pods(client, 2), LIMIT)

        async def described_two() -> str | None:
            described = await bramble(master, "describe", "rc", "web")
            assert described.code == 0, described.err
            return described.out if "Replicas:     2 current / 2 desired" in described.out \
                else None

        described_b = await eventually(described_two, LIMIT)
        assert "Selector:     app=web" in described_b
        assert "Pods Status:  2 Running / 0 Waiting / 0 Succeeded / 0 Failed" in described_b

        deleted = await kubectl("delete", "rc", "web")
        # kubectl 1.37 adds "from default namespace".
        assert deleted.out.startswith('replicationcontroller "web" deleted')
        await eventually(ready_pods(client, 0), LIMIT)  # the garbage collector took them
