"""Who is asking, and may they: token authentication, the authorizer and NodeRestriction."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from bramble.kube.errors import Forbidden
from bramble.master.api import auth
from bramble.master.api.auth import Attributes, Authenticator, Identity, admit, authorize

ADMIN = Identity("admin", ("system:masters", "system:authenticated"))
PI1 = Identity("system:node:pi1", ("system:nodes", "system:authenticated"))
BOB = Identity("bob", ("system:authenticated",))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- authentication -------------------------------------------------------------------------

AUTHN = Authenticator({digest("admin-token"): ADMIN, digest("node-token"): PI1})


@pytest.mark.parametrize(("header", "identity"), [
    ("Bearer admin-token", ADMIN),
    ("Bearer node-token", PI1),
    ("Bearer admin-token  ", ADMIN),  # trailing whitespace is not part of the token
    ("Bearer wrong-token", None),
    ("Bearer ", None),  # empty token
    ("Bearer", None),
    (None, None),  # no header
    ("", None),
    ("Basic YWRtaW46cGFzcw==", None),  # another scheme
    ("admin-token", None),  # no scheme
    ("Bearer admin-tokenX", None),
    ("Bearer admin-toke", None),
    (f"Bearer {digest('admin-token')}", None),  # presenting the stored digest is not enough
])
def test_authenticate(header: str | None, identity: Identity | None) -> None:
    assert AUTHN.authenticate(header) == identity


def test_tokens_are_looked_up_by_digest_only() -> None:
    # A table keyed by the plain token matches nothing: only sha256 digests are held.
    plain = Authenticator({"admin-token": ADMIN})
    assert plain.authenticate("Bearer admin-token") is None


def test_replace_swaps_the_whole_table() -> None:
    authn = Authenticator({digest("old"): ADMIN})
    authn.replace({digest("new"): PI1})
    assert authn.authenticate("Bearer old") is None
    assert authn.authenticate("Bearer new") == PI1


def test_authenticator_copies_its_table() -> None:
    table = {digest("t"): ADMIN}
    authn = Authenticator(table)
    table.clear()
    assert authn.authenticate("Bearer t") == ADMIN


@pytest.mark.parametrize(("identity", "admin", "node"), [
    (ADMIN, True, None),
    (PI1, False, "pi1"),
    (BOB, False, None),
    (Identity("system:node:pi1"), False, None),  # the name alone does not make a node
    (Identity("pi1", ("system:nodes",)), False, None),  # nor does the group alone
    (Identity("system:node:pi1", ("system:nodes", "system:masters")), True, "pi1"),
])
def test_identity_kinds(identity: Identity, admin: bool, node: str | None) -> None:
    assert identity.is_admin is admin
    assert identity.node_name == node


# -- authorization ----------------------------------------------------------------------------

ALLOW, DENY = True, False

AUTHZ_CASES = [
    # (identity, verb, group, resource, subresource, namespace, name, allowed)
    (ADMIN, "deletecollection", "apps", "deployments", "", "default", "", ALLOW),
    (ADMIN, "update", "", "nodes", "status", "", "pi2", ALLOW),
    (ADMIN, "create", "", "pods", "binding", "default", "web", ALLOW),
    (BOB, "get", "", "pods", "", "default", "web", DENY),
    (BOB, "list", "", "namespaces", "", "", "", DENY),
    # A node reads what it needs to run pods...
    (PI1, "get", "", "pods", "", "default", "web", ALLOW),
    (PI1, "list", "", "pods", "", "", "", ALLOW),
    (PI1, "watch", "", "pods", "", "", "", ALLOW),
    (PI1, "watch", "", "services", "", "", "", ALLOW),
    (PI1, "list", "", "endpoints", "", "", "", ALLOW),
    (PI1, "get", "", "namespaces", "", "", "default", ALLOW),
    (PI1, "get", "", "configmaps", "", "default", "cfg", ALLOW),
    (PI1, "get", "", "secrets", "", "default", "pull", ALLOW),
    (PI1, "get", "", "nodes", "", "", "pi2", ALLOW),  # reading other nodes is fine
    (PI1, "list", "", "nodes", "", "", "", ALLOW),
    # ... and writes its own Node, pod status, pod deletion and events.
    (PI1, "create", "", "nodes", "", "", "", ALLOW),  # name checked on the object (admit)
    (PI1, "update", "", "nodes", "", "", "pi1", ALLOW),
    (PI1, "patch", "", "nodes", "status", "", "pi1", ALLOW),
    (PI1, "delete", "", "nodes", "", "", "pi1", ALLOW),
    (PI1, "update", "", "pods", "status", "default", "web", ALLOW),
    (PI1, "patch", "", "pods", "status", "default", "web", ALLOW),
    (PI1, "delete", "", "pods", "", "default", "web", ALLOW),
    (PI1, "create", "", "events", "", "default", "", ALLOW),
    (PI1, "patch", "", "events", "", "default", "e1", ALLOW),
    # Not in its rules.
    (PI1, "list", "", "configmaps", "", "default", "", DENY),
    (PI1, "list", "", "secrets", "", "", "", DENY),
    (PI1, "watch", "", "secrets", "", "", "", DENY),
    (PI1, "create", "", "pods", "", "default", "", DENY),
    (PI1, "update", "", "pods", "", "default", "web", DENY),
    (PI1, "patch", "", "pods", "", "default", "web", DENY),
    (PI1, "deletecollection", "", "pods", "", "default", "", DENY),
    (PI1, "create", "", "pods", "binding", "default", "web", DENY),
    (PI1, "delete", "", "pods", "status", "default", "web", DENY),
    (PI1, "deletecollection", "", "nodes", "", "", "", DENY),
    (PI1, "list", "", "nodes", "status", "", "", DENY),
    (PI1, "delete", "", "events", "", "default", "e1", DENY),
    (PI1, "get", "", "events", "", "default", "e1", DENY),
    (PI1, "create", "", "services", "", "default", "", DENY),
    (PI1, "create", "", "namespaces", "", "", "", DENY),
    (PI1, "list", "apps", "deployments", "", "", "", DENY),
    (PI1, "get", "apps", "pods", "", "default", "web", DENY),  # the group matters
    (PI1, "get", "", "deployments", "", "default", "web", DENY),
    # A node never changes another node.
    (PI1, "update", "", "nodes", "", "", "pi2", DENY),
    (PI1, "patch", "", "nodes", "", "", "pi2", DENY),
    (PI1, "delete", "", "nodes", "", "", "pi2", DENY),
    (PI1, "update", "", "nodes", "status", "", "pi2", DENY),
    (PI1, "patch", "", "nodes", "status", "", "pi2", DENY),
]


@pytest.mark.parametrize(("identity", "verb", "group", "resource", "sub", "namespace", "name",
                          "allowed"), AUTHZ_CASES)
def test_authorize(identity: Identity, verb: str, group: str, resource: str, sub: str,
                   namespace: str, name: str, allowed: bool) -> None:
    attrs = Attributes(verb, group, resource, sub, namespace, name)
    if allowed:
        authorize(identity, attrs)
    else:
        with pytest.raises(Forbidden) as err:
            authorize(identity, attrs)
        assert err.value.code == 403


def test_node_changing_another_node_says_why() -> None:
    with pytest.raises(Forbidden) as err:
        authorize(PI1, Attributes("update", "", "nodes", "", "", "pi2"))
    assert err.value.message == (
        'nodes "pi2" is forbidden: User "system:node:pi1" cannot update resource "nodes" in '
        "API group \"\" at the cluster scope: node 'pi1' may only change itself")


# -- the Forbidden message, as the apiserver words it -------------------------------------------

MESSAGE_CASES = [
    pytest.param(BOB, Attributes("get", "", "pods", "", "default", "web"),
                 'pods "web" is forbidden: User "bob" cannot get resource "pods" in API group '
                 '"" in the namespace "default"', id="named-namespaced"),
    pytest.param(BOB, Attributes("list", "", "nodes"),
                 'nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" '
                 "at the cluster scope", id="collection-cluster-scope"),
    pytest.param(PI1, Attributes("create", "", "pods", "", "kube-system"),
                 'pods is forbidden: User "system:node:pi1" cannot create resource "pods" in '
                 'API group "" in the namespace "kube-system"', id="collection-namespaced"),
    # The apiserver names the resource as group-qualified "deployments.apps" and without
    # the subresource before "is forbidden" (responsewriters.Forbidden + NewForbidden).
    pytest.param(BOB, Attributes("list", "apps", "deployments", "", "default"),
                 'deployments.apps is forbidden: User "bob" cannot list resource "deployments" '
                 'in API group "apps" in the namespace "default"', id="group-qualified"),
    pytest.param(BOB, Attributes("patch", "", "nodes", "status", "", "pi2"),
                 'nodes "pi2" is forbidden: User "bob" cannot patch resource "nodes/status" '
                 'in API group "" at the cluster scope', id="subresource"),
]


@pytest.mark.parametrize(("identity", "attrs", "message"), MESSAGE_CASES)
def test_forbidden_message(identity: Identity, attrs: Attributes, message: str) -> None:
    with pytest.raises(Forbidden) as err:
        authorize(identity, attrs)
    assert err.value.message == message


def test_forbidden_status_details() -> None:
    with pytest.raises(Forbidden) as err:
        authorize(BOB, Attributes("delete", "apps", "deployments", "", "default", "web"))
    status = err.value.status()
    assert (status["code"], status["reason"], status["status"]) == (403, "Forbidden",
                                                                      "Failure")
    assert status["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


# -- admission (NodeRestriction) -----------------------------------------------------------------


def node(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {}}


def pod(node_name: str | None) -> dict[str, Any]:
    spec = {"nodeName": node_name} if node_name is not None else {}
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": spec}


ADMIT_CASES = [
    # (identity, resource, stored object, new object, allowed)
    (PI1, "nodes", None, node("pi1"), ALLOW),  # registering itself
    (PI1, "nodes", node("pi1"), node("pi1"), ALLOW),
    (PI1, "nodes", node("pi1"), None, ALLOW),  # deleting itself
    (PI1, "nodes", None, node("pi2"), DENY),
    (PI1, "nodes", node("pi2"), node("pi2"), DENY),
    (PI1, "nodes", node("pi2"), None, DENY),
    (PI1, "nodes", node("pi1"), node("pi2"), DENY),  # renaming is changing another node
    (PI1, "pods", pod("pi1"), pod("pi1"), ALLOW),
    (PI1, "pods", pod("pi1"), None, ALLOW),
    (PI1, "pods", pod("pi2"), pod("pi2"), DENY),
    (PI1, "pods", pod("pi2"), None, DENY),
    (PI1, "pods", pod(None), pod(None), DENY),  # unscheduled pods are not its own
    (PI1, "pods", pod("pi2"), pod("pi1"), DENY),  # cannot steal a pod
    (PI1, "pods", pod("pi1"), pod("pi2"), DENY),  # nor give one away
    (PI1, "events", None, {"metadata": {"name": "e"}}, ALLOW),  # other resources: no opinion
    (ADMIN, "nodes", node("pi2"), node("pi2"), ALLOW),
    (ADMIN, "pods", pod("pi2"), None, ALLOW),
    (BOB, "pods", pod("pi2"), None, ALLOW),  # not a node: the authorizer decided already
]


@pytest.mark.parametrize(("identity", "resource", "old", "new", "allowed"), ADMIT_CASES)
def test_admit(identity: Identity, resource: str, old: dict | None, new: dict | None,
               allowed: bool) -> None:
    if allowed:
        admit(identity, resource, old, new)
    else:
        with pytest.raises(Forbidden):
            admit(identity, resource, old, new)


@pytest.mark.parametrize(("resource", "old", "message"), [
    ("nodes", node("pi2"), 'node "pi1" is not allowed to modify node "pi2"'),
    ("pods", pod("pi2"), 'node "pi1" can only update pods bound to it'),
])
def test_admit_messages(resource: str, old: dict, message: str) -> None:
    with pytest.raises(Forbidden) as err:
        admit(PI1, resource, old, None)
    assert err.value.message == message


@pytest.mark.parametrize(("namespace", "name", "verb", "allowed"), [
    ("kube-node-lease", "pi1", "update", True),
    ("kube-node-lease", "pi1", "create", True),
    ("kube-node-lease", "", "create", True),  # create names the lease in its body (admit)
    ("kube-node-lease", "pi2", "update", False),  # another node's heartbeat
    ("default", "pi1", "update", False),
    ("kube-node-lease", "pi1", "delete", False),
])
def test_node_may_renew_only_its_own_lease(namespace: str, name: str, verb: str,
                                           allowed: bool) -> None:
    node = auth.Identity("system:node:pi1", (auth.NODES_GROUP,))
    attrs = auth.Attributes(verb, "coordination.k8s.io", "leases", "", namespace, name)
    if allowed:
        auth.authorize(node, attrs)
    else:
        with pytest.raises(Forbidden):
            auth.authorize(node, attrs)
    with pytest.raises(Forbidden):
        auth.admit(node, "leases.coordination.k8s.io", None, {"metadata": {"name": "pi2"}})
