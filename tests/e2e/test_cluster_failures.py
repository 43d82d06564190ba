"""Failures end to end on a real cluster (tests/e2e/cluster_fixtures.py): `bramble master`
and two `bramble node` agents as processes, real Podman.

- The master killed (SIGKILL) and restarted in the middle of a rolling update: the rollout
  finishes with the right replica count, no duplicate ReplicaSet or pod, and the rolling
  update's bounds hold across the restart.
- A node agent killed (SIGKILL: its Pi loses power; its containers keep running): the node
  becomes Ready=Unknown and tainted unreachable, its pods are evicted and replaced on the
  other node. When it comes back, its stale pods are stopped and gone, and nothing runs twice.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.e2e.cluster_fixtures import (  # noqa: F401  (the fixtures: cluster, ns)
    IMAGE_V2,
    NODES,
    AgentProcess,
    Cluster,
    Obj,
    apps_path,
    cluster_fixture,
    condition,
    namespace_fixture,
    pods_path,
    rolled_out,
    sampling,
    serving_pods,
    terminating,
    wait_for,
)
from tests.images import BUSYBOX_IMAGE
from tests.node.agent_fixtures import until

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Each new pod becomes Ready a couple of seconds after it starts (the readiness probe's
# initial delay), so a rolling update of 4 takes long enough to kill the master within it.
SLOW_READY = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {name}
    spec:
      replicas: {replicas}
      strategy:
        type: RollingUpdate
        rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}
      selector:
        matchLabels: {{app: {name}}}
      template:
        metadata:
          labels: {{app: {name}}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: {image}
            imagePullPolicy: Never
            command: [sleep, "3600"]
            readinessProbe:
              exec: {{command: ["true"]}}
              initialDelaySeconds: {delay}
              periodSeconds: 1
    """)
UNREACHABLE = "node.kubernetes.io/unreachable"


async def test_master_restarted_mid_rollout(cluster: Cluster, ns: str) -> None:
    c, k = cluster, cluster.kubectl
    replicas = 4
    pods, deploys = pods_path(ns), apps_path(ns, "deployments")
    await k("apply", "-n", ns, "-f", "-", stdin=SLOW_READY.format(
        name="roll", replicas=replicas, image=BUSYBOX_IMAGE, delay=0))
    await k("rollout", "status", "-n", ns, "deployment/roll", "--timeout=120s")
    await wait_for(c.api, pods, "4 roll pods serving", serving_pods("roll", replicas))

    async with sampling(c.api, pods, "app=roll") as sampler:
        await k("apply", "-n", ns, "-f", "-", stdin=SLOW_READY.format(
            name="roll", replicas=replicas, image=IMAGE_V2, delay=2))

        def midway(ds: dict[str, Obj]) -> Obj | None:
            s = ds["roll"].get("status") or {}
            return ds["roll"] if 2 <= s.get("updatedReplicas", 0) < replicas else None

        await wait_for(c.api, deploys, "the rollout half way", midway)
        c.master.kill()
        await c.master.start()
        deploy = await wait_for(c.api, deploys, "the rollout complete after the restart",
                                rolled_out("roll", replicas))
        status = await k("rollout", "status", "-n", ns, "deployment/roll", "--timeout=120s")
        assert 'deployment "roll" successfully rolled out' in status.out
        assert condition(deploy, "Progressing")["reason"] == "NewReplicaSetAvailable"
        assert deploy["status"]["readyReplicas"] == replicas
        # Only the new pods, exactly `replicas` of them, once the old ones are gone.
        final = await wait_for(c.api, pods, "4 v2 roll pods and nothing else", lambda ps: (
            len(ps) == replicas and serving_pods("roll", replicas, IMAGE_V2)(ps)))
    assert sampler.min_ready >= replicas, vars(sampler)  # maxUnavailable 0
    assert sampler.max_live <= replicas + 1, vars(sampler)  # maxSurge 1
    # What really runs in Podman: of every pod the Deployment ever had, the final ones.
    running = set()
    for node in c.nodes:
        running |= await node.running_pod_uids()
    assert running & sampler.uids == {p["metadata"]["uid"] for p in final}

    rss = (await c.api.request("GET", apps_path(ns, "replicasets")))["items"]
    assert sorted((rs["spec"]["template"]["spec"]["containers"][0]["image"],
                   rs["spec"]["replicas"], rs["status"].get("replicas")) for rs in rss) == [
        (BUSYBOX_IMAGE, 0, 0), (IMAGE_V2, replicas, replicas)]
    new_rs = next(rs for rs in rss if rs["spec"]["replicas"] == replicas)
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in final} == {
        new_rs["metadata"]["labels"]["pod-template-hash"]}
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert all(n.alive for n in c.nodes), "an agent did not survive the master's restart"


