"""What a Deployment controller does, as pure functions: the rollout arithmetic and one
sync's plan of writes.

Role: pkg/controller/deployment (sync.go, rolling.go, recreate.go, progress.go) and its
util package, with the same names, arithmetic, annotations, condition reasons and event
messages, so `kubectl rollout status|history|undo` read bramble's objects as Kubernetes'.

`plan(deployment, replica_sets, ...)` runs one syncDeployment over local copies: every
write the Go controller would make becomes an Action, in order, and later steps see the
earlier ones' results (a scaled ReplicaSet has its new size). The controller executes the
actions and lets the watches bring the next sync - level-triggered, so a plan cut short by
a conflict or a crash is simply planned again from what the store holds.

Invariants:
- Pure: no I/O and no clock - `now` is Unix seconds passed in.
- A rolling update never scales old ReplicaSets down below `replicas - maxUnavailable`
  available pods and never scales up beyond `replicas + maxSurge` pods in total (counted from
  the ReplicaSets' spec and status, as Kubernetes counts them).
- The deployment's status is written at most once per plan, last; its revision annotation
  after that.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from bramble.kube import names

from .replicaset import controller_of, controller_ref, rfc3339, seconds

Obj = dict[str, Any]

# Annotations (k8s.io/kubernetes/pkg/controller/deployment/util).
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
HASH_LABEL = "pod-template-hash"
# Never copied from a Deployment to its ReplicaSets: they are per-object bookkeeping.
SKIP_COPY = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                       MAX_REPLICAS, ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000

# Condition types and reasons.
PROGRESSING = "Progressing"
AVAILABLE = "Available"
REPLICA_FAILURE = "ReplicaFailure"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

MAX_INT32 = 2**31 - 1
# util/rand's alphanums, which generateName suffixes use too.
_SAFE_ALPHABET = names._GENERATE_ALPHABET


# --- small readers ----------------------------------------------------------------------------

def _meta(obj: Obj) -> Obj:
    return obj.setdefault("metadata", {}) if isinstance(obj, dict) else {}


def _spec(obj: Obj) -> Obj:
    return obj.setdefault("spec", {})


def _status(obj: Obj) -> Obj:
    return obj.setdefault("status", {})


def replicas(obj: Obj | None) -> int:
    """spec.replicas (the defaulting makes it present; 1 if not, as the API defaults)."""
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) else 1


def _status_int(obj: Obj | None, name: str) -> int:
    if obj is None:
        return 0
    value = (obj.get("status") or {}).get(name)
    return value if isinstance(value, int) else 0


def name_of(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def _created(obj: Obj) -> tuple[float, str]:
    """ReplicaSetsByCreationTimestamp: older first, then by name."""
    return (seconds((obj.get("metadata") or {}).get("creationTimestamp")) or 0.0, name_of(obj))


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    return sorted(rss, key=_created)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    """FilterActiveReplicaSets: those with spec.replicas > 0."""
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def total_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def actual_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(_status_int(rs, "replicas") for rs in rss if rs is not None)


def ready_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(_status_int(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(_status_int(rs, "availableReplicas") for rs in rss if rs is not None)


def sure_available(rs: Obj | None) -> int:
    """The available replicas a ReplicaSet will still have once it reaches its size: its
    status, but no more than spec.replicas. A status written before the last scale-down
    still counts the pods being removed; trusting it would let a rollout scale old
    ReplicaSets down twice for the same pods."""
    return min(_status_int(rs, "availableReplicas"), replicas(rs)) if rs is not None else 0


# --- maxSurge and maxUnavailable --------------------------------------------------------------

def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, "25%" of `total` rounded up
    (surge) or down (unavailable)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid value {value!r}")
    percent = int(value[:-1])
    scaled = percent * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def resolve_fenceposts(surge: int | str | None, unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts. Rounding both down to 0 would stall the
    rollout, so unavailable becomes 1 then (validation refuses two explicit zeros)."""
    s = scaled_value(surge, desired, True)
    u = scaled_value(unavailable, desired, False)
    if s == 0 and u == 0:
        u = 1
    return s, u


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type",
                                                            "RollingUpdate") == "RollingUpdate"


