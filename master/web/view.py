"""The status page's "cluster view": one compact JSON document computed from the store's
objects, the nodes' latest usage reports and the in-memory usage history.

Pure: `build(snapshot)` reads nothing else, so one computation serves every open page
(live.py) and tests are tables of objects in, view out. The shape is the contract in
helpers/web-contract.md; ages and pod STATUS strings come from bramble/kube/printers.py
so the page says what kubectl says.

The view holds no per-viewer data: the session part (`session.csrf`, `readOnly`) is
spliced into the encoded bytes per viewer by `with_session`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bramble.kube.printers import (
    event_times,
    job_status,
    node_roles,
    node_status,
    parse_time,
    pod_status,
    since,
)
from bramble.kube.quantity import parse_quantity

from ..api.rest import rfc3339
from ..controllers.replicaset import controller_of

Obj = dict[str, Any]

MAX_PODS = 200
MAX_EVENTS = 50
# A Warning event seen within this long counts in the health line: a problem that keeps
# happening (a crash loop) keeps counting, one that stopped fades out.
WARNING_WINDOW = timedelta(minutes=15)
# Node annotations the node agent sets from the Pi's sensors (node/host.py).
ANNOTATION_TEMPERATURE = "bramble.io/soc-temperature"
ANNOTATION_THROTTLED = "bramble.io/throttled"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

# Pod STATUS strings (kubectl's) of pods that are fine or on their way to being fine.
_HEALTHY_STATUS = frozenset({"Running", "Completed", "Succeeded", "Pending", "ContainerCreating",
                             "PodInitializing", "Terminating", "SchedulingGated"})
_INIT_PROGRESS = re.compile(r"Init:\d+/\d+")


@dataclass(frozen=True)
class Usage:
    """A node's latest usage report, parsed."""

    cpu_milli: int
    memory_bytes: int


@dataclass
class Snapshot:
    """Everything the view is computed from."""

    now: datetime
    nodes: list[Obj] = field(default_factory=list)
    pods: list[Obj] = field(default_factory=list)
    deployments: list[Obj] = field(default_factory=list)
    daemonsets: list[Obj] = field(default_factory=list)
    # ReplicaSets (those a Deployment owns are skipped: the Deployment stands for them)
    # and ReplicationControllers.
    replicasets: list[Obj] = field(default_factory=list)
    replicationcontrollers: list[Obj] = field(default_factory=list)
    jobs: list[Obj] = field(default_factory=list)
    services: list[Obj] = field(default_factory=list)
    events: list[Obj] = field(default_factory=list)
    usage: dict[str, Usage] = field(default_factory=dict)
    # Join requests waiting for approval: {name, fingerprint, peer, requested}.
    pending: list[Obj] = field(default_factory=list)
    history: Callable[[str], Obj] = lambda node: {"cpu": [], "memory": [], "stepSeconds": 30}
    cluster: Obj = field(default_factory=lambda: {"name": "bramble", "version": ""})


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _percent(used: int, total: int) -> int:
    return round(used * 100 / total) if total > 0 else 0


def _quantity(value: Any) -> float | None:
    try:
        return float(parse_quantity(value))
    except (ValueError, TypeError):
        return None


# --- nodes ----------------------------------------------------------------------------------

def _address(node: Obj) -> str:
    addresses = (node.get("status") or {}).get("addresses") or []
    for kind in ("InternalIP", "ExternalIP", "Hostname"):
        for a in addresses:
            if a.get("type") == kind and a.get("address"):
                return str(a["address"])
    return ""


def _allocatable(node: Obj, resource: str) -> float | None:
    status = node.get("status") or {}
    for source in ("allocatable", "capacity"):
        value = (status.get(source) or {}).get(resource)
        if value is not None:
            parsed = _quantity(value)
            if parsed is not None:
                return parsed
    return None


def node_usage(node: Obj, usage: Usage | None) -> tuple[Obj | None, Obj | None]:
    """(cpu, memory) bars of a node; None each without a usage report or allocatable."""
    if usage is None:
        return None, None
    cpu = mem = None
    cores = _allocatable(node, "cpu")
    if cores is not None:
        alloc = round(cores * 1000)
        cpu = {"usedMilli": usage.cpu_milli, "allocatableMilli": alloc,
               "percent": _percent(usage.cpu_milli, alloc)}
    memory = _allocatable(node, "memory")
    if memory is not None:
        alloc = round(memory)
        mem = {"usedBytes": usage.memory_bytes, "allocatableBytes": alloc,
               "percent": _percent(usage.memory_bytes, alloc)}
    return cpu, mem


