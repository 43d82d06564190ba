"""Workloads end to end on a real cluster: `bramble master` and two `bramble node` agents
as processes, real Podman, the pinned real kubectl (tests/e2e/cluster_fixtures.py).

The scheduler places the pods of a Deployment, a DaemonSet and Jobs on the two nodes; the
agents run them; the controllers see them Running and Ready. Each test works in a
namespace of its own, deleted (and waited for) afterwards.
"""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from tests.e2e.cluster_fixtures import (  # noqa: F401  (the fixtures: cluster, ns)
    IMAGE_V2,
    NODES,
    Cluster,
    Obj,
    apps_path,
    cluster_fixture,
    condition,
    jobs_path,
    namespace_fixture,
    pods_path,
    sampling,
    serving_pods,
    wait_for,
)
from tests.images import BUSYBOX_IMAGE

pytestmark = pytest.mark.asyncio(loop_scope="module")

# httpd behind a TCP readiness probe: a pod is Ready once it serves, as a web app's would.
DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      replicas: 3
      strategy:
        type: RollingUpdate
        rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}
      selector:
        matchLabels: {{app: web}}
      template:
        metadata:
          labels: {{app: web}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: web
            image: {image}
            imagePullPolicy: Never
            command: [sh, -c, "mkdir -p /www && hostname > /www/index.html &&
                               exec httpd -f -p 8080 -h /www"]
            readinessProbe:
              tcpSocket: {{port: 8080}}
              periodSeconds: 1
    """)
REPLICAS, MAX_SURGE, MAX_UNAVAILABLE = 3, 1, 1

DAEMONSET = textwrap.dedent(f"""\
    apiVersion: apps/v1
    kind: DaemonSet
    metadata:
      name: agent
    spec:
      selector:
        matchLabels: {{app: agent}}
      template:
        metadata:
          labels: {{app: agent}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: agent
            image: {BUSYBOX_IMAGE}
            imagePullPolicy: Never
            command: [sleep, "3600"]
    """)

JOBS = textwrap.dedent(f"""\
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: ok
    spec:
      completions: 2
      parallelism: 2
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: ok
            image: {BUSYBOX_IMAGE}
            imagePullPolicy: Never
            command: [sh, -c, "echo done"]
    ---
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: bad
    spec:
      backoffLimit: 1
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: bad
            image: {BUSYBOX_IMAGE}
            imagePullPolicy: Never
            command: [sh, -c, "echo failing; exit 1"]
    """)

BIG_POD = textwrap.dedent(f"""\
    apiVersion: v1
    kind: Pod
    metadata:
      name: big
    spec:
      containers:
      - name: big
        image: {BUSYBOX_IMAGE}
        imagePullPolicy: Never
        command: [sleep, "3600"]
        resources:
          requests: {{memory: 1Ti}}
    """)


async def test_deployment_rollout_undo_and_scale(cluster: Cluster, ns: str) -> None:
    c, k = cluster, cluster.kubectl
    pods = pods_path(ns)
    await k("apply", "-n", ns, "-f", "-", stdin=DEPLOYMENT.format(image=BUSYBOX_IMAGE))
    status = await k("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s")
    assert 'deployment "web" successfully rolled out' in status.out
    first = await wait_for(c.api, pods, "3 web pods serving",
                           serving_pods("web", REPLICAS, BUSYBOX_IMAGE))
    # The scheduler placed them (nobody set nodeName) and spread them over both nodes.
    assert {p["spec"]["nodeName"] for p in first} == {n.name for n in c.nodes}
    assert all(condition(p, "PodScheduled").get("status") == "True" for p in first)

    # A rolling update to another image, sampled from a watch while it runs.
    async with sampling(c.api, pods, "app=web") as sampler:
        await k("set", "image", "-n", ns, "deployment/web", f"web={IMAGE_V2}")
        status = await k("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s")
        assert 'deployment "web" successfully rolled out' in status.out
        await wait_for(c.api, pods, "3 v2 web pods serving",
                       serving_pods("web", REPLICAS, IMAGE_V2))
    assert sampler.min_ready >= REPLICAS - MAX_UNAVAILABLE, vars(sampler)
    assert sampler.max_live <= REPLICAS + MAX_SURGE, vars(sampler)
    deploy = await c.api.request("GET", f"{apps_path(ns, 'deployments')}/web")
    assert deploy["status"]["observedGeneration"] == deploy["metadata"]["generation"]
    counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    assert {f: deploy["status"].get(f) for f in counts} == dict.fromkeys(counts, REPLICAS)

    # `kubectl rollout undo` brings the first template (and image) back.
    undo = await k("rollout", "undo", "-n", ns, "deployment/web")
    assert "rolled back" in undo.out
    await k("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s")
    await wait_for(c.api, pods, "3 first-image web pods serving",
                   serving_pods("web", REPLICAS, BUSYBOX_IMAGE))
    rss = (await c.api.request("GET", apps_path(ns, "replicasets")))["items"]
    assert sorted((rs["spec"]["template"]["spec"]["containers"][0]["image"],
                   rs["spec"]["replicas"]) for rs in rss) == [
        (BUSYBOX_IMAGE, REPLICAS), (IMAGE_V2, 0)]  # the first ReplicaSet reused, not copied

    # Scale to 0: every pod stopped and gone; back to 3.
    await k("scale", "-n", ns, "deployment/web", "--replicas=0")
    await wait_for(c.api, pods, "no web pods left", lambda p: not p)
    await k("scale", "-n", ns, "deployment/web", "--replicas=3")
    await k("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s")
    await wait_for(c.api, pods, "3 web pods serving again",
                   serving_pods("web", REPLICAS, BUSYBOX_IMAGE))


async def test_daemonset_runs_one_pod_per_node(cluster: Cluster, ns: str) -> None:
    c = cluster
    await c.kubectl("apply", "-n", ns, "-f", "-", stdin=DAEMONSET)
    status = await c.kubectl("rollout", "status", "-n", ns, "daemonset/agent",
                             "--timeout=120s")
    assert 'daemon set "agent" successfully rolled out' in status.out
    pods = await wait_for(c.api, pods_path(ns), "a serving agent pod per node",
                          serving_pods("agent", len(c.nodes)))
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(n.name for n in c.nodes)
    ds = await c.api.request("GET", f"{apps_path(ns, 'daemonsets')}/agent")
    counts = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
              "numberAvailable")
    assert {f: ds["status"].get(f) for f in counts} == dict.fromkeys(counts, len(c.nodes))


async def test_jobs_complete_and_exhaust_their_backoff_limit(cluster: Cluster, ns: str,
                                                             ) -> None:
    c, k = cluster, cluster.kubectl
    await k("apply", "-n", ns, "-f", "-", stdin=JOBS)
    complete, failed = await asyncio.gather(
        k("wait", "-n", ns, "--for=condition=complete", "job/ok", "--timeout=120s"),
        k("wait", "-n", ns, "--for=condition=failed", "job/bad", "--timeout=120s"))
    assert complete.out.strip() == "job.batch/ok condition met"
    assert failed.out.strip() == "job.batch/bad condition met"

    ok = await c.api.request("GET", f"{jobs_path(ns)}/ok")
    assert (ok["status"].get("succeeded"), ok["status"].get("failed", 0)) == (2, 0)
    assert condition(ok, "Complete")["status"] == "True"
    bad = await c.api.request("GET", f"{jobs_path(ns)}/bad")
    assert bad["status"].get("failed") == 2  # the first try and its one retry
    failure = condition(bad, "Failed")
    assert (failure["status"], failure["reason"], failure["message"]) == (
        "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    # Their pods really ran: the completed ones on the nodes said so.
    pods = (await c.api.request("GET", pods_path(ns)))["items"]
    phases = sorted((p["metadata"]["labels"]["job-name"], p["status"]["phase"]) for p in pods)
    assert phases == [("bad", "Failed"), ("bad", "Failed"), ("ok", "Succeeded"),
                      ("ok", "Succeeded")]
    logs = await k("logs", "-n", ns, "job/ok")
    assert logs.out == "done\n"


async def test_a_pod_too_big_for_any_node_stays_pending(cluster: Cluster, ns: str) -> None:
    c = cluster
    await c.kubectl("apply", "-n", ns, "-f", "-", stdin=BIG_POD)
    # More than a whole node's allocatable: evicting pods could not help either
    # (kube-scheduler's Fit marks such a request unresolvable).
    message = ("0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are "
               "available: 2 Preemption is not helpful for scheduling.")

    def unschedulable(pods: dict[str, Obj]) -> Obj | None:
        pod = pods.get("big")
        return pod if pod and condition(pod, "PodScheduled").get("reason") else None

    pod = await wait_for(c.api, pods_path(ns), "big: PodScheduled=False", unschedulable)
    scheduled = condition(pod, "PodScheduled")
    assert (scheduled["status"], scheduled["reason"], scheduled["message"]) == (
        "False", "Unschedulable", message)
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    # Both nodes really are there and Ready: it is the memory.
    nodes = (await c.api.request("GET", NODES))["items"]
    assert sorted(n["metadata"]["name"] for n in nodes
                  if condition(n, "Ready")["status"] == "True") == sorted(
        n.name for n in c.nodes)

    events = await wait_for(
        c.api, f"/api/v1/namespaces/{ns}/events", "a FailedScheduling event",
        lambda evs: [e for e in evs.values() if e.get("reason") == "FailedScheduling"])
    assert [(e["type"], e["involvedObject"]["name"], e["message"]) for e in events] == [
        ("Warning", "big", message)]
    described = await c.kubectl("describe", "-n", ns, "pod/big")
    assert "FailedScheduling" in described.out and "Insufficient memory" in described.out
