"""The Job controller: runs a Job's pods to completion, and removes finished Jobs after
their ttlSecondsAfterFinished.

Role: pkg/controller/job (NonIndexed completion mode) and the ttl-after-finished
controller. `plan_job` decides, from the Job and its pods, which pods to create or delete,
what the status becomes, which finished pods are counted now and whether the Job met its
success or failure criteria; `finish` folds the counted pods into the counters and adds
the terminal condition. `JobController` carries the plans out in Kubernetes' order.

Invariants:
- Every pod is counted exactly once, across crashes and restarts, as Kubernetes does it:
  pods carry the `batch.kubernetes.io/job-tracking` finalizer; a finished pod's uid is first
  saved in `status.uncountedTerminatedPods`, then its finalizer is removed, then the uid
  moves into `succeeded`/`failed`. A pod without the finalizer has been counted.
- The terminal condition (Complete or Failed) is written only once every pod is counted
  and none is still terminating; until then the Job shows the interim SuccessCriteriaMet
  or FailureTarget condition (current Kubernetes), so `kubectl wait --for=condition=complete`
  returns when the Job is really done.
- A failed pod is replaced after a back-off of 10 s doubling per failure since the last
  success, capped at 6 min (tunable), computed from the pods themselves, so it survives a
  master restart.
- Pods whose Job is gone, replaced or finished, or that lost their owner reference, get
  their tracking finalizer removed, so the garbage collector can delete them.
- Pure functions take `now` as Unix seconds and read nothing else.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bramble.kube import selectors
from bramble.kube.errors import BadRequest, StatusError

from ..api.encoding import STRATEGIC_PATCH
from ..api.rest import ObjectAPI, Target, WriteOptions
from ..store import Change
from .base import (
    Controller,
    EventRecorder,
    Key,
    Watch,
    controller_identity,
    own_key,
    owner_keys,
)
from .replicaset import (
    claim,
    controller_of,
    deletion_order,
    is_ready,
    new_pod,
    rfc3339,
    seconds,
    write_claims,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

JOBS = "jobs.batch"
COMPONENT = "job-controller"
TTL_COMPONENT = "ttl-after-finished-controller"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
MANAGED_BY = "kubernetes.io/job-controller"

# Kubernetes' figure: at most this many creations or deletions per pass.
MAX_POD_CHANGES_PER_SYNC = 500

REASON_BACKOFF = "BackoffLimitExceeded"
MESSAGE_BACKOFF = "Job has reached the specified backoff limit"
REASON_DEADLINE = "DeadlineExceeded"
MESSAGE_DEADLINE = "Job was active longer than specified deadline"
REASON_COMPLETIONS = "CompletionsReached"
MESSAGE_COMPLETIONS = "Reached expected number of succeeded pods"


@dataclass(frozen=True)
class Backoff:
    """Delay before a failed pod is replaced: `base` doubled per failure, at most `limit`."""

    base: float = 10.0
    limit: float = 360.0


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _name(obj: Obj) -> str:
    return _meta(obj).get("name", "")


def _uid(obj: Obj) -> str:
    return _meta(obj).get("uid", "")


def _phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def _deleting(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def _tracked(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (_meta(pod).get("finalizers") or [])


def condition(obj: Obj, type_: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def _true(obj: Obj, type_: str) -> bool:
    c = condition(obj, type_)
    return c is not None and c.get("status") == "True"


def is_finished(job: Obj) -> bool:
    """util.IsJobFinished: Complete or Failed is True."""
    return _true(job, "Complete") or _true(job, "Failed")


def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> Obj:
    stamp = rfc3339(now)
    return {"type": type_, "status": status, "lastProbeTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def ensure_condition(conditions: list[Obj], type_: str, status: str, reason: str,
                     message: str, now: float) -> bool:
    """ensureJobConditionStatus, in place: True when the list changed. A False condition
    that does not exist yet is not added."""
    for i, c in enumerate(conditions):
        if c.get("type") == type_:
            if (c.get("status"), c.get("reason", ""), c.get("message", "")) != (
                    status, reason, message):
                conditions[i] = new_condition(type_, status, reason, message, now)
                return True
            return False
    if status != "False":
        conditions.append(new_condition(type_, status, reason, message, now))
        return True
    return False


# --- pods -------------------------------------------------------------------------------

def is_active(pod: Obj) -> bool:
    """controller.FilterActivePods: not finished and not being deleted."""
    return _phase(pod) not in ("Succeeded", "Failed") and not _deleting(pod)


def is_terminating(pod: Obj) -> bool:
    """controller.CountTerminatingPods: being deleted and not finished yet."""
    return _deleting(pod) and _phase(pod) not in ("Succeeded", "Failed")


def only_replace_failed(job: Obj) -> bool:
    """podReplacementPolicy Failed: a terminating pod is neither failed nor replaced yet."""
    return _spec(job).get("podReplacementPolicy") == "Failed" or bool(
        _spec(job).get("podFailurePolicy"))


def is_failed(pod: Obj, job: Obj) -> bool:
    """isPodFailed: Failed, or (unless only failed pods are replaced) deleted before it
    succeeded - an evicted or deleted pod never reaches Failed by itself."""
    if _phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return _deleting(pod) and _phase(pod) != "Succeeded"


def finish_time(pod: Obj, now: float) -> float:
    """getFinishedTime: the last container's finishedAt (when all have finished), else
    when Ready turned False, else the deletion time, else now."""
    latest: float | None = None
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated")
        at = seconds((terminated or {}).get("finishedAt"))
        if at is None:
            latest = None
            break
        latest = at if latest is None else max(latest, at)
    if latest is not None:
        return latest
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "False":
            at = seconds(c.get("lastTransitionTime"))
            if at is not None:
                return at
    deleted = seconds(_meta(pod).get("deletionTimestamp"))
    return now if deleted is None else deleted


def pod_backoff_remaining(job: Obj, pods: list[Obj], now: float, backoff: Backoff) -> float:
    """Seconds before a replacement may be created: base * 2^(n-1) (capped) after the last
    of the n failures since the last success, minus the time since that failure."""
    finished = sorted((finish_time(p, now), _phase(p) == "Succeeded") for p in pods
                      if _phase(p) == "Succeeded" or is_failed(p, job))
    failures, last_failure = 0, 0.0
    for at, succeeded in finished:
        if succeeded:
            failures = 0
        else:
            failures, last_failure = failures + 1, at
    if failures == 0:
        return 0.0
    delay = min(backoff.base * 2 ** (failures - 1), backoff.limit)
    return max(0.0, delay - (now - last_failure))


def past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
    """With restartPolicy OnFailure failures are container restarts in place: their sum
    over running and pending pods counts against backoffLimit."""
    template_spec = (_spec(job).get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        if _phase(pod) in ("Running", "Pending"):
            status = pod.get("status") or {}
            for cs in (status.get("initContainerStatuses") or []) + (
                    status.get("containerStatuses") or []):
                restarts += int(cs.get("restartCount") or 0)
    limit = int(_spec(job).get("backoffLimit", 6))
    return restarts > 0 if limit == 0 else restarts >= limit


def job_pod(job: Obj) -> Obj:
    """A new pod of the Job: its template, the Job as controller, the tracking finalizer."""
    pod = new_pod(job)
    finalizers = _meta(pod).setdefault("finalizers", [])
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    return pod


# --- decisions ----------------------------------------------------------------------------

@dataclass
class JobPlan:
    """One pass: `delete`, then `create`, then save `status` (first when finalizers go: the
    uids must be saved before), remove the finalizers of `count`, then `finish`."""

    status: Obj
    create: int = 0
    delete: list[str] = field(default_factory=list)
    count: list[str] = field(default_factory=list)  # pods whose tracking finalizer goes
    finished: Obj | None = None  # the terminal condition, once everything is counted
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: float | None = None


def count_uncounted(status: Obj, with_finalizer: set[str]) -> None:
    """cleanUncountedPodsWithoutFinalizers, in place: uids in uncountedTerminatedPods whose
    pod lost its finalizer (or is gone) move into the succeeded/failed counters."""
    uncounted = status.setdefault("uncountedTerminatedPods", {})
    for key in ("succeeded", "failed"):
        uids = uncounted.get(key) or []
        kept = [u for u in uids if u in with_finalizer]
        if len(kept) != len(uids):
            status[key] = int(status.get(key) or 0) + len(uids) - len(kept)
        if kept:
            uncounted[key] = kept
        else:
            uncounted.pop(key, None)


def plan_job(job: Obj, pods: list[Obj], now: float, backoff: Backoff = Backoff()) -> JobPlan:
    """syncJob for a NonIndexed Job that is not finished; `pods` are those it controls."""
    spec = _spec(job)
    status = copy.deepcopy(job.get("status") or {})
    conditions: list[Obj] = status.setdefault("conditions", [])
    plan = JobPlan(status=status)
    count_uncounted(status, {_uid(p) for p in pods if _tracked(p)})
    uncounted = status["uncountedTerminatedPods"]
    uncounted_succeeded = list(uncounted.get("succeeded") or [])
    uncounted_failed = list(uncounted.get("failed") or [])

    active = [p for p in pods if is_active(p)]
    terminating = sum(is_terminating(p) for p in pods)
    ready = sum(is_ready(p) for p in active)
    tracked = [p for p in pods if _tracked(p)]
    new_succeeded = sum(_phase(p) == "Succeeded" and _uid(p) not in uncounted_succeeded
                        for p in tracked)
    new_failed = sum(is_failed(p, job) and _uid(p) not in uncounted_failed for p in tracked)
    succeeded = int(status.get("succeeded") or 0) + new_succeeded + len(uncounted_succeeded)
    failed = int(status.get("failed") or 0) + new_failed + len(uncounted_failed)

    suspended = spec.get("suspend") is True
    if not status.get("startTime") and not suspended:
        status["startTime"] = rfc3339(now)
    deleting_job = _deleting(job)

    # Met the success or failure criteria before (the interim condition is saved), or now?
    finished: Obj | None = None
    new_interim = False
    for interim, final in (("SuccessCriteriaMet", "Complete"), ("FailureTarget", "Failed")):
        if finished is None and _true(job, interim):
            c = condition(job, interim) or {}
            finished = new_condition(final, "True", c.get("reason", ""), c.get("message", ""),
                                     now)
    if finished is None:
        deadline = spec.get("activeDeadlineSeconds")
        started = seconds(status.get("startTime"))
        if failed > int(spec.get("backoffLimit", 6)) or past_backoff_limit_on_failure(
                job, pods):
            finished = new_condition("FailureTarget", "True", REASON_BACKOFF, MESSAGE_BACKOFF,
                                     now)
            new_interim = True
        elif deadline is not None and started is not None and not suspended:
            left = started + int(deadline) - now
            if left <= 0:
                finished = new_condition("FailureTarget", "True", REASON_DEADLINE,
                                         MESSAGE_DEADLINE, now)
                new_interim = True
            else:
                plan.requeue_after = left

    n_active = len(active)
    failing = finished is not None and finished["type"] in ("FailureTarget", "Failed")
    if failing:
        # A failed Job stops what still runs.
        plan.delete = [_name(p) for p in active]
        terminating += n_active
        n_active = ready = 0
    elif finished is None:
        if not deleting_job:
            n_active, ready, terminating = _manage(job, pods, active, succeeded, ready,
                                                   terminating, now, backoff, plan)
            if suspended:
                if ensure_condition(conditions, "Suspended", "True", "JobSuspended",
                                    "Job suspended", now):
                    plan.events.append(("Normal", "Suspended", "Job suspended"))
            elif ensure_condition(conditions, "Suspended", "False", "JobResumed",
                                  "Job resumed", now):
                plan.events.append(("Normal", "Resumed", "Job resumed"))
                # activeDeadlineSeconds is the time a Job is continuously active.
                status["startTime"] = rfc3339(now)
        completions = spec.get("completions")
        done = succeeded > 0 if completions is None else succeeded >= int(completions)
        if done and n_active == 0:
            finished = new_condition("SuccessCriteriaMet", "True", REASON_COMPLETIONS,
                                     MESSAGE_COMPLETIONS, now)
            new_interim = True

    # active is omitempty in the Go struct; ready and terminating are pointers (always set).
    if n_active:
        status["active"] = n_active
    else:
        status.pop("active", None)
    status["ready"] = ready
    status["terminating"] = terminating

    # Finished pods get counted: saved as uncounted now, their finalizers go next.
    for pod in tracked:
        pod_failed = is_failed(pod, job)
        if not (deleting_job or finished is not None or _phase(pod) == "Succeeded"
                or pod_failed):
            continue
        plan.count.append(_name(pod))
        uid = _uid(pod)
        if _phase(pod) == "Succeeded" and uid not in uncounted_failed:
            if uid not in uncounted_succeeded:
                uncounted_succeeded.append(uid)
        elif (pod_failed or failing) and uid not in uncounted_failed:
            uncounted_failed.append(uid)  # a failed Job counts what it stops as failed
    for key, uids in (("succeeded", uncounted_succeeded), ("failed", uncounted_failed)):
        if uids:
            uncounted[key] = uids

    if finished is not None and new_interim:
        conditions.append(finished)
        final = "Complete" if finished["type"] == "SuccessCriteriaMet" else "Failed"
        finished = new_condition(final, "True", finished["reason"], finished["message"], now)
    if not conditions:
        del status["conditions"]  # omitempty
    plan.finished = finished
    return plan


def _manage(job: Obj, pods: list[Obj], active: list[Obj], succeeded: int, ready: int,
            terminating: int, now: float, backoff: Backoff,
            plan: JobPlan) -> tuple[int, int, int]:
    """manageJob: delete surplus pods, or create missing ones once the back-off allows.
    Returns (active, ready, terminating) after the changes."""
    spec = _spec(job)
    n_active = len(active)
    parallelism = int(spec.get("parallelism", 1))
    completions = spec.get("completions")
    if spec.get("suspend") is True:
        want = 0
    elif completions is None:
        # Any success means the work is done: let the others finish, start no more.
        want = n_active if succeeded > 0 else parallelism
    else:
        want = max(0, min(int(completions) - succeeded, parallelism))
    if n_active > want:
        doomed = deletion_order(active, (), now)[:min(n_active - want,
                                                      MAX_POD_CHANGES_PER_SYNC)]
        plan.delete = [_name(p) for p in doomed]
        return (n_active - len(doomed), ready - sum(is_ready(p) for p in doomed),
                terminating + len(doomed))
    waiting = terminating if only_replace_failed(job) else 0
    missing = want - waiting - n_active
    if missing > 0:
        left = pod_backoff_remaining(job, pods, now, backoff)
        if left > 0:
            plan.requeue_after = left if plan.requeue_after is None else min(
                plan.requeue_after, left)
            return n_active, ready, terminating
        plan.create = min(missing, MAX_POD_CHANGES_PER_SYNC)
        n_active += plan.create
    return n_active, ready, terminating


def finish(job: Obj, pods: list[Obj], finished: Obj | None) -> tuple[Obj, bool]:
    """After the finalizers went: count what lost its finalizer, refresh `terminating`, and
    add the terminal condition once nothing is uncounted or terminating. Returns (status,
    whether the Job finished now)."""
    status = copy.deepcopy(job.get("status") or {})
    count_uncounted(status, {_uid(p) for p in pods if _tracked(p)})
    status["terminating"] = terminating = sum(is_terminating(p) for p in pods)
    uncounted = status["uncountedTerminatedPods"]
    if finished is None or uncounted.get("succeeded") or uncounted.get("failed") \
            or terminating:
        return status, False
    conditions = status.setdefault("conditions", [])
    for i, c in enumerate(conditions):
        if c.get("type") == finished["type"]:
            conditions[i] = finished
            break
    else:
        conditions.append(finished)
    if finished["type"] == "Complete":
        status["completionTime"] = finished["lastTransitionTime"]
    return status, True


def finished_events(job: Obj, finished: Obj) -> list[tuple[str, str, str]]:
    """recordJobFinished: what `kubectl describe job` shows when it ends."""
    if finished["type"] != "Complete":
        return [("Warning", finished.get("reason", ""), finished.get("message", ""))]
    events = []
    completions = _spec(job).get("completions")
    if completions is not None and int((job.get("status") or {}).get("succeeded") or 0) > int(
            completions):
        events.append(("Warning", "TooManySucceededPods",
                       "Too many succeeded pods running after completion count reached"))
    events.append(("Normal", "Completed", "Job completed"))
    return events


def ttl_remaining(job: Obj, now: float) -> float | None:
    """Seconds until a finished Job with ttlSecondsAfterFinished is due for deletion
    (<= 0: now), counted from its terminal condition; None when it has no TTL, has not
    finished or is already being deleted."""
    ttl = _spec(job).get("ttlSecondsAfterFinished")
    if ttl is None or _deleting(job):
        return None
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            at = seconds(c.get("lastTransitionTime"))
            return None if at is None else at + int(ttl) - now
    return None


def releasable(pod: Obj, job: Obj | None) -> bool:
    """A pod whose tracking finalizer no sync will remove: it has no controller (the
    garbage collector orphaned it), or its Job is gone, replaced or finished."""
    if not _tracked(pod):
        return False
    ref = controller_of(pod)
    if ref is None:
        return True
    if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
        return False  # another controller's pod: not ours to touch
    return job is None or ref.get("uid") != _uid(job) or is_finished(job)


# --- the loop ----------------------------------------------------------------------------

_REMOVE_FINALIZER = orjson.dumps(
    {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}})


class JobController(Controller):
    name = COMPONENT
    workers = 4

    def __init__(self, api: ObjectAPI, backoff: Backoff = Backoff(),
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(api)
        self.backoff = backoff
        self.clock = clock
        self.events = EventRecorder(api, COMPONENT)
        # Deletions after the TTL are made as Kubernetes' ttl-after-finished controller.
        self.ttl_identity = controller_identity(TTL_COMPONENT)
        self.pods = self.target("", "v1", "pods")
        self.jobs = self.target("batch", "v1", "jobs")
        self._owner_keys = owner_keys("Job")
        self.watches = [Watch(JOBS, own_key), Watch("pods", self._pod_keys)]

    def initial_keys(self) -> Iterable[Key]:
        return [(e.namespace, e.name) for e in self.store.list(JOBS)]

    def _pod_keys(self, change: Change) -> Iterable[Key]:
        """The Job controlling the pod (before or after the change), or named in its labels:
        an orphaned pod may be adopted, or needs its finalizer removed."""
        keys = set(self._owner_keys(change))
        for entry in (change.entry, change.prev):
            if entry is not None:
                for label in (JOB_NAME_LABEL, LEGACY_JOB_NAME_LABEL):
                    if entry.labels.get(label):
                        keys.add((entry.namespace, entry.labels[label]))
        return keys

    def _candidates(self, namespace: str, name: str, job: Obj | None,
                    selector: selectors.LabelSelector | None) -> list[Obj]:
        """Pods that may be the Job's: named by its labels, picked by its selector, or
        naming its uid. Only those are decoded."""
        uid = _uid(job).encode() if job is not None else b""
        found = []
        for entry in self.store.list("pods", namespace):
            labels = entry.labels
            if labels.get(JOB_NAME_LABEL) == name or labels.get(LEGACY_JOB_NAME_LABEL) == name \
                    or (selector is not None and selector.matches(labels)) \
                    or (uid and uid in entry.raw):
                found.append(entry.obj())
        return found

    async def _claim(self, job: Obj, selector: selectors.LabelSelector | None,
                     candidates: list[Obj]) -> list[Obj]:
        """The pods the Job controls, after adopting matching orphans (with the tracking
        finalizer) and releasing owned pods that no longer match."""
        uid = _uid(job)
        if selector is None:
            return [p for p in candidates if (controller_of(p) or {}).get("uid") == uid]
        claimed = claim(job, selector, candidates)
        if claimed.adopt or claimed.release:
            await write_claims(self.api, self.identity, self.pods, job, claimed,
                               on_adopt=self._track)
            claimed = claim(job, selector, self._candidates(
                _meta(job).get("namespace", ""), _name(job), job, selector))
        return claimed.owned

    async def reconcile(self, key: Key) -> float | None:
        namespace, name = key  # type: ignore[misc]
        entry = self.store.get(JOBS, namespace, name)
        job = entry.obj() if entry is not None else None
        selector = None
        if job is not None:
            try:
                selector = selectors.label_selector_from_struct(_spec(job).get("selector"))
            except BadRequest:
                selector = None
            if selector is not None and selector.empty():
                selector = None  # never claim a whole namespace
        candidates = self._candidates(namespace, name, job, selector)
        await self._release([p for p in candidates if releasable(p, job)])
        if job is None:
            return None
        managed_by = _spec(job).get("managedBy")
        if managed_by and managed_by != MANAGED_BY:
            return None  # another controller runs this Job
        if is_finished(job):
            return await self._expire(job)
        if _spec(job).get("completionMode", "NonIndexed") != "NonIndexed":
            await self.events.record(job, "Warning", "UnsupportedCompletionMode",
                                     "bramble runs NonIndexed Jobs only")
            return None
        pods = await self._claim(job, selector, candidates)
        plan = plan_job(job, pods, self.clock(), self.backoff)
        await self._delete_pods(job, plan.delete)
        await self._create_pods(job, plan.create)
        for type_, reason, message in plan.events:
            await self.events.record(job, type_, reason, message)
        if plan.count and plan.status != job.get("status"):
            job = await self._save_status(job, plan.status)  # the uids first: crash-safe
        else:
            job["status"] = plan.status
        counted = set(plan.count)
        await self._release([p for p in pods if _name(p) in counted])
        uid = _uid(job)
        after = [p for p in self._candidates(namespace, name, job, selector)
                 if (controller_of(p) or {}).get("uid") == uid]
        status, done = finish(job, after, plan.finished)
        current = self.store.get(JOBS, namespace, name)
        if current is None:
            return None
        if status != current.obj().get("status"):
            job = await self._save_status(job, status)
        if done and plan.finished is not None:
            for type_, reason, message in finished_events(job, plan.finished):
                await self.events.record(job, type_, reason, message)
            return await self._expire(job)
        return plan.requeue_after

    async def _save_status(self, job: Obj, status: Obj) -> Obj:
        body = copy.deepcopy(job)
        body["status"] = status
        saved, _ = await self.api.update(
            Target(self.jobs.rt, _meta(job).get("namespace", ""), _name(job), "status"),
            body, WriteOptions(), self.identity)
        return saved

    @staticmethod
    def _track(pod: Obj) -> Obj:
        """An adopted pod gets the tracking finalizer, as Kubernetes does."""
        if _tracked(pod):
            return {}
        return {"finalizers": [*(_meta(pod).get("finalizers") or []), TRACKING_FINALIZER]}

    async def _create_pods(self, job: Obj, count: int) -> None:
        namespace = _meta(job).get("namespace", "")
        body = job_pod(job)
        for _ in range(count):
            try:
                pod, _ = await self.api.create(Target(self.pods.rt, namespace), body,
                                               WriteOptions(), self.identity)
            except StatusError as err:
                if err.code == 403 and "being terminated" in err.message:
                    return  # the namespace is going away: so is this Job
                await self.events.record(job, "Warning", "FailedCreate",
                                         f"Error creating: {err.message}")
                raise
            await self.events.record(job, "Normal", "SuccessfulCreate",
                                     f"Created pod: {_name(pod)}")

    async def _delete_pods(self, job: Obj, names: list[str]) -> None:
        namespace = _meta(job).get("namespace", "")
        for pod_name in names:
            try:
                await self.api.delete(Target(self.pods.rt, namespace, pod_name), {},
                                      self.identity)
            except StatusError as err:
                if err.code == 404:
                    continue
                await self.events.record(job, "Warning", "FailedDelete",
                                         f"Error deleting: {err.message}")
                raise
            await self.events.record(job, "Normal", "SuccessfulDelete",
                                     f"Deleted pod: {pod_name}")

    async def _release(self, pods: list[Obj]) -> None:
        """Remove the tracking finalizer; a pod already gone counts as done."""
        for pod in pods:
            m = _meta(pod)
            try:
                await self.api.patch(Target(self.pods.rt, m.get("namespace", ""),
                                            m.get("name", "")),
                                     _REMOVE_FINALIZER, STRATEGIC_PATCH, WriteOptions(),
                                     self.identity)
            except StatusError as err:
                if err.code != 404:
                    raise

    async def _expire(self, job: Obj) -> float | None:
        """ttlSecondsAfterFinished: delete the Job when due (the garbage collector then
        deletes its pods), else look again when it will be."""
        left = ttl_remaining(job, self.clock())
        if left is None:
            return None
        if left > 0:
            return left
        try:
            await self.api.delete(
                Target(self.jobs.rt, _meta(job).get("namespace", ""), _name(job)),
                {"propagationPolicy": "Background", "preconditions": {"uid": _uid(job)}},
                self.ttl_identity)
        except StatusError as err:
            if err.code not in (404, 409):  # gone, or replaced by a new Job of that name
                raise
        return None
