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

class Graph:
    """The stored pods the node-scoped decisions look at (a fake of auth.StoreGraph)."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods

    def pod_node(self, namespace: str, name: str) -> str | None:
        for p in self.pods:
            if (p["metadata"]["namespace"], p["metadata"]["name"]) == (namespace, name):
                return p["spec"].get("nodeName", "")
        return None

    def pods_on(self, node: str, namespace: str) -> list[dict[str, Any]]:
        return [p for p in self.pods if p["metadata"]["namespace"] == namespace
                and p["spec"].get("nodeName") == node]


def stored_pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}], **spec}}


GRAPH = Graph([
    # web runs on pi1 and uses configmap cfg (volume), secret pull (imagePullSecrets),
    # secret env-secret (env) and configmap env-cm (envFrom).
    stored_pod("web", "pi1", imagePullSecrets=[{"name": "pull"}],
               volumes=[{"name": "v", "configMap": {"name": "cfg"}}],
               containers=[{"name": "c", "env": [{"name": "X", "valueFrom": {
                   "secretKeyRef": {"name": "env-secret", "key": "k"}}}],
                            "envFrom": [{"configMapRef": {"name": "env-cm"}}]}]),
    # db runs on pi2 with its own secret.
    stored_pod("db", "pi2", volumes=[{"name": "v", "secret": {"secretName": "db-pass"}}]),
    {"metadata": {"name": "pending", "namespace": "default"}, "spec": {}},
])

AUTHZ_CASES = [
    # (identity, verb, group, resource, subresource, namespace, name, allowed)
    (ADMIN, "deletecollection", "apps", "deployments", "", "default", "", ALLOW),
    (ADMIN, "update", "", "nodes", "status", "", "pi2", ALLOW),
    (ADMIN, "create", "", "pods", "binding", "default", "web", ALLOW),
    (ADMIN, "get", "", "secrets", "", "default", "db-pass", ALLOW),
    (BOB, "get", "", "pods", "", "default", "web", DENY),
    (BOB, "list", "", "namespaces", "", "", "", DENY),
    # A node reads the pods bound to it and what they use...
    (PI1, "get", "", "pods", "", "default", "web", ALLOW),
    (PI1, "get", "", "configmaps", "", "default", "cfg", ALLOW),  # a volume
    (PI1, "get", "", "configmaps", "", "default", "env-cm", ALLOW),  # envFrom
    (PI1, "get", "", "secrets", "", "default", "pull", ALLOW),  # imagePullSecrets
    (PI1, "get", "", "secrets", "", "default", "env-secret", ALLOW),  # env valueFrom
    (PI1, "watch", "", "services", "", "", "", ALLOW),  # the service proxy
    (PI1, "list", "", "endpoints", "", "", "", ALLOW),
    (PI1, "get", "", "nodes", "", "", "pi2", ALLOW),  # every Node: the host-gw routes
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
    # Another node's pods and what they use; unscheduled and missing pods.
    (PI1, "get", "", "pods", "", "default", "db", DENY),
    (PI1, "get", "", "pods", "", "default", "pending", DENY),
    (PI1, "get", "", "pods", "", "default", "ghost", DENY),
    (PI1, "get", "", "secrets", "", "default", "db-pass", DENY),
    (PI1, "get", "", "secrets", "", "kube-system", "pull", DENY),  # another namespace
    (PI1, "get", "", "configmaps", "", "default", "unused", DENY),
    # Not in its rules.
    (PI1, "list", "", "pods", "", "", "", DENY),  # without spec.nodeName=pi1
    (PI1, "watch", "", "pods", "", "", "", DENY),
    (PI1, "get", "", "namespaces", "", "", "default", DENY),
    (PI1, "get", "", "pods", "status", "default", "web", DENY),
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
    (PI1, "get", "", "nodes", "status", "", "pi1", DENY),
    (PI1, "delete", "", "events", "", "default", "e1", DENY),
    (PI1, "get", "", "events", "", "default", "e1", DENY),
    (PI1, "create", "", "services", "", "default", "", DENY),
    (PI1, "create", "", "secrets", "", "default", "", DENY),
    (PI1, "update", "", "configmaps", "", "default", "cfg", DENY),
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
        authorize(identity, attrs, GRAPH)
    else:
        with pytest.raises(Forbidden) as err:
            authorize(identity, attrs, GRAPH)
        assert err.value.code == 403


@pytest.mark.parametrize(("verb", "namespace", "selector", "allowed"), [
    ("list", "", "spec.nodeName=pi1", ALLOW),  # what the agent's pod source asks
    ("watch", "", "spec.nodeName=pi1", ALLOW),
    ("watch", "default", "spec.nodeName=pi1,status.phase!=Failed", ALLOW),
    ("list", "", "spec.nodeName==pi1", ALLOW),
    ("list", "", "spec.nodeName=pi2", DENY),
    ("list", "", "spec.nodeName!=pi2", DENY),  # not an exact match
    ("list", "", "metadata.namespace=default", DENY),
    # A conjunction can only narrow the result: any spec.nodeName=pi1 term is enough (as in
    # Kubernetes' node authorizer), even next to a contradicting one.
    ("list", "", "spec.nodeName=pi1,spec.nodeName=pi2", ALLOW),
    ("list", "", "spec.nodeName", DENY),  # does not parse
    ("list", "default", "metadata.name=web", ALLOW),  # one pod bound to it
    ("watch", "default", "metadata.name=db", DENY),  # one pod bound elsewhere
])
def test_node_lists_pods_only_with_its_own_field_selector(
        verb: str, namespace: str, selector: str, allowed: bool) -> None:
    attrs = Attributes(verb, "", "pods", "", namespace, "", selector)
    if allowed:
        authorize(PI1, attrs, GRAPH)
    else:
        with pytest.raises(Forbidden):
            authorize(PI1, attrs, GRAPH)


@pytest.mark.parametrize(("resource", "selector", "allowed"), [
    ("secrets", "metadata.name=pull", ALLOW),  # a watch on one object, as kubelets do
    ("configmaps", "metadata.name=cfg", ALLOW),
    ("secrets", "metadata.name=db-pass", DENY),
    ("secrets", "", DENY),
    ("secrets", "metadata.name!=db-pass", DENY),
])
def test_node_watches_single_secrets_and_configmaps(resource: str, selector: str,
                                                    allowed: bool) -> None:
    attrs = Attributes("watch", "", resource, "", "default", "", selector)
    if allowed:
        authorize(PI1, attrs, GRAPH)
    else:
        with pytest.raises(Forbidden):
            authorize(PI1, attrs, GRAPH)


def test_without_a_graph_node_reads_are_refused() -> None:
    # Fail closed: a caller that cannot tell what is bound to the node allows nothing.
    for attrs in (Attributes("get", "", "pods", "", "default", "web"),
                  Attributes("get", "", "secrets", "", "default", "pull")):
        with pytest.raises(Forbidden) as err:
            authorize(PI1, attrs)
        assert "no relationship found between node 'pi1' and this object" in \
            err.value.message
    authorize(PI1, Attributes("list", "", "pods", "", "", "", "spec.nodeName=pi1"))


def test_pod_references() -> None:
    pod = {"spec": {
        "imagePullSecrets": [{"name": "pull"}],
        "volumes": [{"name": "a", "configMap": {"name": "cm-vol"}},
                    {"name": "b", "secret": {"secretName": "s-vol"}},
                    {"name": "c", "projected": {"sources": [
                        {"configMap": {"name": "cm-proj"}}, {"secret": {"name": "s-proj"}},
                        {"downwardAPI": {}}]}},
                    {"name": "d", "csi": {"driver": "x",
                                          "nodePublishSecretRef": {"name": "s-csi"}}},
                    {"name": "e", "emptyDir": {}}],
        "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s-init"}}]}],
        "containers": [{"name": "c", "env": [
            {"name": "A", "value": "x"},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "envFrom": [{"configMapRef": {"name": "cm-from"}}]}],
        "ephemeralContainers": [{"name": "dbg", "env": [
            {"name": "D", "valueFrom": {"secretKeyRef": {"name": "s-eph", "key": "k"}}}]}]}}
    cms, secrets = auth.pod_references(pod)
    assert cms == {"cm-vol", "cm-proj", "cm-env", "cm-from"}
    assert secrets == {"pull", "s-vol", "s-proj", "s-csi", "s-init", "s-eph"}
    assert auth.pod_references({}) == (frozenset(), frozenset())
    # Junk where objects belong is skipped, not a crash (the graph reads stored pods).
    assert auth.pod_references({"spec": {"volumes": ["x", {"configMap": "y"}],
                                         "containers": [None, {"env": ["z"]}]}}) == \
        (frozenset(), frozenset())


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


def cidr_node(name: str, cidr: str | None) -> dict[str, Any]:
    spec = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    return {"metadata": {"name": name}, "spec": spec, "status": {}}


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
    # Pod subnets are the master's node IPAM's to give (a node could claim another's).
    (PI1, "nodes", None, cidr_node("pi1", "10.42.1.0/24"), DENY),  # registering with one
    (PI1, "nodes", cidr_node("pi1", None), cidr_node("pi1", "10.42.1.0/24"), DENY),
    (PI1, "nodes", cidr_node("pi1", "10.42.0.0/24"), cidr_node("pi1", "10.42.1.0/24"), DENY),
    (PI1, "nodes", cidr_node("pi1", "10.42.0.0/24"), cidr_node("pi1", None), DENY),
    (PI1, "nodes", cidr_node("pi1", "10.42.0.0/24"), cidr_node("pi1", "10.42.0.0/24"),
     ALLOW),  # an update keeping the assigned one
    (PI1, "nodes", cidr_node("pi1", "10.42.0.0/24"), None, ALLOW),  # deleting itself
    (ADMIN, "nodes", cidr_node("pi1", None), cidr_node("pi1", "10.42.1.0/24"), ALLOW),
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


def test_admit_pod_cidr_message() -> None:
    with pytest.raises(Forbidden) as err:
        admit(PI1, "nodes", None, cidr_node("pi1", "10.42.1.0/24"))
    assert err.value.message == 'node "pi1" is not allowed to set or change its pod CIDR'


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
