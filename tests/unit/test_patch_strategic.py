"""Strategic merge patch: merge keys, directives, ordering and errors, case by case.

The expected results follow k8s.io/apimachinery/pkg/util/strategicpatch (patch.go) and its
test data; where a result surprises, a comment says which rule produces it.
"""

from __future__ import annotations

import copy
import json
from typing import Any, NamedTuple

import pytest

from bramble.kube.errors import BadRequest
from bramble.master.api.patch.strategic import strategic_merge_patch


class Case(NamedTuple):
    name: str
    original: dict[str, Any]
    patch: dict[str, Any]
    expected: dict[str, Any]
    kind: str = "v1/Pod"


def containers(*items: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"containers": list(items)}}


def c(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, **fields}


def meta(**fields: Any) -> dict[str, Any]:
    return {"metadata": fields}


CASES = [
    # --- maps
    Case("labels merge and null deletes",
         meta(labels={"app": "web", "tier": "fe"}),
         meta(labels={"tier": None, "env": "prod"}),
         meta(labels={"app": "web", "env": "prod"})),
    Case("null for a key the original lacks changes nothing",
         meta(name="p"), meta(generateName=None), meta(name="p")),
    # Upstream would store {"x": null}; a value for an absent key is itself merged instead.
    Case("nulls inside a new map are dropped",
         meta(name="p"), meta(annotations={"x": None, "y": "1"}),
         meta(name="p", annotations={"y": "1"})),
    Case("$patch replace on a map replaces it",
         meta(labels={"a": "1", "b": "2"}), meta(labels={"$patch": "replace", "c": "3"}),
         meta(labels={"c": "3"})),
    Case("$patch delete on a map empties it",
         {"spec": {"securityContext": {"runAsUser": 1000, "fsGroup": 2000}}},
         {"spec": {"securityContext": {"$patch": "delete"}}},
         {"spec": {"securityContext": {}}}),
    Case("$patch delete on a map the original lacks leaves it absent",
         {"spec": {}}, {"spec": {"securityContext": {"$patch": "delete"}}}, {"spec": {}}),
    Case("a scalar whose JSON type changes is replaced",
         containers(c("web", livenessProbe={"httpGet": {"port": 8080, "path": "/"}})),
         containers(c("web", livenessProbe={"httpGet": {"port": "http"}})),
         containers(c("web", livenessProbe={"httpGet": {"port": "http", "path": "/"}}))),
    # --- lists merged by key
    Case("containers merge by name",
         containers(c("web", image="nginx:1.25", ports=[{"containerPort": 80}])),
         containers(c("web", image="nginx:1.26")),
         containers(c("web", image="nginx:1.26", ports=[{"containerPort": 80}]))),
    # The Kubernetes docs' `kubectl patch` example shows the same: new items come first.
    Case("a new container goes first without $setElementOrder",
         containers(c("web", image="nginx")),
         containers(c("sidecar", image="busybox")),
         containers(c("sidecar", image="busybox"), c("web", image="nginx"))),
    Case("$setElementOrder places a new container",
         containers(c("a"), c("b")),
         {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "new"}, {"name": "b"}],
                   "containers": [c("new", image="x")]}},
         containers(c("a"), c("new", image="x"), c("b"))),
    Case("$setElementOrder alone reorders",
         containers(c("a"), c("b")),
         {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}},
         containers(c("b"), c("a"))),
    # "s" is server-only: it stays ahead of "b", which followed it in the live list.
    Case("server-only items keep their place relative to the patch's",
         containers(c("a"), c("s"), c("b")),
         {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}},
         containers(c("s"), c("b"), c("a"))),
    Case("$setElementOrder in the live order is a no-op",
         containers(c("a", image="1"), c("b", image="2")),
         {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}]}},
         containers(c("a", image="1"), c("b", image="2"))),
    Case("$patch delete removes a container by its merge key",
         containers(c("web"), c("sidecar")),
         containers({"name": "sidecar", "$patch": "delete"}),
         containers(c("web"))),
    Case("$patch replace in a list replaces the whole list",
         containers(c("a", image="1"), c("b", image="2")),
         containers({"$patch": "replace"}, c("c", image="3")),
         containers(c("c", image="3"))),
    # The merge key is containerPort alone: protocol does not tell ports apart here.
    Case("ports merge by containerPort",
         containers(c("web", ports=[{"containerPort": 80, "name": "http"},
                                    {"containerPort": 443, "name": "https"}])),
         containers(c("web", ports=[{"containerPort": 80, "name": "web"}])),
         containers(c("web", ports=[{"containerPort": 80, "name": "web"},
                                    {"containerPort": 443, "name": "https"}]))),
    Case("env merges by name; null drops valueFrom",
         containers(c("web", env=[{"name": "A", "value": "1"},
                                  {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s",
                                                                                "key": "k"}}}])),
         containers(c("web", env=[{"name": "B", "value": "2", "valueFrom": None}])),
         containers(c("web", env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]))),
    Case("volumeMounts merge by mountPath",
         containers(c("web", volumeMounts=[{"name": "data", "mountPath": "/data"},
                                           {"name": "cfg", "mountPath": "/etc/app"}])),
         containers(c("web", volumeMounts=[{"name": "data", "mountPath": "/data",
                                            "readOnly": True}])),
         containers(c("web", volumeMounts=[{"name": "data", "mountPath": "/data",
                                            "readOnly": True},
                                           {"name": "cfg", "mountPath": "/etc/app"}]))),
    Case("initContainers merge by name",
         {"spec": {"initContainers": [c("init", image="busybox:1")]}},
         {"spec": {"initContainers": [c("init", image="busybox:2")]}},
         {"spec": {"initContainers": [c("init", image="busybox:2")]}}),
    Case("imagePullSecrets merge by name",
         {"spec": {"imagePullSecrets": [{"name": "a"}]}},
         {"spec": {"imagePullSecrets": [{"name": "b"}]}},
         {"spec": {"imagePullSecrets": [{"name": "b"}, {"name": "a"}]}}),
    Case("hostAliases merge by ip",
         {"spec": {"hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}]}},
         {"spec": {"hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}]}},
         {"spec": {"hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}]}}),
    Case("topologySpreadConstraints merge by topologyKey",
         {"spec": {"topologySpreadConstraints": [
             {"topologyKey": "zone", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]}},
         {"spec": {"topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 2}]}},
         {"spec": {"topologySpreadConstraints": [
             {"topologyKey": "zone", "maxSkew": 2, "whenUnsatisfiable": "DoNotSchedule"}]}}),
    # Tolerations have no patch strategy in types.go: the patch's list wins outright.
    Case("tolerations are replaced, not merged",
         {"spec": {"tolerations": [{"key": "a", "operator": "Exists"},
                                   {"key": "b", "operator": "Exists"}]}},
         {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}},
         {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}}),
    Case("status conditions merge by type",
         {"status": {"conditions": [{"type": "Ready", "status": "False"},
                                    {"type": "PodScheduled", "status": "True"}]}},
         {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
         {"status": {"conditions": [{"type": "Ready", "status": "True"},
                                    {"type": "PodScheduled", "status": "True"}]}}),
    Case("podIPs merge by ip",
         {"status": {"podIPs": [{"ip": "10.42.0.5"}]}},
         {"status": {"podIPs": [{"ip": "fd00::5"}]}},
         {"status": {"podIPs": [{"ip": "fd00::5"}, {"ip": "10.42.0.5"}]}}),
    Case("ownerReferences merge by uid",
         meta(ownerReferences=[{"uid": "u1", "kind": "ReplicaSet", "name": "a"}]),
         meta(ownerReferences=[{"uid": "u1", "controller": True}]),
         meta(ownerReferences=[{"uid": "u1", "kind": "ReplicaSet", "name": "a",
                                "controller": True}])),
    # --- volumes and $retainKeys
    Case("volumes merge by name",
         {"spec": {"volumes": [{"name": "a", "emptyDir": {}},
                               {"name": "b", "configMap": {"name": "cm"}}]}},
         {"spec": {"volumes": [{"name": "b", "configMap": {"name": "cm2"}}]}},
         {"spec": {"volumes": [{"name": "a", "emptyDir": {}},
                               {"name": "b", "configMap": {"name": "cm2"}}]}}),
    # kubectl apply's patch when a volume changes source: emptyDir must not survive.
    Case("$retainKeys clears a volume's old source",
         {"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}},
         {"spec": {"$setElementOrder/volumes": [{"name": "data"}],
                   "volumes": [{"$retainKeys": ["hostPath", "name"], "name": "data",
                                "emptyDir": None, "hostPath": {"path": "/srv/data"}}]}},
         {"spec": {"volumes": [{"name": "data", "hostPath": {"path": "/srv/data"}}]}}),
    Case("$retainKeys switches a Deployment to Recreate",
         {"spec": {"strategy": {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}},
         {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
                                "rollingUpdate": None}}},
         {"spec": {"strategy": {"type": "Recreate"}}},
         kind="apps/v1/Deployment"),
    # --- primitive lists
    Case("finalizers merge as a set",
         meta(finalizers=["a", "b"]), meta(finalizers=["b", "c"]),
         meta(finalizers=["a", "b", "c"])),
    # Without $setElementOrder new primitives are placed before the server's (upstream).
    Case("new primitives come first without $setElementOrder",
         meta(finalizers=["a", "b"]), meta(finalizers=["c"]),
         meta(finalizers=["c", "a", "b"])),
    Case("$setElementOrder orders primitives",
         meta(finalizers=["a", "b"]),
         {"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]}},
         meta(finalizers=["b", "c", "a"])),
    Case("$deleteFromPrimitiveList removes values",
         meta(finalizers=["a", "b", "c"]),
         {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
         meta(finalizers=["a", "c"])),
    Case("$deleteFromPrimitiveList with additions and order",
         meta(finalizers=["a", "b"]),
         {"metadata": {"$setElementOrder/finalizers": ["a", "c"], "finalizers": ["c"],
                       "$deleteFromPrimitiveList/finalizers": ["b"]}},
         meta(finalizers=["a", "c"])),
    Case("$deleteFromPrimitiveList on a missing list does nothing",
         meta(name="p"), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}},
         meta(name="p")),
    Case("non-merging primitive lists are replaced",
         containers(c("web", args=["--a", "--b"])), containers(c("web", args=["--c"])),
         containers(c("web", args=["--c"]))),
    # --- other kinds
    Case("Service ports merge by port",
         {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}},
         {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}},
         {"spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 443}]}},
         kind="v1/Service"),
    Case("Service selector is a plain map in strategic merge",
         {"spec": {"selector": {"app": "web", "tier": "fe"}}},
         {"spec": {"selector": {"tier": None}}},
         {"spec": {"selector": {"app": "web"}}},
         kind="v1/Service"),
    Case("Node addresses and conditions merge by type",
         {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"},
                                   {"type": "Hostname", "address": "pi-1"}],
                     "conditions": [{"type": "Ready", "status": "True"}]}},
         {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.3"}],
                     "conditions": [{"type": "Ready", "status": "Unknown"}]}},
         {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.3"},
                                   {"type": "Hostname", "address": "pi-1"}],
                     "conditions": [{"type": "Ready", "status": "Unknown"}]}},
         kind="v1/Node"),
    Case("Node podCIDRs merge as a set",
         {"spec": {"podCIDRs": ["10.42.1.0/24"]}}, {"spec": {"podCIDRs": ["10.42.1.0/24"]}},
         {"spec": {"podCIDRs": ["10.42.1.0/24"]}}, kind="v1/Node"),
    Case("Deployment template containers merge by name (kubectl set image)",
         {"spec": {"template": {"spec": {"containers": [c("web", image="nginx:1"),
                                                        c("log", image="fluent:1")]}}}},
         {"spec": {"template": {"spec": {"containers": [c("web", image="nginx:2")]}}}},
         {"spec": {"template": {"spec": {"containers": [c("web", image="nginx:2"),
                                                        c("log", image="fluent:1")]}}}},
         kind="apps/v1/Deployment"),
    Case("Job status conditions merge by type",
         {"status": {"conditions": [{"type": "Complete", "status": "False"}]}},
         {"status": {"conditions": [{"type": "Failed", "status": "True"}]}},
         {"status": {"conditions": [{"type": "Failed", "status": "True"},
                                    {"type": "Complete", "status": "False"}]}},
         kind="batch/v1/Job"),
    # --- directives inside new values, and where the schema knows nothing
    Case("directives in a list the original lacks are applied, not stored",
         {"spec": {}},
         {"spec": {"volumes": [{"name": "x", "emptyDir": {}},
                               {"name": "y", "$patch": "delete"}]}},
         {"spec": {"volumes": [{"name": "x", "emptyDir": {}}]}}),
    Case("an unknown kind merges like a JSON merge patch",
         {"spec": {"items": [1, 2], "m": {"a": 1}}},
         {"spec": {"items": [3], "m": {"b": 2}}},
         {"spec": {"items": [3], "m": {"a": 1, "b": 2}}},
         kind="example.com/v1/Widget"),
    Case("an 'any' field merges like a JSON merge patch",
         {"spec": {"volumes": [{"name": "v", "csi": {"driver": "d",
                                                     "volumeAttributes": {"a": "1"}}}]}},
         {"spec": {"volumes": [{"name": "v", "csi": {"volumeAttributes": {"b": "2"}}}]}},
         {"spec": {"volumes": [{"name": "v", "csi": {"driver": "d", "volumeAttributes":
                                                     {"a": "1", "b": "2"}}}]}}),
    Case("an empty patch changes nothing",
         containers(c("web", image="nginx")), {}, containers(c("web", image="nginx"))),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_strategic_merge_patch(case: Case) -> None:
    assert strategic_merge_patch(case.original, case.patch, case.kind) == case.expected


# --- kubectl apply (client-side): the patches it sends, computed by hand from
# CreateThreeWayMergePatch for a Deployment whose manifest changed.

LIVE = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "uid": "u-1",
                 "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                 "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "web", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 80, "protocol": "TCP"},
                              {"containerPort": 443, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "terminationMessagePath": "/dev/termination-log",
                }],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
            },
        },
    },
    "status": {"replicas": 2, "readyReplicas": 2},
}