async def test_node_lost_and_back(cluster: Cluster, ns: str) -> None:
    c = cluster
    survivor, victim = c.nodes
    replicas = 4
    pods = pods_path(ns)
    await c.kubectl("apply", "-n", ns, "-f", "-", stdin=SLOW_READY.format(
        name="spread", replicas=replicas, image=BUSYBOX_IMAGE, delay=0))
    placed = await wait_for(c.api, pods, "4 spread pods serving",
                            serving_pods("spread", replicas))
    lost = {p["metadata"]["uid"] for p in placed if p["spec"]["nodeName"] == victim.name}
    assert lost, f"the scheduler put no pod on {victim.name}: {placed}"
    assert lost == await victim.running_pod_uids() & lost

    victim.kill()  # the Pi loses power: no more heartbeats; its containers keep running

    def unreachable(nodes: dict[str, Obj]) -> Obj | None:
        node = nodes[victim.name]
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
        ok = condition(node, "Ready").get("status") == "Unknown" and {
            (UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} <= taints
        return node if ok else None

    node = await wait_for(c.api, NODES, f"{victim.name} Unknown and tainted", unreachable)
    assert condition(node, "Ready")["reason"] == "NodeStatusUnknown"
    shown = await c.kubectl("get", "node", victim.name, "--no-headers")
    assert shown.out.split()[:2] == [victim.name, "NotReady"], shown.out

    def replaced(ps: dict[str, Obj]) -> list[Obj] | None:
        now = serving_pods("spread", replicas)(ps)
        return now if now and all(p["spec"]["nodeName"] == survivor.name for p in now) \
            else None

    await wait_for(c.api, pods, f"4 spread pods serving on {survivor.name}", replaced)
    # The lost pods stay, marked for deletion, until their agent confirms it (it is away).
    left = (await c.api.request("GET", pods))["items"]
    assert lost <= {p["metadata"]["uid"] for p in left if terminating(p)}
    events = (await c.api.request("GET", f"/api/v1/namespaces/{ns}/events"))["items"]
    evicted = {e["involvedObject"]["uid"] for e in events
               if e.get("reason") == "TaintManagerEviction"}
    assert lost <= evicted, events

    # The Pi comes back: its agent stops the stale pods, the API forgets them, the node is
    # Ready and untainted, and nothing of them runs any more.
    await c.start_node(victim)
    await wait_for(c.api, pods, "the lost pods gone from the API",
                   lambda ps: not lost & {p["metadata"]["uid"] for p in ps.values()})
    await until("the lost pods' containers stopped on the node",
                lambda: _none_running(victim, lost), within=60)
    final = await wait_for(c.api, pods, "4 spread pods serving and nothing else", lambda ps: (
        len(ps) == replicas and serving_pods("spread", replicas)(ps)))
    # What really runs in Podman: the 4 pods the API has, and none of the lost ones.
    running = await survivor.running_pod_uids() | await victim.running_pod_uids()
    assert {p["metadata"]["uid"] for p in final} <= running
    assert not lost & running


async def _none_running(node: AgentProcess, uids: set[str]) -> bool:
    return not (await node.running_pod_uids() & uids)
