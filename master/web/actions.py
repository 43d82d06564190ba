"""The status page's everyday actions, through the same paths kubectl and bramble use.

Every write goes through ObjectAPI (or joinapi's Membership for approvals) with the
logged-in admin's identity, so validation, admission, field ownership and Events are the
real ones. A body the action cannot use is refused with a Kubernetes Status naming every
bad field, before anything changes.

- approve `{node, fingerprint?}`: approve a pending join request;
- cordon / uncordon `{node}`: spec.unschedulable, as `kubectl cordon`;
- drain `{node}`: cordon, then delete every pod on the node except DaemonSet and mirror
  pods and pods already terminating (`kubectl drain --ignore-daemonsets
  --delete-emptydir-data --force`; bramble has no eviction subresource, and no
  PodDisruptionBudgets to honour); it returns once the deletions are accepted, not when
  the pods are gone;
- scale `{namespace, kind, name, replicas}`: the scale subresource (Deployment, ReplicaSet,
  ReplicationController);
- restart `{namespace, name}`: `kubectl rollout restart deployment` - the
  kubectl.kubernetes.io/restartedAt annotation on the pod template;
- delete-pod `{namespace, name}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bramble.kube.errors import (
    BadRequest,
    FieldError,
    Invalid,
    NotFound,
    StatusError,
    invalid,
    not_supported,
    required,
)
from bramble.kube.names import is_dns1123_label, is_dns1123_subdomain

from ..api import auth
from ..api.encoding import MERGE_PATCH
from ..api.rest import ObjectAPI, Target, WriteOptions
from ..controllers.replicaset import controller_of
from .view import MIRROR_ANNOTATION

log = logging.getLogger(__name__)

Obj = dict[str, Any]
FIELD_MANAGER = "bramble-dashboard"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
SCALABLE = {"Deployment": ("apps", "deployments"), "ReplicaSet": ("apps", "replicasets"),
            "ReplicationController": ("", "replicationcontrollers")}


class Approver:
    """Approval of pending nodes through joinapi's Membership (the same path as
    `bramble nodes approve`)."""

    def __init__(self, membership: Any) -> None:
        self.membership = membership

    async def pending(self) -> list[Obj]:
        return [r.as_json() for r in await self.membership.pending_requests()]

    async def approve(self, node: str, fingerprint: str, by: str) -> Obj:
        return (await self.membership.approve_node(node, fingerprint, by)).as_json()


@dataclass(frozen=True)
class Result:
    message: str


def _body(body: Any) -> Obj:
    if not isinstance(body, dict):
        raise BadRequest("an action's body is a JSON object")
    return body


def _name(body: Obj, key: str, errs: list[FieldError], *, label: bool = False) -> str:
    value = body.get(key)
    if value is None or value == "":
        errs.append(required(key))
        return ""
    check = is_dns1123_label if label else is_dns1123_subdomain
    problems = check(value) if isinstance(value, str) else ["must be a string"]
    if problems:
        errs.append(invalid(key, value, "; ".join(problems)))
        return ""
    return value


def _check(action: str, errs: list[FieldError]) -> None:
    if errs:
        raise Invalid("Action", action, errs)


class Actions:
    def __init__(self, api: ObjectAPI, approver: Approver | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.api = api
        self.approver = approver
        self.clock = clock
        self._table: dict[str, Callable[[Obj, auth.Identity], Awaitable[Result]]] = {
            "approve": self.approve, "cordon": self.cordon, "uncordon": self.uncordon,
            "drain": self.drain, "scale": self.scale, "restart": self.restart,
            "delete-pod": self.delete_pod}

    @property
    def names(self) -> list[str]:
        return sorted(self._table)

    async def run(self, action: str, body: Any, identity: auth.Identity) -> Result:
        handler = self._table.get(action)
        if handler is None:
            raise NotFound(f'unknown action "{action}": one of {", ".join(self.names)}')
        result = await handler(_body(body), identity)
        log.info("dashboard action", extra={"action": action, "by": identity.user,
                                            "result": result.message})
        return result

    def _target(self, group: str, plural: str, namespace: str = "", name: str = "",
                subresource: str = "") -> Target:
        rt = self.api.registry.by_path(group, "v1", plural)
        assert rt is not None, plural
        return Target(rt, namespace, name, subresource)

    def _opts(self) -> WriteOptions:
        return WriteOptions(field_manager=FIELD_MANAGER)

    async def _merge(self, t: Target, patch: Obj, identity: auth.Identity) -> Obj:
        _, obj = await self.api.patch(t, orjson.dumps(patch), MERGE_PATCH, self._opts(),
                                      identity)
        return obj

    # -- nodes ---------------------------------------------------------------------------

    async def approve(self, body: Obj, identity: auth.Identity) -> Result:
        errs: list[FieldError] = []
        node = _name(body, "node", errs)
        fingerprint = body.get("fingerprint") or ""
        if not isinstance(fingerprint, str):
            errs.append(invalid("fingerprint", fingerprint, "must be a string"))
        _check("approve", errs)
        if self.approver is None:
            raise BadRequest("joining is not enabled on this master")
        req = await self.approver.approve(node, fingerprint, identity.user)
        return Result(f"node {node} approved (fingerprint {req['fingerprint']}): it joins "
                      f"at its next poll")

    async def _set_unschedulable(self, body: Obj, identity: auth.Identity, action: str,
                                 value: bool) -> tuple[str, bool]:
        """(node, whether it changed)."""
        errs: list[FieldError] = []
        node = _name(body, "node", errs)
        _check(action, errs)
        t = self._target("", "nodes", name=node)
        current = self.api.get(t).obj()
        if bool((current.get("spec") or {}).get("unschedulable")) == value:
            return node, False
        # null removes the field, as kubectl uncordon leaves a node without it.
        await self._merge(t, {"spec": {"unschedulable": True if value else None}}, identity)
        return node, True

    async def cordon(self, body: Obj, identity: auth.Identity) -> Result:
        node, changed = await self._set_unschedulable(body, identity, "cordon", True)
        return Result(f"node/{node} cordoned" if changed else f"node/{node} already cordoned")

    async def uncordon(self, body: Obj, identity: auth.Identity) -> Result:
        node, changed = await self._set_unschedulable(body, identity, "uncordon", False)
        return Result(f"node/{node} uncordoned" if changed
                      else f"node/{node} already uncordoned")

    async def drain(self, body: Obj, identity: auth.Identity) -> Result:
        node, _ = await self._set_unschedulable(body, identity, "drain", True)
        victims = [p for p in (e.obj() for e in self.api.store.list("pods"))
                   if (p.get("spec") or {}).get("nodeName") == node and drainable(p)]
        results = await asyncio.gather(*(
            self.api.delete(self._target("", "pods", p["metadata"]["namespace"],
                                         p["metadata"]["name"]), {}, identity)
            for p in victims), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)
                  and not isinstance(r, NotFound)]
        for r in failed:
            if not isinstance(r, StatusError):
                raise r
        if failed:
            first = failed[0]
            assert isinstance(first, StatusError)
            first.message = (f"draining {node}: {len(failed)} of {len(victims)} pods could "
                             f"not be deleted: {first.message}")
            raise first
        return Result(f"draining {node}: {len(victims)} pod{'' if len(victims) == 1 else 's'}")

    # -- workloads -----------------------------------------------------------------------

    async def scale(self, body: Obj, identity: auth.Identity) -> Result:
        errs: list[FieldError] = []
        namespace = _name(body, "namespace", errs, label=True)
        name = _name(body, "name", errs)
        kind = body.get("kind")
        if kind not in SCALABLE:
            errs.append(not_supported("kind", kind, list(SCALABLE)))
        replicas = body.get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            errs.append(invalid("replicas", replicas, "must be a whole number, 0 or more"))
        _check("scale", errs)
        group, plural = SCALABLE[kind]  # type: ignore[index]
        t = self._target(group, plural, namespace, name, "scale")
        await self.api.update_scale(t, {"spec": {"replicas": replicas}}, identity,
                                    self._opts())
        qualified = f"{kind.lower()}.{group}" if group else kind.lower()  # type: ignore[union-attr]
        return Result(f"{qualified}/{name} scaled to {replicas}")

    async def restart(self, body: Obj, identity: auth.Identity) -> Result:
        errs: list[FieldError] = []
        namespace = _name(body, "namespace", errs, label=True)
        name = _name(body, "name", errs)
        _check("restart", errs)
        t = self._target("apps", "deployments", namespace, name)
        dep = self.api.get(t).obj()
        if (dep.get("spec") or {}).get("paused"):
            # kubectl's words: a paused Deployment would not roll the new template out.
            raise BadRequest(f"deployments.apps/{name} can't restart paused deployment "
                             f"(run rollout resume first)")
        stamp = self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        await self._merge(t, {"spec": {"template": {"metadata": {"annotations": {
            RESTARTED_AT: stamp}}}}}, identity)
        return Result(f"deployment.apps/{name} restarted")

    async def delete_pod(self, body: Obj, identity: auth.Identity) -> Result:
        errs: list[FieldError] = []
        namespace = _name(body, "namespace", errs, label=True)
        name = _name(body, "name", errs)
        _check("delete-pod", errs)
        await self.api.delete(self._target("", "pods", namespace, name), {}, identity)
        return Result(f'pod "{name}" deleted')


def drainable(pod: Obj) -> bool:
    """Whether `kubectl drain --ignore-daemonsets --delete-emptydir-data --force` deletes
    this pod: not a DaemonSet's (its controller would put it right back), not a mirror
    pod (the API cannot delete those), not already on its way out."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return False
    return (controller_of(pod) or {}).get("kind") != "DaemonSet"
