"""Table columns and cells: kubectl's printers, case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bramble.kube import printers as tables
from bramble.master.api.resources import RESOURCES

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


MIN, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"),       # a clock far behind
    (-1.5, "0s"),            # within 2s of skew counts as now (Go truncates to -1)
    (0, "0s"),
    (5, "5s"),
    (119, "119s"),           # seconds up to 2 minutes
    (120, "2m"),
    (3 * MIN + 2, "3m2s"),   # minutes and seconds below 10 minutes
    (10 * MIN + 59, "10m"),
    (179 * MIN, "179m"),     # minutes up to 3 hours
    (3 * HOUR, "3h"),
    (4 * HOUR + 5 * MIN, "4h5m"),
    (20 * HOUR + 30 * MIN, "20h"),
    (47 * HOUR, "47h"),      # hours up to 2 days
    (3 * DAY, "3d"),
    (3 * DAY + 4 * HOUR, "3d4h"),
    (45 * DAY, "45d"),       # days up to 2 years
    (2 * 365 * DAY + 45 * DAY, "2y45d"),
    (3 * 365 * DAY, "3y"),
    (9 * 365 * DAY, "9y"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_age_of_missing_timestamp_is_unknown() -> None:
    assert tables.since(None, NOW) == "<unknown>"
    assert tables.since("2025-06-01T11:59:00.123456Z", NOW) == "59s"  # MicroTime, truncated


def test_every_served_kind_has_cells_for_every_column() -> None:
    for r in RESOURCES:
        columns = tables.column_definitions(r.key)
        row = tables.cells(r.key, {"metadata": {"name": "x", "creationTimestamp": ts(5)}}, NOW)
        assert len(row) == len(columns), r.key
        for c in columns:
            assert set(c) == {"name", "type", "format", "description", "priority"}


def test_unknown_kind_falls_back_to_name_and_age() -> None:
    assert [c["name"] for c in tables.column_definitions("x/v1/Thing")] == ["Name", "Age"]
    assert tables.cells("x/v1/Thing", {"metadata": {"name": "a", "creationTimestamp": ts(90)}},
                        NOW) == ["a", "90s"]


# --- pods -----------------------------------------------------------------------------------

def pod(containers: list[dict] | None = None, *, phase: str = "Running", init: list | None = None,
        init_specs: list | None = None, conditions: list | None = None, deleting: bool = False,
        reason: str = "", n_containers: int | None = None) -> dict:
    containers = containers or []
    meta = {"name": "web", "creationTimestamp": ts(300)}
    if deleting:
        meta["deletionTimestamp"] = ts(1)
    status: dict = {"phase": phase, "containerStatuses": containers,
                    "conditions": conditions or []}
    if init is not None:
        status["initContainerStatuses"] = init
    if reason:
        status["reason"] = reason
    n = n_containers if n_containers is not None else max(1, len(containers))
    spec = {"containers": [{"name": f"c{i}"} for i in range(n)],
            "initContainers": init_specs or [{"name": f"i{i}"} for i in range(len(init or []))]}
    return {"metadata": meta, "spec": spec, "status": status}


RUNNING = {"name": "c0", "ready": True, "restartCount": 0,
           "state": {"running": {"startedAt": ts(200)}}}
NOT_READY = {"name": "c0", "ready": False, "restartCount": 0,
             "state": {"running": {"startedAt": ts(200)}}}


def waiting(reason: str, restarts: int = 0, name: str = "c0") -> dict:
    return {"name": name, "ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": reason}}}


def terminated(reason: str = "", exit_code: int = 0, signal: int = 0, name: str = "c0") -> dict:
    t: dict = {"exitCode": exit_code}
    if reason:
        t["reason"] = reason
    if signal:
        t["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": t}}


READY = [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]


@pytest.mark.parametrize(("obj", "ready", "status"), [
    (pod(phase="Pending"), "0/1", "Pending"),                                  # not scheduled
    (pod([waiting("ContainerCreating")], phase="Pending"), "0/1", "ContainerCreating"),
    (pod([RUNNING], conditions=READY), "1/1", "Running"),
    (pod([NOT_READY]), "0/1", "Running"),                                      # phase shows
    (pod([terminated("Completed")], phase="Succeeded"), "0/1", "Completed"),
    (pod([terminated("Error", 1)], phase="Failed"), "0/1", "Error"),
    (pod([terminated(exit_code=2)], phase="Failed"), "0/1", "ExitCode:2"),    # no reason given
    (pod([terminated(exit_code=137, signal=9)], phase="Failed"), "0/1", "Signal:9"),
    (pod([waiting("CrashLoopBackOff", 5)]), "0/1", "CrashLoopBackOff"),
    (pod([waiting("ImagePullBackOff")], phase="Pending"), "0/1", "ImagePullBackOff"),
    (pod([waiting("ErrImagePull")], phase="Pending"), "0/1", "ErrImagePull"),
    # Init containers: still running the first, failing one, waiting, all done.
    (pod([waiting("PodInitializing")], phase="Pending",
         init=[{"name": "i0", "state": {"running": {}}}]), "0/1", "Init:0/1"),
    (pod([waiting("PodInitializing")], phase="Pending",
         init=[terminated("Completed", name="i0"), {"name": "i1", "state": {"running": {}}}]),
     "0/1", "Init:1/2"),
    (pod([], phase="Pending", init=[terminated("Error", 1, name="i0")]), "0/1", "Init:Error"),
    (pod([], phase="Pending", init=[terminated(exit_code=3, name="i0")]), "0/1",
     "Init:ExitCode:3"),
    (pod([], phase="Pending", init=[waiting("CrashLoopBackOff", name="i0")]), "0/1",
     "Init:CrashLoopBackOff"),
    (pod([RUNNING], init=[terminated("Completed", name="i0")], conditions=READY), "1/1",
     "Running"),
    # Sidecar (restartable init) containers count as containers once started.
    (pod([RUNNING], init=[{"name": "s", "started": True, "ready": True,
                           "state": {"running": {}}}],
         init_specs=[{"name": "s", "restartPolicy": "Always"}], conditions=READY),
     "2/2", "Running"),
    # One container completed, another still running: Running if ready, else NotReady.
    (pod([terminated("Completed", name="a"), dict(RUNNING, name="b")], conditions=READY),
     "1/2", "Running"),
    (pod([terminated("Completed", name="a"), dict(RUNNING, name="b")],
         conditions=[{"type": "Ready", "status": "False"}]), "1/2", "NotReady"),
    # ... and a failed sibling shows its failure rather than "Completed".
    (pod([terminated("Error", 1, name="a"), terminated("Completed", name="b")]), "0/2", "Error"),
    (pod([RUNNING], deleting=True, conditions=READY), "1/1", "Terminating"),
    (pod([terminated("Completed")], phase="Succeeded", deleting=True), "0/1", "Completed"),
    (pod([RUNNING], deleting=True, reason="NodeLost"), "1/1", "Unknown"),
    (pod(phase="Failed", reason="Evicted"), "0/1", "Evicted"),
    (pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                       "reason": "SchedulingGated"}]), "0/1", "SchedulingGated"),
])
def test_pod_ready_and_status(obj: dict, ready: str, status: str) -> None:
    row = tables.cells("v1/Pod", obj, NOW)
    assert (row[1], row[2]) == (ready, status)


def test_pod_restarts_show_when_the_last_one_was() -> None:
    c = dict(RUNNING, restartCount=5,
             lastState={"terminated": {"exitCode": 1, "finishedAt": ts(5 * MIN)}})
    assert tables.cells("v1/Pod", pod([c]), NOW)[3] == "5 (5m ago)"
    assert tables.cells("v1/Pod", pod([dict(RUNNING, restartCount=2)]), NOW)[3] == "2"
    assert tables.cells("v1/Pod", pod([RUNNING]), NOW)[3] == "0"


def test_pod_wide_cells() -> None:
    obj = pod([RUNNING], conditions=READY + [{"type": "example.com/gate", "status": "True"}])
    obj["status"]["podIPs"] = [{"ip": "10.42.0.5"}]
    obj["spec"]["nodeName"] = "pi1"
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/gate"},
                                     {"conditionType": "example.com/other"}]
    assert tables.cells("v1/Pod", obj, NOW) == [
        "web", "1/1", "Running", "0", "5m", "10.42.0.5", "pi1", "<none>", "1/2"]
    empty = tables.cells("v1/Pod", pod(phase="Pending"), NOW)
    assert empty[5:] == ["<none>", "<none>", "<none>", "<none>"]
    assert [c["priority"] for c in tables.column_definitions("v1/Pod")] == [0] * 5 + [1] * 4


# --- workloads ------------------------------------------------------------------------------

TEMPLATE = {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"},
                                    {"name": "log", "image": "busybox"}],
                     "nodeSelector": {"disk": "ssd"}}}
SELECTOR = {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]}


def test_deployment_cells() -> None:
    obj = {"metadata": {"name": "web", "creationTimestamp": ts(4 * HOUR + 5 * MIN)},
           "spec": {"replicas": 3, "selector": SELECTOR, "template": TEMPLATE},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert tables.cells("apps/v1/Deployment", obj, NOW) == [
        "web", "2/3", 3, 2, "4h5m", "web,log", "nginx:1.25,busybox",
        "app=web,!canary,tier in (a,b)"]  # sorted by key
    names = [c["name"] for c in tables.column_definitions("apps/v1/Deployment")]
    assert names == ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images",
                     "Selector"]


def test_replicaset_and_daemonset_cells() -> None:
    rs = {"metadata": {"name": "web-1", "creationTimestamp": ts(10)},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                   "template": TEMPLATE},
          "status": {"replicas": 2, "readyReplicas": 1}}
    assert tables.cells("apps/v1/ReplicaSet", rs, NOW)[:5] == ["web-1", 2, 2, 1, "10s"]
    ds = {"metadata": {"name": "agent", "creationTimestamp": ts(3 * DAY)},
          "spec": {"selector": {}, "template": TEMPLATE},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert tables.cells("apps/v1/DaemonSet", ds, NOW) == [
        "agent", 3, 3, 2, 3, 2, "disk=ssd", "3d", "web,log", "nginx:1.25,busybox", "<none>"]


@pytest.mark.parametrize(("spec", "status", "cells"), [
    ({"completions": 1}, {"succeeded": 1, "startTime": ts(70), "completionTime": ts(60),
                          "conditions": [{"type": "Complete", "status": "True"}]},
     ["Complete", "1/1", "10s"]),
    ({"completions": 3}, {"succeeded": 1, "startTime": ts(30)}, ["Running", "1/3", "30s"]),
    ({"parallelism": 2}, {"succeeded": 0}, ["Running", "0/1 of 2", ""]),
    ({}, {"conditions": [{"type": "Failed", "status": "True"}]}, ["Failed", "0/1", ""]),
    ({"suspend": True}, {"conditions": [{"type": "Suspended", "status": "True"}]},
     ["Suspended", "0/1", ""]),
])
def test_job_cells(spec: dict, status: dict, cells: list) -> None:
    obj = {"metadata": {"name": "pi", "creationTimestamp": ts(100)},
           "spec": dict(spec, template=TEMPLATE), "status": status}
    assert tables.cells("batch/v1/Job", obj, NOW)[1:4] == cells


# --- nodes ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("conditions", "unschedulable", "status"), [
    ([{"type": "Ready", "status": "True"}], False, "Ready"),
    ([{"type": "Ready", "status": "False"}], False, "NotReady"),
    ([{"type": "Ready", "status": "Unknown"}], False, "NotReady"),
    ([], False, "Unknown"),
    ([{"type": "Ready", "status": "True"}], True, "Ready,SchedulingDisabled"),
])
def test_node_status(conditions: list, unschedulable: bool, status: str) -> None:
    node = {"metadata": {"name": "pi1"}, "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conditions}}
    assert tables.cells("v1/Node", node, NOW)[1] == status


def test_node_cells() -> None:
    node = {"metadata": {"name": "pi1", "creationTimestamp": ts(45 * DAY),
                         "labels": {"node-role.kubernetes.io/control-plane": "",
                                    "node-role.kubernetes.io/worker": "",
                                    "kubernetes.io/role": "edge"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "Hostname", "address": "pi1"},
                                     {"type": "InternalIP", "address": "192.168.1.10"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.0-bramble",
                                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.6.31+rpt-rpi-v8",
                                    "containerRuntimeVersion": "podman://4.3.1"}}}
    assert tables.cells("v1/Node", node, NOW) == [
        "pi1", "Ready", "control-plane,edge,worker", "45d", "v1.30.0-bramble", "192.168.1.10",
        "<none>", "Debian GNU/Linux 12 (bookworm)", "6.6.31+rpt-rpi-v8", "podman://4.3.1"]
    bare = tables.cells("v1/Node", {"metadata": {"name": "x"}}, NOW)
    assert bare[2] == "<none>" and bare[7:] == ["<unknown>"] * 3


# --- services, endpoints, the rest ----------------------------------------------------------

@pytest.mark.parametrize(("ports", "text"), [
    ([{"port": 80, "protocol": "TCP"}], "80/TCP"),
    ([{"port": 80, "nodePort": 30080, "protocol": "TCP"}], "80:30080/TCP"),
    ([{"port": 53, "protocol": "UDP"}, {"port": 53}], "53/UDP,53/TCP"),
    ([], ""),
])
def test_service_ports(ports: list, text: str) -> None:
    assert tables.service_ports(ports) == text


@pytest.mark.parametrize(("spec", "status", "cells"), [
    ({"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [{"port": 80}],
      "selector": {"app": "web"}}, {}, ["ClusterIP", "10.96.0.10", "<none>", "80/TCP"]),
    ({"type": "NodePort", "clusterIPs": ["10.96.0.11"],
      "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}, {},
     ["NodePort", "10.96.0.11", "<none>", "80:30080/TCP"]),
    ({"type": "LoadBalancer", "clusterIP": "10.96.0.12", "ports": []}, {},
     ["LoadBalancer", "10.96.0.12", "<pending>", "<none>"]),
    ({"type": "LoadBalancer", "clusterIP": "10.96.0.12", "externalIPs": ["1.2.3.4"]},
     {"loadBalancer": {"ingress": [{"ip": "192.168.1.50"}]}},
     ["LoadBalancer", "10.96.0.12", "192.168.1.50,1.2.3.4", "<none>"]),
    ({"type": "ExternalName", "externalName": "example.com"}, {},
     ["ExternalName", "<none>", "example.com", "<none>"]),
    ({"clusterIP": "None", "ports": [{"port": 5432}]}, {},
     ["ClusterIP", "None", "<none>", "5432/TCP"]),
])
def test_service_cells(spec: dict, status: dict, cells: list) -> None:
    obj = {"metadata": {"name": "web", "creationTimestamp": ts(5)}, "spec": spec,
           "status": status}
    row = tables.cells("v1/Service", obj, NOW)
    assert row[1:5] == cells
    assert row[6] == tables.format_labels(spec.get("selector"))


def test_endpoints_cells() -> None:
    def ep(subsets: list) -> str:
        return tables.cells("v1/Endpoints", {"metadata": {"name": "web"}, "subsets": subsets},
                            NOW)[1]

    assert ep([]) == "<none>"
    assert ep([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                "ports": [{"port": 80}]}]) == "10.0.0.1:80,10.0.0.2:80"
    assert ep([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]) == "[fd00::1]:80"
    assert ep([{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)],
                "ports": [{"port": 80}]}]) == "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."
    assert ep([{"addresses": [{"ip": "10.0.0.1"}]}]) == "10.0.0.1"  # headless, no ports


def test_configmap_secret_namespace_cells() -> None:
    cm = {"metadata": {"name": "cfg", "creationTimestamp": ts(1)},
          "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert tables.cells("v1/ConfigMap", cm, NOW) == ["cfg", 3, "1s"]
    secret = {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "x"}}
    assert tables.cells("v1/Secret", secret, NOW) == ["s", "kubernetes.io/tls", 1, "<unknown>"]
    ns = {"metadata": {"name": "kube-system"}, "status": {"phase": "Terminating"}}
    assert tables.cells("v1/Namespace", ns, NOW)[:2] == ["kube-system", "Terminating"]


def test_event_cells() -> None:
    event = {"metadata": {"name": "web.17a"}, "type": "Warning", "reason": "BackOff",
             "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
             "source": {"component": "kubelet", "host": "pi1"},
             "message": "Back-off restarting failed container\n", "count": 7,
             "firstTimestamp": ts(10 * MIN), "lastTimestamp": ts(30)}
    assert tables.cells("v1/Event", event, NOW) == [
        "30s", "Warning", "BackOff", "pod/web", "spec.containers{c}", "kubelet, pi1",
        "Back-off restarting failed container", "10m", 7, "web.17a"]
    newer = {"metadata": {"name": "e"}, "eventTime": "2025-06-01T11:59:00.000000Z",
             "reportingController": "bramble-scheduler", "involvedObject": {"kind": "Node"}}
    row = tables.cells("v1/Event", newer, NOW)
    assert (row[0], row[3], row[5], row[7], row[8]) == ("60s", "node", "bramble-scheduler",
                                                        "60s", 1)
    names = [c["name"] for c in tables.column_definitions("v1/Event") if not c["priority"]]
    assert names == ["Last Seen", "Type", "Reason", "Object", "Message"]
