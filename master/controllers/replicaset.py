"""The ReplicaSet controller and the ReplicationController manager: keep `spec.replicas` pods
made from `spec.template`.

Role: pkg/controller/replicaset plus the pod helpers of pkg/controller (controller_utils.go,
controller_ref_manager.go) - claiming pods by selector and ownerReferences, which pods to
delete first, slow-start creation, and the status the owner reports. As in Kubernetes
(pkg/controller/replication wraps the ReplicaSet controller), a ReplicationController is
handled by the same code: `ReplicatedKind` holds what differs (the API path, the kind its
pods' controllerRef names, how `spec.selector` is read - a LabelSelector or a plain map of
equality terms), the two controller classes only their names (the events' component), and
`decide` is the one decision for both.

Invariants:
- The store is the informer cache and every write is awaited before `reconcile` returns, so
  the next reconcile of the same owner sees what this one did: no "expectations"; after
  a master restart the pods already in the store are counted, never created twice.
- A pod has at most one controller. Only orphans that match the selector (and are not being
  deleted) are adopted, only pods this owner controls are released, and nothing is
  adopted or released while the owner itself is being deleted. A ReplicaSet and a
  ReplicationController selecting the same orphan race for it; the resourceVersion
  precondition of the adoption lets exactly one win.
- Pods being deleted or terminated (Succeeded/Failed) are not active: not counted, not
  deleted again, and replaced at once.
- Creates go in slow-start batches (1, 2, 4, ...): a template the API refuses costs one
  failed create, not `replicas` of them; the batch that failed stops the rest.
- The pure functions here (claim, deletion order, decide, plan, status) take `now` as Unix
  seconds and read nothing else; the controller around them is the only I/O.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bramble.kube import names
from bramble.kube.errors import BadRequest, StatusError
from bramble.kube.printers import parse_time
from bramble.kube.selectors import (
    LabelSelector,
    label_selector_from_set,
    label_selector_from_struct,
)

from ..api.encoding import MERGE_PATCH
from ..api.rest import ObjectAPI, Target, WriteOptions
from ..store import Change, Entry
from .base import Controller, EventRecorder, Key, Watch, own_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# At most this many pods are created or deleted in one reconcile (the RS controller's
# burstReplicas): a ReplicaSet scaled to 10000 does not monopolise the API.
BURST_REPLICAS = 500
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
REPLICA_FAILURE = "ReplicaFailure"

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# --- pods: what state they are in --------------------------------------------------------------

def seconds(timestamp: Any) -> float | None:
    """Unix seconds of an RFC 3339 timestamp; None when unset or unreadable."""
    parsed = parse_time(timestamp)
    return parsed.timestamp() if parsed is not None else None


def rfc3339(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def is_active(pod: Obj) -> bool:
    """controller.IsPodActive: not terminated and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not _meta(pod).get("deletionTimestamp")


def _ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = _ready_condition(pod)
    return c is not None and c.get("status") == "True"


def ready_since(pod: Obj) -> float | None:
    """When a ready pod became ready (its Ready condition's lastTransitionTime)."""
    c = _ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    return seconds(c.get("lastTransitionTime"))


def available_in(pod: Obj, min_ready_seconds: int, now: float) -> float | None:
    """Seconds until the pod counts as available: 0 when it is, None when it is not ready
    (so nothing can be predicted). podutil.IsPodAvailable: ready, and ready for longer than
    minReadySeconds (strictly: `since + minReady < now`)."""
    if not is_ready(pod):
        return None
    if not min_ready_seconds:
        return 0.0
    since = ready_since(pod)
    if since is None:
        return None
    left = since + min_ready_seconds - now
    return 0.0 if left < 0 else left


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    return available_in(pod, min_ready_seconds, now) == 0.0


def restarts(pod: Obj) -> int:
    """The highest restart count of the pod's containers (maxContainerRestarts)."""
    counts = [c.get("restartCount") or 0
              for c in (pod.get("status") or {}).get("containerStatuses") or []]
    return max(counts, default=0)


def deletion_cost(pod: Obj) -> int:
    raw = (_meta(pod).get("annotations") or {}).get(POD_DELETION_COST)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


# --- owners -----------------------------------------------------------------------------------

