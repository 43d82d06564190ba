"""The Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

Role: the loop around `rollout.plan` - it claims the ReplicaSets a Deployment selects,
asks the plan what one sync (pkg/controller/deployment's syncDeployment) would write, and
writes it in order, awaiting each write. It wakes on Deployment and ReplicaSet changes (and,
for Recreate, on old pods going away), and when a progress deadline falls due.

Invariants:
- Every write carries the resourceVersion this sync read (or the one its own previous
  write returned): anything else that changed the object meanwhile makes it a 409, and the
  sync runs again from the new state. A plan never writes from a stale view.
- The new ReplicaSet's name is the deployment's name plus the template hash, so a sync
  repeated after a crash or a conflict finds the ReplicaSet it made instead of making
  another one; a foreign ReplicaSet of that name bumps status.collisionCount.
- The Deployment's status is written through /status; its revision annotation through a
  merge patch of the Deployment, which leaves its spec (and generation) alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from bramble.kube.errors import BadRequest, StatusError
from bramble.kube.selectors import LabelSelector, label_selector_from_struct

from ..api.encoding import MERGE_PATCH
from ..api.rest import ObjectAPI, Target, WriteOptions
from ..store import DELETED, Change
from . import rollout
from .base import Controller, EventRecorder, Key, Watch, own_key
from .replicaset import claim, controller_keys, controller_of, write_claims

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class DeploymentController(Controller):
    name = "deployment-controller"
    workers = 2

    def __init__(self, api: ObjectAPI, clock: Callable[[], float] = time.time) -> None:
        super().__init__(api)
        self.clock = clock
        self.deployments = self.target("apps", "v1", "deployments")
        self.pods = self.target("", "v1", "pods")
        self.replicasets = self.target("apps", "v1", "replicasets")
        self.events = EventRecorder(api, self.name)
        self.watches = [Watch(self.deployments.resource, own_key),
                        Watch(self.replicasets.resource, self._replicaset_keys),
                        Watch(self.pods.resource, self._pod_keys)]

    def initial_keys(self) -> Iterable[Key]:
        return [(e.namespace, e.name) for e in self.store.list(self.deployments.resource)]

    # -- keys ---------------------------------------------------------------------------

    def _replicaset_keys(self, change: Change) -> Iterable[Key]:
        return controller_keys(change, "Deployment", lambda ns: (
            (d, _selector(d.obj())) for d in self.store.list(self.deployments.resource, ns)))

    def _pod_keys(self, change: Change) -> Iterable[Key]:
        """A Recreate rollout waits for the old pods to be gone: wake it when a pod is
        deleted or terminates (the pod's ReplicaSet's Deployment, if it recreates)."""
        if change.type != DELETED and change.entry.fields.get("status.phase") not in (
                "Succeeded", "Failed"):
            return ()
        ref = controller_of(change.entry.obj())
        if ref is None or ref.get("kind") != "ReplicaSet":
            return ()
        rs = self.store.get(self.replicasets.resource, change.entry.namespace, ref.get("name", ""))
        owner = controller_of(rs.obj()) if rs is not None else None
        if owner is None or owner.get("kind") != "Deployment":
            return ()
        d = self.store.get(self.deployments.resource, change.entry.namespace, owner.get("name", ""))
        if d is None or rollout.is_rolling(d.obj()):
            return ()
        return ((d.namespace, d.name),)

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        ns, name = key  # type: ignore[misc]
        entry = self.store.get(self.deployments.resource, ns, name)
        if entry is None:
            return None
        d = entry.obj()
        selector = _selector(d)
        if selector is None:
            log.warning("deployment has an invalid selector",
                        extra={"namespace": ns, "name": name})
            return None
        namespace_rss = [e.obj() for e in self.store.list(self.replicasets.resource, ns)]
        owned: list[Obj] = []
        if not selector.empty():
            claimed = claim(d, selector, namespace_rss)
            await write_claims(self.api, self.identity, self.replicasets, d, claimed)
            owned = claimed.owned
        pods_by_rs = None if rollout.is_rolling(d) else self._pods_by_rs(d, selector, owned)
        plan = rollout.plan(d, owned, {rollout.name_of(rs): rs for rs in namespace_rss},
                            pods_by_rs, now=self.clock())
        await self._execute(d, entry.rv, plan)
        return plan.requeue_after

    def _pods_by_rs(self, d: Obj, selector: LabelSelector, owned: list[Obj]) -> dict[str,
                                                                                     list[Obj]]:
        """getPodMapForDeployment: the deployment's pods by the uid of their ReplicaSet."""
        uids = {(rs.get("metadata") or {}).get("uid") for rs in owned}
        found: dict[str, list[Obj]] = {uid: [] for uid in uids if uid}
        for e in self.store.list(self.pods.resource, d["metadata"].get("namespace", "")):
            if not selector.matches(e.labels):
                continue
            pod = e.obj()
            ref = controller_of(pod)
            if ref is not None and ref.get("uid") in found:
                found[ref["uid"]].append(pod)
        return found

    async def _execute(self, d: Obj, rv: int, plan: rollout.Plan) -> None:
        """Write the plan's actions in order; a failure stops the rest (the next sync plans
        again). Each object is written with the resourceVersion last seen for it."""
        ns = d["metadata"].get("namespace", "")
        name = d["metadata"].get("name", "")
        versions: dict[str, str] = {}
        for action in plan.actions:
            if isinstance(action, rollout.RecordEvent):
                await self.events.record(d, action.type, action.reason, action.message)
            elif isinstance(action, rollout.CreateReplicaSet):
                try:
                    created, _ = await self.api.create(Target(self.replicasets.rt, ns),
                                                       action.rs, WriteOptions(),
                                                       self.identity)
                except StatusError as err:
                    if err.code != 409:  # AlreadyExists: planned again with it next time
                        await self._failed_create(d, action.rs, err)
                    raise
                versions[rollout.name_of(created)] = created["metadata"]["resourceVersion"]
            elif isinstance(action, rollout.UpdateReplicaSet):
                rs = action.rs
                rs_name = rollout.name_of(rs)
                if rs_name in versions:
                    rs["metadata"]["resourceVersion"] = versions[rs_name]
                updated, _ = await self.api.update(Target(self.replicasets.rt, ns, rs_name),
                                                   rs, WriteOptions(), self.identity)
                versions[rs_name] = updated["metadata"]["resourceVersion"]
            elif isinstance(action, rollout.DeleteReplicaSet):
                try:
                    await self.api.delete(Target(self.replicasets.rt, ns, action.name),
                                          {"preconditions": {"uid": action.uid},
                                           "propagationPolicy": "Background"},
                                          self.identity)
                except StatusError as err:
                    if err.code != 404:
                        raise
            elif isinstance(action, rollout.UpdateStatus):
                body = dict(d)
                body["metadata"] = {**d["metadata"], "resourceVersion": str(rv)}
                body["status"] = action.status
                await self.api.update(Target(self.deployments.rt, ns, name, "status"), body,
                                      WriteOptions(), self.identity)
            elif isinstance(action, rollout.SetRevision):
                patch = {"metadata": {"annotations": {rollout.REVISION: action.revision}}}
                await self.api.patch(Target(self.deployments.rt, ns, name),
                                     orjson.dumps(patch), MERGE_PATCH, WriteOptions(),
                                     self.identity)

    async def _failed_create(self, d: Obj, rs: Obj, err: StatusError) -> None:
        """A refused ReplicaSet: Progressing=False ReplicaSetCreateError, and an event."""
        msg = f'Failed to create new replica set "{rollout.name_of(rs)}": {err.message}'
        await self.events.record(d, "Warning", "ReplicaSetCreateError", msg)
        if not rollout.has_progress_deadline(d):
            return
        status = dict(d.get("status") or {})
        rollout.set_condition(status, rollout.new_condition(
            rollout.PROGRESSING, "False", "ReplicaSetCreateError", msg, self.clock()))
        current = self.store.get(self.deployments.resource, d["metadata"].get("namespace", ""),
                                 d["metadata"].get("name", ""))
        if current is None:
            return
        body = current.obj()
        body["status"] = status
        try:
            await self.api.update(Target(self.deployments.rt, current.namespace, current.name,
                                         "status"), body, WriteOptions(), self.identity)
        except StatusError as update_err:
            log.info("could not record a failed create", extra={"error": update_err.message})


def _selector(d: Obj) -> LabelSelector | None:
    try:
        return label_selector_from_struct((d.get("spec") or {}).get("selector"))
    except BadRequest:
        return None
