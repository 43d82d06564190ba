"""Cluster-level gauges on the master's /metrics: what the status page shows, for people
who graph it in Grafana. Computed at scrape time from the store and the usage cache, so
they cost nothing between scrapes.

- bramble_nodes{condition="Ready",status="True|False|Unknown"} (a node without a Ready
  condition counts as Unknown);
- bramble_pods{phase="Pending|Running|Succeeded|Failed|Unknown"};
- bramble_node_cpu_usage_cores / bramble_node_memory_usage_bytes{node=} from the latest
  usage reports; bramble_node_cpu_allocatable_cores / _memory_allocatable_bytes{node=}.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bramble.kube.quantity import parse_quantity

from ..api.nodeapi import UsageCache
from ..metrics import Labels
from ..metrics import Registry as MetricsRegistry
from ..store import Store
from .live import parse_usage

Obj = dict[str, Any]
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def node_conditions(nodes: Iterable[Obj]) -> list[tuple[Labels, float]]:
    counts = {"True": 0, "False": 0, "Unknown": 0}
    for node in nodes:
        status = "Unknown"
        for c in (node.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                status = c.get("status") if c.get("status") in counts else "Unknown"
        counts[status] += 1
    return [(("Ready", s), float(n)) for s, n in counts.items()]


def pod_phases(pods: Iterable[Obj]) -> list[tuple[Labels, float]]:
    counts = dict.fromkeys(PHASES, 0)
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        counts[phase if phase in counts else "Unknown"] += 1
    return [((p,), float(n)) for p, n in counts.items()]


def allocatable(nodes: Iterable[Obj], resource: str) -> list[tuple[Labels, float]]:
    out = []
    for node in nodes:
        value = ((node.get("status") or {}).get("allocatable") or {}).get(resource)
        if value is None:
            continue
        try:
            out.append(((node["metadata"]["name"],), float(parse_quantity(value))))
        except (ValueError, TypeError, KeyError):
            continue
    return out


def register(metrics: MetricsRegistry, store: Store, usage: UsageCache) -> None:
    def objs(resource: str) -> list[Obj]:
        return [e.obj() for e in store.list(resource)]

    def used(cpu: bool) -> list[tuple[Labels, float]]:
        out = []
        for report in usage.reports():
            parsed = parse_usage(report.usage)
            if parsed is not None:
                out.append(((report.node,), parsed.cpu_milli / 1000 if cpu
                            else float(parsed.memory_bytes)))
        return out

    metrics.gauge("bramble_nodes", "Nodes by the status of their Ready condition.",
                  ("condition", "status"), collect=lambda: node_conditions(objs("nodes")))
    metrics.gauge("bramble_pods", "Pods by phase.", ("phase",),
                  collect=lambda: pod_phases(objs("pods")))
    metrics.gauge("bramble_node_cpu_usage_cores", "CPU a node uses (its latest usage "
                  "report).", ("node",), collect=lambda: used(True))
    metrics.gauge("bramble_node_memory_usage_bytes", "Memory a node uses (its latest usage "
                  "report).", ("node",), collect=lambda: used(False))
    metrics.gauge("bramble_node_cpu_allocatable_cores", "CPU a node offers to pods.",
                  ("node",), collect=lambda: allocatable(objs("nodes"), "cpu"))
    metrics.gauge("bramble_node_memory_allocatable_bytes", "Memory a node offers to pods.",
                  ("node",), collect=lambda: allocatable(objs("nodes"), "memory"))
