"""`kubectl rollout status ds/...` and `kubectl wait --for=condition=complete job/...` - the
pinned, real kubectl - against an in-process master whose nodes are played by the fake
kubelets of tests/api/test_daemonset_job_endpoints.py."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bramble.client import Client
from tests.api.test_daemonset_job_endpoints import (
    JOBS,
    active,
    finish_pod,
    kubelets,
    pods_where,
)
from tests.conftest import MasterHandle
from tests.e2e.test_rollout_kubectl import Kubectl
from tests.node.agent_fixtures import until

DAEMONSET = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: DaemonSet
    metadata:
      name: agent
    spec:
      selector:
        matchLabels: {app: agent}
      template:
        metadata:
          labels: {app: agent}
        spec:
          containers:
          - name: agent
            image: busybox:1.36
    """)
JOB = textwrap.dedent("""\
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: calc
    spec:
      completions: 2
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: calc
            image: busybox:1.36
    """)


@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


@pytest.fixture
def kubectl(master: MasterHandle, tmp_path: Path) -> Kubectl:
    return Kubectl(master, tmp_path / "kubectl-cache")


async def test_rollout_status_of_a_daemonset(client: Client, kubectl: Kubectl) -> None:
    async with kubelets(client) as fake:
        for node in ("pi1", "pi2"):
            await fake.add_node(node)
        await kubectl("apply", "-f", "-", stdin=DAEMONSET)
        status = await kubectl("rollout", "status", "daemonset/agent", "--timeout=60s")
        assert 'daemon set "agent" successfully rolled out' in status.out
        await kubectl("set", "image", "daemonset/agent", "agent=busybox:1.37")
        status = await kubectl("rollout", "status", "daemonset/agent", "--timeout=60s")
        assert 'daemon set "agent" successfully rolled out' in status.out
        pods = active(await pods_where(client, "app=agent"))
        assert sorted(p["spec"]["containers"][0]["image"] for p in pods) == [
            "busybox:1.37"] * 2
        table = await kubectl("get", "daemonset", "agent")
        # NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE
        assert table.out.splitlines()[1].split()[:6] == ["agent", "2", "2", "2", "2", "2"]


async def test_wait_for_a_job_to_complete(client: Client, kubectl: Kubectl) -> None:
    await kubectl("apply", "-f", "-", stdin=JOB)
    waiting = asyncio.create_task(kubectl("wait", "--for=condition=complete", "job/calc",
                                          "--timeout=60s"))
    job = await client.request("GET", f"{JOBS}/calc")
    selector = f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}"
    for _ in range(2):
        async def one() -> list:
            return active(await pods_where(client, selector))
        [pod] = await until("a job pod", one)
        await finish_pod(client, pod, "Succeeded")
    result = await waiting
    assert "job.batch/calc condition met" in result.out
    table = await kubectl("get", "job", "calc")
    # NAME STATUS COMPLETIONS DURATION AGE
    assert table.out.splitlines()[1].split()[:3] == ["calc", "Complete", "2/2"]
