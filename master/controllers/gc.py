"""The garbage collector: deletes objects whose owners are gone, and carries out the
foreground and orphan deletions that the API marks with finalizers.

As Kubernetes' garbage collector (pkg/controller/garbagecollector) does:
- background: an object all of whose owners (ownerReferences, by uid) are verified absent
  is deleted. An owner is absent when no object of its kind and name exists - in the
  dependent's namespace for namespaced kinds, cluster-wide otherwise - or one exists with
  another uid. A namespaced owner must live in its dependent's namespace: a reference
  whose uid is found only in another namespace is dangling (Warning event
  OwnerRefInvalidNamespace). A reference to a kind the API does not serve, or from a
  cluster-scoped dependent to a namespaced kind, cannot be resolved: the dependent is kept.
- foreground: an owner marked for deletion with the "foregroundDeletion" finalizer has its
  dependents deleted (in foreground themselves when they have dependents) and keeps the
  finalizer while a dependent with blockOwnerDeletion still exists; then the finalizer is
  removed and the owner goes.
- orphan: an owner marked with the "orphan" finalizer has its reference removed from every
  dependent, then the finalizer is removed.

Invariants: the store is the graph. An in-memory index (owner uid -> dependents) follows the
watches of every resource type and is rebuilt from the store whenever a watch restarts; it
only says where to look. Every decision reads the store's latest state (staged writes
included), so an owner is never "absent" because it was not seen yet, and every write
carries the uid and resourceVersion it was decided on (a 409 makes the key look again).
Decisions (`classify`, `plan_dependent`, `plan_owner`) are pure; `GarbageCollector` reads
and writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bramble.kube.errors import NotFound

from ..api.rest import ObjectAPI, Target, WriteOptions
from ..api.strategy import FOREGROUND_FINALIZER, ORPHAN_FINALIZER
from ..store import Change
from .base import Controller, EventRecorder, Watch

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ObjKey = tuple[str, str, str]  # (qualified resource, namespace, name)

# How an owner reference resolves.
SOLID = "solid"  # the owner exists and is not waiting for its dependents
DANGLING = "dangling"  # verified absent (no such object, or another uid)
WAITING = "waiting"  # the owner is being deleted in foreground
UNRESOLVABLE = "unresolvable"  # unknown kind, or a namespaced owner of a cluster-scoped object

KEEP, DROP_REFS, DELETE = "keep", "drop-refs", "delete"

# Cheap pre-checks on the stored JSON: most changes (a pod's status, a lease renewal)
# concern neither owners nor deletion and are never decoded.
_REFS = b'"ownerReferences"'
_MARKED = b'"deletionTimestamp"'


# --- pure decisions ----------------------------------------------------------------------

def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def owner_references(obj: Obj) -> list[Obj]:
    refs = _meta(obj).get("ownerReferences") or []
    return [r for r in refs if isinstance(r, dict) and r.get("uid")]


def deleting_dependents(obj: Obj) -> bool:
    """Marked for deletion and waiting for its dependents (foreground)."""
    m = _meta(obj)
    return bool(m.get("deletionTimestamp")) and FOREGROUND_FINALIZER in (
        m.get("finalizers") or [])


def classify(ref: Obj, owner: Obj | None, *, resolvable: bool = True) -> str:
    """What one owner reference is, given the object found under its kind and name."""
    if not resolvable:
        return UNRESOLVABLE
    if owner is None or _meta(owner).get("uid") != ref.get("uid"):
        return DANGLING
    return WAITING if deleting_dependents(owner) else SOLID


@dataclass(frozen=True)
class DependentPlan:
    """What to do with an object that has owners (attemptToDeleteItem)."""

    action: str  # KEEP, DROP_REFS or DELETE
    drop: tuple[str, ...] = ()  # DROP_REFS: uids of the references to remove
    propagation: str = ""  # DELETE: the policy of the delete
    unblock: bool = False  # DELETE: first clear blockOwnerDeletion on its own references


def plan_dependent(obj: Obj, states: list[tuple[Obj, str]], *, has_dependents: bool = False,
                   dependent_waits: bool = False) -> DependentPlan:
    """Keep, un-own or delete `obj` given how each of its owner references resolved.

    - being deleted already: nothing (a one-way trip; its own finalizers are handled as
      an owner);
    - an unresolvable reference: keep (as Kubernetes does, rather than guess);
    - a solid owner: keep, removing references to dangling owners and to owners waiting
      in foreground (they would wait forever otherwise);
    - an owner waiting in foreground while `obj` has dependents of its own: delete in
      foreground too, so its owner waits for the whole subtree (`dependent_waits`: one of
      them is itself waiting, a possible cycle - unblock our references first);
    - otherwise garbage: delete, honouring a GC finalizer it already carries.
    """
    m = _meta(obj)
    if m.get("deletionTimestamp") or not states:
        return DependentPlan(KEEP)
    if any(state == UNRESOLVABLE for _, state in states):
        return DependentPlan(KEEP)
    solid = [ref for ref, state in states if state == SOLID]
    gone = tuple(ref["uid"] for ref, state in states if state in (DANGLING, WAITING))
    waiting = [ref for ref, state in states if state == WAITING]
    if solid:
        return DependentPlan(DROP_REFS, drop=gone) if gone else DependentPlan(KEEP)
    if waiting and has_dependents:
        return DependentPlan(DELETE, propagation="Foreground", unblock=dependent_waits)
    finalizers = m.get("finalizers") or []
    if ORPHAN_FINALIZER in finalizers:
        propagation = "Orphan"
    elif FOREGROUND_FINALIZER in finalizers:
        propagation = "Foreground"
    else:
        propagation = "Background"
    return DependentPlan(DELETE, propagation=propagation)


@dataclass(frozen=True)
class OwnerPlan:
    """What to do for an owner marked for deletion with a GC finalizer."""

    orphan: tuple[Any, ...] = ()  # dependents to remove the reference to the owner from
    look_at: tuple[Any, ...] = ()  # dependents to consider for deletion
    remove_finalizer: str = ""  # once the above is done


def plan_owner(owner: Obj, dependents: Iterable[tuple[Any, Obj]]) -> OwnerPlan:
    """`dependents` are (key, object) of objects referencing the owner's uid."""
    m = _meta(owner)
    finalizers = m.get("finalizers") or []
    uid = m.get("uid")
    if not m.get("deletionTimestamp"):
        return OwnerPlan()
    refs = [(key, dep, ref) for key, dep in dependents
            for ref in owner_references(dep) if ref.get("uid") == uid]
    if ORPHAN_FINALIZER in finalizers:
        return OwnerPlan(orphan=tuple(key for key, _, _ in refs),
                         remove_finalizer=ORPHAN_FINALIZER)
    if FOREGROUND_FINALIZER in finalizers:
        if not any(ref.get("blockOwnerDeletion") for _, _, ref in refs):
            return OwnerPlan(remove_finalizer=FOREGROUND_FINALIZER)
        return OwnerPlan(look_at=tuple(key for key, dep, _ in refs
                                       if not _meta(dep).get("deletionTimestamp")))
    return OwnerPlan()


