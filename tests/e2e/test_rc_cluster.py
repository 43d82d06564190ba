"""A ReplicationController on a real cluster: `bramble master` and two `bramble node` agents
as processes, real Podman, the pinned real kubectl (tests/e2e/cluster_fixtures.py). It
keeps its replicas when a pod is deleted, and scales."""

from __future__ import annotations

import textwrap

import pytest

from tests.e2e.cluster_fixtures import (  # noqa: F401  (the fixtures: cluster, ns)
    Cluster,
    Obj,
    cluster_fixture,
    namespace_fixture,
    pods_path,
    serving_pods,
    wait_for,
)
from tests.images import BUSYBOX_IMAGE

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Written the 1.0 way: no selector, the template's labels select.
RC = textwrap.dedent(f"""\
    apiVersion: v1
    kind: ReplicationController
    metadata:
      name: web
    spec:
      replicas: 3
      template:
        metadata:
          labels: {{app: web}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: web
            image: {BUSYBOX_IMAGE}
            imagePullPolicy: Never
            command: [sleep, "3600"]
    """)


async def test_replication_controller_keeps_its_replicas_and_scales(cluster: Cluster,
                                                                    ns: str) -> None:
    c, k = cluster, cluster.kubectl
    pods = pods_path(ns)
    await k("apply", "-n", ns, "-f", "-", stdin=RC)
    first = await wait_for(c.api, pods, "3 web pods serving", serving_pods("web", 3))
    # The scheduler spread them over both nodes; the agents run them.
    assert {p["spec"]["nodeName"] for p in first} == {n.name for n in c.nodes}
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
               for p in first)

    victim = first[0]["metadata"]["name"]
    await k("delete", "-n", ns, "pod", victim, "--wait=false")

    def replaced(found: dict[str, Obj]) -> list[Obj] | None:
        mine = serving_pods("web", 3)(found)
        return mine if mine and victim not in {p["metadata"]["name"] for p in mine} else None

    await wait_for(c.api, pods, "a replacement for the deleted pod", replaced)

    scaled = await k("scale", "-n", ns, "rc/web", "--replicas=1")
    assert scaled.out.strip() == "replicationcontroller/web scaled"
    await wait_for(c.api, pods, "1 web pod left", lambda found: len(found) == 1 and
                   serving_pods("web", 1)(found))
    await k("scale", "-n", ns, "rc/web", "--replicas=2")
    await wait_for(c.api, pods, "2 web pods serving", serving_pods("web", 2))
    await wait_for(c.api, f"/api/v1/namespaces/{ns}/replicationcontrollers",
                   "the status: 2 ready", lambda rcs: (rcs.get("web") or {}).get(
                       "status", {}).get("readyReplicas") == 2)
    rows = (await k("get", "-n", ns, "rc", "web")).out.splitlines()
    assert rows[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert rows[1].split()[:4] == ["web", "2", "2", "2"]
