"""Validation of the core/v1 ReplicationController, the 1.0 ReplicaSet.

Role: ValidateReplicationController{,Update,StatusUpdate} of pkg/apis/core/validation, with
Kubernetes' paths and messages. It lives beside the apps rules it shares (the pod template
of a long-running workload, the replica counters of the status) rather than in core.py,
which the apps module builds on.

Invariants:
- Objects arrive defaulted: a missing `spec.selector` was filled from the template labels,
  so a missing or empty one here means the template has no labels either.
- The selector is a plain map of equality terms; unlike apps/v1 it stays mutable (a
  changed selector releases the pods it no longer matches and adopts the new ones).
"""

from __future__ import annotations

from bramble.kube import names
from bramble.kube.errors import invalid, required
from bramble.kube.selectors import label_selector_from_set
from bramble.master.api.validation.apps import (
    template_labels,
    validate_replica_set_status,
    validate_workload_template,
)
from bramble.master.api.validation.meta import (
    Errs,
    Obj,
    get_map,
    nonnegative_field,
    string_map,
    validate_object_meta,
    validate_object_meta_update,
)


def _template(spec: Obj, selector: dict[str, str], errs: Errs) -> None:
    """ValidatePodTemplateSpecForRC."""
    template = spec.get("template")
    if template is None:
        errs.append(required("spec.template"))
        return
    labels = template_labels(spec)
    if selector and not label_selector_from_set(selector).matches(
            labels if isinstance(labels, dict) else {}):
        errs.append(invalid("spec.template.metadata.labels", labels,
                            "`selector` does not match template `labels`"))
    validate_workload_template(spec, "ReplicationController", errs)


def validate_replication_controller(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    spec = get_map(obj, "spec", "", errs)
    nonnegative_field(spec, "minReadySeconds", "spec", errs)
    selector = string_map(spec.get("selector"), "spec.selector", errs)
    if not spec.get("selector"):
        errs.append(required("spec.selector"))
    nonnegative_field(spec, "replicas", "spec", errs)
    _template(spec, selector, errs)
    return errs


def validate_replication_controller_update(new: Obj, old: Obj) -> Errs:
    return validate_object_meta_update(new, old) + validate_replication_controller(new)


# The same counters under the same rules as a ReplicaSet's status
# (ValidateReplicationControllerStatus is ValidateReplicaSetStatus over core types).
validate_replication_controller_status = validate_replica_set_status