def controller_of(obj: Obj) -> Obj | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def controller_ref(owner: Obj) -> Obj:
    """The ownerReference a controller puts on what it makes or adopts."""
    m = _meta(owner)
    return {"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""),
            "name": m.get("name", ""), "uid": m.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


@dataclass(frozen=True)
class Claim:
    """What an owner controls after claiming: `owned` (including the adopted, shown with
    their new ownerReference), and the writes that takes."""

    owned: list[Obj]
    adopt: list[Obj]
    release: list[Obj]


def claim(owner: Obj, selector: LabelSelector, candidates: Iterable[Obj]) -> Claim:
    """BaseControllerRefManager.ClaimObject over `candidates` (objects of one namespace).

    Owned and matching: kept. Owned and no longer matching: released (unless the owner is
    being deleted). Orphans matching the selector: adopted (unless either is being deleted).
    Objects controlled by someone else are never touched.
    """
    uid = _meta(owner).get("uid")
    owner_deleting = bool(_meta(owner).get("deletionTimestamp"))
    owned: list[Obj] = []
    adopt: list[Obj] = []
    release: list[Obj] = []
    for obj in candidates:
        matches = selector.matches(_meta(obj).get("labels") or {})
        ref = controller_of(obj)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches:
                owned.append(obj)
            elif not owner_deleting:
                release.append(obj)
            continue
        if owner_deleting or not matches or _meta(obj).get("deletionTimestamp"):
            continue
        adopted = copy.deepcopy(obj)
        refs = _meta(adopted).setdefault("ownerReferences", [])
        refs.append(controller_ref(owner))
        adopt.append(adopted)
        owned.append(adopted)
    return Claim(owned, adopt, release)


def without_owner(obj: Obj, owner_uid: str) -> list[Obj]:
    """The ownerReferences of `obj` once the owner `owner_uid` let it go."""
    return [r for r in _meta(obj).get("ownerReferences") or [] if r.get("uid") != owner_uid]


def controller_keys(change: Change, kind: str,
                    selecting: Callable[[str], Iterable[tuple[Entry, LabelSelector | None]]],
                    ) -> set[Key]:
    """Which owners of `kind` a dependent's change concerns: its controller (before and
    after the change); for an orphan, every owner in its namespace whose selector matches
    it, as one of them may adopt it. `selecting(namespace)` lists (owner, selector)."""
    keys: set[Key] = set()
    for entry in (change.entry, change.prev):
        if entry is None:
            continue
        ref = controller_of(entry.obj())
        if ref is not None:
            if ref.get("kind") == kind:
                keys.add((entry.namespace, ref.get("name", "")))
            continue
        for owner, selector in selecting(entry.namespace):
            if selector is not None and not selector.empty() and selector.matches(
                    entry.labels):
                keys.add((owner.namespace, owner.name))
    return keys


async def write_claims(api: ObjectAPI, identity: Any, target: Target, owner: Obj,
                       claimed: Claim, on_adopt: Callable[[Obj], Obj] | None = None) -> None:
    """Write what `claim` decided (any owner kind, any dependent kind of `target.rt`):
    adoptions and releases as merge patches with the dependent's resourceVersion as
    precondition - one changed meanwhile, or claimed by someone else, is a 409 and the
    reconcile runs again; one already gone is fine. `on_adopt(dependent)` may add to an
    adoption's metadata patch (the Job's tracking finalizer)."""
    uid = _meta(owner).get("uid", "")
    writes = [(obj, _meta(obj).get("ownerReferences"), True) for obj in claimed.adopt]
    writes += [(obj, without_owner(obj, uid), False) for obj in claimed.release]
    for obj, refs, adopting in writes:
        m = _meta(obj)
        meta: Obj = {"resourceVersion": m.get("resourceVersion"), "ownerReferences": refs or None}
        if adopting and on_adopt is not None:
            meta.update(on_adopt(obj))
        try:
            await api.patch(Target(target.rt, m.get("namespace", ""), m.get("name", "")),
                            orjson.dumps({"metadata": meta}), MERGE_PATCH, WriteOptions(),
                            identity)
        except StatusError as err:
            if err.code != 404:
                raise


# --- which pods go first ----------------------------------------------------------------------

def _log_rank(t: float, now: float) -> int:
    # LogarithmicScaleDown: durations compared by their power-of-two bucket in nanoseconds,
    # so pods that came up at about the same time count as equally old.
    d = (now - t) * 1e9
    return int(math.log2(d)) if d > 0 else -1


def _newer_first(t1: float | None, t2: float | None, now: float | None,
                 uid1: str, uid2: str) -> int:
    """afterOrZero with logarithmic ranking: <0 when the first goes first."""
    if t1 is None or t2 is None:
        return -1 if t1 is None else 1  # an unknown time goes first
    if now is not None:
        diff = _log_rank(t1, now) - _log_rank(t2, now)
        if diff == 0:
            return -1 if uid1 < uid2 else (1 if uid1 > uid2 else 0)
        return diff
    return -1 if t1 > t2 else 1


def compare_for_deletion(a: Obj, b: Obj, rank_a: int, rank_b: int, now: float | None) -> int:
    """ActivePodsWithRanks.Less as a comparison: negative when `a` should go before `b`.

    1 unassigned < assigned; 2 Pending < Unknown < Running; 3 not ready < ready; 4 lower
    pod-deletion-cost first; 5 more pods of the same owner on its node first (doubled up);
    6 ready for a shorter time first; 7 more restarts first; 8 newer first.
    """
    na, nb = (a.get("spec") or {}).get("nodeName") or "", (b.get("spec") or {}).get(
        "nodeName") or ""
    if na != nb and (not na or not nb):
        return -1 if not na else 1
    pa = _PHASE_ORDINAL.get((a.get("status") or {}).get("phase") or "", 0)
    pb = _PHASE_ORDINAL.get((b.get("status") or {}).get("phase") or "", 0)
    if pa != pb:
        return pa - pb
    ra, rb = is_ready(a), is_ready(b)
    if ra != rb:
        return -1 if not ra else 1
    ca, cb = deletion_cost(a), deletion_cost(b)
    if ca != cb:
        return ca - cb
    if rank_a != rank_b:
        return rank_b - rank_a
    uid_a, uid_b = _meta(a).get("uid", ""), _meta(b).get("uid", "")
    if ra and rb:
        ta, tb = ready_since(a), ready_since(b)
        if ta != tb:
            return _newer_first(ta, tb, now, uid_a, uid_b)
    xa, xb = restarts(a), restarts(b)
    if xa != xb:
        return xb - xa
    ta, tb = seconds(_meta(a).get("creationTimestamp")), seconds(
        _meta(b).get("creationTimestamp"))
    if ta != tb:
        return _newer_first(ta, tb, now, uid_a, uid_b)
    return 0


def deletion_order(pods: list[Obj], related: Iterable[Obj], now: float | None) -> list[Obj]:
    """`pods`, the one to delete first first. A pod's rank is the number of active pods in
    `related` (those of every ReplicaSet with the same owner) on its node."""
    on_node: dict[str, int] = {}
    for pod in related:
        if is_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(pod, on_node.get((pod.get("spec") or {}).get("nodeName") or "", 0))
              for pod in pods]
    ranked.sort(key=functools.cmp_to_key(
        lambda x, y: compare_for_deletion(x[0], y[0], x[1], y[1], now)))
    return [pod for pod, _ in ranked]


