"""Validation of batch/v1: Job.

Role: pkg/apis/batch/validation for the parts of a Job bramble runs, with Kubernetes' paths
and messages.

Invariants:
- Objects arrive defaulted: parallelism, completions, backoffLimit, completionMode and the
  template's restartPolicy are set (an unset restartPolicy defaults to Always, which a Job
  refuses - as in Kubernetes, Jobs must say OnFailure or Never).
- The generated selector (`controller-uid` labels) is the create handler's job; validation
  requires a selector only with `manualSelector: true`, and whenever one is present it must
  select the template.
- `spec.selector`, `spec.template` and `spec.completionMode` never change; a suspended
  Job that never started may still change its scheduling directives.
"""

from __future__ import annotations

from typing import Any

from bramble.kube import names
from bramble.kube.errors import duplicate, invalid, not_supported, required
from bramble.master.api.validation.apps import (
    conditions,
    counters,
    validate_selector_and_template,
)
from bramble.master.api.validation.core import validate_pod_template
from bramble.master.api.validation.meta import (
    IMMUTABLE,
    Errs,
    Obj,
    as_list,
    dig,
    get_map,
    immutable,
    nonnegative_field,
    validate_object_meta,
    validate_object_meta_update,
)

COMPLETION_MODES = ("NonIndexed", "Indexed")
MAX_PARALLELISM_FOR_INDEXED_JOB = 100_000
# Pod template fields a suspended, never-started Job may still change (scheduling only).
_MUTABLE_WHILE_SUSPENDED = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def _spec(obj: Obj, errs: Errs) -> Obj:
    return get_map(obj, "spec", "", errs)


def _job_spec(spec: Obj, errs: Errs) -> None:
    for field_ in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                   "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"):
        nonnegative_field(spec, field_, "spec", errs)
    mode = spec.get("completionMode")
    if mode is not None and mode not in COMPLETION_MODES:
        errs.append(not_supported("spec.completionMode", mode, list(COMPLETION_MODES)))
    if mode == "Indexed":
        if spec.get("completions") is None:
            errs.append(required("spec.completions", "when completion mode is Indexed"))
        parallelism = spec.get("parallelism")
        if isinstance(parallelism, int) and parallelism > MAX_PARALLELISM_FOR_INDEXED_JOB:
            errs.append(invalid("spec.parallelism", parallelism,
                                f"must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB}"
                                " when completion mode is Indexed"))
    else:
        for field_ in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(field_) is not None:
                errs.append(invalid(f"spec.{field_}", spec[field_],
                                    "requires indexed completion mode"))
    errs += validate_pod_template(spec.get("template"), "spec.template")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    pod_spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    restart_policy = pod_spec.get("restartPolicy")
    path = "spec.template.spec.restartPolicy"
    if restart_policy in ("Always", "", None):
        errs.append(required(path, 'valid values: "OnFailure", "Never"'))
    elif restart_policy not in ("OnFailure", "Never"):
        errs.append(not_supported(path, restart_policy, ["OnFailure", "Never"]))
    elif spec.get("podFailurePolicy") is not None and restart_policy != "Never":
        errs.append(invalid(path, restart_policy,
                            'only "Never" is supported when podFailurePolicy is specified'))


def _selector(spec: Obj, errs: Errs) -> None:
    if spec.get("selector") is None and spec.get("manualSelector") is not True:
        return  # the create handler generates it
    validate_selector_and_template(spec, "job", errs, allow_empty=True)


def validate_job(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    spec = _spec(obj, errs)
    _selector(spec, errs)
    _job_spec(spec, errs)
    completions = spec.get("completions")
    name = dig(obj, "metadata", "name") or ""
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
        # Pods of an indexed job are named <job>-<index>, and that must still be a DNS label.
        hostname = f"{name}-{completions - 1}"
        if names.is_dns1123_label(hostname):
            errs.append(invalid("metadata.name", name,
                                f"will not able to create pod with invalid DNS label: {hostname}"))
    return errs


def _strip_scheduling(template: Any) -> Any:
    if not isinstance(template, dict):
        return template
    stripped = {k: v for k, v in template.items() if k != "metadata"}
    meta = template.get("metadata")
    if isinstance(meta, dict):
        stripped["metadata"] = {k: v for k, v in meta.items() if k not in ("labels", "annotations")}
    spec = template.get("spec")
    if isinstance(spec, dict):
        stripped["spec"] = {k: v for k, v in spec.items() if k not in _MUTABLE_WHILE_SUSPENDED}
    return stripped


def validate_job_update(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old) + validate_job(new)
    spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    errs += immutable(spec.get("selector"), old_spec.get("selector"), "spec.selector")
    template, old_template = spec.get("template"), old_spec.get("template")
    old_status = old.get("status") if isinstance(old.get("status"), dict) else {}
    if old_spec.get("suspend") is True and not old_status.get("startTime"):
        # Never started: it may still be placed differently (AllowMutableSchedulingDirectives).
        template, old_template = _strip_scheduling(template), _strip_scheduling(old_template)
    if template != old_template:
        errs.append(invalid("spec.template", spec.get("template"), IMMUTABLE))
    for field_ in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex"):
        errs += immutable(spec.get(field_), old_spec.get(field_), f"spec.{field_}")
    completions, old_completions = spec.get("completions"), old_spec.get("completions")
    if completions != old_completions:
        if spec.get("completionMode") != "Indexed":
            errs.append(invalid("spec.completions", completions, IMMUTABLE))
        elif completions != spec.get("parallelism") or old_completions != old_spec.get(
                "parallelism"):
            # Elastic indexed jobs: both move together or neither does.
            errs.append(invalid("spec.completions", completions,
                                "can only be modified in tandem with spec.parallelism"))
    return errs


def validate_job_status(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = get_map(new, "status", "", errs)
    counters(status, ("active", "succeeded", "failed", "ready", "terminating"), errs)
    uncounted = status.get("uncountedTerminatedPods")
    if isinstance(uncounted, dict):
        seen: set[str] = set()
        for kind in ("succeeded", "failed"):
            for i, uid in enumerate(as_list(uncounted.get(kind))):
                path = f"status.uncountedTerminatedPods.{kind}[{i}]"
                if not isinstance(uid, str):
                    errs.append(invalid(path, uid, "must be of type string"))
                    continue
                if not uid:
                    errs.append(invalid(path, uid, "must not be empty"))
                elif uid in seen:
                    errs.append(duplicate(path, uid))
                seen.add(uid)
    conditions(status, errs)
    return errs
