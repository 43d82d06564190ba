"""Who is asking, and may they: bearer-token authentication and the authorizer.

Two kinds of identity exist. The admin (group system:masters) may do everything. A node
agent (user system:node:NAME, group system:nodes) gets what Kubernetes' Node authorizer
(with AuthorizeNodeWithSelectors, GA in 1.34) and NodeRestriction admission give a kubelet:

- its own Node: create, update, patch, delete, and its status (NodeRestriction checks the
  name on the object), never setting or changing spec.podCIDR(s) - the master's node IPAM
  assigns them; its own Lease in kube-node-lease (the heartbeat);
- pods: list and watch only with the field selector spec.nodeName=NAME, get only a pod
  bound to it, update/patch the status of and delete only pods bound to it;
- secrets and configmaps: read only those a pod bound to it uses (volumes, projected
  sources, env, envFrom, imagePullSecrets), one object at a time;
- events: create and update (its reports about its pods);
- services and endpoints: read (the agent's service proxy and DNS need them all).

One deliberate difference: a node may read every Node, not only its own. The agent is
also the cluster's network plugin (host-gw routes to every other node's podCIDR via its
address), which in Kubernetes runs under its own identity (flannel's DaemonSet reads all
Nodes).

The request-level decision (`authorize`) sees the request's attributes and, for the
"bound to this node" questions, a `NodeGraph` over the stored pods; without a graph such
requests are refused (fail closed). The object-level one (`admit`) also sees the stored
and new object on writes, because "bound to this node" is a property of the object.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from bramble.kube.errors import BadRequest, Forbidden
from bramble.kube.selectors import parse_field_selector

ADMIN_GROUP = "system:masters"
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    @property
    def node_name(self) -> str | None:
        if NODES_GROUP in self.groups and self.user.startswith(NODE_PREFIX):
            return self.user[len(NODE_PREFIX):]
        return None


@dataclass(frozen=True)
class Attributes:
    verb: str  # get list watch create update patch delete deletecollection
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    # list/watch: the request's ?fieldSelector= (a node must select its own pods with it).
    field_selector: str = ""


class NodeGraph(Protocol):
    """What the authorizer needs to know about stored pods (StoreGraph reads the store)."""

    def pod_node(self, namespace: str, name: str) -> str | None:
        """spec.nodeName of the stored pod ("" when unscheduled), None when there is none."""

    def pods_on(self, node: str, namespace: str) -> Iterable[dict[str, Any]]:
        """The stored pods of `namespace` bound to `node`."""


class StoreGraph:
    """A NodeGraph over the master's store (committed state; the indexed spec.nodeName
    field is compared before any pod is decoded)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def pod_node(self, namespace: str, name: str) -> str | None:
        entry = self.store.get("pods", namespace, name)
        return None if entry is None else entry.fields.get("spec.nodeName", "")

    def pods_on(self, node: str, namespace: str) -> Iterable[dict[str, Any]]:
        return [e.obj() for e in self.store.list("pods", namespace)
                if e.fields.get("spec.nodeName") == node]


def _names(refs: Iterable[Any], key: str) -> set[str]:
    return {r[key] for r in refs if isinstance(r, dict) and isinstance(r.get(key), str)}


def pod_references(pod: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """(configmaps, secrets) a pod uses, as Kubernetes' VisitPodConfigmapNames and
    VisitPodSecretNames see them (pure): volumes (and projected sources), every
    container's env valueFrom and envFrom, and imagePullSecrets."""
    spec = pod.get("spec") or {}
    cms: set[str] = set()
    secrets = _names(spec.get("imagePullSecrets") or [], "name")
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        cms |= _names([volume.get("configMap")], "name")
        secrets |= _names([volume.get("secret")], "secretName")
        for source in (volume.get("projected") or {}).get("sources") or []:
            if isinstance(source, dict):
                cms |= _names([source.get("configMap")], "name")
                secrets |= _names([source.get("secret")], "name")
        for kind in ("csi", "cephfs", "flexVolume", "rbd", "iscsi", "scaleIO", "storageos"):
            source = volume.get(kind)
            if isinstance(source, dict):
                secrets |= _names([source.get("secretRef"), source.get("nodePublishSecretRef")],
                                  "name")
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
                  *(spec.get("ephemeralContainers") or [])]
    for c in containers:
        if not isinstance(c, dict):
            continue
        for source in c.get("envFrom") or []:
            if isinstance(source, dict):
                cms |= _names([source.get("configMapRef")], "name")
                secrets |= _names([source.get("secretRef")], "name")
        for env in c.get("env") or []:
            value_from = (env.get("valueFrom") if isinstance(env, dict) else None) or {}
            cms |= _names([value_from.get("configMapKeyRef")], "name")
            secrets |= _names([value_from.get("secretKeyRef")], "name")
    return frozenset(cms), frozenset(secrets)


class Authenticator:
    """Maps a presented bearer token to an identity through sha256 of the token.

    Only hashes are held, so the table can be logged or swapped without exposing tokens;
    the comparison is constant-time.
    """

    def __init__(self, tokens: dict[str, Identity]) -> None:
        self._tokens = dict(tokens)

    def replace(self, tokens: dict[str, Identity]) -> None:
        self._tokens = dict(tokens)

    def authenticate(self, header: str | None) -> Identity | None:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        for known, identity in self._tokens.items():
            if hmac.compare_digest(known, digest):
                return identity
        return None


_READ = frozenset({"get", "list", "watch"})

