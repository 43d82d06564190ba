"""Versions served by conversion: one stored object, several representations.

Role: a kind Kubernetes serves in more than one version is stored once, in its storage
version (a type of resources.RESOURCES); its other versions (resources.CONVERTED) are
produced from the stored object and turned back into it at the REST boundary. ObjectAPI
converts request bodies to the stored form before anything else sees them (defaulting,
validation, the store) and converts the objects it returns; patches apply to the version
the client named; the HTTP layer converts what it streams from the store (get, list,
watch). Controllers, the store and the tables only ever see the stored version, and
validation reports the stored version's field paths, as the apiserver reports those of
its internal version.

Invariants:
- Pure functions over JSON objects; malformed input is carried over as is (validation of
  the stored form reports it), never an exception.
- to_storage(from_storage(x)) == x for a stored x, up to the order of its metrics (the
  apiserver reorders them the same way: the v1 CPU target comes last).

autoscaling/v1 HorizontalPodAutoscaler <-> autoscaling/v2 (pkg/apis/autoscaling/v1/
conversion.go): v1's spec.targetCPUUtilizationPercentage is a v2 `Resource` cpu metric with
an `Utilization` target, and status.currentCPUUtilizationPercentage its current value.
Everything else v2 has - other metrics, behavior, the metric statuses and the conditions -
travels in the `autoscaling.alpha.kubernetes.io/*` annotations of the v1 object, in the v1
(v2beta1-shaped) metric format, so a v1 client that reads, changes and writes an object
back loses nothing. A v1 object without any metric gets the v1 default, 80% CPU.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Conversion:
    """Between a served version (the request's) and the stored version of one kind."""

    to_storage: Callable[[Obj], Obj]
    from_storage: Callable[[Obj], Obj]


def of(served_key: str) -> Conversion | None:
    """The conversion of a served type ("autoscaling/v1/HorizontalPodAutoscaler"); None
    for a type served as stored."""
    return CONVERSIONS.get(served_key)


# --- autoscaling/v1 HorizontalPodAutoscaler <-> autoscaling/v2 ------------------------------

METRIC_SPECS = "autoscaling.alpha.kubernetes.io/metrics"
METRIC_STATUSES = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
ROUND_TRIP_ANNOTATIONS = (METRIC_SPECS, METRIC_STATUSES, CONDITIONS, BEHAVIOR)

DEFAULT_CPU_UTILIZATION = 80


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _set(out: Obj, key: str, value: Any) -> None:
    """Set an optional field: absent stays absent."""
    if value is not None:
        out[key] = copy.deepcopy(value)


def _dump(value: Any) -> str:
    # Go's json.Marshal: compact.
    return json.dumps(value, separators=(",", ":"))


def _load_list(text: Any) -> list[Obj]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _load_dict(text: Any) -> Obj | None:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_cpu_utilization(metric: Obj) -> bool:
    resource = _dict(metric.get("resource"))
    return (metric.get("type") == "Resource" and resource.get("name") == "cpu"
            and _dict(resource.get("target")).get("averageUtilization") is not None)


def _cpu_metric(utilization: Any) -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": utilization}}}


# MetricSpec: v2 {type, <source>: {metric, target, ...}} <-> v1 {type, <source>: flat}.

def _metric_spec_to_v1(metric: Obj) -> Obj:
    kind = metric.get("type")
    out: Obj = {"type": kind} if kind is not None else {}
    for source in ("resource", "containerResource"):
        src = _dict(metric.get(source))
        if source in metric:
            target = _dict(src.get("target"))
            v1: Obj = {}
            _set(v1, "name", src.get("name"))
            _set(v1, "container", src.get("container"))
            _set(v1, "targetAverageUtilization", target.get("averageUtilization"))
            _set(v1, "targetAverageValue", target.get("averageValue"))
            out[source] = v1
    if "pods" in metric:
        src = _dict(metric["pods"])
        ident, target = _dict(src.get("metric")), _dict(src.get("target"))
        v1 = {"metricName": ident.get("name", ""),
              "targetAverageValue": target.get("averageValue", "0")}
        _set(v1, "selector", ident.get("selector"))
        out["pods"] = v1
    if "object" in metric:
        src = _dict(metric["object"])
        ident, target = _dict(src.get("metric")), _dict(src.get("target"))
        v1 = {"target": copy.deepcopy(_dict(src.get("describedObject"))),
              "metricName": ident.get("name", ""), "targetValue": target.get("value", "0")}
        _set(v1, "selector", ident.get("selector"))
        _set(v1, "averageValue", target.get("averageValue"))
        out["object"] = v1
    if "external" in metric:
        src = _dict(metric["external"])
        ident, target = _dict(src.get("metric")), _dict(src.get("target"))
        v1 = {"metricName": ident.get("name", "")}
        _set(v1, "metricSelector", ident.get("selector"))
        _set(v1, "targetValue", target.get("value"))
        _set(v1, "targetAverageValue", target.get("averageValue"))
        out["external"] = v1
    return out


def _metric_spec_to_v2(metric: Obj) -> Obj:
    kind = metric.get("type")
    out: Obj = {"type": kind} if kind is not None else {}
    for source in ("resource", "containerResource"):
        if source in metric:
            src = _dict(metric[source])
            utilization = src.get("targetAverageUtilization")
            target: Obj = {"type": "Utilization" if utilization is not None else "AverageValue"}
            _set(target, "averageUtilization", utilization)
            _set(target, "averageValue", src.get("targetAverageValue"))
            v2: Obj = {}
            _set(v2, "name", src.get("name"))
            _set(v2, "container", src.get("container"))
            v2["target"] = target
            out[source] = v2
    if "pods" in metric:
        src = _dict(metric["pods"])
        ident: Obj = {"name": src.get("metricName", "")}
        _set(ident, "selector", src.get("selector"))
        out["pods"] = {"metric": ident, "target": {
            "type": "AverageValue", "averageValue": src.get("targetAverageValue", "0")}}
    if "object" in metric:
        src = _dict(metric["object"])
        ident = {"name": src.get("metricName", "")}
        _set(ident, "selector", src.get("selector"))
        average = src.get("averageValue")
        target = {"type": "Value" if average is None else "AverageValue",
                  "value": src.get("targetValue", "0")}
        _set(target, "averageValue", average)
        out["object"] = {"describedObject": copy.deepcopy(_dict(src.get("target"))),
                         "metric": ident, "target": target}
    if "external" in metric:
        src = _dict(metric["external"])
        ident = {"name": src.get("metricName", "")}
        _set(ident, "selector", src.get("metricSelector"))
        value = src.get("targetValue")
        target = {"type": "AverageValue" if value is None else "Value"}
        _set(target, "value", value)
        _set(target, "averageValue", src.get("targetAverageValue"))
        out["external"] = {"metric": ident, "target": target}
    return out


# MetricStatus: v2 {type, <source>: {metric, current}} <-> v1 {type, <source>: flat}.

def _metric_status_to_v1(status: Obj) -> Obj:
    kind = status.get("type")
    out: Obj = {"type": kind} if kind is not None else {}
    for source in ("resource", "containerResource"):
        if source in status:
            src = _dict(status[source])
            current = _dict(src.get("current"))
            v1: Obj = {}
            _set(v1, "name", src.get("name"))
            _set(v1, "container", src.get("container"))
            _set(v1, "currentAverageUtilization", current.get("averageUtilization"))
            v1["currentAverageValue"] = current.get("averageValue", "0")
            out[source] = v1
    if "pods" in status:
        src = _dict(status["pods"])
        ident, current = _dict(src.get("metric")), _dict(src.get("current"))
        v1 = {"metricName": ident.get("name", ""),
              "currentAverageValue": current.get("averageValue", "0")}
        _set(v1, "selector", ident.get("selector"))
        out["pods"] = v1
    if "object" in status:
        src = _dict(status["object"])
        ident, current = _dict(src.get("metric")), _dict(src.get("current"))
        v1 = {"target": copy.deepcopy(_dict(src.get("describedObject"))),
              "metricName": ident.get("name", ""), "currentValue": current.get("value", "0")}
        _set(v1, "selector", ident.get("selector"))
        _set(v1, "averageValue", current.get("averageValue"))
        out["object"] = v1
    if "external" in status:
        src = _dict(status["external"])
        ident, current = _dict(src.get("metric")), _dict(src.get("current"))
        v1 = {"metricName": ident.get("name", ""), "currentValue": current.get("value", "0")}
        _set(v1, "metricSelector", ident.get("selector"))
        _set(v1, "currentAverageValue", current.get("averageValue"))
        out["external"] = v1
    return out


def _metric_status_to_v2(status: Obj) -> Obj:
    kind = status.get("type")
    out: Obj = {"type": kind} if kind is not None else {}
    for source in ("resource", "containerResource"):
        if source in status:
            src = _dict(status[source])
            current: Obj = {}
            _set(current, "averageValue", src.get("currentAverageValue"))
            _set(current, "averageUtilization", src.get("currentAverageUtilization"))
            v2: Obj = {}
            _set(v2, "name", src.get("name"))
            _set(v2, "container", src.get("container"))
            v2["current"] = current
            out[source] = v2
    if "pods" in status:
        src = _dict(status["pods"])
        ident: Obj = {"name": src.get("metricName", "")}
        _set(ident, "selector", src.get("selector"))
        out["pods"] = {"metric": ident,
                       "current": {"averageValue": src.get("currentAverageValue", "0")}}
    if "object" in status:
        src = _dict(status["object"])
        ident = {"name": src.get("metricName", "")}
        _set(ident, "selector", src.get("selector"))
        current = {"value": src.get("currentValue", "0")}
        _set(current, "averageValue", src.get("averageValue"))
        out["object"] = {"describedObject": copy.deepcopy(_dict(src.get("target"))),
                         "metric": ident, "current": current}
    if "external" in status:
        src = _dict(status["external"])
        ident = {"name": src.get("metricName", "")}
        _set(ident, "selector", src.get("metricSelector"))
        current = {"value": src.get("currentValue", "0")}
        _set(current, "averageValue", src.get("currentAverageValue"))
        out["external"] = {"metric": ident, "current": current}
    return out


def hpa_v2_to_v1(obj: Obj) -> Obj:
    """A stored (v2) HorizontalPodAutoscaler as autoscaling/v1 shows it."""
    out: Obj = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler"}
    meta = copy.deepcopy(obj.get("metadata"))
    spec, status = obj.get("spec"), obj.get("status")
    annotations: dict[str, Any] = {}
    if isinstance(meta, dict):
        annotations = {k: v for k, v in _dict(meta.get("annotations")).items()
                       if k not in ROUND_TRIP_ANNOTATIONS}
    if isinstance(spec, dict):
        v1spec: Obj = {}
        _set(v1spec, "scaleTargetRef", spec.get("scaleTargetRef"))
        _set(v1spec, "minReplicas", spec.get("minReplicas"))
        v1spec["maxReplicas"] = spec.get("maxReplicas", 0)
        metrics = [m for m in spec.get("metrics") or [] if isinstance(m, dict)]
        for m in metrics:
            resource = _dict(m.get("resource"))
            if m.get("type") == "Resource" and resource.get("name") == "cpu":
                _set(v1spec, "targetCPUUtilizationPercentage",
                     _dict(resource.get("target")).get("averageUtilization"))
                break
        others = [_metric_spec_to_v1(m) for m in metrics if not _is_cpu_utilization(m)]
        if others:
            annotations[METRIC_SPECS] = _dump(others)
        if spec.get("behavior") is not None:
            annotations[BEHAVIOR] = _dump(spec["behavior"])
        spec = v1spec
    if isinstance(status, dict):
        v1status: Obj = {}
        _set(v1status, "observedGeneration", status.get("observedGeneration"))
        _set(v1status, "lastScaleTime", status.get("lastScaleTime"))
        v1status["currentReplicas"] = status.get("currentReplicas", 0)
        v1status["desiredReplicas"] = status.get("desiredReplicas", 0)
        current = [m for m in status.get("currentMetrics") or [] if isinstance(m, dict)]
        for m in current:
            resource = _dict(m.get("resource"))
            if m.get("type") == "Resource" and resource.get("name") == "cpu":
                _set(v1status, "currentCPUUtilizationPercentage",
                     _dict(resource.get("current")).get("averageUtilization"))
        if current:
            annotations[METRIC_STATUSES] = _dump([_metric_status_to_v1(m) for m in current])
        if status.get("conditions"):
            annotations[CONDITIONS] = _dump(status["conditions"])
        status = v1status
    if isinstance(meta, dict):
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
    for key, value in (("metadata", meta), ("spec", spec), ("status", status)):
        if value is not None:
            out[key] = copy.deepcopy(value)
    return out


def hpa_v1_to_v2(obj: Obj) -> Obj:
    """An autoscaling/v1 HorizontalPodAutoscaler in its stored (v2) form."""
    out: Obj = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"}
    meta = copy.deepcopy(obj.get("metadata"))
    spec, status = obj.get("spec"), obj.get("status")
    annotations: dict[str, Any] = dict(_dict(meta.get("annotations"))) \
        if isinstance(meta, dict) else {}
    carried = {k: annotations.pop(k) for k in ROUND_TRIP_ANNOTATIONS if k in annotations}
    if isinstance(spec, dict):
        v2spec: Obj = {}
        _set(v2spec, "scaleTargetRef", spec.get("scaleTargetRef"))
        _set(v2spec, "minReplicas", spec.get("minReplicas"))
        v2spec["maxReplicas"] = spec.get("maxReplicas", 0)
        metrics = [_metric_spec_to_v2(m) for m in _load_list(carried.get(METRIC_SPECS))]
        if spec.get("targetCPUUtilizationPercentage") is not None:
            metrics.append(_cpu_metric(spec["targetCPUUtilizationPercentage"]))
        # autoscaling/v1's implicit default, made explicit (as the apiserver does here,
        # where the annotated metrics are known too).
        v2spec["metrics"] = metrics or [_cpu_metric(DEFAULT_CPU_UTILIZATION)]
        behavior = _load_dict(carried.get(BEHAVIOR))
        if behavior is not None:
            v2spec["behavior"] = behavior
        spec = v2spec
    if isinstance(status, dict):
        v2status: Obj = {}
        _set(v2status, "observedGeneration", status.get("observedGeneration"))
        _set(v2status, "lastScaleTime", status.get("lastScaleTime"))
        _set(v2status, "currentReplicas", status.get("currentReplicas"))
        v2status["desiredReplicas"] = status.get("desiredReplicas", 0)
        if METRIC_STATUSES in carried:
            # The annotation has more than the single CPU percentage: it wins.
            v2status["currentMetrics"] = [_metric_status_to_v2(m)
                                          for m in _load_list(carried[METRIC_STATUSES])]
        elif status.get("currentCPUUtilizationPercentage") is not None:
            v2status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {
                    "averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
        conditions = _load_list(carried.get(CONDITIONS))
        if conditions:
            v2status["conditions"] = conditions
        status = v2status
    if isinstance(meta, dict):
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
    for key, value in (("metadata", meta), ("spec", spec), ("status", status)):
        if value is not None:
            out[key] = copy.deepcopy(value)
    return out


CONVERSIONS: Mapping[str, Conversion] = MappingProxyType({
    "autoscaling/v1/HorizontalPodAutoscaler": Conversion(hpa_v1_to_v2, hpa_v2_to_v1),
})
