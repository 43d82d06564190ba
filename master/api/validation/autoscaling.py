"""Validation of autoscaling/v2: HorizontalPodAutoscaler.

Role: pkg/apis/autoscaling/validation for the HorizontalPodAutoscaler, with Kubernetes'
paths and messages. autoscaling/v1 objects are converted to v2 before they are validated
(conversion.py), so their errors name v2 paths, as the apiserver names its internal ones.

Invariants:
- Objects arrive defaulted (minReplicas, metrics, and a given behavior filled in).
- minReplicas is at least 1: scaling to zero (the HPAScaleToZero alpha gate) is off, so an
  update may keep a 0 only if the stored object already had it.
- A metric names exactly the source its `type` says; its target says which value it sets.
"""

from __future__ import annotations

from typing import Any

from bramble.kube import names
from bramble.kube.errors import forbidden, invalid, not_supported, required
from bramble.kube.quantity import parse_quantity
from bramble.master.api.validation.apps import counters
from bramble.master.api.validation.meta import (
    Errs,
    Obj,
    child,
    dns1123_label,
    get_int,
    get_map,
    items,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)

MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
METRIC_SOURCE_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]
# The field of MetricSpec (and MetricStatus) each source type populates.
SOURCE_FIELDS = {"Object": "object", "Pods": "pods", "Resource": "resource",
                 "ContainerResource": "containerResource", "External": "external"}
TARGET_TYPES = ("Utilization", "Value", "AverageValue")
SELECT_POLICIES = ["Disabled", "Max", "Min"]
POLICY_TYPES = ["Percent", "Pods"]
# ValidateContainerResourceName: the standard container resources, or a qualified name.
_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def path_segment_name(value: str, path: str) -> Errs:
    """IsValidPathSegmentName: the name must be usable as one segment of a URL path."""
    if value in (".", ".."):
        return [invalid(path, value, f"may not be '{value}'")]
    return [invalid(path, value, f"may not contain '{bad}'") for bad in ("/", "%")
            if bad in value]


def validate_cross_version_object_reference(ref: Any, path: str) -> Errs:
    errs: Errs = []
    ref = ref if isinstance(ref, dict) else {}
    for name in ("kind", "name"):
        value = ref.get(name)
        if not value:
            errs.append(required(child(path, name), ""))
        elif not isinstance(value, str):
            errs.append(invalid(child(path, name), value, "must be of type string"))
        else:
            errs += path_segment_name(value, child(path, name))
    return errs


def _positive_quantity(value: Any, path: str) -> Errs:
    try:
        if parse_quantity(value) <= 0:
            return [invalid(path, value, "must be positive")]
    except (ValueError, TypeError) as err:
        return [invalid(path, value, str(err))]
    return []


def validate_metric_target(target: Any, path: str) -> Errs:
    errs: Errs = []
    target = target if isinstance(target, dict) else {}
    kind = target.get("type")
    if not kind:
        errs.append(required(child(path, "type"), "must specify a metric target type"))
    if kind not in TARGET_TYPES:
        errs.append(invalid(child(path, "type"), kind or "",
                            "must be either Utilization, Value, or AverageValue"))
    for name in ("value", "averageValue"):
        if target.get(name) is not None:
            errs += _positive_quantity(target[name], child(path, name))
    utilization = get_int(target, "averageUtilization", path, errs)
    if utilization is not None and utilization < 1:
        errs.append(invalid(child(path, "averageUtilization"), utilization,
                            "must be greater than 0"))
    return errs


def _metric_identifier(ident: Any, path: str) -> Errs:
    errs: Errs = []
    ident = ident if isinstance(ident, dict) else {}
    name = ident.get("name")
    if not name:
        errs.append(required(child(path, "name"), "must specify a metric name"))
    elif isinstance(name, str):
        errs += path_segment_name(name, child(path, "name"))
    if ident.get("selector") is not None:
        errs += validate_label_selector(ident["selector"], child(path, "selector"))
    return errs