# --- what to do -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReplicaPlan:
    create: int
    delete: list[Obj]


def replicas_of(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) else 1


def plan_replicas(rs: Obj, active: list[Obj], related: Iterable[Obj], now: float | None,
                  burst: int = BURST_REPLICAS) -> ReplicaPlan:
    """manageReplicas: create the missing pods or delete the surplus, at most `burst`."""
    diff = len(active) - replicas_of(rs)
    if diff < 0:
        return ReplicaPlan(min(-diff, burst), [])
    if diff > 0:
        n = min(diff, burst)
        if n >= len(active):
            return ReplicaPlan(0, list(active))
        return ReplicaPlan(0, deletion_order(active, related, now)[:n])
    return ReplicaPlan(0, [])


def slow_start_batches(count: int, initial: int = 1) -> list[int]:
    """slowStartBatch's batch sizes: initial, then doubling, the last one what is left.
    9 -> [1, 2, 4, 2]."""
    sizes = []
    batch = min(count, initial)
    while batch > 0:
        sizes.append(batch)
        count -= batch
        batch = min(2 * batch, count)
    return sizes


def pod_prefix(owner_name: str) -> str:
    """getPodsPrefix: "<owner>-", or the bare name when that is no valid generateName."""
    prefix = f"{owner_name}-"
    return prefix if not names.name_is_dns_subdomain(prefix, prefix=True) else owner_name