def _rolling_params(d: Obj) -> tuple[Any, Any]:
    rolling = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%")


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    return resolve_fenceposts(*_rolling_params(d), replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    """At most `replicas`: a deployment of 2 with maxUnavailable 5 may lose 2, not 5."""
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(*_rolling_params(d), replicas(d))[1], replicas(d))


# --- the pod template hash --------------------------------------------------------------------

def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each character mapped into an alphabet without vowels, so a
    hash never spells a word."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """ComputeHash: FNV-32a of the template (here its canonical JSON: sorted keys, no
    spaces) and, once a collision happened, the collision count as 8 little-endian bytes;
    the decimal sum, safe-encoded."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return safe_encode(str(fnv32a(data)))


def _without_hash(template: Obj | None) -> Obj:
    t = copy.deepcopy(template or {})
    meta = t.get("metadata")
    if isinstance(meta, dict):
        labels = meta.get("labels")
        if isinstance(labels, dict):
            labels.pop(HASH_LABEL, None)
        for key in ("labels", "annotations"):
            if not meta.get(key):
                meta.pop(key, None)  # nil and empty maps are equal to Semantic.DeepEqual
        if not meta:
            t.pop("metadata")
    return t


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    """EqualIgnoreHash: two pod templates equal but for the pod-template-hash label."""
    return _without_hash(a) == _without_hash(b)


# --- revisions and annotations ----------------------------------------------------------------

def revision(obj: Obj | None) -> int:
    """The revision annotation; 0 when missing or not a number."""
    if obj is None:
        return 0
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "")
    try:
        return int(raw)
    except ValueError:
        return 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def find_new_rs(d: Obj, rss: Iterable[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the deployment's."""
    template = (d.get("spec") or {}).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    annotations = _meta(rs).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool,
                           history_chars: int = MAX_REVISION_HISTORY_CHARS) -> bool:
    """SetNewReplicaSetAnnotations: copy the deployment's annotations (change-cause among
    them), raise the revision to `new_revision` (remembering the one it replaces in
    revision-history, as a rollback does), and on a new ReplicaSet the replica counts."""
    annotations = _meta(rs).setdefault("annotations", {})
    changed = False
    for key, value in ((d.get("metadata") or {}).get("annotations") or {}).items():
        if key in SKIP_COPY or annotations.get(key) == value:
            continue
        annotations[key] = value
        changed = True
    old_raw = annotations.get(REVISION)
    try:
        old = int(old_raw) if old_raw is not None else 0
    except ValueError:
        return changed
    if old < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_raw is not None:
            history = annotations.get(REVISION_HISTORY, "")
            if not history:
                annotations[REVISION_HISTORY] = old_raw
            else:
                kept = history.split(",")
                total = len(history) + len(old_raw) + 1
                while total > history_chars and kept:
                    total -= len(kept.pop(0)) + 1
                if total <= history_chars:
                    annotations[REVISION_HISTORY] = ",".join([*kept, old_raw])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def desired_annotation(rs: Obj) -> int | None:
    raw = ((rs.get("metadata") or {}).get("annotations") or {}).get(DESIRED_REPLICAS)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def max_annotation(rs: Obj) -> int | None:
    raw = ((rs.get("metadata") or {}).get("annotations") or {}).get(MAX_REPLICAS)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


# --- sizes ------------------------------------------------------------------------------------

def new_rs_new_replicas(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj) -> int:
    """NewRSNewReplicas: how far the new ReplicaSet may grow now. Rolling: up to
    replicas + maxSurge pods in total; Recreate: all at once."""
    if not is_rolling(d):
        return replicas(d)
    current = total_replicas(all_rss)
    most = replicas(d) + max_surge(d)
    if current >= most:
        return replicas(new_rs)
    return replicas(new_rs) + min(most - current, replicas(d) - replicas(new_rs))


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The new ReplicaSet has all the replicas, all of them available."""
    if rs is None:
        return False
    return (replicas(rs) == replicas(d) and desired_annotation(rs) == replicas(d)
            and _status_int(rs, "availableReplicas") == replicas(d))


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The only ReplicaSet with pods, or the newest when none has any; None if several."""
    if new_rs is None and not old_rss:
        return None
    newest_first = sorted(old_rss, key=_created, reverse=True)
    with_pods = active([*newest_first, new_rs])
    if not with_pods:
        return new_rs if new_rs is not None else newest_first[0]
    return with_pods[0] if len(with_pods) == 1 else None


def _round_half_away(value: float) -> int:
    return int(value - 0.5) if value < 0 else int(value + 0.5)


def rs_fraction(rs: Obj, d: Obj) -> int:
    """getReplicaSetFraction: how many replicas this ReplicaSet gains or loses when the
    deployment is resized, in proportion to its share of the size it was made for (its
    max-replicas annotation, else the deployment's status.replicas)."""
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_size = replicas(d) + max_surge(d)
    annotated = max_annotation(rs)
    if annotated is None:
        annotated = _status_int(d, "replicas")
    if annotated <= 0:
        return 0
    return _round_half_away(replicas(rs) * deployment_size / annotated) - replicas(rs)


def proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    """GetProportion: the share of `to_add` this ReplicaSet takes, never more than is left."""
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, rss: list[Obj]) -> list[tuple[Obj, int]]:
    """scale() for a rolling deployment resized mid-rollout: the active ReplicaSets get the
    change in proportion to their size; what rounding leaves goes to the largest one.
    Returns (ReplicaSet, new size), the largest first."""
    all_rss = active(rss)
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - total_replicas(all_rss)
    if to_add > 0:
        # ReplicaSetsBySizeNewer: larger first, then newer first (two stable sorts).
        all_rss.sort(key=_created, reverse=True)
        all_rss.sort(key=lambda rs: -replicas(rs))
    elif to_add < 0:
        # ReplicaSetsBySizeOlder: larger first, then older first.
        all_rss.sort(key=lambda rs: (-replicas(rs), _created(rs)))
    sizes: list[tuple[Obj, int]] = []
    added = 0
    for rs in all_rss:
        share = proportion(rs, d, to_add, added) if to_add else 0
        sizes.append((rs, replicas(rs) + share))
        added += share
    if sizes and to_add:
        rs, size = sizes[0]
        sizes[0] = (rs, max(size + to_add - added, 0))
    return sizes