def _utilization_or_value(target: Obj, path: str) -> Errs:
    """A resource target sets averageUtilization or averageValue, not both."""
    if target.get("averageUtilization") is None and target.get("averageValue") is None:
        return [required(child(path, "averageUtilization"),
                         "must set either a target raw value or a target utilization")]
    if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
        return [forbidden(child(path, "averageValue"),
                          "may not set both a target raw value and a target utilization")]
    return []


def _resource_source(src: Obj, path: str, *, container: bool) -> Errs:
    errs: Errs = []
    name = src.get("name")
    if not name:
        errs.append(required(child(path, "name"), "must specify a resource name"))
    elif container and isinstance(name, str) and name not in _CONTAINER_RESOURCES \
            and "/" not in name:
        errs.append(invalid(child(path, "name"), name, "must be a standard resource for "
                                                       "containers"))
    if container:
        value = src.get("container")
        if not value:
            errs.append(required(child(path, "container"), "must specify a container"))
        elif isinstance(value, str):
            errs += dns1123_label(value, child(path, "container"))
    target = src.get("target") if isinstance(src.get("target"), dict) else {}
    errs += validate_metric_target(target, child(path, "target"))
    errs += _utilization_or_value(target, child(path, "target"))
    return errs


def _pods_source(src: Obj, path: str) -> Errs:
    errs = _metric_identifier(src.get("metric"), child(path, "metric"))
    target = src.get("target") if isinstance(src.get("target"), dict) else {}
    errs += validate_metric_target(target, child(path, "target"))
    if target.get("averageValue") is None:
        errs.append(required(child(path, "target", "averageValue"),
                             "must specify a positive target averageValue"))
    return errs


def _object_source(src: Obj, path: str) -> Errs:
    errs = validate_cross_version_object_reference(src.get("describedObject"),
                                                   child(path, "describedObject"))
    errs += _metric_identifier(src.get("metric"), child(path, "metric"))
    target = src.get("target") if isinstance(src.get("target"), dict) else {}
    errs += validate_metric_target(target, child(path, "target"))
    if target.get("value") is None and target.get("averageValue") is None:
        errs.append(required(child(path, "target", "averageValue"),
                             "must set either a target value or averageValue"))
    return errs


def _external_source(src: Obj, path: str) -> Errs:
    errs = _metric_identifier(src.get("metric"), child(path, "metric"))
    target = src.get("target") if isinstance(src.get("target"), dict) else {}
    errs += validate_metric_target(target, child(path, "target"))
    if target.get("value") is None and target.get("averageValue") is None:
        errs.append(required(child(path, "target", "averageValue"),
                             "must set either a target value for metric or a per-pod target"))
    if target.get("value") is not None and target.get("averageValue") is not None:
        errs.append(forbidden(child(path, "target", "value"),
                              "may not set both a target value for metric and a per-pod target"))
    return errs


_SOURCE_RULES = {
    "object": _object_source,
    "external": _external_source,
    "pods": _pods_source,
    "resource": lambda src, path: _resource_source(src, path, container=False),
    "containerResource": lambda src, path: _resource_source(src, path, container=True),
}


def validate_metric_spec(spec: Obj, path: str) -> Errs:
    errs: Errs = []
    kind = spec.get("type")
    if not kind:
        errs.append(required(child(path, "type"), "must specify a metric source type"))
    elif kind not in METRIC_SOURCE_TYPES:
        errs.append(not_supported(child(path, "type"), kind, METRIC_SOURCE_TYPES))
    present = [field for field in _SOURCE_RULES if spec.get(field) is not None]
    if present:
        # Only the first source present is checked in depth, as upstream does.
        first = present[0]
        src = spec[first]
        if isinstance(src, dict):
            errs += _SOURCE_RULES[first](src, child(path, first))
        else:
            errs.append(invalid(child(path, first), src, "must be of type object"))
    expected = SOURCE_FIELDS.get(kind) if isinstance(kind, str) else None
    if expected is not None and spec.get(expected) is None:
        errs.append(required(child(path, expected),
                             "must populate information for the given metric source"))
    if len(present) != 1:
        for field in present:
            if field != expected:
                errs.append(forbidden(child(path, field),
                                      "must populate the given metric source only"))
    return errs


