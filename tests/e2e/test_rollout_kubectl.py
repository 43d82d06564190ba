"""`kubectl rollout status|history|undo|restart|pause|resume` - the pinned, real kubectl -
against an in-process master whose pods a simulated kubelet makes Ready
(tests/api/workload_sim.py). kubectl does history and undo itself, from the ReplicaSets'
annotations and templates; this checks bramble gives it what it reads."""

from __future__ import annotations

import asyncio
import os
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bramble.client import Client
from tests.api.workload_sim import sim_kubelet
from tests.conftest import MasterHandle
from tests.e2e.test_kubectl import KUBECTL
from tests.node.agent_fixtures import until

MANIFEST = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      annotations:
        kubernetes.io/change-cause: first release
    spec:
      replicas: 3
      progressDeadlineSeconds: {deadline}
      selector:
        matchLabels: {{app: web}}
      template:
        metadata:
          labels: {{app: web}}
        spec:
          containers:
          - name: web
            image: busybox:1.36
    """)
NEVER_READY = "registry.invalid/never-ready:1"
RSS = "/apis/apps/v1/namespaces/default/replicasets"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
PODS = "/api/v1/namespaces/default/pods"


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Kubectl:
    master: MasterHandle
    cache: Path

    async def __call__(self, *args: str, stdin: str | None = None,
                       check: bool = True) -> Result:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(self.master.kubeconfig), "--cache-dir",
            str(self.cache), *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ})
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None),
                                          120)
        result = Result(proc.returncode or 0, out.decode(), err.decode())
        if check and result.code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.code}):\n"
                                 f"{result.out}\n{result.err}")
        return result


@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


@pytest.fixture
def kubectl(master: MasterHandle, tmp_path: Path) -> Kubectl:
    return Kubectl(master, tmp_path / "kubectl-cache")


async def images(client: Client) -> set[str]:
    pods = (await client.request("GET", PODS, params={"labelSelector": "app=web"}))["items"]
    return {p["spec"]["containers"][0]["image"] for p in pods}


def revisions(history: Result) -> list[str]:
    """The REVISION column of `kubectl rollout history`."""
    return [line.split()[0] for line in history.out.splitlines()[2:] if line.strip()]


def only(client: Client, image: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await images(client) == {image}
    return check


async def test_rollout_status_history_undo_and_restart(client: Client,
                                                       kubectl: Kubectl) -> None:
    async with sim_kubelet(client, ready_delay=0.05):
        await kubectl("apply", "-f", "-", stdin=MANIFEST.format(deadline=600))
        status = await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        assert 'deployment "web" successfully rolled out' in status.out

        await kubectl("set", "image", "deployment/web", "web=busybox:1.37")
        await kubectl("annotate", "--overwrite", "deployment/web",
                      "kubernetes.io/change-cause=upgrade to 1.37")
        status = await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        assert 'deployment "web" successfully rolled out' in status.out
        await until("only 1.37 pods", only(client, "busybox:1.37"))

        history = await kubectl("rollout", "history", "deployment/web")
        assert history.out.splitlines()[1].split() == ["REVISION", "CHANGE-CAUSE"]
        rows = [line.split(None, 1) for line in history.out.splitlines()[2:] if line.strip()]
        assert rows == [["1", "first release"], ["2", "upgrade to 1.37"]]
        first = await kubectl("rollout", "history", "deployment/web", "--revision=1")
        assert "busybox:1.36" in first.out and "pod-template-hash=" in first.out

        # Undo: kubectl copies revision 1's template back; it becomes revision 3.
        undo = await kubectl("rollout", "undo", "deployment/web")
        assert "rolled back" in undo.out
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        await until("only 1.36 pods again", only(client, "busybox:1.36"))
        assert revisions(await kubectl("rollout", "history", "deployment/web")) == ["2", "3"]
        rss = (await client.request("GET", RSS, params={"labelSelector": "app=web"}))["items"]
        assert len(rss) == 2  # revision 1's ReplicaSet was reused, not copied

        await kubectl("rollout", "undo", "deployment/web", "--to-revision=2")
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        await until("only 1.37 pods again", only(client, "busybox:1.37"))

        # Restart: a template annotation, so a new ReplicaSet with fresh pods.
        before = {p["metadata"]["name"] for p in (await client.request(
            "GET", PODS, params={"labelSelector": "app=web"}))["items"]}
        await kubectl("rollout", "restart", "deployment/web")
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")

        async def all_new() -> bool:
            pods = (await client.request("GET", PODS, params={"labelSelector": "app=web"}))
            names = {p["metadata"]["name"] for p in pods["items"]}
            return len(names) == 3 and not names & before

        await until("every pod replaced", all_new)
        assert revisions(await kubectl("rollout", "history", "deployment/web")) == \
            ["3", "4", "5"]


async def test_pause_and_resume(client: Client, kubectl: Kubectl) -> None:
    async with sim_kubelet(client, ready_delay=0.05):
        await kubectl("apply", "-f", "-", stdin=MANIFEST.format(deadline=600))
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        await kubectl("set", "image", "deployment/web", "web=busybox:1.37")
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        assert "paused" in (await kubectl("rollout", "pause", "deployment/web")).out
        await kubectl("set", "image", "deployment/web", "web=busybox:1.38")
        refused = await kubectl("rollout", "undo", "deployment/web", check=False)
        assert refused.code != 0 and "cannot rollback a paused deployment" in refused.err

        async def pause_observed() -> bool:
            d = await client.request("GET", f"{DEPLOYS}/web")
            return d["status"].get("observedGeneration") == d["metadata"]["generation"]

        await until("the paused spec observed", pause_observed)
        assert await images(client) == {"busybox:1.37"}  # no rollout while paused
        assert revisions(await kubectl("rollout", "history", "deployment/web")) == ["1", "2"]
        assert "resumed" in (await kubectl("rollout", "resume", "deployment/web")).out
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        await until("only 1.38 pods", only(client, "busybox:1.38"))


async def test_rollout_status_reports_an_exceeded_deadline(client: Client,
                                                           kubectl: Kubectl) -> None:
    def ready(pod: dict) -> bool:
        return pod["spec"]["containers"][0]["image"] != NEVER_READY

    async with sim_kubelet(client, ready=ready):
        await kubectl("apply", "-f", "-", stdin=MANIFEST.format(deadline=2))
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        await kubectl("set", "image", "deployment/web", f"web={NEVER_READY}")
        status = await kubectl("rollout", "status", "deployment/web", "--timeout=60s",
                               check=False)
        assert status.code != 0
        assert 'deployment "web" exceeded its progress deadline' in status.err