# --- conditions -------------------------------------------------------------------------------

def get_condition(status: Mapping[str, Any], type_: str) -> Obj | None:
    for c in status.get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> Obj:
    stamp = rfc3339(now)
    return {"type": type_, "status": status, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def set_condition(status: Obj, condition: Obj) -> None:
    """SetDeploymentCondition: same status and reason - nothing changes (not even the update
    time); same status - the transition time is kept; the condition goes last."""
    current = get_condition(status, condition["type"])
    if current is not None and current.get("status") == condition["status"] and \
            current.get("reason") == condition["reason"]:
        return
    condition = dict(condition)
    if current is not None and current.get("status") == condition["status"]:
        condition["lastTransitionTime"] = current.get("lastTransitionTime")
    status["conditions"] = [c for c in status.get("conditions") or []
                            if c.get("type") != condition["type"]] + [condition]


def remove_condition(status: Obj, type_: str) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Obj) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return isinstance(deadline, int) and deadline != MAX_INT32


def has_revision_history_limit(d: Obj) -> bool:
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    return isinstance(limit, int) and limit != MAX_INT32


def _observed(status: Mapping[str, Any]) -> int:
    value = status.get("observedGeneration")
    return value if isinstance(value, int) else 0


def _count(status: Mapping[str, Any], name: str) -> int:
    value = status.get(name)
    return value if isinstance(value, int) else 0


def deployment_complete(d: Obj, status: Mapping[str, Any]) -> bool:
    """All replicas updated and available, and the latest spec observed."""
    n = replicas(d)
    return (_count(status, "updatedReplicas") == n and _count(status, "replicas") == n
            and _count(status, "availableReplicas") == n
            and _observed(status) >= ((d.get("metadata") or {}).get("generation") or 0))


