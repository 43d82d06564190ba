"""Builders of Node and Pod objects (as the API stores them) for the scheduler's tests."""

from __future__ import annotations

from typing import Any

from bramble.master.scheduler.snapshot import NodeInfo, PodInfo, Snapshot, pod_info

Obj = dict[str, Any]


def node(name: str = "n1", cpu: str = "4", memory: str = "8Gi", pods: str = "110", *,
         ready: str | None = "True", labels: dict[str, str] | None = None,
         taints: list[Obj] | None = None, unschedulable: bool = False) -> Obj:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods}
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    spec: Obj = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"allocatable": allocatable, "capacity": dict(allocatable),
                       "conditions": conditions}}


def taint(key: str, effect: str = "NoSchedule", value: str = "") -> Obj:
    t = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t


def container(cpu: str | None = None, memory: str | None = None, name: str = "c",
              **extra: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    c: Obj = {"name": name, "image": "busybox", **extra}
    if requests:
        c["resources"] = {"requests": requests}
    return c


def pod(name: str = "p", cpu: str | None = None, memory: str | None = None, *,
        containers: list[Obj] | None = None, init: list[Obj] | None = None,
        uid: str | None = None, node_name: str | None = None, phase: str | None = None,
        owner: str | None = None, **spec: Any) -> Obj:
    """A pod; `spec` adds fields as written (nodeSelector=..., affinity=..., ...)."""
    body: Obj = {"containers": containers or [container(cpu, memory)], **spec}
    if init:
        body["initContainers"] = init
    if node_name:
        body["nodeName"] = node_name
    metadata: Obj = {"name": name, "namespace": "default", "uid": uid or f"uid-{name}"}
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                        "name": owner, "uid": f"uid-{owner}",
                                        "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body,
            "status": {"phase": phase or "Pending"}}


def info(**kwargs: Any) -> PodInfo:
    return pod_info(pod(**kwargs))


def node_info(n: Obj, *bound: Obj) -> NodeInfo:
    """The NodeInfo of node `n` with `bound` pods counted on it."""
    name = n["metadata"]["name"]
    for p in bound:
        p["spec"]["nodeName"] = name
    return Snapshot.of([n], bound).nodes[name]


def affinity(*terms: Obj, preferred: list[tuple[int, Obj]] | None = None) -> Obj:
    node_affinity: Obj = {}
    if terms:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": list(terms)}
    if preferred:
        node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": w, "preference": t} for w, t in preferred]
    return {"nodeAffinity": node_affinity}


def expr(key: str, operator: str, *values: str) -> Obj:
    e: Obj = {"key": key, "operator": operator}
    if values:
        e["values"] = list(values)
    return e
