"""The REST verbs over the store: get, list, watch, create, update, patch, delete.

Each write is an atomic read-modify-write: it reads the latest state, computes the new
object with the pure pieces (strategy, patch, defaults, validation), and stages it in the
store without awaiting in between, so nothing interleaves; then it awaits durability.
Every check happens before staging, so a request that fails changes nothing.
"""

from __future__ import annotations

import base64
import copy
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from bramble.kube import selectors
from bramble.kube.errors import (
    BadRequest,
    FieldError,
    Forbidden,
    InternalError,
    Invalid,
    StatusError,
    UnsupportedMediaType,
    already_exists,
    conflict,
    invalid,
    not_found,
)

from ..store import Entry, KeyExists, Store
from . import allocation, auth, conversion, defaults, schema, strategy, validation
from .encoding import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, decode_body
from .patch import apply as ssa
from .patch import json_patch, merge_patch, strategic_merge_patch
from .resources import Registry, ResourceType

Obj = dict[str, Any]

# Built-in namespaces the cluster itself needs (node heartbeats live in kube-node-lease).
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-node-lease"})

SERVICES = "services"

CONFLICT_MESSAGE = ("the object has been modified; please apply your changes to the latest "
                    "version and try again")


@dataclass(frozen=True)
class Target:
    """What a request names: a type, maybe a namespace, name and subresource."""

    rt: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    @property
    def resource(self) -> str:
        return self.rt.qualified


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    force: bool = False


def rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def index_of(rt: ResourceType) -> Callable[[Obj], tuple[dict[str, str], dict[str, str]]]:
    """Labels and selectable fields of an object, as the store indexes them."""
    extra = rt.selectable_fields

    def index(obj: Obj) -> tuple[dict[str, str], dict[str, str]]:
        m = obj.get("metadata") or {}
        fields = {"metadata.name": m.get("name", ""),
                  "metadata.namespace": m.get("namespace", "")}
        for path in extra:
            value: Any = obj
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, bool):
                value = "true" if value else "false"
            fields[path] = "" if value is None else str(value)
        return dict(m.get("labels") or {}), fields

    return index


class Indexer:
    """The store's indexer: labels and selectable fields of any stored object."""

    def __init__(self, registry: Registry) -> None:
        self._indexers = {rt.qualified: index_of(rt) for rt in registry.all}

    def __call__(self, resource: str, obj: Obj) -> tuple[dict[str, str], dict[str, str]]:
        indexer = self._indexers.get(resource)
        if indexer is None:
            m = obj.get("metadata") or {}
            return dict(m.get("labels") or {}), {"metadata.name": m.get("name", "")}
        return indexer(obj)