def deployment_progressing(d: Obj, new: Mapping[str, Any]) -> bool:
    """Something moved since the last status: more updated, fewer old, more ready or more
    available replicas."""
    old = d.get("status") or {}
    old_old = _count(old, "replicas") - _count(old, "updatedReplicas")
    new_old = _count(new, "replicas") - _count(new, "updatedReplicas")
    return (_count(new, "updatedReplicas") > _count(old, "updatedReplicas")
            or new_old < old_old
            or _count(new, "readyReplicas") > _count(old, "readyReplicas")
            or _count(new, "availableReplicas") > _count(old, "availableReplicas"))


def deployment_timed_out(d: Obj, status: Mapping[str, Any], now: float) -> bool:
    """No progress for progressDeadlineSeconds since the Progressing condition's update."""
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = seconds(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + d["spec"]["progressDeadlineSeconds"] < now


def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj,
                     now: float) -> Obj:
    """The deployment's status from its ReplicaSets (calculateStatus), conditions carried
    over and Available set from maxUnavailable. Zero counters are omitted, as the Go struct
    serialises them."""
    old = d.get("status") or {}
    available = available_replicas(all_rss)
    counts = {
        "observedGeneration": (d.get("metadata") or {}).get("generation") or 0,
        "replicas": actual_replicas(all_rss),
        "updatedReplicas": actual_replicas([new_rs]),
        "readyReplicas": ready_replicas(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(total_replicas(all_rss) - available, 0),
    }
    status: Obj = {k: v for k, v in counts.items() if v}
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if available >= replicas(d) - max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", MIN_AVAILABLE,
                                            "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.",
                                            now))
    return status


def replica_failures(all_rss: list[Obj | None], new_rs: Obj | None) -> list[Obj]:
    """ReplicaFailure conditions of the ReplicaSets as deployment conditions, the new
    ReplicaSet's first."""
    def of(rss: Iterable[Obj | None]) -> list[Obj]:
        found = []
        for rs in rss:
            for c in ((rs or {}).get("status") or {}).get("conditions") or []:
                if c.get("type") == REPLICA_FAILURE:
                    found.append({"type": REPLICA_FAILURE, "status": c.get("status"),
                                  "lastUpdateTime": c.get("lastTransitionTime"),
                                  "lastTransitionTime": c.get("lastTransitionTime"),
                                  "reason": c.get("reason"), "message": c.get("message")})
        return found
    return of([new_rs]) or of(all_rss)


