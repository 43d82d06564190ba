"""Validation of apps/v1: Deployment, ReplicaSet, DaemonSet.

Role: pkg/apis/apps/validation plus the apps/v1 update rule of the registry strategies
(`spec.selector` is immutable), with Kubernetes' paths and messages.

Invariants:
- Objects arrive defaulted (strategy, rollingUpdate, revisionHistoryLimit are set), so a
  missing value here means a client removed it explicitly.
- A selector must select its own pod template - otherwise the controller would create pods
  it does not own, forever.
"""

from __future__ import annotations

from typing import Any

from bramble.kube import names
from bramble.kube.errors import BadRequest, forbidden, invalid, not_supported, required
from bramble.kube.selectors import label_selector_from_struct
from bramble.master.api.validation.core import validate_pod_template
from bramble.master.api.validation.meta import (
    Errs,
    Obj,
    child,
    get_int,
    get_map,
    immutable,
    items,
    nonnegative,
    nonnegative_field,
    one_of,
    selector_is_empty,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)

CONDITION_STATUSES = ("True", "False", "Unknown")


def _spec(obj: Obj, errs: Errs) -> Obj:
    return get_map(obj, "spec", "", errs)


def template_labels(spec: Obj) -> Any:
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    return meta.get("labels") or {}


def validate_selector_and_template(spec: Obj, kind: str, errs: Errs, *,
                                   guard_empty: bool = True, allow_empty: bool = False) -> None:
    """spec.selector present, non-empty and well formed, and matching the template labels.

    `guard_empty` mirrors the ReplicaSet rule that an empty selector is not checked against
    the template (the DaemonSet rule checks it, and it trivially matches); `allow_empty`
    the Job rule, which does not refuse an empty selector at all.
    """
    selector = spec.get("selector")
    if selector is None:
        errs.append(required("spec.selector"))
    else:
        errs += validate_label_selector(selector, "spec.selector")
        if selector_is_empty(selector) and not allow_empty:
            errs.append(invalid("spec.selector", selector, f"empty selector is invalid for {kind}"))
    try:
        parsed = label_selector_from_struct(selector if isinstance(selector, dict) or
                                            selector is None else {})
    except BadRequest:
        errs.append(invalid("spec.selector", selector, "invalid label selector"))
        return
    labels = template_labels(spec)
    if (not guard_empty or not parsed.empty()) and not parsed.matches(
            labels if isinstance(labels, dict) else {}):
        errs.append(invalid("spec.template.metadata.labels", labels,
                            "`selector` does not match template `labels`"))


def validate_workload_template(spec: Obj, owner: str, errs: Errs) -> None:
    """The pod template of a long-running workload: restartPolicy Always, no deadline."""
    errs += validate_pod_template(spec.get("template"), "spec.template")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    pod_spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    if pod_spec.get("restartPolicy") != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy",
                                  pod_spec.get("restartPolicy"), ["Always"]))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              f"activeDeadlineSeconds in {owner} is not Supported"))


def _percent(value: Any) -> int | None:
    if isinstance(value, str) and not names.is_percent(value):
        return int(value[:-1])
    return None


def _int_or_percent_value(value: Any) -> int:
    percent = _percent(value)
    if percent is not None:
        return percent
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def validate_int_or_percent(value: Any, path: str) -> Errs:
    """ValidatePositiveIntOrPercent: a non-negative integer or a percentage like "25%"."""
    if isinstance(value, str):
        return [invalid(path, value, msg) for msg in names.is_percent(value)]
    if isinstance(value, int) and not isinstance(value, bool):
        return nonnegative(value, path)
    return [invalid(path, value, "must be an integer or percentage (e.g '5%')")]


def _not_over_100(value: Any, path: str) -> Errs:
    percent = _percent(value)
    if percent is not None and percent > 100:
        return [invalid(path, value, "must not be greater than 100%")]
    return []


def _deployment_strategy(spec: Obj, errs: Errs) -> None:
    strategy = get_map(spec, "strategy", "spec", errs)
    strategy_type = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if strategy_type == "Recreate":
        if rolling is not None:
            errs.append(forbidden("spec.strategy.rollingUpdate",
                                  "may not be specified when strategy `type` is 'Recreate'"))
    elif strategy_type == "RollingUpdate":
        if not isinstance(rolling, dict):
            errs.append(required("spec.strategy.rollingUpdate",
                                 "this should be defaulted and never be nil"))
            return
        path = "spec.strategy.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        errs += validate_int_or_percent(unavailable, child(path, "maxUnavailable"))
        errs += validate_int_or_percent(surge, child(path, "maxSurge"))
        if _int_or_percent_value(unavailable) == 0 and _int_or_percent_value(surge) == 0:
            # Neither taking pods away nor adding any: a rollout could never progress.
            errs.append(invalid(child(path, "maxUnavailable"), unavailable,
                                "may not be 0 when `maxSurge` is 0"))
        errs += _not_over_100(unavailable, child(path, "maxUnavailable"))
    else:
        errs.append(not_supported("spec.strategy", strategy, ["Recreate", "RollingUpdate"]))


def _common_spec(spec: Obj, errs: Errs) -> None:
    nonnegative_field(spec, "minReadySeconds", "spec", errs)
    nonnegative_field(spec, "revisionHistoryLimit", "spec", errs)


