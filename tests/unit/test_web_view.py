"""The status page's cluster view (master/web/view.py), the usage history and the drain
filter: objects in, view out, case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from bramble.master.web import view
from bramble.master.web.actions import drainable
from bramble.master.web.gauges import node_conditions, pod_phases
from bramble.master.web.history import UsageHistory

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, ready: str | None = "True", *, unschedulable: bool = False,
         labels: Obj | None = None, annotations: Obj | None = None,
         allocatable: Obj | None = None, address: str = "192.0.2.1") -> Obj:
    status: Obj = {"addresses": [{"type": "Hostname", "address": name},
                                 {"type": "InternalIP", "address": address}],
                   "allocatable": allocatable if allocatable is not None
                   else {"cpu": "4", "memory": "4Gi"}}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready}]
    return {"metadata": {"name": name, "creationTimestamp": ts(3 * 86400),
                         "labels": labels or {}, "annotations": annotations or {}},
            "spec": {"unschedulable": True} if unschedulable else {}, "status": status}


def pod(name: str, *, phase: str = "Running", node_name: str = "pi1", ns: str = "default",
        waiting: str = "", ready: bool = True, restarts: int = 0, owner: str = "",
        conditions: list[Obj] | None = None, deleting: bool = False) -> Obj:
    state: Obj = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    meta: Obj = {"name": name, "namespace": ns, "creationTimestamp": ts(300)}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = ts(1)
    return {"metadata": meta,
            "spec": {"nodeName": node_name, "containers": [{"name": "app"}],
                     "initContainers": [{"name": "setup"}]},
            "status": {"phase": phase, "conditions": conditions or [],
                       "containerStatuses": [{"name": "app", "ready": ready and not waiting,
                                              "restartCount": restarts, "state": state}]}}


# --- nodes ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("obj", "status", "ready"), [
    (node("a"), "Ready", True),
    (node("a", "False"), "NotReady", False),
    (node("a", "Unknown"), "NotReady", False),  # kubectl: anything but True is NotReady
    (node("a", None), "Unknown", False),  # no Ready condition at all
    (node("a", unschedulable=True), "SchedulingDisabled", True),
    (node("a", "False", unschedulable=True), "NotReady", False),  # NotReady says more
])
def test_node_status(obj: Obj, status: str, ready: bool) -> None:
    got = view.build(view.Snapshot(now=NOW, nodes=[obj]))["nodes"][0]
    assert (got["status"], got["ready"]) == (status, ready)


@pytest.mark.parametrize(("allocatable", "usage", "cpu", "memory"), [
    # 250m of 4 cores = 6.25 % -> 6; 512 MiB of 4 GiB = 12.5 % -> 12 (round half even)
    ({"cpu": "4", "memory": "4Gi"}, view.Usage(250, 512 * 2**20),
     {"usedMilli": 250, "allocatableMilli": 4000, "percent": 6},
     {"usedBytes": 536870912, "allocatableBytes": 4294967296, "percent": 12}),
    # 3900m allocatable: 1950m used is 50 %
    ({"cpu": "3900m", "memory": "1000"}, view.Usage(1950, 10),
     {"usedMilli": 1950, "allocatableMilli": 3900, "percent": 50},
     {"usedBytes": 10, "allocatableBytes": 1000, "percent": 1}),
    # no report: no bars
    ({"cpu": "4", "memory": "4Gi"}, None, None, None),
    # a report but no allocatable (nor capacity): no bars rather than a division by zero
    ({}, view.Usage(100, 100), None, None),
])
def test_node_usage_bars(allocatable: Obj, usage: view.Usage | None, cpu: Obj | None,
                         memory: Obj | None) -> None:
    snap = view.Snapshot(now=NOW, nodes=[node("pi1", allocatable=allocatable)],
                         usage={"pi1": usage} if usage else {})
    got = view.build(snap)["nodes"][0]
    assert (got["cpu"], got["memory"]) == (cpu, memory)


@pytest.mark.parametrize(("annotations", "temperature", "throttled"), [
    ({}, None, None),  # not a Pi: no sensors
    ({"bramble.io/soc-temperature": "48.3C", "bramble.io/throttled": "no"}, 48.3, []),
    ({"bramble.io/throttled": "under-voltage,throttled-occurred"}, None,
     ["under-voltage", "throttled-occurred"]),
    ({"bramble.io/soc-temperature": "hot"}, None, None),
])
def test_node_sensors(annotations: Obj, temperature: float | None,
                      throttled: list[str] | None) -> None:
    got = view.build(view.Snapshot(now=NOW, nodes=[node("a", annotations=annotations)]))
    assert (got["nodes"][0]["temperatureC"], got["nodes"][0]["throttled"]) == (
        temperature, throttled)


def test_node_fields_roles_pods_and_history() -> None:
    history = UsageHistory()
    history.record("pi1", 5, 10, 0)
    history.record("pi1", 7, 11, 30)
    snap = view.Snapshot(
        now=NOW, history=history.of,
        nodes=[node("pi1", labels={"node-role.kubernetes.io/control-plane": "",
                                   "kubernetes.io/arch": "arm64"})],
        pods=[pod("a"), pod("b"), pod("done", phase="Succeeded"), pod("other", node_name="x")])
    got = view.build(snap)["nodes"][0]
    assert got["roles"] == ["control-plane"]
    assert got["arch"] == "arm64"
    assert got["address"] == "192.0.2.1"  # InternalIP before Hostname
    assert got["pods"] == 2  # the finished pod does not count
    assert got["age"] == "3d"
    assert got["history"] == {"cpu": [5, 7], "memory": [10, 11], "stepSeconds": 30}


# --- pods -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("obj", "status", "failing"), [
    (pod("ok"), "Running", False),
    (pod("crash", waiting="CrashLoopBackOff", restarts=3), "CrashLoopBackOff", True),
    (pod("pull", waiting="ImagePullBackOff"), "ImagePullBackOff", True),
    (pod("new", waiting="ContainerCreating"), "ContainerCreating", False),
    (pod("failed", phase="Failed"), "Failed", True),
    (pod("done", phase="Succeeded"), "Succeeded", False),
    (pod("bye", deleting=True), "Terminating", False),
    # Pending and no node will take it: someone has to look
    (pod("stuck", phase="Pending", node_name="", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]),
     "Pending", True),
])
def test_pod_status_and_failing(obj: Obj, status: str, failing: bool) -> None:
    got = view.build(view.Snapshot(now=NOW, pods=[obj]))["pods"][0]
    assert (got["status"], got["failing"]) == (status, failing)


def test_pods_failing_first_then_by_name_and_capped() -> None:
    pods = [pod(f"p{i:03d}") for i in range(view.MAX_PODS + 5)]
    pods.append(pod("zz-crash", waiting="CrashLoopBackOff", restarts=2))
    got = view.build(view.Snapshot(now=NOW, pods=pods))
    assert got["pods"][0]["name"] == "zz-crash"
    assert got["pods"][0]["restarts"] == 2
    assert got["pods"][1]["name"] == "p000"
    assert len(got["pods"]) == view.MAX_PODS
    assert got["podsTruncated"] == 6  # 206 pods, 200 shown
    first = got["pods"][1]
    assert first["ready"] == "1/1" and first["age"] == "5m" and first["node"] == "pi1"
    assert first["containers"] == ["app", "setup"]


# --- workloads and jobs -----------------------------------------------------------------------

def deployment(replicas: int, updated: int, total: int, available: int, ready: int,
               generation: int = 1, observed: int = 1) -> Obj:
    return {"metadata": {"name": "web", "namespace": "default", "generation": generation,
                         "creationTimestamp": ts(60)},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated,
                       "replicas": total, "availableReplicas": available,
                       "readyReplicas": ready}}


@pytest.mark.parametrize(("dep", "rolling"), [
    (deployment(3, 3, 3, 3, 3), False),  # settled
    (deployment(3, 1, 4, 3, 3), True),  # 1 of 3 updated, one surge pod
    (deployment(3, 3, 4, 3, 3), True),  # all updated, an old pod still terminating
    (deployment(3, 3, 3, 2, 2), True),  # updated but not all available yet
    (deployment(3, 3, 3, 3, 3, generation=2, observed=1), True),  # spec not yet seen
])
def test_deployment_rollout_in_progress(dep: Obj, rolling: bool) -> None:
    got = view.build(view.Snapshot(now=NOW, deployments=[dep]))["workloads"][0]
    assert got["rollingOut"] is rolling
    assert got["kind"] == "Deployment" and got["desired"] == 3


def test_daemonsets_and_jobs() -> None:
    ds = {"metadata": {"name": "agent", "namespace": "kube-system", "creationTimestamp": ts(10)},
          "status": {"desiredNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3,
                     "numberAvailable": 2}}
    job = {"metadata": {"name": "pi", "namespace": "default", "creationTimestamp": ts(120)},
           "spec": {"completions": 2},
           "status": {"succeeded": 1, "failed": 1, "conditions": []}}
    done = {"metadata": {"name": "done", "namespace": "default"}, "spec": {},
            "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
    got = view.build(view.Snapshot(now=NOW, daemonsets=[ds], jobs=[job, done]))
    assert got["workloads"] == [{"kind": "DaemonSet", "namespace": "kube-system",
                                 "name": "agent", "ready": 2, "desired": 3, "upToDate": 3,
                                 "rollingOut": True, "paused": False, "age": "10s"}]
    assert got["jobs"] == [
        {"namespace": "default", "name": "pi", "succeeded": 1, "completions": 2, "failed": 1,
         "status": "Running", "age": "2m"},
        {"namespace": "default", "name": "done", "succeeded": 1, "completions": 1,
         "failed": 0, "status": "Complete", "age": "<unknown>"}]


def test_replicated_workloads_without_a_deployment() -> None:
    def owner(name: str, replicas: int, ready: int, controlled: bool = False) -> Obj:
        meta: Obj = {"name": name, "namespace": "default", "generation": 2,
                     "creationTimestamp": ts(30)}
        if controlled:
            meta["ownerReferences"] = [{"kind": "Deployment", "name": "web",
                                        "controller": True}]
        return {"metadata": meta, "spec": {"replicas": replicas},
                "status": {"replicas": replicas, "readyReplicas": ready,
                           "observedGeneration": 2}}

    snap = view.Snapshot(now=NOW, replicasets=[owner("web-5d4f", 3, 3, controlled=True),
                                               owner("cache", 2, 1)],
                         replicationcontrollers=[owner("legacy", 1, 1)])
    got = view.build(snap)
    # The Deployment's ReplicaSet is the Deployment's business: not listed, not counted.
    assert [(w["kind"], w["name"], w["ready"], w["desired"]) for w in got["workloads"]] == [
        ("ReplicaSet", "cache", 1, 2), ("ReplicationController", "legacy", 1, 1)]
    assert got["health"]["podsDesired"] == 3  # 2 (cache) + 1 (legacy)


# --- health -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("nodes", "running", "desired", "warnings", "pending", "level"), [
    ([True, True], 3, 3, 0, 0, "ok"),
    ([True, False], 3, 3, 0, 0, "bad"),  # a node down
    ([], 0, 0, 0, 0, "bad"),  # no node at all: nothing can run
    ([True], 2, 3, 0, 0, "warn"),  # a pod short
    ([True], 3, 3, 1, 0, "warn"),  # a recent Warning event
    ([True], 3, 3, 0, 1, "warn"),  # a node waiting for approval
])
def test_health_level(nodes: list[bool], running: int, desired: int, warnings: int,
                      pending: int, level: str) -> None:
    got = view.health([{"ready": r} for r in nodes], running, desired, warnings, pending)
    assert got["level"] == level


def test_health_counts_desired_pods_and_recent_warnings() -> None:
    snap = view.Snapshot(
        now=NOW, nodes=[node("pi1")],
        deployments=[deployment(3, 3, 3, 3, 3)],
        daemonsets=[{"metadata": {"name": "d"}, "status": {"desiredNumberScheduled": 1}}],
        pods=[pod("w1", owner="ReplicaSet"), pod("w2", owner="ReplicaSet"),
              pod("d1", owner="DaemonSet"), pod("bare"), pod("bare-done", phase="Succeeded"),
              pod("job-1", owner="Job", phase="Pending"), pod("going", deleting=True)],
        events=[{"type": "Warning", "lastTimestamp": ts(60), "involvedObject": {}},
                {"type": "Warning", "lastTimestamp": ts(3600), "involvedObject": {}},
                {"type": "Normal", "lastTimestamp": ts(1), "involvedObject": {}}])
    got = view.build(snap)["health"]
    # desired: 3 (deployment) + 1 (daemonset) + 1 (bare, unfinished) + 1 (job pod) = 6;
    # running: w1, w2, d1, bare (going is terminating) = 4
    assert (got["podsRunning"], got["podsDesired"]) == (4, 6)
    assert got["warnings"] == 1  # the hour-old one has faded out
    assert got["summary"] == "1/1 nodes ready · 4/6 pods running · 1 warning"
    assert got["level"] == "warn"


# --- services and events ----------------------------------------------------------------------

def test_nodeport_links_name_ready_nodes() -> None:
    svc = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"type": "NodePort", "clusterIP": "10.43.0.12", "ports": [
               {"port": 80, "protocol": "TCP", "nodePort": 30080},
               {"port": 53, "protocol": "UDP", "nodePort": 30053}]}}
    internal = {"metadata": {"name": "db", "namespace": "default"},
                "spec": {"clusterIP": "10.43.0.13", "ports": [{"port": 5432}]}}
    snap = view.Snapshot(now=NOW, services=[svc, internal], nodes=[
        node("pi1", address="192.168.1.10"), node("pi2", "False", address="192.168.1.11"),
        node("pi3", address="fd00::3")])
    got = view.build(snap)["services"]
    assert got[0]["ports"] == [
        {"port": 80, "protocol": "TCP", "nodePort": 30080,
         "links": ["http://192.168.1.10:30080", "http://[fd00::3]:30080"]},
        {"port": 53, "protocol": "UDP", "nodePort": 30053, "links": []}]  # no http for UDP
    assert got[1] == {"namespace": "default", "name": "db", "type": "ClusterIP",
                      "clusterIP": "10.43.0.13", "ports": [{"port": 5432, "protocol": "TCP"}]}


def test_events_newest_first_capped() -> None:
    events = [{"metadata": {"namespace": "default", "name": f"e{i}"}, "type": "Normal",
               "reason": "Pulled", "message": f" m{i} ", "count": 2,
               "involvedObject": {"kind": "Pod", "name": f"p{i}"},
               "lastTimestamp": ts(i * 10)} for i in range(60)]
    got = view.build(view.Snapshot(now=NOW, events=list(reversed(events))))["events"]
    assert len(got) == view.MAX_EVENTS
    assert got[0] == {"type": "Normal", "reason": "Pulled", "object": "Pod/p0",
                      "namespace": "default", "message": "m0", "count": 2, "age": "0s"}
    assert got[1]["age"] == "10s"


def test_pending_nodes_and_the_session_splice() -> None:
    snap = view.Snapshot(now=NOW, pending=[{"name": "pi-9", "fingerprint": "ABCD-1234",
                                            "peer": "192.168.1.19", "requested": ts(5)}])
    built = view.build(snap)
    assert built["pendingNodes"] == [{"name": "pi-9", "fingerprint": "ABCD-1234",
                                      "address": "192.168.1.19", "requestedAt": ts(5)}]
    assert built["generatedAt"] == "2026-11-23T12:00:00Z"
    spliced = orjson.loads(view.with_session(view.encode(built), "tok", False))
    assert spliced == {**built, "session": {"csrf": "tok", "readOnly": False}}


# --- history, drain filter, gauges ------------------------------------------------------------

def test_history_one_sample_per_step_last_hour_only() -> None:
    h = UsageHistory(step=30, samples=120)
    h.record("pi1", 1, 10, 0)
    h.record("pi1", 2, 20, 29)  # same 30 s step: replaces
    h.record("pi1", 3, 30, 30)
    assert h.of("pi1") == {"cpu": [2, 3], "memory": [20, 30], "stepSeconds": 30}
    for i in range(200):
        h.record("pi1", i, i, 60 + 30 * i)
    assert len(h.of("pi1")["cpu"]) == 120  # an hour
    assert h.of("pi1")["cpu"][-1] == 199
    h.forget_except(["pi2"])
    assert h.of("pi1")["cpu"] == []


@pytest.mark.parametrize(("meta", "deleted"), [
    ({}, True),  # an unmanaged pod (kubectl needs --force for it)
    ({"ownerReferences": [{"kind": "ReplicaSet", "controller": True}]}, True),
    ({"ownerReferences": [{"kind": "DaemonSet", "controller": True}]}, False),
    ({"ownerReferences": [{"kind": "DaemonSet", "controller": False}]}, True),
    ({"annotations": {"kubernetes.io/config.mirror": "x"}}, False),
    ({"deletionTimestamp": "2026-01-01T00:00:00Z"}, False),
])
def test_drain_skips_daemonset_mirror_and_terminating_pods(meta: Obj, deleted: bool) -> None:
    assert drainable({"metadata": {"name": "p", **meta}}) is deleted


def test_gauge_counts() -> None:
    assert node_conditions([node("a"), node("b", "False"), node("c", None),
                            node("d", "Unknown")]) == [
        (("Ready", "True"), 1.0), (("Ready", "False"), 1.0), (("Ready", "Unknown"), 2.0)]
    assert dict(pod_phases([pod("a"), pod("b", phase="Weird"), {"status": {}}])) == {
        ("Pending",): 1.0, ("Running",): 1.0, ("Succeeded",): 0.0, ("Failed",): 0.0,
        ("Unknown",): 1.0}