def new_pod(rs: Obj) -> Obj:
    """GetPodFromTemplate: a pod from the template, controlled by `rs`."""
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": pod_prefix(_meta(rs).get("name", "")),
                 "namespace": _meta(rs).get("namespace", ""),
                 "ownerReferences": [controller_ref(rs)]}
    for key in ("labels", "annotations", "finalizers"):
        if tmeta.get(key):
            meta[key] = copy.deepcopy(tmeta[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def calculate_status(rs: Obj, active: list[Obj], error: tuple[str, str] | None,
                     now: float) -> tuple[Obj, float | None]:
    """The ReplicaSet's status from its active pods, and the seconds after which a ready pod
    becomes available (minReadySeconds), if one will.

    `error` is (reason, message) of a failed create or delete: it sets the ReplicaFailure
    condition (kept while it lasts), which a reconcile without error removes.
    """
    spec = rs.get("spec") or {}
    min_ready = spec.get("minReadySeconds") or 0
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    fully_labeled = label_selector_from_set(template_labels)
    status = copy.deepcopy(rs.get("status") or {})
    counts = {"fullyLabeledReplicas": 0, "readyReplicas": 0, "availableReplicas": 0}
    soonest: float | None = None
    for pod in active:
        if fully_labeled.matches(_meta(pod).get("labels") or {}):
            counts["fullyLabeledReplicas"] += 1
        if is_ready(pod):
            counts["readyReplicas"] += 1
            left = available_in(pod, min_ready, now)
            if left == 0.0:
                counts["availableReplicas"] += 1
            elif left is not None:
                soonest = left if soonest is None else min(soonest, left)
    conditions = [c for c in status.get("conditions") or []]
    failure = next((c for c in conditions if c.get("type") == REPLICA_FAILURE), None)
    if error is not None and failure is None:
        conditions.append({"type": REPLICA_FAILURE, "status": "True",
                           "lastTransitionTime": rfc3339(now), "reason": error[0],
                           "message": error[1]})
    elif error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    status["replicas"] = len(active)
    # As the Go struct serialises: zero counters are omitted (omitempty), replicas never.
    for field_, value in counts.items():
        if value:
            status[field_] = value
        else:
            status.pop(field_, None)
    generation = _meta(rs).get("generation")
    if generation:
        status["observedGeneration"] = generation
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    # IsPodAvailable wants `since + minReady < now` strictly: look just after the edge.
    return status, (None if soonest is None else soonest + 0.05)


# --- the kinds -------------------------------------------------------------------------------

def map_selector(selector: Any) -> LabelSelector:
    """A ReplicationController's `spec.selector`: a plain map of equality terms
    (labels.SelectorFromSet). None and {} select everything - which the API refuses and
    the controller never acts on. Raises BadRequest for anything but a map of strings."""
    if selector is not None and not (isinstance(selector, dict) and all(
            isinstance(v, str) for v in selector.values())):
        raise BadRequest("invalid label selector: must be a map of strings")
    return label_selector_from_set(selector)


@dataclass(frozen=True)
class ReplicatedKind:
    """What differs between the kinds that keep N pods from a template: data only."""

    group: str
    version: str
    plural: str
    kind: str  # as the pods' controllerRef names it
    # spec.selector -> LabelSelector; raises BadRequest when it is malformed.
    selector: Callable[[Any], LabelSelector]


REPLICA_SET = ReplicatedKind("apps", "v1", "replicasets", "ReplicaSet",
                             label_selector_from_struct)
REPLICATION_CONTROLLER = ReplicatedKind("", "v1", "replicationcontrollers",
                                        "ReplicationController", map_selector)


# --- the decision -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """One reconcile of an owner: the pods it claims (adoptions and releases to write first),
    the active ones among them, and the pods to create or delete."""

    claim: Claim
    active: list[Obj]
    plan: ReplicaPlan


def decide(owner: Obj, selector: LabelSelector, candidates: Iterable[Obj], now: float | None,
           related: Callable[[], Iterable[Obj]] = lambda: (),
           burst: int = BURST_REPLICAS) -> Decision:
    """syncReplicaSet's decision for a ReplicaSet or a ReplicationController: claim the
    `candidates` (the namespace's pods it may own), then create the missing replicas or
    choose the surplus to delete - nothing while the owner is being deleted (the garbage
    collector takes its pods). `related()` lists the pods of the owner's siblings (same
    controller), read only when pods must go: they rank pods doubled up on a node."""
    claimed = claim(owner, selector, candidates)
    active = [p for p in claimed.owned if is_active(p)]
    if _meta(owner).get("deletionTimestamp"):
        return Decision(claimed, active, ReplicaPlan(0, []))
    surplus = len(active) > replicas_of(owner)
    return Decision(claimed, active,
                    plan_replicas(owner, active, related() if surplus else (), now, burst))


# --- the loop ---------------------------------------------------------------------------------

class ReplicatedPodsController(Controller):
    """Reconciles one owner of `kind` per key (namespace, name), fed by the owners' and the
    pods' changes; an orphan pod's change wakes every owner whose selector matches it.
    Subclasses name the kind."""

    kind: ReplicatedKind
    workers = 4

    def __init__(self, api: ObjectAPI, burst: int = BURST_REPLICAS,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(api)
        self.burst = burst
        self.clock = clock
        self.pods = self.target("", "v1", "pods")
        self.owners = self.target(self.kind.group, self.kind.version, self.kind.plural)
        self.events = EventRecorder(api, self.name)
        self._selectors: dict[tuple[str, str], tuple[int, LabelSelector | None]] = {}
        self.watches = [Watch(self.owners.resource, own_key),
                        Watch(self.pods.resource, self._pod_keys)]

    def initial_keys(self) -> Iterable[Key]:
        return [(e.namespace, e.name) for e in self.store.list(self.owners.resource)]

    # -- keys ---------------------------------------------------------------------------

    def _selector(self, entry: Entry) -> LabelSelector | None:
        """The parsed selector of a stored owner, cached per resourceVersion."""
        key = (entry.namespace, entry.name)
        cached = self._selectors.get(key)
        if cached is not None and cached[0] == entry.rv:
            return cached[1]
        try:
            parsed: LabelSelector | None = self.kind.selector(
                (entry.obj().get("spec") or {}).get("selector"))
        except BadRequest:
            parsed = None
        if len(self._selectors) > 10_000:
            self._selectors.clear()
        self._selectors[key] = (entry.rv, parsed)
        return parsed

    def _pod_keys(self, change: Change) -> Iterable[Key]:
        return controller_keys(change, self.kind.kind, lambda ns: (
            (owner, self._selector(owner))
            for owner in self.store.list(self.owners.resource, ns)))

    # -- reconcile ----------------------------------------------------------------------

    def _candidates(self, owner: Obj, selector: LabelSelector) -> list[Obj]:
        """The namespace's pods this owner may claim: matching ones, and any that name its
        uid (owned pods whose labels changed). Only those are decoded."""
        uid = _meta(owner).get("uid", "").encode()
        pods = self.store.list(self.pods.resource, _meta(owner).get("namespace", ""))
        return [e.obj() for e in pods if selector.matches(e.labels) or (uid and uid in e.raw)]

    def _related(self, owner: Obj) -> list[Obj]:
        """Pods of every owner of this kind with the same controller
        (getIndirectlyRelatedPods); none for an owner without one, so all its pods rank
        alike."""
        ns = _meta(owner).get("namespace", "")
        controller = controller_of(owner)
        if controller is None:
            return []
        siblings = set()
        for e in self.store.list(self.owners.resource, ns):
            if controller.get("uid", "").encode() in e.raw:
                ref = controller_of(e.obj())
                if ref is not None and ref.get("uid") == controller.get("uid"):
                    siblings.add(e.obj()["metadata"].get("uid", ""))
        related = []
        for e in self.store.list(self.pods.resource, ns):
            if any(u.encode() in e.raw for u in siblings):
                pod = e.obj()
                ref = controller_of(pod)
                if ref is not None and ref.get("uid") in siblings:
                    related.append(pod)
        return related

    async def reconcile(self, key: Key) -> float | None:
        ns, name = key  # type: ignore[misc]
        entry = self.store.get(self.owners.resource, ns, name)
        if entry is None:
            return None
        owner = entry.obj()
        try:
            selector = self.kind.selector((owner.get("spec") or {}).get("selector"))
        except BadRequest as err:
            log.warning("owner has an invalid selector", extra={
                "kind": self.kind.kind, "namespace": ns, "name": name, "error": err.message})
            return None
        if selector.empty():
            return None  # validation refuses it; never claim a whole namespace
        decision = decide(owner, selector, self._candidates(owner, selector), self.clock(),
                          lambda: self._related(owner), self.burst)
        await write_claims(self.api, self.identity, self.pods, owner, decision.claim)
        active, plan = decision.active, decision.plan
        failed: tuple[str, StatusError] | None = None
        if plan.create:
            err = await self._create(owner, plan.create)
            failed = ("FailedCreate", err) if err is not None else None
        if plan.delete:
            err = await self._delete(owner, plan.delete)
            failed = ("FailedDelete", err) if err is not None else failed
        if plan.create or plan.delete:
            active = [p for p in claim(owner, selector, self._candidates(owner, selector)).owned
                      if is_active(p)]
        error = (failed[0], failed[1].message) if failed is not None else None
        status, after = calculate_status(owner, active, error, self.clock())
        if status != (owner.get("status") or {}):
            owner["status"] = status
            await self.api.update(Target(self.owners.rt, ns, name, "status"), owner,
                                  WriteOptions(), self.identity)
        if failed is not None:
            raise failed[1]  # try again after the queue's back-off
        return after

    async def _create(self, owner: Obj, count: int) -> StatusError | None:
        """Create `count` pods in slow-start batches; the error if one failed (the rest of
        its batch went on, later batches are not started)."""
        ns = _meta(owner).get("namespace", "")
        body = new_pod(owner)
        for size in slow_start_batches(count):
            results = await asyncio.gather(
                *(self.api.create(Target(self.pods.rt, ns), body, WriteOptions(),
                                  self.identity) for _ in range(size)),
                return_exceptions=True)
            failed: StatusError | None = None
            created: list[str] = []
            for result in results:
                if isinstance(result, StatusError):
                    failed = failed or result
                elif isinstance(result, BaseException):
                    raise result
                else:
                    created.append(result[0]["metadata"]["name"])
            await asyncio.gather(*(self.events.record(owner, "Normal", "SuccessfulCreate",
                                                      f"Created pod: {pod}")
                                   for pod in created))
            if failed is not None:
                if failed.code == 403 and "being terminated" in failed.message:
                    return None  # the namespace is going away: every create would fail
                await self.events.record(owner, "Warning", "FailedCreate",
                                         f"Error creating: {failed.message}")
                return failed
        return None

    async def _delete(self, owner: Obj, pods: list[Obj]) -> StatusError | None:
        """Delete the chosen pods (all at once, as Kubernetes does); the first error."""
        ns = _meta(owner).get("namespace", "")

        async def one(pod: Obj) -> StatusError | None:
            m = _meta(pod)
            try:
                await self.api.delete(Target(self.pods.rt, ns, m.get("name", "")),
                                      {"preconditions": {"uid": m.get("uid")}}, self.identity)
            except StatusError as err:
                if err.code == 404:
                    return None
                await self.events.record(owner, "Warning", "FailedDelete",
                                         f"Error deleting: {err.message}")
                return err
            await self.events.record(owner, "Normal", "SuccessfulDelete",
                                     f"Deleted pod: {m.get('name', '')}")
            return None

        errors = [e for e in await asyncio.gather(*(one(p) for p in pods)) if e is not None]
        return errors[0] if errors else None


class ReplicaSetController(ReplicatedPodsController):
    name = "replicaset-controller"
    kind = REPLICA_SET


class ReplicationManager(ReplicatedPodsController):
    """ReplicationControllers (core/v1), as kube-controller-manager's ReplicationManager:
    the ReplicaSet controller over another kind; its events come from
    "replication-controller"."""

    name = "replication-controller"
    kind = REPLICATION_CONTROLLER
