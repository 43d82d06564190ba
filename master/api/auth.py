"""Who is asking, and may they: bearer-token authentication and the authorizer.

Two kinds of identity exist. The admin (group system:masters) may do everything. A node
agent (user system:node:NAME, group system:nodes) gets what Kubernetes' Node authorizer and
NodeRestriction admission give a kubelet: read what it needs to run pods, and write only its
own Node and the pods bound to it. The request-level decision (`authorize`) needs only the
request's attributes; the object-level one (`admit`) also sees the stored and new object,
because "bound to this node" is a property of the object.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from bramble.kube.errors import Forbidden

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
_NODE_RULES: dict[tuple[str, str, str], frozenset[str]] = {
    ("", "nodes", ""): _READ | {"create", "update", "patch", "delete"},
    ("", "nodes", "status"): frozenset({"get", "update", "patch"}),
    ("", "pods", ""): _READ | {"delete"},
    ("", "pods", "status"): frozenset({"get", "update", "patch"}),
    ("", "events", ""): frozenset({"create", "update", "patch"}),
    ("", "services", ""): _READ,
    ("", "endpoints", ""): _READ,
    ("", "namespaces", ""): _READ,
    ("", "configmaps", ""): frozenset({"get"}),
    ("", "secrets", ""): frozenset({"get"}),
    # The heartbeat: a node renews the Lease named after it in kube-node-lease.
    ("coordination.k8s.io", "leases", ""): frozenset({"get", "create", "update", "patch"}),
}

NODE_LEASE_NAMESPACE = "kube-node-lease"


def authorize(identity: Identity, attrs: Attributes) -> None:
    """Raise Forbidden unless the identity may make this request."""
    if identity.is_admin:
        return
    node = identity.node_name
    if node is not None:
        verbs = _NODE_RULES.get((attrs.group, attrs.resource, attrs.subresource))
        if verbs is not None and attrs.verb in verbs:
            if attrs.resource == "nodes" and attrs.verb not in _READ and attrs.name not in (
                    "", node):
                raise _forbidden(identity, attrs, f"node {node!r} may only change itself")
            if attrs.resource == "leases" and (attrs.namespace != NODE_LEASE_NAMESPACE
                                               or attrs.name not in ("", node)):
                raise _forbidden(identity, attrs,
                                 f"node {node!r} may only use its own lease in "
                                 f"{NODE_LEASE_NAMESPACE}")
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