def test_kubectl_apply_removing_a_port_and_an_env_var_deletes_them() -> None:
    patch = {
        "metadata": {"annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"new": true}'}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}],
                "$setElementOrder/ports": [{"containerPort": 80}],
                "env": [{"$patch": "delete", "name": "B"}],
                "name": "web",
                "ports": [{"$patch": "delete", "containerPort": 443}],
            }],
        }}},
    }
    result = strategic_merge_patch(LIVE, patch, "apps/v1/Deployment")
    container = result["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["env"] == [{"name": "A", "value": "1"}]
    # Everything the patch did not name is the server's and stays.
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert result["status"] == LIVE["status"]
    assert result["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": '{"new": true}'}


def test_kubectl_apply_of_an_unchanged_manifest_is_a_no_op() -> None:
    # kubectl sends nothing then; the lists' order directives alone must not move anything.
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{"name": "web",
                        "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                        "$setElementOrder/ports": [{"containerPort": 80},
                                                   {"containerPort": 443}]}]}}}}
    assert strategic_merge_patch(LIVE, {}, "apps/v1/Deployment") == LIVE
    assert strategic_merge_patch(LIVE, patch, "apps/v1/Deployment") == LIVE


def test_kubectl_apply_adding_an_env_var_in_the_middle() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{"name": "web",
                        "$setElementOrder/env": [{"name": "A"}, {"name": "N"}, {"name": "B"}],
                        "env": [{"name": "N", "value": "new"}]}]}}}}
    result = strategic_merge_patch(LIVE, patch, "apps/v1/Deployment")
    env = result["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["A", "N", "B"]


def test_inputs_are_never_mutated() -> None:
    original = copy.deepcopy(LIVE)
    patch = {"spec": {"replicas": 3, "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                      "template": {"spec": {"containers": [
                          {"name": "web", "env": [{"name": "B", "$patch": "delete"}]}]}}}}
    patch_copy = copy.deepcopy(patch)
    result = strategic_merge_patch(original, patch, "apps/v1/Deployment")
    assert original == LIVE and patch == patch_copy
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert original == LIVE