def validate_deployment(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    spec = _spec(obj, errs)
    nonnegative_field(spec, "replicas", "spec", errs)
    validate_selector_and_template(spec, "deployment", errs)
    validate_workload_template(spec, "ReplicaSet", errs)
    _deployment_strategy(spec, errs)
    _common_spec(spec, errs)
    deadline = nonnegative_field(spec, "progressDeadlineSeconds", "spec", errs)
    min_ready = spec.get("minReadySeconds") if isinstance(spec.get("minReadySeconds"), int) else 0
    if deadline is not None and deadline <= min_ready:
        errs.append(invalid("spec.progressDeadlineSeconds", deadline,
                            "must be greater than minReadySeconds"))
    return errs


def validate_replica_set(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    spec = _spec(obj, errs)
    nonnegative_field(spec, "replicas", "spec", errs)
    nonnegative_field(spec, "minReadySeconds", "spec", errs)
    validate_selector_and_template(spec, "replicaset", errs)
    validate_workload_template(spec, "ReplicaSet", errs)
    return errs


def _daemon_set_strategy(spec: Obj, errs: Errs) -> None:
    strategy = get_map(spec, "updateStrategy", "spec", errs)
    strategy_type = strategy.get("type")
    if strategy_type == "OnDelete":
        return
    if strategy_type != "RollingUpdate":
        errs.append(not_supported("spec.updateStrategy", strategy, ["RollingUpdate", "OnDelete"]))
        return
    rolling = strategy.get("rollingUpdate")
    path = "spec.updateStrategy.rollingUpdate"
    if not isinstance(rolling, dict):
        errs.append(required(path))
        return
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs += validate_int_or_percent(unavailable, child(path, "maxUnavailable"))
    errs += validate_int_or_percent(surge, child(path, "maxSurge"))
    errs += _not_over_100(unavailable, child(path, "maxUnavailable"))
    errs += _not_over_100(surge, child(path, "maxSurge"))
    has_unavailable = _int_or_percent_value(unavailable) != 0
    has_surge = _int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        errs.append(invalid(child(path, "maxSurge"), surge,
                            "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        errs.append(required(child(path, "maxUnavailable"), "cannot be 0 when maxSurge is 0"))


def validate_daemon_set(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    spec = _spec(obj, errs)
    validate_selector_and_template(spec, "daemonset", errs, guard_empty=False)
    validate_workload_template(spec, "DaemonSet", errs)
    _common_spec(spec, errs)
    nonnegative_field(spec, "templateGeneration", "spec", errs)
    _daemon_set_strategy(spec, errs)
    return errs


def _selector_update(new: Obj, old: Obj) -> Errs:
    # apps/v1 made selectors immutable: changing one would orphan the existing pods.
    spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    return immutable(spec.get("selector"), old_spec.get("selector"), "spec.selector")


def validate_deployment_update(new: Obj, old: Obj) -> Errs:
    return (validate_object_meta_update(new, old) + validate_deployment(new)
            + _selector_update(new, old))


def validate_replica_set_update(new: Obj, old: Obj) -> Errs:
    return (validate_object_meta_update(new, old) + validate_replica_set(new)
            + _selector_update(new, old))


def validate_daemon_set_update(new: Obj, old: Obj) -> Errs:
    return (validate_object_meta_update(new, old) + validate_daemon_set(new)
            + _selector_update(new, old))


# --- status -----------------------------------------------------------------------------------

def conditions(status: Obj, errs: Errs) -> None:
    for _, p, condition in items(status.get("conditions"), "status.conditions", errs):
        if not condition.get("type"):
            errs.append(required(child(p, "type")))
        errs += one_of(condition.get("status"), CONDITION_STATUSES, child(p, "status"))


def counters(status: Obj, fields: tuple[str, ...], errs: Errs) -> dict[str, int]:
    """Non-negative integer counters; returns the valid ones (missing counts as 0)."""
    values = {}
    for field_ in fields:
        value = get_int(status, field_, "status", errs)
        errs += nonnegative(value, f"status.{field_}")
        values[field_] = value or 0
    return values


def not_above(values: dict[str, int], field_: str, limit: str, errs: Errs,
              msg: str = "cannot be greater than status.replicas") -> None:
    if values[field_] > values[limit]:
        errs.append(invalid(f"status.{field_}", values[field_], msg))


def collision_count(new: Obj, old: Obj, status: Obj, errs: Errs) -> None:
    value = get_int(status, "collisionCount", "status", errs)
    errs += nonnegative(value, "status.collisionCount")
    old_status = old.get("status") if isinstance(old.get("status"), dict) else {}
    old_value = old_status.get("collisionCount")
    if isinstance(old_value, int) and (value is None or value < old_value):
        errs.append(invalid("status.collisionCount", value or 0, "cannot be decremented"))


def validate_deployment_status(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = get_map(new, "status", "", errs)
    values = counters(status, ("observedGeneration", "replicas", "updatedReplicas",
                               "readyReplicas", "availableReplicas", "unavailableReplicas"), errs)
    for field_ in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        not_above(values, field_, "replicas", errs)
    not_above(values, "availableReplicas", "readyReplicas", errs,
              "cannot be greater than readyReplicas")
    collision_count(new, old, status, errs)
    conditions(status, errs)
    return errs


def validate_replica_set_status(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = get_map(new, "status", "", errs)
    values = counters(status, ("replicas", "fullyLabeledReplicas", "readyReplicas",
                               "availableReplicas", "observedGeneration"), errs)
    for field_ in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
        not_above(values, field_, "replicas", errs)
    not_above(values, "availableReplicas", "readyReplicas", errs,
              "cannot be greater than readyReplicas")
    conditions(status, errs)
    return errs


def validate_daemon_set_status(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = get_map(new, "status", "", errs)
    counters(status, ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                      "numberReady", "observedGeneration", "updatedNumberScheduled",
                      "numberAvailable", "numberUnavailable"), errs)
    collision_count(new, old, status, errs)
    conditions(status, errs)
    return errs