def _temperature(annotations: Obj) -> float | None:
    text = str(annotations.get(ANNOTATION_TEMPERATURE) or "").strip().rstrip("C")
    try:
        return round(float(text), 1)
    except ValueError:
        return None


def _throttled(annotations: Obj) -> list[str] | None:
    """The throttling flags the node reported; [] when it reported none ("no"), None when
    it has no such sensor."""
    text = annotations.get(ANNOTATION_THROTTLED)
    if not isinstance(text, str) or not text:
        return None
    return [] if text == "no" else [f for f in text.split(",") if f]


def _active(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _node(node: Obj, snap: Snapshot, pods_on: dict[str, int]) -> Obj:
    meta = _meta(node)
    name = meta.get("name", "")
    state = node_status(node).split(",")[0]  # Ready | NotReady | Unknown
    unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    cpu, memory = node_usage(node, snap.usage.get(name))
    roles = node_roles(node)
    return {
        "name": name, "ready": state == "Ready",
        "status": "SchedulingDisabled" if state == "Ready" and unschedulable else state,
        "roles": [] if roles == "<none>" else roles.split(","),
        "arch": labels.get("kubernetes.io/arch")
        or ((node.get("status") or {}).get("nodeInfo") or {}).get("architecture", ""),
        "address": _address(node), "cpu": cpu, "memory": memory,
        "temperatureC": _temperature(annotations), "throttled": _throttled(annotations),
        "pods": pods_on.get(name, 0), "age": since(meta.get("creationTimestamp"), snap.now),
        "createdAt": meta.get("creationTimestamp", ""), "unschedulable": unschedulable,
        "history": snap.history(name),
    }


# --- workloads ------------------------------------------------------------------------------

def deployment_rolling_out(dep: Obj) -> bool:
    """What `kubectl rollout status` waits for: the controller saw the newest spec, every
    replica runs the new template, no old replica is left and all new ones are available."""
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    desired = _int(spec.get("replicas"), 1)
    updated = _int(status.get("updatedReplicas"))
    if _int(_meta(dep).get("generation")) > _int(status.get("observedGeneration")):
        return True
    return (updated < desired or _int(status.get("replicas")) > updated
            or _int(status.get("availableReplicas")) < updated)


def daemonset_rolling_out(ds: Obj) -> bool:
    status = ds.get("status") or {}
    desired = _int(status.get("desiredNumberScheduled"))
    if _int(_meta(ds).get("generation")) > _int(status.get("observedGeneration")):
        return True
    return (_int(status.get("updatedNumberScheduled")) < desired
            or _int(status.get("numberAvailable")) < desired)


def _workloads(snap: Snapshot) -> list[Obj]:
    out = []
    for dep in snap.deployments:
        meta, spec, status = _meta(dep), dep.get("spec") or {}, dep.get("status") or {}
        out.append({"kind": "Deployment", "namespace": meta.get("namespace", ""),
                    "name": meta.get("name", ""), "ready": _int(status.get("readyReplicas")),
                    "desired": _int(spec.get("replicas"), 1),
                    "upToDate": _int(status.get("updatedReplicas")),
                    "rollingOut": deployment_rolling_out(dep),
                    "paused": bool(spec.get("paused")),
                    "age": since(meta.get("creationTimestamp"), snap.now)})
    for ds in snap.daemonsets:
        meta, status = _meta(ds), ds.get("status") or {}
        out.append({"kind": "DaemonSet", "namespace": meta.get("namespace", ""),
                    "name": meta.get("name", ""), "ready": _int(status.get("numberReady")),
                    "desired": _int(status.get("desiredNumberScheduled")),
                    "upToDate": _int(status.get("updatedNumberScheduled")),
                    "rollingOut": daemonset_rolling_out(ds), "paused": False,
                    "age": since(meta.get("creationTimestamp"), snap.now)})
    for kind, owner in replicated(snap):
        meta, spec, status = _meta(owner), owner.get("spec") or {}, owner.get("status") or {}
        out.append({"kind": kind, "namespace": meta.get("namespace", ""),
                    "name": meta.get("name", ""), "ready": _int(status.get("readyReplicas")),
                    "desired": _int(spec.get("replicas"), 1),
                    # No templates to roll: every replica is "up to date" once it exists.
                    "upToDate": _int(status.get("replicas")),
                    "rollingOut": _int(meta.get("generation")) >
                    _int(status.get("observedGeneration")),
                    "paused": False, "age": since(meta.get("creationTimestamp"), snap.now)})
    out.sort(key=lambda w: (w["namespace"], w["name"], w["kind"]))
    return out


def replicated(snap: Snapshot) -> list[tuple[str, Obj]]:
    """ReplicaSets no Deployment controls, and ReplicationControllers: workloads of their
    own, shown and counted like Deployments."""
    own = [("ReplicaSet", rs) for rs in snap.replicasets if controller_of(rs) is None]
    return own + [("ReplicationController", rc) for rc in snap.replicationcontrollers]


_JOB_STATUS = {"FailureTarget": "Failed", "Terminating": "Running"}


def _jobs(snap: Snapshot) -> list[Obj]:
    out = []
    for job in snap.jobs:
        meta, spec, status = _meta(job), job.get("spec") or {}, job.get("status") or {}
        shown = job_status(job)
        out.append({"namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
                    "succeeded": _int(status.get("succeeded")),
                    "completions": _int(spec.get("completions"), 1),
                    "failed": _int(status.get("failed")),
                    "status": _JOB_STATUS.get(shown, shown),
                    "age": since(meta.get("creationTimestamp"), snap.now)})
    return out


# --- pods -----------------------------------------------------------------------------------

def _unschedulable(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False" \
                and c.get("reason") == "Unschedulable":
            return True
    return False


def pod_failing(pod: Obj, status: str) -> bool:
    """A pod that needs a person's look: failed, crash-looping, unable to pull or to start,
    or that no node can take."""
    if (pod.get("status") or {}).get("phase") == "Failed":
        return True
    if status in _HEALTHY_STATUS or _INIT_PROGRESS.fullmatch(status):
        return _unschedulable(pod)
    return True


def _pod(pod: Obj, now: datetime) -> Obj:
    meta, spec = _meta(pod), pod.get("spec") or {}
    ready, total, status, restarts, _ = pod_status(pod)
    return {"namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
            "phase": (pod.get("status") or {}).get("phase") or "Pending", "status": status,
            "ready": f"{ready}/{total}", "restarts": restarts, "node": spec.get("nodeName", ""),
            "age": since(meta.get("creationTimestamp"), now),
            "failing": pod_failing(pod, status),
            "containers": [c.get("name", "") for key in ("containers", "initContainers")
                           for c in spec.get(key) or []]}


def pods_desired(snap: Snapshot) -> int:
    """Pods that should be running: what the Deployments, DaemonSets and other replicated
    workloads ask for, plus
    the Jobs' and the unmanaged pods that have not finished."""
    desired = sum(_int((d.get("spec") or {}).get("replicas"), 1) for d in snap.deployments)
    desired += sum(_int((o.get("spec") or {}).get("replicas"), 1) for _, o in replicated(snap))
    desired += sum(_int((d.get("status") or {}).get("desiredNumberScheduled"))
                   for d in snap.daemonsets)
    for pod in snap.pods:
        owner = controller_of(pod)
        if _active(pod) and not _meta(pod).get("deletionTimestamp") and (
                owner is None or owner.get("kind") == "Job"):
            desired += 1
    return desired


def pods_running(pods: list[Obj]) -> int:
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running"
               and not _meta(p).get("deletionTimestamp"))


# --- services and events ------------------------------------------------------------------

def _services(snap: Snapshot) -> list[Obj]:
    ready = [_address(n) for n in snap.nodes if node_status(n).startswith("Ready")]
    hosts = [a for a in ready if a] or [a for a in map(_address, snap.nodes) if a]
    out = []
    for svc in snap.services:
        meta, spec = _meta(svc), svc.get("spec") or {}
        ports = []
        for p in spec.get("ports") or []:
            node_port = p.get("nodePort")
            entry: Obj = {"port": _int(p.get("port")), "protocol": p.get("protocol") or "TCP"}
            if isinstance(node_port, int) and node_port:
                entry["nodePort"] = node_port
                entry["links"] = ([f"http://{_host(h)}:{node_port}" for h in hosts]
                                  if entry["protocol"] == "TCP" else [])
            ports.append(entry)
        out.append({"namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
                    "type": spec.get("type") or "ClusterIP",
                    "clusterIP": spec.get("clusterIP") or "", "ports": ports})
    return out


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _event_time(event: Obj) -> datetime:
    series = event.get("series") or {}
    for value in (series.get("lastObservedTime"), event.get("lastTimestamp"),
                  event.get("eventTime"), event.get("firstTimestamp"),
                  _meta(event).get("creationTimestamp")):
        t = parse_time(value)
        if t is not None:
            return t
    return datetime.min.replace(tzinfo=UTC)


def _events(snap: Snapshot) -> tuple[list[Obj], int]:
    """The newest MAX_EVENTS events, and how many Warnings were seen lately."""
    dated = sorted(((_event_time(e), e) for e in snap.events), key=lambda te: te[0],
                   reverse=True)
    warnings = sum(1 for t, e in dated
                   if e.get("type") == "Warning" and snap.now - t <= WARNING_WINDOW)
    out = []
    for _, event in dated[:MAX_EVENTS]:
        last, _, count = event_times(event, snap.now)
        involved = event.get("involvedObject") or event.get("regarding") or {}
        out.append({"type": event.get("type") or "Normal", "reason": event.get("reason", ""),
                    "object": f"{involved.get('kind', '')}/{involved.get('name', '')}",
                    "namespace": _meta(event).get("namespace", ""),
                    "message": (event.get("message") or event.get("note") or "").strip(),
                    "count": count, "age": last})
    return out, warnings


# --- the whole view -------------------------------------------------------------------------

def health(nodes: list[Obj], running: int, desired: int, warnings: int,
           pending: int) -> Obj:
    ready = sum(1 for n in nodes if n["ready"])
    total = len(nodes)
    parts = [f"{ready}/{total} nodes ready", f"{running}/{desired} pods running",
             f"{warnings} warning{'' if warnings == 1 else 's'}"]
    if pending:
        parts.append(f"{pending} node{'' if pending == 1 else 's'} waiting for approval")
    if total == 0 or ready < total:
        level = "bad"
    elif running < desired or warnings or pending:
        level = "warn"
    else:
        level = "ok"
    return {"nodesReady": ready, "nodesTotal": total, "podsRunning": running,
            "podsDesired": desired, "warnings": warnings, "summary": " · ".join(parts),
            "level": level}


def build(snap: Snapshot) -> Obj:
    """The cluster view (without its `session` part)."""
    pods_on: dict[str, int] = {}
    for pod in snap.pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and _active(pod):
            pods_on[node] = pods_on.get(node, 0) + 1
    nodes = [_node(n, snap, pods_on) for n in snap.nodes]
    pods = sorted((_pod(p, snap.now) for p in snap.pods),
                  key=lambda p: (not p["failing"], p["namespace"], p["name"]))
    events, warnings = _events(snap)
    pending = [{"name": p.get("name", ""), "fingerprint": p.get("fingerprint", ""),
                "address": p.get("peer", ""), "requestedAt": p.get("requested", "")}
               for p in snap.pending]
    return {
        "generatedAt": rfc3339(snap.now),
        "cluster": snap.cluster,
        "health": health(nodes, pods_running(snap.pods), pods_desired(snap), warnings,
                         len(pending)),
        "nodes": nodes,
        "pendingNodes": pending,
        "workloads": _workloads(snap),
        "jobs": _jobs(snap),
        "pods": pods[:MAX_PODS],
        "podsTruncated": max(0, len(pods) - MAX_PODS),
        "services": _services(snap),
        "events": events,
    }


def encode(view: Obj) -> bytes:
    return orjson.dumps(view)


def with_session(encoded: bytes, csrf: str, read_only: bool) -> bytes:
    """The shared view bytes with one viewer's `session` added (no re-encoding)."""
    session = orjson.dumps({"csrf": csrf, "readOnly": read_only})
    assert encoded.endswith(b"}")
    return encoded[:-1] + b',"session":' + session + b"}"
