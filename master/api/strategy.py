"""What the API does to an object on each write, as pure functions (no I/O, no clock).

These mirror the apiserver's "registry strategies": server-owned metadata is set on create
and carried over on update, a write to the main resource cannot change status (and a write
to /status cannot change anything else), `metadata.generation` counts spec changes, and a
delete becomes a mark (deletionTimestamp) while finalizers or a grace period remain.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bramble.kube.errors import BadRequest, FieldError, invalid
from bramble.kube.quantity import parse_quantity

from .resources import ResourceType

Obj = dict[str, Any]

# Metadata only the server sets; clients' values are replaced by the stored ones on update.
_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "generation", "selfLink")

ORPHAN_FINALIZER = "orphan"
# A namespace is removed only after the namespace controller has emptied it.
NAMESPACE_FINALIZER = "kubernetes"
FOREGROUND_FINALIZER = "foregroundDeletion"


def meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def _reset_status_on_create(rt: ResourceType, obj: Obj) -> None:
    if not rt.has_status or rt.kind == "Node":
        # A node agent creates its Node with the status it observed.
        return
    if rt.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": pod_qos_class(obj.get("spec", {}))}
    elif rt.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif rt.kind == "Service":
        obj["status"] = {"loadBalancer": {}}
    else:
        obj["status"] = {}


def prepare_create(rt: ResourceType, obj: Obj, *, namespace: str, uid: str, now: str,
                   random_suffix: str) -> list[FieldError]:
    """Set server-owned fields of a new object in place; return naming errors."""
    m = meta(obj)
    errors: list[FieldError] = []
    if not m.get("name") and m.get("generateName"):
        m["name"] = generate_name(m["generateName"], random_suffix)
    if rt.namespaced:
        m["namespace"] = namespace
    else:
        m.pop("namespace", None)
    m["uid"] = uid
    m["creationTimestamp"] = now
    for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        m.pop(key, None)
    m.pop("resourceVersion", None)
    if rt.spec_fields:
        m["generation"] = 1
    else:
        m.pop("generation", None)
    if rt.kind == "Namespace":
        obj.setdefault("spec", {})["finalizers"] = [NAMESPACE_FINALIZER]
    _reset_status_on_create(rt, obj)
    return errors


def generate_name(prefix: str, suffix: str) -> str:
    # As names.SimpleNameGenerator: the prefix is cut so the name stays within 63 chars.
    return prefix[: 63 - len(suffix)] + suffix


def spec_of(rt: ResourceType, obj: Obj) -> list[Any]:
    return [obj.get(f) for f in rt.spec_fields]


def prepare_update(rt: ResourceType, new: Obj, old: Obj) -> None:
    """Carry server-owned state from `old` into `new` (an update of the main resource)."""
    nm, om = meta(new), meta(old)
    for key in _SERVER_OWNED:
        if key in om:
            nm[key] = om[key]
        else:
            nm.pop(key, None)
    if rt.namespaced:
        nm["namespace"] = om.get("namespace")
    if rt.has_status:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if rt.kind == "Service":
        _keep_service_allocations(new, old)
    if rt.spec_fields and spec_of(rt, new) != spec_of(rt, old):
        nm["generation"] = int(om.get("generation", 1)) + 1


def _keep_service_allocations(new: Obj, old: Obj) -> None:
    """An update that omits the allocated cluster IP or node ports keeps them (as the
    apiserver does): a re-applied manifest never names them, and must not release them."""
    new_spec, old_spec = new.get("spec"), old.get("spec") or {}
    if not isinstance(new_spec, dict):
        return
    for key in ("clusterIP", "clusterIPs"):
        if not new_spec.get(key) and old_spec.get(key):
            new_spec[key] = copy.deepcopy(old_spec[key])
    allocated = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                 for p in old_spec.get("ports") or [] if isinstance(p, dict)}
    if new_spec.get("type", "ClusterIP") not in ("NodePort", "LoadBalancer"):
        _drop_type_dependent_fields(new_spec, old_spec, allocated)
        return
    for port in new_spec.get("ports") or []:
        if isinstance(port, dict) and not port.get("nodePort"):
            node_port = allocated.get((port.get("port"), port.get("protocol", "TCP")))
            if node_port:
                port["nodePort"] = node_port


def _drop_type_dependent_fields(new_spec: Obj, old_spec: Obj, allocated: dict) -> None:
    """A type change away from NodePort drops the node ports and externalTrafficPolicy the
    request still carries unchanged (dropTypeDependentFields), which releases the ports:
    `kubectl patch -p '{"spec":{"type":"ClusterIP"}}'` works. Values the request changed
    are left for validation to refuse."""
    if old_spec.get("type") not in ("NodePort", "LoadBalancer"):
        return
    if new_spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
        new_spec.pop("externalTrafficPolicy", None)
    ports = [p for p in new_spec.get("ports") or [] if isinstance(p, dict)]
    if all(not p.get("nodePort") or p.get("nodePort") == allocated.get(
            (p.get("port"), p.get("protocol", "TCP"))) for p in ports):
        for port in ports:
            port.pop("nodePort", None)


def prepare_status_update(new: Obj, old: Obj) -> Obj:
    """A write to /status: only status (and managedFields) come from the request."""
    result = copy.deepcopy(old)
    result["status"] = copy.deepcopy(new.get("status", {}))
    if "managedFields" in meta(new):
        meta(result)["managedFields"] = meta(new)["managedFields"]
    return result


def same_content(a: Obj, b: Obj) -> bool:
    """True when two versions differ at most in resourceVersion: the write is a no-op."""
    am, bm = dict(meta(a)), dict(meta(b))
    am.pop("resourceVersion", None)
    bm.pop("resourceVersion", None)
    return am == bm and {k: v for k, v in a.items() if k != "metadata"} == {
        k: v for k, v in b.items() if k != "metadata"}


@dataclass(frozen=True)
class DeletePlan:
    """`remove`: delete now (with `final` shown to watchers); else store `marked`."""

    remove: bool
    obj: Obj


# What a DELETE without propagationPolicy does with the dependents, by type. As in the
# apiserver, where batch/v1 Jobs keep the old "orphan" default for compatibility (kubectl
# always sends Background, so `kubectl delete job` still removes the pods).
_DEFAULT_PROPAGATION = {"batch/v1/Job": "Orphan"}
JOB_ORPHAN_WARNING = ("child pods are preserved by default when jobs are deleted; set "
                      "propagationPolicy=Background to remove them or set "
                      "propagationPolicy=Orphan to suppress this warning")


def default_propagation(rt: ResourceType) -> str:
    return _DEFAULT_PROPAGATION.get(rt.key, "Background")


def delete_warnings(rt: ResourceType, propagation: str | None) -> list[str]:
    """The Warning headers of a DELETE: a Job deleted without a policy keeps its pods."""
    if propagation is None and rt.key == "batch/v1/Job":
        return [JOB_ORPHAN_WARNING]
    return []


def gc_finalizers(rt: ResourceType, finalizers: list[str],
                  propagation: str | None) -> list[str]:
    """The finalizers a DELETE leaves for the garbage collector (the apiserver's
    deletionFinalizersForGarbageCollection): an explicit policy wins, then a GC finalizer
    the object already carries, then the type's default. "orphan" and
    "foregroundDeletion" are exclusive; other finalizers are kept, in order."""
    if propagation is None:
        if ORPHAN_FINALIZER in finalizers:
            propagation = "Orphan"
        elif FOREGROUND_FINALIZER in finalizers:
            propagation = "Foreground"
        else:
            propagation = default_propagation(rt)
    wanted = [f for f in finalizers if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
    if propagation == "Orphan":
        wanted.append(ORPHAN_FINALIZER)
    elif propagation == "Foreground":
        wanted.append(FOREGROUND_FINALIZER)
    return finalizers if set(wanted) == set(finalizers) else wanted


def plan_delete(rt: ResourceType, obj: Obj, *, now: str, propagation: str | None,
                grace_seconds: int | None) -> DeletePlan:
    """Decide how a DELETE proceeds (the object is not modified). `propagation` is the
    request's policy, None when it sent none."""
    obj = copy.deepcopy(obj)
    m = meta(obj)
    finalizers = gc_finalizers(rt, list(m.get("finalizers") or []), propagation)
    grace = 0
    if rt.kind == "Namespace" and obj.get("spec", {}).get("finalizers"):
        # Terminating: the namespace controller deletes the contents, then finalizes.
        obj.setdefault("status", {})["phase"] = "Terminating"
        if "deletionTimestamp" not in m:
            m["deletionTimestamp"] = now
            m["deletionGracePeriodSeconds"] = 0
        _set_finalizers(m, finalizers)
        return DeletePlan(False, obj)
    if rt.kind == "Pod" and obj.get("spec", {}).get("nodeName"):
        # A pod on a node is deleted by its node agent once its containers are stopped.
        # A pod that is already terminated or was never scheduled goes at once.
        phase = obj.get("status", {}).get("phase")
        if phase not in ("Succeeded", "Failed"):
            default_grace = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
            grace = default_grace if grace_seconds is None else grace_seconds
    if not finalizers and grace <= 0:
        return DeletePlan(True, obj)
    if "deletionTimestamp" in m:
        # Already being deleted: a shorter grace period may be requested, nothing else.
        current = m.get("deletionGracePeriodSeconds")
        if current is not None and grace < current:
            m["deletionGracePeriodSeconds"] = grace
        _set_finalizers(m, finalizers)
        return DeletePlan(False, obj)
    # As in Kubernetes: the time after which the object is gone (now plus the grace period).
    m["deletionTimestamp"] = _plus_seconds(now, grace)
    m["deletionGracePeriodSeconds"] = grace
    _set_finalizers(m, finalizers)
    return DeletePlan(False, obj)