ERRORS = [
    ("$patch merge on a map is refused",
     meta(labels={"a": "1"}), meta(labels={"$patch": "merge"}), "Unknown patch type: merge"),
    ("unknown $patch on a map", meta(labels={}), meta(labels={"$patch": "drop"}),
     "Unknown patch type: drop"),
    ("$patch merge in a list is refused",
     containers(c("a")), containers({"name": "a", "$patch": "merge"}),
     "merging lists cannot yet be specified in the patch"),
    ("unknown $patch in a list", containers(c("a")), containers({"name": "a", "$patch": "x"}),
     "Unknown patch type: x"),
    ("$patch delete without the merge key", containers(c("a")),
     containers({"image": "x", "$patch": "delete"}), "does not contain declared merge key: name"),
    ("list element without the merge key", containers(c("a")), containers({"image": "x"}),
     "does not contain declared merge key: name"),
    ("$retainKeys must be a list", {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}},
     {"spec": {"volumes": [{"name": "v", "$retainKeys": "name"}]}},
     "invalid patch format of retainKeys"),
    ("a field the patch sets must be in $retainKeys",
     {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}},
     {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name"], "hostPath": {"path": "/"}}]}},
     "invalid patch format of retainKeys"),
    ("$setElementOrder must be a list", containers(c("a")),
     {"spec": {"$setElementOrder/containers": {"name": "a"}}},
     "invalid patch format of setElementOrder list"),
    ("$setElementOrder must agree with the patch list", containers(c("a"), c("b")),
     {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
               "containers": [c("b", image="1"), c("a", image="2")]}},
     "doesn't match $setElementOrder list"),
    ("$setElementOrder must name every patched item", containers(c("a")),
     {"spec": {"$setElementOrder/containers": [{"name": "a"}],
               "containers": [c("z", image="1")]}},
     "doesn't match $setElementOrder list"),
    ("$deleteFromPrimitiveList must be a list", meta(finalizers=["a"]),
     {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
     "invalid patch format of primitive list"),
    ("a merged list's elements must share a type", meta(finalizers=["a"]),
     meta(finalizers=[1]), "list element types are not identical"),
    ("lists of lists cannot merge", meta(finalizers=["a"]), meta(finalizers=[["b"]]),
     "lists of lists are not supported"),
]


@pytest.mark.parametrize(("name", "original", "patch", "message"), ERRORS,
                         ids=[e[0] for e in ERRORS])
def test_malformed_patches_are_bad_requests(name: str, original: dict[str, Any],
                                            patch: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        strategic_merge_patch(original, patch, "v1/Pod")
    assert message in caught.value.message
    assert caught.value.status()["code"] == 400


@pytest.mark.parametrize("patch", [[], "x", None], ids=json.dumps)
def test_a_patch_must_be_an_object(patch: Any) -> None:
    with pytest.raises(BadRequest):
        strategic_merge_patch({}, patch, "v1/Pod")
