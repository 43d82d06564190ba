"""API validation: what the apiserver would refuse, as field-level causes.

Role: `validate(key, obj, old)` for creates and updates and `validate_status(key, obj, old)`
for writes to the status subresource, looked up by `ResourceType.key` ("v1/Pod",
"apps/v1/Deployment"). The rules live in one module per API group (core, apps, batch) over
shared pieces (meta); this module only dispatches.

Invariants:
- Pure and total: returns every FieldError it finds (empty when valid) and never raises,
  whatever the JSON holds. The caller raises `Invalid(kind, name, errors)`.
- Objects are judged as they will be stored: a defaulted copy is validated (as the
  apiserver validates after defaulting), so calling `default()` first or not gives the same
  answer, and the caller's objects are never modified.
- `old` given means an update: immutable fields and allowed transitions are checked too.
- A type with no rules of its own (not one of RESOURCES) gets the metadata checks only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, NamedTuple

from bramble.kube import names
from bramble.kube.errors import FieldError, invalid
from bramble.master.api.defaults import default
from bramble.master.api.resources import RESOURCES
from bramble.master.api.validation import apps, batch, core, replicationcontroller
from bramble.master.api.validation import autoscaling as autoscaling_rules
from bramble.master.api.validation.meta import (
    Errs,
    Obj,
    validate_object_meta,
    validate_object_meta_update,
)

__all__ = ["validate", "validate_status"]


class _Rules(NamedTuple):
    create: Callable[[Obj], Errs]
    update: Callable[[Obj, Obj], Errs]
    status: Callable[[Obj, Obj], Errs]


def _meta_only(key: str) -> _Rules:
    namespaced = _NAMESPACED.get(key, True)

    def create(obj: Obj) -> Errs:
        return validate_object_meta(obj, namespaced=namespaced, name_fn=names.name_is_dns_subdomain)

    def update(new: Obj, old: Obj) -> Errs:
        return validate_object_meta_update(new, old) + create(new)

    return _Rules(create, update, validate_object_meta_update)


_NAMESPACED = MappingProxyType({r.key: r.namespaced for r in RESOURCES})

_RULES = MappingProxyType({
    "v1/Pod": _Rules(core.validate_pod, core.validate_pod_update, core.validate_pod_status),
    "v1/Node": _Rules(core.validate_node, core.validate_node_update, core.validate_node_status),
    "v1/Namespace": _Rules(core.validate_namespace, core.validate_namespace_update,
                           core.validate_namespace_status),
    "v1/Service": _Rules(core.validate_service, core.validate_service_update,
                         core.validate_service_status),
    "v1/Endpoints": _Rules(core.validate_endpoints, core.validate_endpoints_update,
                           validate_object_meta_update),
    "v1/ConfigMap": _Rules(core.validate_config_map, core.validate_config_map_update,
                           validate_object_meta_update),
    "v1/Secret": _Rules(core.validate_secret, core.validate_secret_update,
                        validate_object_meta_update),
    "v1/Event": _Rules(core.validate_event, core.validate_event_update,
                       validate_object_meta_update),
    # ReplicationController
    "v1/ReplicationController": _Rules(
        replicationcontroller.validate_replication_controller,
        replicationcontroller.validate_replication_controller_update,
        replicationcontroller.validate_replication_controller_status),
    "apps/v1/Deployment": _Rules(apps.validate_deployment, apps.validate_deployment_update,
                                 apps.validate_deployment_status),
    "apps/v1/ReplicaSet": _Rules(apps.validate_replica_set, apps.validate_replica_set_update,
                                 apps.validate_replica_set_status),
    "apps/v1/DaemonSet": _Rules(apps.validate_daemon_set, apps.validate_daemon_set_update,
                                apps.validate_daemon_set_status),
    "batch/v1/Job": _Rules(batch.validate_job, batch.validate_job_update,
                           batch.validate_job_status),
    # HorizontalPodAutoscaler (autoscaling/v1 is validated in its stored v2 form)
    "autoscaling/v2/HorizontalPodAutoscaler": _Rules(
        autoscaling_rules.validate_horizontal_pod_autoscaler,
        autoscaling_rules.validate_horizontal_pod_autoscaler_update,
        autoscaling_rules.validate_horizontal_pod_autoscaler_status),
})


def _as_stored(key: str, obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    stored = copy.deepcopy(obj)
    default(key, stored)
    return stored


def _not_an_object(obj: Any) -> list[FieldError]:
    return [invalid("", obj, "must be of type object")]


def validate(key: str, obj: Obj, old: Obj | None = None) -> list[FieldError]:
    """All the reasons the apiserver would refuse to create (or, with `old`, to update) `obj`."""
    if not isinstance(obj, dict):
        return _not_an_object(obj)
    rules = _RULES.get(key) or _meta_only(key)
    new = _as_stored(key, obj)
    if old is None:
        return rules.create(new)
    if not isinstance(old, dict):
        return _not_an_object(old)
    return rules.update(new, _as_stored(key, old))


def validate_status(key: str, obj: Obj, old: Obj) -> list[FieldError]:
    """All the reasons to refuse a write of `obj` to the status subresource over `old`."""
    if not isinstance(obj, dict) or not isinstance(old, dict):
        return _not_an_object(obj if not isinstance(obj, dict) else old)
    rules = _RULES.get(key) or _meta_only(key)
    return rules.status(_as_stored(key, obj), _as_stored(key, old))