# What a node may do by request attributes: (group, resource, subresource) -> verbs.
# Rows marked * are narrowed further in `_node_decision` (own object, bound pods, graph).
_NODE_RULES: dict[tuple[str, str, str], frozenset[str]] = {
    ("", "nodes", ""): _READ | {"create", "update", "patch", "delete"},  # * writes: itself
    ("", "nodes", "status"): frozenset({"update", "patch"}),  # * itself
    ("", "pods", ""): _READ | {"delete"},  # * bound to it
    ("", "pods", "status"): frozenset({"update", "patch"}),  # bound to it (admit)
    ("", "events", ""): frozenset({"create", "update", "patch"}),
    ("", "services", ""): _READ,
    ("", "endpoints", ""): _READ,
    ("", "configmaps", ""): _READ,  # * used by a pod bound to it
    ("", "secrets", ""): _READ,  # * used by a pod bound to it
    # The heartbeat: a node renews the Lease named after it in kube-node-lease.
    ("coordination.k8s.io", "leases", ""): frozenset({"get", "create", "update",
                                                      "patch"}),  # * its own
}

NODE_LEASE_NAMESPACE = "kube-node-lease"


def _single_name(attrs: Attributes) -> str:
    """The one object a request reads: its name, or for list/watch a metadata.name field
    selector (how a client watches one object)."""
    if attrs.name or attrs.verb not in ("list", "watch") or not attrs.field_selector:
        return attrs.name
    try:
        selector = parse_field_selector(attrs.field_selector)
    except BadRequest:
        return ""
    return selector.requires_exact_match("metadata.name") or ""


def _node_decision(node: str, attrs: Attributes, graph: NodeGraph | None) -> str:
    """Why a node may not make this request ("" when it may). Only called for requests
    its rule table allows."""
    no_relation = f"no relationship found between node '{node}' and this object"
    if attrs.resource == "nodes":
        if attrs.verb not in _READ and attrs.name not in ("", node):
            return f"node {node!r} may only change itself"
        return ""
    if attrs.resource == "leases":
        if attrs.namespace != NODE_LEASE_NAMESPACE or attrs.name not in ("", node):
            return f"node {node!r} may only use its own lease in {NODE_LEASE_NAMESPACE}"
        return ""
    if attrs.resource == "pods" and attrs.subresource == "":
        if attrs.verb in ("list", "watch") and not attrs.name:
            try:
                selector = parse_field_selector(attrs.field_selector)
            except BadRequest:
                selector = None
            if selector is not None and selector.requires_exact_match("spec.nodeName") == node:
                return ""
            if not _single_name(attrs):
                return "can only list/watch pods with spec.nodeName field selector"
        if attrs.verb in _READ:
            name = _single_name(attrs)
            if graph is None or not attrs.namespace or graph.pod_node(attrs.namespace,
                                                                      name) != node:
                return no_relation
        return ""  # delete: NodeRestriction (admit) checks the binding on the object
    if attrs.resource in ("secrets", "configmaps"):
        name = _single_name(attrs)
        if not name:
            return f"can only read individual {attrs.resource}"
        if graph is None or not attrs.namespace:
            return no_relation
        want = 0 if attrs.resource == "configmaps" else 1
        if not any(name in pod_references(pod)[want]
                   for pod in graph.pods_on(node, attrs.namespace)):
            return no_relation
    return ""


def authorize(identity: Identity, attrs: Attributes, graph: NodeGraph | None = None) -> None:
    """Raise Forbidden unless the identity may make this request. `graph` answers the
    node-scoped questions; without it those requests are refused."""
    if identity.is_admin:
        return
    node = identity.node_name
    if node is not None:
        verbs = _NODE_RULES.get((attrs.group, attrs.resource, attrs.subresource))
        if verbs is not None and attrs.verb in verbs:
            why = _node_decision(node, attrs, graph)
            if why:
                raise _forbidden(identity, attrs, why)
            return
    raise _forbidden(identity, attrs)


def admit(identity: Identity, resource: str, old: dict[str, Any] | None,
          new: dict[str, Any] | None) -> None:
    """Object-level checks for node identities (NodeRestriction)."""
    node = identity.node_name
    if node is None or identity.is_admin:
        return
    for obj in (old, new):
        if obj is None:
            continue
        if resource == "nodes" and obj.get("metadata", {}).get("name") != node:
            raise Forbidden(f'node "{node}" is not allowed to modify node '
                            f'"{obj.get("metadata", {}).get("name")}"')
        if resource == "pods" and obj.get("spec", {}).get("nodeName") != node:
            raise Forbidden(f'node "{node}" can only update pods bound to it')
        if resource == "leases.coordination.k8s.io" and obj.get("metadata", {}).get(
                "name") != node:
            raise Forbidden(f'node "{node}" may only use its own lease')
    if resource == "nodes" and new is not None and _pod_cidrs(new) != _pod_cidrs(old):
        # The master's node IPAM assigns subnets; a node choosing its own could claim
        # another's and take its pods' traffic (host-gw routes follow spec.podCIDR).
        raise Forbidden(f'node "{node}" is not allowed to set or change its pod CIDR')


def _pod_cidrs(node: dict[str, Any] | None) -> tuple[Any, Any]:
    spec = (node or {}).get("spec") or {}
    return spec.get("podCIDR") or None, spec.get("podCIDRs") or None


def _forbidden(identity: Identity, attrs: Attributes, why: str = "") -> Forbidden:
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    group = f'in API group "{attrs.group}"'
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    what = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    message = (f'{what} is forbidden: User "{identity.user}" cannot {attrs.verb} resource '
               f'"{resource}" {group} {scope}')
    if why:
        message += f": {why}"
    return Forbidden(message, kind=attrs.resource, group=attrs.group, name=attrs.name)