def _set_finalizers(m: dict[str, Any], finalizers: list[str]) -> None:
    if finalizers == list(m.get("finalizers") or []):
        return
    if finalizers:
        m["finalizers"] = finalizers
    else:
        m.pop("finalizers", None)


def _plus_seconds(rfc3339: str, seconds: int) -> str:
    if not seconds:
        return rfc3339
    when = datetime.fromisoformat(rfc3339.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def finished_deleting(obj: Obj) -> bool:
    """A marked object whose finalizers are gone (and grace period is zero) is removed."""
    m = meta(obj)
    spec = obj.get("spec")
    spec_finalizers = spec.get("finalizers") if obj.get("kind") == "Namespace" and isinstance(
        spec, dict) else None
    return ("deletionTimestamp" in m and not m.get("finalizers") and not spec_finalizers
            and not m.get("deletionGracePeriodSeconds"))


def check_name_and_namespace(rt: ResourceType, obj: Obj, *, namespace: str,
                             name: str | None) -> None:
    """The request path and the body must agree (400 otherwise, as the apiserver says)."""
    m = meta(obj)
    body_ns = m.get("namespace")
    if rt.namespaced and body_ns and body_ns != namespace:
        raise BadRequest("the namespace of the provided object does not match the namespace "
                         "sent on the request")
    if name is not None and m.get("name") and m.get("name") != name:
        raise BadRequest("the name of the object "
                         f"({m.get('name')}) does not match the name on the URL ({name})")


def resource_version_of(obj: Obj) -> int | None:
    """The precondition a client sent, or None; BadRequest when it is not ours."""
    rv = meta(obj).get("resourceVersion")
    if rv in (None, ""):
        return None
    try:
        return int(rv)
    except (TypeError, ValueError):
        raise BadRequest(f'invalid resource version "{rv}"') from None


def _quantities(values: Any) -> dict[str, Any]:
    """The non-zero cpu and memory amounts of a resource list (the only ones QoS reads)."""
    found = {}
    for name in ("cpu", "memory"):
        raw = values.get(name) if isinstance(values, dict) else None
        if raw is None:
            continue
        try:
            amount = parse_quantity(raw)
        except (ValueError, TypeError):
            continue  # validation reports it
        if amount != 0:
            found[name] = amount
    return found


def pod_qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, as Kubernetes' ComputePodQOS decides: only cpu
    and memory count, zero amounts count as unset, quantities compare by value ("1" is
    "1000m"), and a request left unset takes its limit (as defaulting will set it)."""
    containers = [c for c in list(spec.get("containers") or []) + list(
        spec.get("initContainers") or []) if isinstance(c, dict)]
    any_set = False
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
        limits = _quantities(res.get("limits"))
        requests = {**limits, **_quantities(res.get("requests"))}
        any_set = any_set or bool(requests) or bool(limits)
        if set(limits) != {"cpu", "memory"} or requests != limits:
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def api_version_errors(rt: ResourceType, obj: Obj) -> list[FieldError]:
    errors = []
    if obj.get("kind") not in (None, "", rt.kind):
        errors.append(invalid("kind", obj.get("kind"), f"must be {rt.kind}"))
    return errors