def rollout_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, now: float) -> Obj:
    """syncRolloutStatus: the status plus the Progressing condition - complete, progressing
    (its update time refreshed, which is what the deadline counts from) or timed out."""
    status = calculate_status(all_rss, new_rs, d, now)
    if not has_progress_deadline(d):
        remove_condition(status, PROGRESSING)
    current = get_condition(d.get("status") or {}, PROGRESSING)
    complete = (_count(status, "replicas") == _count(status, "updatedReplicas")
                and current is not None and current.get("reason") == NEW_RS_AVAILABLE)
    if has_progress_deadline(d) and not complete:
        name = name_of(d)
        if deployment_complete(d, status):
            msg = (f'ReplicaSet "{name_of(new_rs)}" has successfully progressed.'
                   if new_rs is not None else f'Deployment "{name}" has successfully progressed.')
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, now))
        elif deployment_progressing(d, status):
            msg = (f'ReplicaSet "{name_of(new_rs)}" is progressing.'
                   if new_rs is not None else f'Deployment "{name}" is progressing.')
            condition = new_condition(PROGRESSING, "True", RS_UPDATED, msg, now)
            if current is not None:
                if current.get("status") == "True":
                    condition["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, condition)
        elif deployment_timed_out(d, status, now):
            msg = (f'ReplicaSet "{name_of(new_rs)}" has timed out progressing.'
                   if new_rs is not None else f'Deployment "{name}" has timed out progressing.')
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT, msg, now))
    failures = replica_failures(all_rss, new_rs)
    if failures:
        set_condition(status, failures[0])
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def stuck_recheck(d: Obj, status: Mapping[str, Any], now: float) -> float | None:
    """requeueStuckDeployment: when to look again so a stalled rollout is declared timed out
    on time (the deadline counts from the Progressing condition's last update)."""
    cond = get_condition(status, PROGRESSING)
    if not has_progress_deadline(d) or cond is None:
        return None
    if deployment_complete(d, status) or cond.get("reason") in (TIMED_OUT, PAUSED):
        return None
    since = seconds(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return max(since + d["spec"]["progressDeadlineSeconds"] - now, 0.0) + 0.1


def cleanup_victims(d: Obj, old_rss: list[Obj]) -> list[Obj]:
    """cleanupDeployment: the oldest revisions beyond revisionHistoryLimit, if they are
    empty (no replicas wanted or running) and settled."""
    if not has_revision_history_limit(d):
        return []
    alive = [rs for rs in old_rss if not (rs.get("metadata") or {}).get("deletionTimestamp")]
    surplus = len(alive) - d["spec"]["revisionHistoryLimit"]
    if surplus <= 0:
        return []
    alive.sort(key=lambda rs: (revision(rs), _created(rs)))
    victims = []
    for rs in alive[:surplus]:
        generation = (rs.get("metadata") or {}).get("generation") or 0
        if _status_int(rs, "replicas") != 0 or replicas(rs) != 0 or \
                generation > _status_int(rs, "observedGeneration"):
            continue
        victims.append(rs)
    return victims


def old_pods_running(new_rs: Obj | None, old_rss: list[Obj],
                     pods_by_rs: Mapping[str, list[Obj]]) -> bool:
    """Recreate waits for this to be False: no old ReplicaSet reports pods and no pod of
    one is still running (a pod being deleted still runs until its node stops it)."""
    if actual_replicas(old_rss) > 0:
        return True
    new_uid = ((new_rs or {}).get("metadata") or {}).get("uid")
    for uid, pods in pods_by_rs.items():
        if new_rs is not None and uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return True
    return False


# --- the plan ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CreateReplicaSet:
    rs: Obj


@dataclass(frozen=True)
class UpdateReplicaSet:
    """Write this ReplicaSet (spec and annotations) as shown."""

    rs: Obj


@dataclass(frozen=True)
class DeleteReplicaSet:
    name: str
    uid: str


@dataclass(frozen=True)
class RecordEvent:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class UpdateStatus:
    status: Obj


@dataclass(frozen=True)
class SetRevision:
    """The deployment's revision annotation (a write of the deployment itself)."""

    revision: str


Action = CreateReplicaSet | UpdateReplicaSet | DeleteReplicaSet | RecordEvent | UpdateStatus \
    | SetRevision


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    requeue_after: float | None = None


class _Stop(Exception):
    """The sync ends here (as the Go code returns an error after a hash collision)."""


class _Sync:
    """One syncDeployment over local copies. Method names follow the Go code's."""

    def __init__(self, d: Obj, rss: list[Obj], namespace_rss: Mapping[str, Obj],
                 pods_by_rs: Mapping[str, list[Obj]] | None, now: float) -> None:
        self.d = copy.deepcopy(d)
        _meta(self.d)
        _spec(self.d)
        _status(self.d)
        self.original_status = copy.deepcopy(d.get("status") or {})
        self.original_revision = ((d.get("metadata") or {}).get("annotations") or {}).get(
            REVISION)
        self.rss = [copy.deepcopy(rs) for rs in rss]
        self.namespace_rss = namespace_rss
        self.pods_by_rs = pods_by_rs or {}
        self.now = now
        self.actions: list[Action] = []

    # -- writes -------------------------------------------------------------------------

    def event(self, reason: str, message: str, type_: str = "Normal") -> None:
        self.actions.append(RecordEvent(type_, reason, message))

    def update_rs(self, rs: Obj) -> None:
        self.actions.append(UpdateReplicaSet(copy.deepcopy(rs)))

    def scale_rs(self, rs: Obj, size: int) -> bool:
        """scaleReplicaSet: write the size and the replica annotations if either changed;
        an event when the size did."""
        old = replicas(rs)
        size_changed = old != size
        annotations_changed = set_replicas_annotations(
            copy.deepcopy(rs), replicas(self.d), replicas(self.d) + max_surge(self.d))
        if not (size_changed or annotations_changed):
            return False
        _spec(rs)["replicas"] = size
        set_replicas_annotations(rs, replicas(self.d), replicas(self.d) + max_surge(self.d))
        self.update_rs(rs)
        if size_changed:
            way = "up" if old < size else "down"
            self.event("ScalingReplicaSet",
                       f"Scaled {way} replica set {name_of(rs)} from {old} to {size}")
        return size_changed

    def scale_and_record(self, rs: Obj, size: int) -> bool:
        if replicas(rs) == size:
            return False
        return self.scale_rs(rs, size)

    # -- replica sets -------------------------------------------------------------------

    def all_replica_sets(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        """getAllReplicaSetsAndSyncRevision."""
        existing = find_new_rs(self.d, self.rss)
        old = [rs for rs in self.rss if rs is not existing]
        return self.new_replica_set(existing, old, create), old

    def new_replica_set(self, existing: Obj | None, old: list[Obj],
                        create: bool) -> Obj | None:
        d = self.d
        new_revision = max_revision(old) + 1
        if existing is not None:
            changed = set_new_rs_annotations(d, existing, new_revision, exists=True)
            min_ready = d["spec"].get("minReadySeconds") or 0
            if changed or (_spec(existing).get("minReadySeconds") or 0) != min_ready:
                if min_ready:
                    existing["spec"]["minReadySeconds"] = min_ready
                else:
                    existing["spec"].pop("minReadySeconds", None)
                self.update_rs(existing)
            self.set_revision(((existing.get("metadata") or {}).get("annotations") or {}).get(
                REVISION, ""))
            if has_progress_deadline(d) and get_condition(d["status"], PROGRESSING) is None:
                set_condition(d["status"], new_condition(
                    PROGRESSING, "True", FOUND_NEW_RS,
                    f'Found new replica set "{name_of(existing)}"', self.now))
            return existing
        if not create:
            return None
        collisions = d["status"].get("collisionCount")
        template = copy.deepcopy(d["spec"].get("template") or {})
        pod_hash = compute_hash(template, collisions)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: pod_hash}
        selector = copy.deepcopy(d["spec"].get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        name = f"{name_of(d)}-{pod_hash}"
        rs: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": name, "namespace": d["metadata"].get("namespace", ""),
                                "labels": dict(tmeta["labels"]),
                                "ownerReferences": [controller_ref(d)]},
                   "spec": {"replicas": 0, "selector": selector, "template": template}}
        if d["spec"].get("minReadySeconds"):
            rs["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"]
        count = new_rs_new_replicas(d, [*old, rs], rs)
        rs["spec"]["replicas"] = count
        set_new_rs_annotations(d, rs, new_revision, exists=False)
        taken = self.namespace_rss.get(name)
        already = False
        if taken is not None:
            ref = controller_of(taken)
            if ref is not None and ref.get("uid") == d["metadata"].get("uid") and \
                    equal_ignore_hash(d["spec"].get("template"),
                                      (taken.get("spec") or {}).get("template")):
                rs, already = copy.deepcopy(taken), True
                self.rss.append(rs)
            else:
                # A ReplicaSet of that name with another template or owner: hash again
                # with the next collision count.
                d["status"]["collisionCount"] = (collisions or 0) + 1
                raise _Stop
        else:
            self.actions.append(CreateReplicaSet(copy.deepcopy(rs)))
            self.rss.append(rs)
            if count > 0:
                self.event("ScalingReplicaSet",
                           f"Scaled up replica set {name} from 0 to {count}")
        self.set_revision(str(new_revision))
        if not already and has_progress_deadline(d):
            set_condition(d["status"], new_condition(
                PROGRESSING, "True", NEW_RS_CREATED, f'Created new replica set "{name}"',
                self.now))
        return rs

    def set_revision(self, value: str) -> None:
        annotations = _meta(self.d).setdefault("annotations", {})
        if annotations.get(REVISION) != value:
            annotations[REVISION] = value

    # -- the sync paths -----------------------------------------------------------------

    def run(self) -> None:
        d = self.d
        selector = d["spec"].get("selector")
        if selector is not None and not selector.get("matchLabels") and \
                not selector.get("matchExpressions"):
            self.event("SelectingAll", "This deployment is selecting all pods. A non-empty "
                       "selector is required.", "Warning")
            if _observed(d["status"]) < (d["metadata"].get("generation") or 0):
                d["status"]["observedGeneration"] = d["metadata"]["generation"]
            return
        if d["metadata"].get("deletionTimestamp"):
            self.sync_status_only()
            return
        self.check_paused_conditions()
        if d["spec"].get("paused"):
            self.sync()
            return
        if self.is_scaling_event():
            self.sync()
            return
        if is_rolling(d):
            self.rollout_rolling()
        else:
            self.rollout_recreate()

    def sync_status_only(self) -> None:
        new, old = self.all_replica_sets(create=False)
        self.d["status"] = calculate_status([*old, new], new, self.d, self.now)

    def check_paused_conditions(self) -> None:
        d = self.d
        if not has_progress_deadline(d):
            return
        cond = get_condition(d["status"], PROGRESSING)
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return  # a reported lack of progress stays until something progresses
        paused_cond = cond is not None and cond.get("reason") == PAUSED
        if d["spec"].get("paused") and not paused_cond:
            set_condition(d["status"], new_condition(PROGRESSING, "Unknown", PAUSED,
                                                     "Deployment is paused", self.now))
        elif not d["spec"].get("paused") and paused_cond:
            set_condition(d["status"], new_condition(PROGRESSING, "Unknown", RESUMED,
                                                     "Deployment is resumed", self.now))

    def is_scaling_event(self) -> bool:
        new, old = self.all_replica_sets(create=False)
        for rs in active([*old, new]):
            desired = desired_annotation(rs)
            if desired is not None and desired != replicas(self.d):
                return True
        return False

    def sync(self) -> None:
        """A scaling event, or a paused deployment: resize, clean up, status."""
        new, old = self.all_replica_sets(create=False)
        self.scale(new, old)
        if self.d["spec"].get("paused"):
            self.cleanup(old)
        self.d["status"] = calculate_status([*old, new], new, self.d, self.now)

    def scale(self, new: Obj | None, old: list[Obj]) -> None:
        d = self.d
        only = find_active_or_latest(new, old)
        if only is not None:
            if replicas(only) != replicas(d):
                self.scale_and_record(only, replicas(d))
            return
        if is_saturated(d, new):
            for rs in active(old):
                self.scale_and_record(rs, 0)
            return
        if is_rolling(d):
            for rs, size in proportional_sizes(d, [*old, *([new] if new else [])]):
                self.scale_rs(rs, size)

    def cleanup(self, old: list[Obj]) -> None:
        for rs in cleanup_victims(self.d, old):
            self.actions.append(DeleteReplicaSet(name_of(rs), rs["metadata"].get("uid", "")))
            self.rss = [r for r in self.rss if r is not rs]

    def sync_rollout_status(self, all_rss: list[Obj | None], new: Obj | None) -> None:
        self.d["status"] = rollout_status(all_rss, new, self.d, self.now)

    # -- rolling ------------------------------------------------------------------------

    def rollout_rolling(self) -> None:
        new, old = self.all_replica_sets(create=True)
        assert new is not None
        all_rss: list[Obj | None] = [*old, new]
        if self.reconcile_new(all_rss, new):
            self.sync_rollout_status(all_rss, new)
            return
        if self.reconcile_old(all_rss, active(old), new):
            self.sync_rollout_status(all_rss, new)
            return
        if deployment_complete(self.d, self.d["status"]):
            self.cleanup(old)
        self.sync_rollout_status(all_rss, new)

    def reconcile_new(self, all_rss: list[Obj | None], new: Obj) -> bool:
        d = self.d
        if replicas(new) == replicas(d):
            return False
        if replicas(new) > replicas(d):
            return self.scale_and_record(new, replicas(d))
        return self.scale_and_record(new, new_rs_new_replicas(d, all_rss, new))

    def reconcile_old(self, all_rss: list[Obj | None], old: list[Obj], new: Obj) -> bool:
        """Scale old ReplicaSets down as far as availability allows: first their unhealthy
        replicas (they cost no availability), then healthy ones down to
        replicas - maxUnavailable available pods."""
        d = self.d
        if total_replicas(old) == 0:
            return False
        min_available = replicas(d) - max_unavailable(d)
        new_unavailable = replicas(new) - sure_available(new)
        max_scaled_down = total_replicas(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = self.cleanup_unhealthy(old, max_scaled_down)
        scaled = self.scale_down_old(old, new)
        return cleaned + scaled > 0

    def cleanup_unhealthy(self, old: list[Obj], most: int) -> int:
        total = 0
        for rs in by_creation(old):
            if total >= most:
                break
            unhealthy = replicas(rs) - sure_available(rs)
            if replicas(rs) == 0 or unhealthy <= 0:
                continue
            n = min(most - total, unhealthy)
            self.scale_and_record(rs, replicas(rs) - n)
            total += n
        return total

    def scale_down_old(self, old: list[Obj], new: Obj) -> int:
        min_available = replicas(self.d) - max_unavailable(self.d)
        available = sum(sure_available(rs) for rs in [*old, new])
        if available <= min_available:
            return 0
        wanted = available - min_available
        total = 0
        for rs in by_creation(old):
            if total >= wanted:
                break
            if replicas(rs) == 0:
                continue
            n = min(replicas(rs), wanted - total)
            self.scale_and_record(rs, replicas(rs) - n)
            total += n
        return total

    # -- recreate -----------------------------------------------------------------------

    def rollout_recreate(self) -> None:
        new, old = self.all_replica_sets(create=False)
        all_rss: list[Obj | None] = [*old, new]
        scaled_down = False
        for rs in active(old):
            scaled_down = self.scale_and_record(rs, 0) or scaled_down
        if scaled_down:
            self.sync_rollout_status(all_rss, new)
            return
        if old_pods_running(new, old, self.pods_by_rs):
            self.sync_rollout_status(all_rss, new)
            return
        if new is None:
            new, old = self.all_replica_sets(create=True)
            all_rss = [*old, new]
        if new is not None:
            self.scale_and_record(new, replicas(self.d))
        if deployment_complete(self.d, self.d["status"]):
            self.cleanup(old)
        self.sync_rollout_status(all_rss, new)

    # -- result -------------------------------------------------------------------------

    def plan(self) -> Plan:
        try:
            self.run()
        except _Stop:
            pass
        actions = list(self.actions)
        status = self.d["status"]
        if status != self.original_status:
            actions.append(UpdateStatus(status))
        current = (self.d["metadata"].get("annotations") or {}).get(REVISION)
        if current is not None and current != self.original_revision:
            actions.append(SetRevision(current))
        return Plan(actions, stuck_recheck(self.d, status, self.now))


def plan(d: Obj, rss: list[Obj], namespace_rss: Mapping[str, Obj] | None = None,
         pods_by_rs: Mapping[str, list[Obj]] | None = None, *, now: float) -> Plan:
    """One sync of deployment `d` owning `rss` (already claimed). `namespace_rss`: every
    ReplicaSet of the namespace by name (to notice a hash collision); `pods_by_rs`: the
    deployment's pods by their ReplicaSet's uid (Recreate waits for old ones to go)."""
    if namespace_rss is None:
        namespace_rss = {name_of(rs): rs for rs in rss}
    return _Sync(d, rss, namespace_rss, pods_by_rs, now).plan()