def _scaling_rules(rules: Any, path: str) -> Errs:
    if rules is None:
        return []
    if not isinstance(rules, dict):
        return [invalid(path, rules, "must be of type object")]
    errs: Errs = []
    window = get_int(rules, "stabilizationWindowSeconds", path, errs)
    if window is not None and window < 0:
        errs.append(invalid(child(path, "stabilizationWindowSeconds"), window,
                            "must be greater than or equal to zero"))
    if window is not None and window > MAX_STABILIZATION_WINDOW_SECONDS:
        errs.append(invalid(child(path, "stabilizationWindowSeconds"), window,
                            f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"))
    select = rules.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        errs.append(not_supported(child(path, "selectPolicy"), select, SELECT_POLICIES))
    if rules.get("tolerance") is not None:
        try:
            if parse_quantity(rules["tolerance"]) < 0:
                errs.append(invalid(child(path, "tolerance"), rules["tolerance"],
                                    "must be greater than or equal to zero"))
        except (ValueError, TypeError) as err:
            errs.append(invalid(child(path, "tolerance"), rules["tolerance"], str(err)))
    policies_path = child(path, "policies")
    if not rules.get("policies"):
        errs.append(required(policies_path, "must specify at least one Policy"))
    for _, p, policy in items(rules.get("policies"), policies_path, errs):
        if policy.get("type") not in POLICY_TYPES:
            errs.append(not_supported(child(p, "type"), policy.get("type", ""), POLICY_TYPES))
        value = get_int(policy, "value", p, errs)
        if (value or 0) <= 0:
            errs.append(invalid(child(p, "value"), value or 0, "must be greater than zero"))
        period = get_int(policy, "periodSeconds", p, errs)
        if (period or 0) <= 0:
            errs.append(invalid(child(p, "periodSeconds"), period or 0,
                                "must be greater than zero"))
        if (period or 0) > MAX_PERIOD_SECONDS:
            errs.append(invalid(child(p, "periodSeconds"), period,
                                f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return errs


def _spec(obj: Obj, errs: Errs, min_replicas_lower_bound: int) -> None:
    spec = get_map(obj, "spec", "", errs)
    minimum = get_int(spec, "minReplicas", "spec", errs)
    maximum = get_int(spec, "maxReplicas", "spec", errs) or 0
    if minimum is not None and minimum < min_replicas_lower_bound:
        errs.append(invalid("spec.minReplicas", minimum,
                            f"must be greater than or equal to {min_replicas_lower_bound}"))
    if maximum < 1:
        errs.append(invalid("spec.maxReplicas", maximum, "must be greater than 0"))
    if minimum is not None and maximum < minimum:
        errs.append(invalid("spec.maxReplicas", maximum,
                            "must be greater than or equal to `minReplicas`"))
    errs += validate_cross_version_object_reference(spec.get("scaleTargetRef"),
                                                    "spec.scaleTargetRef")
    has_object_or_external = False
    for _, p, metric in items(spec.get("metrics"), "spec.metrics", errs):
        errs += validate_metric_spec(metric, p)
        has_object_or_external |= metric.get("type") in ("Object", "External")
    if minimum == 0 and not has_object_or_external:
        errs.append(forbidden("spec.metrics", "must specify at least one Object or External "
                                              "metric to support scaling to zero replicas"))
    behavior = spec.get("behavior")
    if behavior is not None:
        if not isinstance(behavior, dict):
            errs.append(invalid("spec.behavior", behavior, "must be of type object"))
        else:
            errs += _scaling_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp")
            errs += _scaling_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown")


def validate_horizontal_pod_autoscaler(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    _spec(obj, errs, 1)
    return errs


def validate_horizontal_pod_autoscaler_update(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    old_min = (old.get("spec") or {}).get("minReplicas") if isinstance(old.get("spec"),
                                                                      dict) else None
    # An object that already scales to zero may keep doing so.
    _spec(new, errs, 0 if old_min == 0 else 1)
    return errs


def validate_horizontal_pod_autoscaler_status(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = get_map(new, "status", "", errs)
    counters(status, ("currentReplicas", "desiredReplicas"), errs)
    return errs
