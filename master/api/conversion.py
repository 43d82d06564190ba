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


def _cpu_utilizations(metrics: list[Obj], field: str) -> list[Any]:
    """The averageUtilization under `field` ("target"/"current") of each CPU Resource
    metric, in order; None for one without."""
    return [_dict(_dict(m.get("resource")).get(field)).get("averageUtilization")
            for m in metrics if m.get("type") == "Resource"
            and _dict(m.get("resource")).get("name") == "cpu"]


def _cpu_metric(utilization: Any) -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": utilization}}}


# MetricSpec and MetricStatus: v2 {type, <source>: {metric, target|current, ...}} <-> v1
# {type, <source>: flat, keys prefixed "target"|"current"}. One converter per direction
# serves both; _Half holds what a spec and a status differ in.

@dataclass(frozen=True)
class _Half:
    field: str  # v2's "target" / "current"; also the prefix of v1's keys (targetValue)
    typed: bool  # a v2 MetricTarget names its type; a MetricValueStatus has none
    # The v1 status types hold these quantities by value, not by pointer as the spec types
    # do: never absent, "0" when v2 has none.
    required: bool


_SPEC = _Half("target", typed=True, required=False)
_STATUS = _Half("current", typed=False, required=True)


def _quantity(out: Obj, key: str, src: Obj, src_key: str, half: _Half) -> None:
    if half.required:
        out[key] = src.get(src_key, "0")
    else:
        _set(out, key, src.get(src_key))


def _metric_to_v1(metric: Obj, half: _Half) -> Obj:
    p = half.field
    kind = metric.get("type")
    out: Obj = {"type": kind} if kind is not None else {}
    for source in ("resource", "containerResource"):
        if source in metric:
            src = _dict(metric[source])
            values = _dict(src.get(p))
            v1: Obj = {}
            _set(v1, "name", src.get("name"))
            _set(v1, "container", src.get("container"))
            _set(v1, f"{p}AverageUtilization", values.get("averageUtilization"))
            _quantity(v1, f"{p}AverageValue", values, "averageValue", half)
            out[source] = v1
    if "pods" in metric:
        src = _dict(metric["pods"])
        ident, values = _dict(src.get("metric")), _dict(src.get(p))
        v1 = {"metricName": ident.get("name", ""),
              f"{p}AverageValue": values.get("averageValue", "0")}
        _set(v1, "selector", ident.get("selector"))
        out["pods"] = v1
    if "object" in metric:
        src = _dict(metric["object"])
        ident, values = _dict(src.get("metric")), _dict(src.get(p))
        v1 = {"target": copy.deepcopy(_dict(src.get("describedObject"))),
              "metricName": ident.get("name", ""), f"{p}Value": values.get("value", "0")}
        _set(v1, "selector", ident.get("selector"))
        _set(v1, "averageValue", values.get("averageValue"))
        out["object"] = v1
    if "external" in metric:
        src = _dict(metric["external"])
        ident, values = _dict(src.get("metric")), _dict(src.get(p))
        v1 = {"metricName": ident.get("name", "")}
        _set(v1, "metricSelector", ident.get("selector"))
        _quantity(v1, f"{p}Value", values, "value", half)
        _set(v1, f"{p}AverageValue", values.get("averageValue"))
        out["external"] = v1
    return out


def _metric_to_v2(metric: Obj, half: _Half) -> Obj:
    p = half.field

    def values_of(kind: str) -> Obj:
        # v1 has no type: v2's follows from which values are set.
        return {"type": kind} if half.typed else {}

    kind = metric.get("type")
    out: Obj = {"type": kind} if kind is not None else {}
    for source in ("resource", "containerResource"):
        if source in metric:
            src = _dict(metric[source])
            utilization = src.get(f"{p}AverageUtilization")
            values = values_of("Utilization" if utilization is not None else "AverageValue")
            _set(values, "averageValue", src.get(f"{p}AverageValue"))
            _set(values, "averageUtilization", utilization)
            v2: Obj = {}
            _set(v2, "name", src.get("name"))
            _set(v2, "container", src.get("container"))
            v2[p] = values
            out[source] = v2
    if "pods" in metric:
        src = _dict(metric["pods"])
        ident: Obj = {"name": src.get("metricName", "")}
        _set(ident, "selector", src.get("selector"))
        values = values_of("AverageValue")
        values["averageValue"] = src.get(f"{p}AverageValue", "0")
        out["pods"] = {"metric": ident, p: values}
    if "object" in metric:
        src = _dict(metric["object"])
        ident = {"name": src.get("metricName", "")}
        _set(ident, "selector", src.get("selector"))
        average = src.get("averageValue")
        values = values_of("Value" if average is None else "AverageValue")
        values["value"] = src.get(f"{p}Value", "0")
        _set(values, "averageValue", average)
        out["object"] = {"describedObject": copy.deepcopy(_dict(src.get("target"))),
                         "metric": ident, p: values}
    if "external" in metric:
        src = _dict(metric["external"])
        ident = {"name": src.get("metricName", "")}
        _set(ident, "selector", src.get("metricSelector"))
        value = src.get(f"{p}Value")
        values = values_of("AverageValue" if value is None else "Value")
        _quantity(values, "value", src, f"{p}Value", half)
        _set(values, "averageValue", src.get(f"{p}AverageValue"))
        out["external"] = {"metric": ident, p: values}
    return out


def _assemble(out: Obj, meta: Any, annotations: dict[str, Any], spec: Any, status: Any) -> Obj:
    """The converted object: its parts after `out`'s apiVersion and kind, with the
    annotations left after conversion (none: no annotations field)."""
    if isinstance(meta, dict):
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
    for key, value in (("metadata", meta), ("spec", spec), ("status", status)):
        if value is not None:
            out[key] = copy.deepcopy(value)
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
        targets = _cpu_utilizations(metrics, "target")
        if targets:  # the first CPU metric's, as Go's conversion breaks at it
            _set(v1spec, "targetCPUUtilizationPercentage", targets[0])
        others = [_metric_to_v1(m, _SPEC) for m in metrics if not _is_cpu_utilization(m)]
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
        values = [u for u in _cpu_utilizations(current, "current") if u is not None]
        if values:  # the last CPU metric's with one, as Go's conversion loops on
            _set(v1status, "currentCPUUtilizationPercentage", values[-1])
        if current:
            annotations[METRIC_STATUSES] = _dump([_metric_to_v1(m, _STATUS) for m in current])
        if status.get("conditions"):
            annotations[CONDITIONS] = _dump(status["conditions"])
        status = v1status
    return _assemble(out, meta, annotations, spec, status)


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
        metrics = [_metric_to_v2(m, _SPEC) for m in _load_list(carried.get(METRIC_SPECS))]
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
            v2status["currentMetrics"] = [_metric_to_v2(m, _STATUS)
                                          for m in _load_list(carried[METRIC_STATUSES])]
        elif status.get("currentCPUUtilizationPercentage") is not None:
            v2status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {
                    "averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
        conditions = _load_list(carried.get(CONDITIONS))
        if conditions:
            v2status["conditions"] = conditions
        status = v2status
    return _assemble(out, meta, annotations, spec, status)


CONVERSIONS: Mapping[str, Conversion] = MappingProxyType({
    "autoscaling/v1/HorizontalPodAutoscaler": Conversion(hpa_v1_to_v2, hpa_v2_to_v1),
})