class ObjectAPI:
    """The verbs of the API for every resource type, over one store."""

    def __init__(self, store: Store, registry: Registry,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 service_network: allocation.ServiceNetwork | None = None) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        # Cluster IPs and node ports in use, derived from the stored Services (the store is
        # open): kept exact by _allocate/_staged on every Service write below.
        self.services = allocation.Ledger(service_network or allocation.ServiceNetwork.parse())
        for entry in store.list(SERVICES):
            self.services.record(entry.namespace, entry.name, entry.obj())

    # -- reads ----------------------------------------------------------------------

    def get(self, t: Target) -> Entry:
        entry = self.store.get(t.resource, t.namespace, t.name)
        if entry is None:
            raise not_found(t.rt.plural, t.name, t.rt.group)
        return entry

    def filters(self, t: Target, label_selector: str | None, field_selector: str | None):
        """A predicate over (labels, fields) for the list and watch selectors, or None."""
        labels = selectors.parse_label_selector(label_selector) if label_selector else None
        fields = None
        if field_selector:
            allowed = ("metadata.name", "metadata.namespace", *t.rt.selectable_fields)
            fields = selectors.parse_field_selector(field_selector, allowed)
        if labels is None and fields is None:
            return None

        def predicate(obj_labels: dict[str, str], obj_fields: dict[str, str]) -> bool:
            return ((labels is None or labels.matches(obj_labels))
                    and (fields is None or fields.matches(obj_fields)))

        return predicate

    def list(self, t: Target, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int = 0,
             continue_token: str = "") -> tuple[list[Entry], int, str, int]:
        """(entries, list resourceVersion, continue token, remaining count)."""
        predicate = self.filters(t, label_selector, field_selector)
        entries = self.store.list(t.resource, t.namespace or None)
        rv = self.store.rv
        if continue_token:
            rv, after = _decode_continue(continue_token)
            entries = [e for e in entries if (e.namespace, e.name) > after]
        if predicate is not None:
            entries = [e for e in entries if predicate(e.labels, e.fields)]
        if limit and len(entries) > limit:
            last = entries[limit - 1]
            remaining = len(entries) - limit
            return entries[:limit], rv, _encode_continue(rv, (last.namespace, last.name)), \
                remaining
        return entries, rv, "", 0

    # -- create ---------------------------------------------------------------------

    async def create(self, t: Target, body: Any, opts: WriteOptions,
                     identity: auth.Identity) -> tuple[Obj, list[str]]:
        obj = self._expect_object(t.rt, body)
        warnings = self._check_fields(t.rt, obj, opts)
        conv = conversion.of(t.rt.key)
        if conv is not None:  # a version served by conversion: create the stored form
            created, _ = await self.create(self.stored_target(t), conv.to_storage(obj),
                                           replace(opts, field_validation="Ignore"), identity)
            return conv.from_storage(created), warnings
        self._ensure_namespace(t, strategy.meta(obj).get("name") or "")
        strategy.check_name_and_namespace(t.rt, obj, namespace=t.namespace, name=None)
        obj = self._new_object(t, obj, opts)
        auth.admit(identity, t.resource, None, obj)
        name = obj["metadata"]["name"]
        if opts.dry_run:
            if self.store.latest(t.resource, t.namespace, name) is not None:
                raise already_exists(t.rt.plural, name, t.rt.group)
            self._allocate(t, obj)
            return obj, warnings
        try:
            if self.store.latest(t.resource, t.namespace, name) is not None:
                raise KeyExists(name)
            allocated = self._allocate(t, obj)
            pending = self.store.create(t.resource, t.namespace, name, obj)
        except KeyExists:
            raise already_exists(t.rt.plural, name, t.rt.group) from None
        self._staged(t, name, obj, allocated)
        entry = await pending
        return entry.obj(), warnings

    def _new_object(self, t: Target, obj: Obj, opts: WriteOptions) -> Obj:
        """Default, stamp and validate a new object (raises Invalid; touches nothing)."""
        obj = copy.deepcopy(obj)
        obj["apiVersion"], obj["kind"] = t.rt.api_version, t.rt.kind
        m = strategy.meta(obj)
        if not m.get("name") and not m.get("generateName"):
            raise Invalid(t.rt.kind, "", [FieldError("FieldValueRequired", "metadata.name",
                                                     "name or generateName is required")],
                          t.rt.group)
        strategy.prepare_create(t.rt, obj, namespace=t.namespace, uid=str(uuid.uuid4()),
                                now=rfc3339(self.clock()),
                                random_suffix=_random_suffix())
        defaults.default(t.rt.key, obj)
        if opts.field_manager:
            obj = ssa.record_update(None, obj, opts.field_manager, kind_key=t.rt.key)
        self._validate(t.rt, obj, None)
        return obj

    # -- update ---------------------------------------------------------------------

    async def update(self, t: Target, body: Any, opts: WriteOptions,
                     identity: auth.Identity) -> tuple[Obj, list[str]]:
        obj = self._expect_object(t.rt, body)
        warnings = self._check_fields(t.rt, obj, opts)
        strategy.check_name_and_namespace(t.rt, obj, namespace=t.namespace, name=t.name)
        strategy.meta(obj).setdefault("name", t.name)
        expect = strategy.resource_version_of(obj)
        current = self.store.latest(t.resource, t.namespace, t.name)
        if current is None:
            raise not_found(t.rt.plural, t.name, t.rt.group)
        if expect is not None and expect != current.rv:
            raise conflict(t.rt.plural, t.name, CONFLICT_MESSAGE, t.rt.group)
        return await self._replace_served(t, current, obj, opts, identity), warnings

    async def _replace(self, t: Target, current: Entry, new: Obj, opts: WriteOptions,
                       identity: auth.Identity) -> Obj:
        """Store `new` as the next version of `current` (already rv-checked). No awaits
        happen before staging."""
        old = current.obj()
        new = copy.deepcopy(new)
        new["apiVersion"], new["kind"] = t.rt.api_version, t.rt.kind
        if t.subresource == "status":
            new = strategy.prepare_status_update(new, old)
        else:
            strategy.prepare_update(t.rt, new, old)
            defaults.default(t.rt.key, new)
        if opts.field_manager and opts.field_manager != "-":
            new = ssa.record_update(old, new, opts.field_manager, kind_key=t.rt.key,
                                    subresource=t.subresource)
        auth.admit(identity, t.resource, old, new)
        allocated = None
        if t.subresource == "status":
            errors = validation.validate_status(t.rt.key, new, old)
            if errors:
                raise Invalid(t.rt.kind, t.name, errors, t.rt.group)
        else:
            self._validate(t.rt, new, old)
            allocated = self._allocate(t, new)
        strategy.meta(new)["resourceVersion"] = str(current.rv)
        if strategy.same_content(new, old):
            # Nothing changed: no write, no new resourceVersion, no watch event.
            return old
        if opts.dry_run:
            return new
        if strategy.finished_deleting(new):
            pending = self.store.delete(t.resource, t.namespace, t.name, final=new)
            self._staged(t, t.name, None)
        else:
            pending = self.store.update(t.resource, t.namespace, t.name, new)
            if t.subresource != "status":
                self._staged(t, t.name, new, allocated)
        return (await pending).obj()

    async def _replace_served(self, t: Target, current: Entry, new: Obj, opts: WriteOptions,
                              identity: auth.Identity) -> Obj:
        """_replace with `new` and the result in the version `t` names."""
        conv = conversion.of(t.rt.key)
        if conv is None:
            return await self._replace(t, current, new, opts, identity)
        stored = await self._replace(self.stored_target(t), current, conv.to_storage(new),
                                     opts, identity)
        return conv.from_storage(stored)

    # -- patch ----------------------------------------------------------------------

    async def patch(self, t: Target, body: bytes, content_type: str, opts: WriteOptions,
                    identity: auth.Identity) -> tuple[int, Obj]:
        media = (content_type or "").split(";")[0].strip().lower()
        if media not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
            raise UnsupportedMediaType(
                f'the body of the request was in an unknown format - accepted media types '
                f'include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, {STRATEGIC_PATCH}')
        patch = decode_body(body, media)
        current = self.store.latest(t.resource, t.namespace, t.name)
        if media == APPLY_PATCH:
            if not opts.field_manager:
                raise BadRequest("PATCH with application/apply-patch+yaml requires the "
                                 "fieldManager parameter")
            applied = self._expect_object(t.rt, patch)
            self._check_fields(t.rt, applied, opts)
            if current is None:
                if t.subresource:
                    raise not_found(t.rt.plural, t.name, t.rt.group)
                strategy.check_name_and_namespace(t.rt, applied, namespace=t.namespace,
                                                  name=t.name)
                strategy.meta(applied).setdefault("name", t.name)
                obj = ssa.server_side_apply(None, applied, opts.field_manager, opts.force,
                                            t.rt.key)
                created, _ = await self.create(t, obj, WriteOptions(
                    dry_run=opts.dry_run, field_validation="Ignore"), identity)
                return 201, created
            live = self.served(t, current.obj())
            new = ssa.server_side_apply(live, applied, opts.field_manager, opts.force,
                                        t.rt.key)
            return 200, await self._replace_served(t, current, new, WriteOptions(
                dry_run=opts.dry_run), identity)
        if current is None:
            raise not_found(t.rt.plural, t.name, t.rt.group)
        live = self.served(t, current.obj())
        if media == MERGE_PATCH:
            if not isinstance(patch, dict):
                raise BadRequest("a merge patch must be a JSON object")
            new = merge_patch(live, patch)
        elif media == JSON_PATCH:
            if not isinstance(patch, list):
                raise BadRequest("a JSON patch must be a JSON array of operations")
            new = json_patch(live, patch)
        else:
            if not isinstance(patch, dict):
                raise BadRequest("a strategic merge patch must be a JSON object")
            new = strategic_merge_patch(live, patch, t.rt.key)
        if not isinstance(new, dict):
            raise BadRequest("the patch does not produce an object")
        self._check_fields(t.rt, new, opts)
        expect = strategy.resource_version_of(new)
        if expect is not None and expect != current.rv:
            raise conflict(t.rt.plural, t.name, CONFLICT_MESSAGE, t.rt.group)
        strategy.check_name_and_namespace(t.rt, new, namespace=t.namespace, name=t.name)
        return 200, await self._replace_served(t, current, new, opts, identity)

    # -- delete ---------------------------------------------------------------------

    async def delete(self, t: Target, options: Obj, identity: auth.Identity,
                     dry_run: bool = False) -> tuple[int, Obj]:
        """200 with the object when it is gone, 202 when it is only marked for deletion."""
        conv = conversion.of(t.rt.key)
        if conv is not None:  # a version served by conversion: delete, show in that version
            code, obj = await self.delete(self.stored_target(t), options, identity, dry_run)
            return code, conv.from_storage(obj)
        # The options are checked before the object is looked up, as the apiserver does.
        propagation = delete_propagation(options)
        grace = options.get("gracePeriodSeconds")
        if grace is not None and (not isinstance(grace, int) or grace < 0):
            raise BadRequest("gracePeriodSeconds must be a non-negative integer")
        current = self.store.latest(t.resource, t.namespace, t.name)
        if current is None:
            raise not_found(t.rt.plural, t.name, t.rt.group)
        obj = current.obj()
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"].get("uid"):
            raise conflict(t.rt.plural, t.name,
                           f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                           f"object meta: {obj['metadata'].get('uid')}", t.rt.group)
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(current.rv):
            raise conflict(t.rt.plural, t.name,
                           f"Precondition failed: ResourceVersion in precondition: "
                           f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                           f"{current.rv}", t.rt.group)
        auth.admit(identity, t.resource, obj, None)
        if t.rt.kind == "Namespace" and t.name in PROTECTED_NAMESPACES:
            raise _forbidden_namespace(t.name)
        plan = strategy.plan_delete(t.rt, obj, now=rfc3339(self.clock()),
                                    propagation=propagation, grace_seconds=grace)
        if dry_run:
            return (200 if plan.remove else 202), plan.obj
        if plan.remove:
            pending = self.store.delete(t.resource, t.namespace, t.name)
            self._staged(t, t.name, None)
            return 200, (await pending).obj()
        if strategy.same_content(plan.obj, obj):
            return 202, obj
        entry = await self.store.update(t.resource, t.namespace, t.name, plan.obj)
        return 202, entry.obj()

    async def delete_collection(self, t: Target, options: Obj, identity: auth.Identity, *,
                                label_selector: str | None, field_selector: str | None,
                                dry_run: bool = False) -> list[Obj]:
        entries, _, _, _ = self.list(t, label_selector=label_selector,
                                     field_selector=field_selector)
        deleted = []
        for entry in entries:
            one = Target(t.rt, entry.namespace, entry.name)
            try:
                _, obj = await self.delete(one, options, identity, dry_run)
            except StatusError as err:
                if err.code == 404:
                    continue
                raise
            deleted.append(obj)
        return deleted

    async def finalize_namespace(self, name: str) -> None:
        """Drop the namespace finalizer of an emptied, terminating namespace (the
        controller's /finalize); the namespace goes once no other finalizer holds it."""
        current = self.store.latest("namespaces", "", name)
        if current is None:
            return
        ns = current.obj()
        finalizers = [f for f in ns.get("spec", {}).get("finalizers") or []
                      if f != strategy.NAMESPACE_FINALIZER]
        ns.setdefault("spec", {})["finalizers"] = finalizers
        if strategy.finished_deleting(ns):
            await self.store.delete("namespaces", "", name, final=ns)
        else:
            await self.store.update("namespaces", "", name, ns, current.rv)

    # -- versions served by conversion (conversion.py) -------------------------------

    def stored_target(self, t: Target) -> Target:
        """`t` naming the stored version of its type (`t` itself for most types)."""
        stored = self.registry.storage_of(t.rt)
        return t if stored is t.rt else Target(stored, t.namespace, t.name, t.subresource)

    def served(self, t: Target, obj: Obj) -> Obj:
        """A stored object in the version `t` names."""
        conv = conversion.of(t.rt.key)
        return obj if conv is None else conv.from_storage(obj)

    def served_raw(self, t: Target, raw: bytes) -> bytes:
        """Stored bytes in the version `t` names: the same bytes, unless it is served by
        conversion (only then is the object parsed)."""
        conv = conversion.of(t.rt.key)
        return raw if conv is None else orjson.dumps(conv.from_storage(orjson.loads(raw)))

    # -- subresources: scale and binding --------------------------------------------

    def scale_of(self, t: Target, entry: Entry) -> Obj:
        obj = entry.obj()
        m = obj["metadata"]
        spec_selector = obj.get("spec", {}).get("selector") or {}
        # ReplicationController: a plain map of equality terms, not a LabelSelector.
        selector_text = (str(selectors.label_selector_from_set(spec_selector))
                         if t.rt.key == "v1/ReplicationController"
                         else selectors.selector_to_string(spec_selector))
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                             "creationTimestamp") if k in m},
            "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
            "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                       "selector": selector_text},
        }

    async def update_scale(self, t: Target, scale: Any, identity: auth.Identity,
                           opts: WriteOptions) -> Obj:
        if not isinstance(scale, dict):
            raise BadRequest("the body must be an autoscaling/v1 Scale")
        current = self.store.latest(t.resource, t.namespace, t.name)
        if current is None:
            raise not_found(t.rt.plural, t.name, t.rt.group)
        expect = strategy.resource_version_of(scale)
        if expect is not None and expect != current.rv:
            raise conflict(t.rt.plural, t.name, CONFLICT_MESSAGE, t.rt.group)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise Invalid("Scale", t.name, [FieldError(
                "FieldValueInvalid", "spec.replicas",
                "must be greater than or equal to 0", replicas)], "autoscaling")
        obj = current.obj()
        obj.setdefault("spec", {})["replicas"] = replicas
        await self._replace(Target(t.rt, t.namespace, t.name), current, obj, opts, identity)
        return self.scale_of(t, self.store.latest(t.resource, t.namespace, t.name) or current)

    async def patch_scale(self, t: Target, body: bytes, content_type: str,
                          identity: auth.Identity, opts: WriteOptions) -> Obj:
        entry = self.store.latest(t.resource, t.namespace, t.name)
        if entry is None:
            raise not_found(t.rt.plural, t.name, t.rt.group)
        scale = self.scale_of(t, entry)
        media = (content_type or "").split(";")[0].strip().lower()
        patch = decode_body(body, media)
        if media == JSON_PATCH:
            new = json_patch(scale, patch)
        elif media in (MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH) and isinstance(patch, dict):
            new = merge_patch(scale, patch)
        else:
            raise BadRequest("unsupported patch for the scale subresource")
        return await self.update_scale(t, new, identity, opts)

    async def bind(self, t: Target, body: Any, identity: auth.Identity) -> Obj:
        if not isinstance(body, dict) or not (body.get("target") or {}).get("name"):
            raise Invalid("Binding", t.name, [FieldError("FieldValueRequired", "target.name",
                                                         "")], "")
        node = body["target"]["name"]
        current = self.store.latest(t.resource, t.namespace, t.name)
        if current is None:
            raise not_found(t.rt.plural, t.name, t.rt.group)
        pod = current.obj()
        if pod.get("metadata", {}).get("deletionTimestamp"):
            raise conflict("pods", t.name, "pod is being deleted, cannot be assigned to a host")
        bound = pod.get("spec", {}).get("nodeName")
        if bound:
            raise conflict("pods", t.name,
                           f"pod {t.name} is already assigned to node \"{bound}\"")
        pod["spec"]["nodeName"] = node
        conditions = [c for c in pod.setdefault("status", {}).get("conditions", [])
                      if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True",
                           "lastProbeTime": None,
                           "lastTransitionTime": rfc3339(self.clock())})
        pod["status"]["conditions"] = conditions
        await self.store.update(t.resource, t.namespace, t.name, pod, current.rv)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "code": 201}

    # -- helpers --------------------------------------------------------------------

    def _expect_object(self, rt: ResourceType, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise BadRequest(f"the request body must be a {rt.kind} object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if kind and kind != rt.kind:
            raise BadRequest(f"the kind in the data ({kind}) does not match the expected kind "
                             f"({rt.kind}) for {rt.qualified}")
        if api_version and api_version != rt.api_version:
            raise BadRequest(f"the API version in the data ({api_version}) does not match "
                             f"the expected API version ({rt.api_version})")
        if "metadata" in body and not isinstance(body["metadata"], dict):
            raise BadRequest("metadata must be an object")
        return body

    def _check_fields(self, rt: ResourceType, obj: Obj, opts: WriteOptions) -> list[str]:
        """Refuse unknown fields (Strict) or drop them, returning warnings (Warn) or not
        (Ignore). Modifies `obj`: what the schema does not declare is never stored."""
        if opts.field_validation == "Strict":
            unknown = schema.unknown_fields(rt.key, obj)
            if unknown:
                listed = ", ".join(e.message() for e in unknown)
                raise BadRequest(f"strict decoding error: {listed}",
                                 causes=[e.cause() for e in unknown], kind=rt.kind)
            return []
        dropped = schema.prune_unknown_fields(rt.key, obj)
        return [e.message() for e in dropped] if opts.field_validation == "Warn" else []

    def _validate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        errors = validation.validate(rt.key, obj, old)
        if errors:
            raise Invalid(rt.kind, obj.get("metadata", {}).get("name", ""), errors, rt.group)

    def _allocate(self, t: Target, obj: Obj) -> allocation.Plan | None:
        """Fill in a validated Service's cluster IP and node ports, or refuse the values it
        names (422) or a full range (500). Called right before staging, without awaiting."""
        if t.resource != SERVICES:
            return None
        name = obj["metadata"]["name"]
        plan = self.services.plan(t.namespace, name, obj)
        if plan.errors:
            raise Invalid(t.rt.kind, name, plan.errors, t.rt.group)
        if plan.exhausted:
            raise InternalError(f"Internal error occurred: {plan.exhausted}")
        plan.apply(obj)
        return plan

    def _staged(self, t: Target, name: str, obj: Obj | None,
                allocated: allocation.Plan | None = None) -> None:
        """Record what a just-staged Service write holds (None: its removal)."""
        if t.resource != SERVICES:
            return
        self.services.record(t.namespace, name, obj)
        if allocated is not None:
            self.services.advance(allocated)

    def _ensure_namespace(self, t: Target, name: str) -> None:
        if not t.rt.namespaced:
            return
        ns = self.store.latest("namespaces", "", t.namespace)
        if ns is None:
            raise not_found("namespaces", t.namespace)
        if ns.obj().get("metadata", {}).get("deletionTimestamp"):
            what = f'{t.rt.plural} "{name}"' if name else t.rt.plural
            raise Forbidden(f"{what} is forbidden: unable to create new content in namespace "
                            f"{t.namespace} because it is being terminated",
                            kind=t.rt.plural, name=name)


def delete_propagation(options: Obj) -> str | None:
    """The propagation policy a DeleteOptions asks for, None when it leaves it to the type's
    default. The deprecated orphanDependents maps onto it and may not be combined with it
    (ValidateDeleteOptions)."""
    propagation = options.get("propagationPolicy")
    orphan = options.get("orphanDependents")
    if orphan is not None and propagation is not None:
        raise Invalid("DeleteOptions", "", [invalid(
            "propagationPolicy", propagation,
            "orphanDependents and deletionPropagation cannot be both set")], "meta.k8s.io")
    if orphan is not None:
        return "Orphan" if orphan is True else "Background"
    if propagation not in (None, "Orphan", "Foreground", "Background"):
        raise BadRequest(f'propagationPolicy: Unsupported value: "{propagation}": '
                         'supported values: "Foreground", "Background", "Orphan"')
    return propagation


def _forbidden_namespace(name: str) -> StatusError:
    return Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                     kind="namespaces", name=name)


def _random_suffix() -> str:
    # Kubernetes' generateName alphabet: no vowels, no confusable digits.
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(5))


def _encode_continue(rv: int, after: tuple[str, str]) -> str:
    raw = orjson.dumps({"v": "bramble/1", "rv": rv, "ns": after[0], "name": after[1]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        ns, name = data["ns"], data["name"]
        if not isinstance(ns, str) or not isinstance(name, str):
            raise TypeError
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError):
        raise BadRequest("continue key is not valid: decode the token from a previous list "
                         "response, unchanged") from None