def without_references(obj: Obj, uids: Iterable[str]) -> Obj:
    """`obj` with its references to `uids` removed (the list itself when none remain)."""
    drop = set(uids)
    m = _meta(obj)
    kept = [r for r in m.get("ownerReferences") or [] if r.get("uid") not in drop]
    if kept:
        m["ownerReferences"] = kept
    else:
        m.pop("ownerReferences", None)
    return obj


def invalid_reference(ref: Obj, namespace: str) -> str:
    """The OwnerRefInvalidNamespace message, worded as the graph builder words it."""
    return (f"ownerRef [{ref.get('apiVersion', '')}/{ref.get('kind', '')}, namespace: "
            f"{namespace}, name: {ref.get('name', '')}, uid: {ref.get('uid', '')}] does not "
            f'exist in namespace "{namespace}"')


# --- the loop ----------------------------------------------------------------------------

class GarbageCollector(Controller):
    """One key per object, (resource, namespace, name); a reconcile looks at the object as
    a dependent (its owners) or, when it is marked, as an owner (its dependents)."""

    name = "garbage-collector"
    workers = 4  # dependents are deleted concurrently, sharing the store's fsyncs

    def __init__(self, api: ObjectAPI) -> None:
        super().__init__(api)
        self._types = {rt.qualified: rt for rt in api.registry.all}
        self._owned: dict[ObjKey, frozenset[str]] = {}  # object -> owner uids
        self._dependents: dict[str, set[ObjKey]] = {}  # owner uid -> objects
        self.events = EventRecorder(api, "garbage-collector-controller")
        self.watches = [Watch(rt.qualified, self._keys) for rt in api.registry.all]

    # -- the index ------------------------------------------------------------------

    def _index(self, key: ObjKey, uids: frozenset[str]) -> None:
        old = self._owned.get(key, frozenset())
        if old == uids:
            return
        for uid in old - uids:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(key)
                if not deps:
                    del self._dependents[uid]
        for uid in uids - old:
            self._dependents.setdefault(uid, set()).add(key)
        if uids:
            self._owned[key] = uids
        else:
            self._owned.pop(key, None)

    def dependents_of(self, uid: str) -> set[ObjKey]:
        return set(self._dependents.get(uid, ()))

    def initial_keys(self) -> Iterable[ObjKey]:
        """Rebuild the index from the store; every object with owners or a GC finalizer
        gets a look (owners may have gone while the master was down)."""
        self._owned.clear()
        self._dependents.clear()
        keys = []
        for resource in self._types:
            for entry in self.store.list(resource):
                if _REFS not in entry.raw and _MARKED not in entry.raw:
                    continue
                obj = entry.obj()
                key = (resource, entry.namespace, entry.name)
                refs = owner_references(obj)
                self._index(key, frozenset(r["uid"] for r in refs))
                if refs or _gc_marked(obj):
                    keys.append(key)
        return keys

    def _owner_key(self, ref: Obj, namespace: str) -> ObjKey | None:
        rt = self.api.registry.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if rt is None or not ref.get("name"):
            return None
        return (rt.qualified, namespace if rt.namespaced else "", ref["name"])

    def _keys(self, change: Change) -> set[ObjKey]:
        """Keep the index in step and say which objects need a look."""
        e, p = change.entry, change.prev
        key = (e.resource, e.namespace, e.name)
        keys: set[ObjKey] = set()
        old_refs = owner_references(p.obj()) if p is not None and _REFS in p.raw else []
        if change.type == "DELETED":
            obj = e.obj()
            uid = _meta(obj).get("uid", "")
            # The owner is gone: its dependents may now be garbage.
            keys |= self.dependents_of(uid)
            # A dependent is gone: owners waiting in foreground may now finish.
            for ref in owner_references(obj) + old_refs:
                owner = self._owner_key(ref, e.namespace)
                if owner is not None:
                    keys.add(owner)
            self._index(key, frozenset())
            return keys
        if _REFS not in e.raw and not old_refs and _MARKED not in e.raw:
            return keys
        obj = e.obj()
        refs = owner_references(obj)
        self._index(key, frozenset(r["uid"] for r in refs))
        if refs != old_refs or change.type == "ADDED":
            if refs:
                keys.add(key)  # verify its owners
            # Owners it stopped referring to (or stopped blocking) may finish waiting.
            blocking = {r["uid"] for r in refs if r.get("blockOwnerDeletion")}
            for ref in old_refs:
                if ref.get("blockOwnerDeletion") and ref["uid"] not in blocking:
                    owner = self._owner_key(ref, e.namespace)
                    if owner is not None:
                        keys.add(owner)
        if _gc_marked(obj):
            keys.add(key)
            if FOREGROUND_FINALIZER in (_meta(obj).get("finalizers") or []):
                keys |= self.dependents_of(_meta(obj).get("uid", ""))
        return keys

    # -- reconcile ------------------------------------------------------------------

    def _target(self, key: ObjKey) -> Target:
        resource, namespace, name = key
        return Target(self._types[resource], namespace, name)

    def _latest(self, key: ObjKey) -> Obj | None:
        entry = self.store.latest(*key)
        return entry.obj() if entry is not None else None

    def _existing_dependents(self, owner: ObjKey, uid: str) -> list[tuple[ObjKey, Obj]]:
        """The objects that really refer to `uid` now. A namespaced owner's dependents are
        in its namespace: references from elsewhere are invalid and do not count."""
        found = []
        _, namespace, _ = owner
        for key in self.dependents_of(uid):
            if namespace and key[1] != namespace:
                continue
            dep = self._latest(key)
            if dep is not None and any(r.get("uid") == uid for r in owner_references(dep)):
                found.append((key, dep))
        return found

    async def reconcile(self, key: ObjKey) -> float | None:
        obj = self._latest(key)
        if obj is None:
            return None
        if _meta(obj).get("deletionTimestamp"):
            if _gc_marked(obj):
                await self._finish_owner(key, obj)
            return None
        refs = owner_references(obj)
        if not refs:
            return None
        states: list[tuple[Obj, str]] = []
        invalid: list[str] = []
        for ref in refs:
            state, note = self._resolve(ref, key)
            states.append((ref, state))
            if note:
                invalid.append(note)
        deps = self._existing_dependents(key, _meta(obj).get("uid", ""))
        plan = plan_dependent(obj, states, has_dependents=bool(deps),
                              dependent_waits=any(deleting_dependents(d) for _, d in deps))
        await self._carry_out(key, obj, plan)
        for message in invalid:
            await self.events.record(obj, "Warning", "OwnerRefInvalidNamespace", message)
        return None

    def _resolve(self, ref: Obj, key: ObjKey) -> tuple[str, str]:
        """The state of one reference, and an OwnerRefInvalidNamespace message if any."""
        _, namespace, _ = key
        rt = self.api.registry.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if rt is None:
            return UNRESOLVABLE, ""
        if rt.namespaced and not namespace:
            return UNRESOLVABLE, invalid_reference(ref, namespace)
        owner = self._latest((rt.qualified, namespace if rt.namespaced else "",
                              ref.get("name", "")))
        state = classify(ref, owner)
        note = ""
        if state == DANGLING and rt.namespaced and self._uid_elsewhere(rt.qualified, ref,
                                                                       namespace):
            note = invalid_reference(ref, namespace)
        return state, note

    def _uid_elsewhere(self, resource: str, ref: Obj, namespace: str) -> bool:
        for entry in self.store.list(resource):
            if entry.name == ref.get("name") and entry.namespace != namespace and \
                    _meta(entry.obj()).get("uid") == ref.get("uid"):
                return True
        return False

    async def _carry_out(self, key: ObjKey, obj: Obj, plan: DependentPlan) -> None:
        t = self._target(key)
        m = _meta(obj)
        if plan.action == DROP_REFS:
            log.info("removing references to absent owners",
                     extra={"object": _name(key), "owners": list(plan.drop)})
            await self._update(t, without_references(obj, plan.drop))
        elif plan.action == DELETE:
            if plan.unblock:
                for ref in m.get("ownerReferences") or []:
                    if ref.get("blockOwnerDeletion"):
                        ref["blockOwnerDeletion"] = False
                obj = await self._update(t, obj) or obj
            log.info("deleting an object whose owners are gone",
                     extra={"object": _name(key), "propagation": plan.propagation})
            try:
                await self.api.delete(t, {
                    "propagationPolicy": plan.propagation,
                    "preconditions": {"uid": m.get("uid"),
                                      "resourceVersion": _meta(obj).get("resourceVersion")}},
                    self.identity)
            except NotFound:
                pass

    async def _update(self, t: Target, obj: Obj) -> Obj | None:
        """Write `obj` back (its resourceVersion is the precondition); None if it is gone."""
        try:
            new, _ = await self.api.update(t, obj, WriteOptions(), self.identity)
            return new
        except NotFound:
            return None

    async def _finish_owner(self, key: ObjKey, owner: Obj) -> None:
        uid = _meta(owner).get("uid", "")
        plan = plan_owner(owner, self._existing_dependents(key, uid))
        if plan.orphan:
            log.info("orphaning dependents", extra={"owner": _name(key),
                                                    "dependents": len(plan.orphan)})
            await asyncio.gather(*(self._drop_reference(dep, uid) for dep in plan.orphan))
        for dep in plan.look_at:
            self.queue.add(dep)
        if plan.remove_finalizer:
            await self._remove_finalizer(key, plan.remove_finalizer)

    async def _drop_reference(self, key: ObjKey, uid: str) -> None:
        dep = self._latest(key)
        if dep is not None and any(r.get("uid") == uid for r in owner_references(dep)):
            await self._update(self._target(key), without_references(dep, [uid]))

    async def _remove_finalizer(self, key: ObjKey, finalizer: str) -> None:
        obj = self._latest(key)
        if obj is None:
            return
        m = _meta(obj)
        finalizers = m.get("finalizers") or []
        if finalizer not in finalizers:
            return
        m["finalizers"] = [f for f in finalizers if f != finalizer]
        log.info("removing the finalizer", extra={"object": _name(key),
                                                 "finalizer": finalizer})
        await self._update(self._target(key), obj)


def _gc_marked(obj: Obj) -> bool:
    m = _meta(obj)
    finalizers = m.get("finalizers") or []
    return bool(m.get("deletionTimestamp")) and (
        ORPHAN_FINALIZER in finalizers or FOREGROUND_FINALIZER in finalizers)


def _name(key: ObjKey) -> str:
    resource, namespace, name = key
    return f"{resource}/{namespace}/{name}" if namespace else f"{resource}/{name}"
