"""The type schema: its integrity, strict field validation on realistic objects, OpenAPI."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bramble.kube.errors import UNKNOWN_FIELD
from bramble.master.api import schema
from bramble.master.api.resources import RESOURCES
from bramble.master.api.schema import (
    KINDS,
    OPENAPI_NAMES,
    STRUCTS,
    field_of,
    openapi_components,
    openapi_schema,
    struct_for,
    unknown_fields,
)

# --- realistic objects, as a v1.30 cluster returns them (status and managedFields included)

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {
        "name": "web", "namespace": "default", "uid": "8d0c7f55-0c47-4a1f-9c1e-1b8f2b0f6a10",
        "resourceVersion": "4711", "generation": 3, "creationTimestamp": "2024-05-01T09:00:00Z",
        "labels": {"app.kubernetes.io/name": "web"},
        "annotations": {"deployment.kubernetes.io/revision": "2",
                        "kubectl.kubernetes.io/last-applied-configuration": "{}"},
        "managedFields": [{
            "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
            "time": "2024-05-01T09:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        }],
    },
    "spec": {
        "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "web"},
                         "annotations": {"kubectl.kubernetes.io/restartedAt":
                                         "2024-05-02T10:00:00Z"}},
            "spec": {
                "initContainers": [{"name": "migrate", "image": "web:2", "command": ["migrate"],
                                    "resources": {}}],
                "containers": [{
                    "name": "web", "image": "ghcr.io/example/web:2",
                    "imagePullPolicy": "IfNotPresent", "args": ["--port=8080"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {
                            "apiVersion": "v1", "fieldPath": "status.podIP"}}},
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {
                            "name": "db", "key": "password"}}},
                        {"name": "MEM", "valueFrom": {"resourceFieldRef": {
                            "containerName": "web", "resource": "limits.memory",
                            "divisor": "1Mi"}}},
                    ],
                    "envFrom": [{"configMapRef": {"name": "web-config"}, "prefix": "CFG_"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                  "limits": {"cpu": 1, "memory": "128Mi"}},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http",
                                                  "scheme": "HTTP",
                                                  "httpHeaders": [{"name": "X", "value": "y"}]},
                                      "initialDelaySeconds": 5, "periodSeconds": 10,
                                      "timeoutSeconds": 1, "successThreshold": 1,
                                      "failureThreshold": 3},
                    "readinessProbe": {"tcpSocket": {"port": 8080}},
                    "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}},
                    "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                    "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]},
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"},
                                     {"name": "config", "mountPath": "/etc/web",
                                      "readOnly": True}],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }],
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                    {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420,
                                                     "items": [{"key": "a", "path": "a.conf"}]}},
                    {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                    {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                    {"name": "tls", "secret": {"secretName": "web-tls", "optional": True}},
                    {"name": "nfs", "nfs": {"server": "nas.local", "path": "/export"}},
                    {"name": "meta", "downwardAPI": {"items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                    {"name": "all", "projected": {"sources": [
                        {"configMap": {"name": "web-config"}},
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
                    {"name": "csi", "csi": {"driver": "driver.longhorn.io",
                                            "volumeAttributes": {"size": "1Gi"}}},
                ],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst", "serviceAccountName": "web",
                "securityContext": {"fsGroup": 2000, "runAsUser": 1000,
                                    "supplementalGroups": [3000],
                                    "sysctls": [{"name": "net.ipv4.ip_forward", "value": "1"}]},
                "schedulerName": "default-scheduler",
                "nodeSelector": {"kubernetes.io/arch": "arm64"},
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "kubernetes.io/os",
                                                   "operator": "In", "values": ["linux"]}]}]},
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 1, "preference": {"matchExpressions": [
                                {"key": "disk", "operator": "In", "values": ["ssd"]}]}}],
                    },
                    "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": {
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                            "topologyKey": "kubernetes.io/hostname"}}]},
                },
                "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                 "operator": "Exists", "effect": "NoSchedule"},
                                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                 "effect": "NoExecute", "tolerationSeconds": 300}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                               "whenUnsatisfiable": "ScheduleAnyway",
                                               "labelSelector": {"matchLabels": {"a": "b"}}}],
                "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["nas.local"]}],
                "dnsConfig": {"nameservers": ["1.1.1.1"], "options": [{"name": "ndots",
                                                                        "value": "2"}]},
                "readinessGates": [{"conditionType": "example.com/ready"}],
                "imagePullSecrets": [{"name": "ghcr"}],
            },
        },
    },
    "status": {
        "observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability.",
             "lastUpdateTime": "2024-05-01T09:01:00Z",
             "lastTransitionTime": "2024-05-01T09:01:00Z"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": "ReplicaSet \"web-5d4f\" has successfully progressed.",
             "lastUpdateTime": "2024-05-02T10:00:30Z",
             "lastTransitionTime": "2024-05-01T09:00:00Z"},
        ],
    },
}

SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "type": "LoadBalancer", "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP",
                   "nodePort": 31080, "appProtocol": "http"}],
        "clusterIP": "10.43.12.7", "clusterIPs": ["10.43.12.7"],
        "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
        "allocateLoadBalancerNodePorts": True,
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.240", "ipMode": "VIP"}]},
               "conditions": [{"type": "Ready", "status": "True", "reason": "Ok",
                               "message": "", "lastTransitionTime": "2024-05-01T09:00:00Z",
                               "observedGeneration": 1}]},
}

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
        "name": "web-5d4f-abcde", "generateName": "web-5d4f-", "namespace": "default",
        "labels": {"app": "web", "pod-template-hash": "5d4f"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f",
                             "uid": "u-rs", "controller": True, "blockOwnerDeletion": True}],
        "finalizers": ["example.com/cleanup"],
    },
    "spec": {
        "nodeName": "pi-2", "priority": 0, "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "containers": [{"name": "web", "image": "nginx:1.25",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": 0.1}},
                        "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                                          "mountPath": "/var/run/secrets/kubernetes.io/sa"}]}],
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}],
        "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                         "effect": "NoExecute", "tolerationSeconds": 300}],
        "os": {"name": "linux"},
    },
    "status": {
        "phase": "Running", "qosClass": "Burstable", "hostIP": "192.168.1.12",
        "hostIPs": [{"ip": "192.168.1.12"}], "podIP": "10.42.2.9",
        "podIPs": [{"ip": "10.42.2.9"}], "startTime": "2024-05-01T09:00:02Z",
        "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None,
                        "lastTransitionTime": "2024-05-01T09:00:05Z"}],
        "containerStatuses": [{
            "name": "web", "image": "docker.io/library/nginx:1.25",
            "imageID": "docker.io/library/nginx@sha256:abc", "containerID": "containerd://1",
            "ready": True, "started": True, "restartCount": 1,
            "state": {"running": {"startedAt": "2024-05-01T09:00:04Z"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "signal": 9,
                                         "startedAt": "2024-05-01T08:00:00Z",
                                         "finishedAt": "2024-05-01T09:00:03Z",
                                         "containerID": "containerd://0"}},
        }],
        "initContainerStatuses": [{"name": "init", "image": "busybox", "imageID": "",
                                   "ready": False, "restartCount": 0,
                                   "state": {"waiting": {"reason": "PodInitializing"}},
                                   "lastState": {}}],
    },
}

NODE = {
    "apiVersion": "v1", "kind": "Node",
    "metadata": {"name": "pi-2", "labels": {"kubernetes.io/arch": "arm64",
                                            "kubernetes.io/hostname": "pi-2"}},
    "spec": {"podCIDR": "10.42.2.0/24", "podCIDRs": ["10.42.2.0/24"],
             "providerID": "bramble://pi-2", "unschedulable": False,
             "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                         "timeAdded": "2024-05-01T09:00:00Z"}]},
    "status": {
        "capacity": {"cpu": "4", "memory": "7998124Ki", "pods": "110",
                     "ephemeral-storage": "30Gi"},
        "allocatable": {"cpu": "3800m", "memory": "7695724Ki", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": "2024-05-01T09:10:00Z",
                        "lastTransitionTime": "2024-05-01T09:00:00Z"},
                       {"type": "MemoryPressure", "status": "False",
                        "reason": "KubeletHasSufficientMemory"}],
        "addresses": [{"type": "InternalIP", "address": "192.168.1.12"},
                      {"type": "Hostname", "address": "pi-2"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b",
                     "kernelVersion": "6.6.31-v8+", "osImage": "Debian GNU/Linux 12 (bookworm)",
                     "containerRuntimeVersion": "podman://4.3.1", "kubeletVersion": "v1.30.0",
                     "kubeProxyVersion": "v1.30.0", "operatingSystem": "linux",
                     "architecture": "arm64"},
        "images": [{"names": ["docker.io/library/nginx:1.25"], "sizeBytes": 67000000}],
        "volumesInUse": ["kubernetes.io/csi/x"],
        "volumesAttached": [{"name": "kubernetes.io/csi/x", "devicePath": ""}],
        "runtimeHandlers": [{"name": "crun", "features": {"recursiveReadOnlyMounts": True}}],
        "phase": "Running",
    },
}

OTHERS = [
    ("v1/Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"},
                      "spec": {"finalizers": ["kubernetes"]},
                      "status": {"phase": "Active", "conditions": [
                          {"type": "NamespaceDeletionContentFailure", "status": "False"}]}}),
    ("v1/Endpoints", {"apiVersion": "v1", "kind": "Endpoints",
                      "metadata": {"name": "web", "namespace": "default"},
                      "subsets": [{"addresses": [{"ip": "10.42.2.9", "nodeName": "pi-2",
                                                  "targetRef": {"kind": "Pod", "name": "web-1",
                                                                "namespace": "default",
                                                                "uid": "u"}}],
                                   "notReadyAddresses": [{"ip": "10.42.1.3"}],
                                   "ports": [{"name": "http", "port": 8080,
                                              "protocol": "TCP"}]}]}),
    ("v1/ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "web-config"}, "data": {"a.conf": "x=1"},
                      "binaryData": {"logo.png": "iVBORw0KGgo="}, "immutable": False}),
    ("v1/Secret", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                   "type": "Opaque", "data": {"password": "aHVudGVyMg=="},
                   "stringData": {"user": "admin"}}),
    ("v1/Event", {"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": "web-1.17c", "namespace": "default"},
                  "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-1",
                                     "namespace": "default", "uid": "u",
                                     "fieldPath": "spec.containers{web}"},
                  "reason": "Pulled", "message": "Successfully pulled image", "type": "Normal",
                  "source": {"component": "kubelet", "host": "pi-2"}, "count": 2,
                  "firstTimestamp": "2024-05-01T09:00:00Z",
                  "lastTimestamp": "2024-05-01T09:05:00Z",
                  "eventTime": "2024-05-01T09:05:00.123456Z",
                  "series": {"count": 2, "lastObservedTime": "2024-05-01T09:05:00.123456Z"},
                  "action": "Pulling", "related": {"kind": "Node", "name": "pi-2"},
                  "reportingComponent": "kubelet", "reportingInstance": "pi-2"}),
    ("v1/Binding", {"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": "web-1", "namespace": "default"},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": "pi-2"}}),
    ("apps/v1/ReplicaSet", {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                            "metadata": {"name": "web-5d4f"},
                            "spec": {"replicas": 1, "minReadySeconds": 0,
                                     "selector": {"matchExpressions": [
                                         {"key": "app", "operator": "In", "values": ["web"]}]},
                                     "template": {"spec": {"containers": [{"name": "w"}]}}},
                            "status": {"replicas": 1, "fullyLabeledReplicas": 1,
                                       "readyReplicas": 1, "availableReplicas": 1,
                                       "observedGeneration": 1, "conditions": [
                                           {"type": "ReplicaFailure", "status": "False"}]}}),
    ("apps/v1/DaemonSet", {"apiVersion": "apps/v1", "kind": "DaemonSet",
                           "metadata": {"name": "agent"},
                           "spec": {"selector": {"matchLabels": {"a": "b"}},
                                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                                        "maxUnavailable": 1, "maxSurge": 0}},
                                    "template": {"spec": {"hostNetwork": True,
                                                          "containers": [{"name": "a"}]}}},
                           "status": {"currentNumberScheduled": 3, "desiredNumberScheduled": 3,
                                      "numberMisscheduled": 0, "numberReady": 3,
                                      "updatedNumberScheduled": 3, "numberAvailable": 3,
                                      "observedGeneration": 1}}),
    ("batch/v1/Job", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "backup"},
                      "spec": {"backoffLimit": 4, "completions": 1, "parallelism": 1,
                               "completionMode": "NonIndexed", "suspend": False,
                               "ttlSecondsAfterFinished": 600, "activeDeadlineSeconds": 3600,
                               "manualSelector": False,
                               "podFailurePolicy": {"rules": [{"action": "FailJob",
                                                               "onExitCodes": {
                                                                   "operator": "In",
                                                                   "values": [42]}}]},
                               "template": {"spec": {"restartPolicy": "Never",
                                                     "containers": [{"name": "b"}]}}},
                      "status": {"active": 0, "succeeded": 1, "failed": 0, "ready": 0,
                                 "terminating": 0, "startTime": "2024-05-01T01:00:00Z",
                                 "completionTime": "2024-05-01T01:02:00Z",
                                 "uncountedTerminatedPods": {},
                                 "conditions": [{"type": "Complete", "status": "True",
                                                 "lastProbeTime": "2024-05-01T01:02:00Z"}]}}),
    ("autoscaling/v1/Scale", {"apiVersion": "autoscaling/v1", "kind": "Scale",
                              "metadata": {"name": "web"}, "spec": {"replicas": 3},
                              "status": {"replicas": 3, "selector": "app=web"}}),
    ("v1/DeleteOptions", {"apiVersion": "v1", "kind": "DeleteOptions",
                          "propagationPolicy": "Foreground", "gracePeriodSeconds": 0,
                          "preconditions": {"uid": "u"}, "dryRun": ["All"]}),
]

VALID = [("apps/v1/Deployment", DEPLOYMENT), ("v1/Service", SERVICE), ("v1/Pod", POD),
         ("v1/Node", NODE), *OTHERS]


@pytest.mark.parametrize(("kind", "obj"), VALID, ids=[kind for kind, _ in VALID])
def test_realistic_objects_have_no_unknown_fields(kind: str, obj: dict[str, Any]) -> None:
    assert unknown_fields(kind, obj) == []


def with_(obj: dict[str, Any], path: str, key: str, value: Any) -> dict[str, Any]:
    """A copy of `obj` with `key` set under the dotted `path` (numbers index lists)."""
    out = copy.deepcopy(obj)
    node: Any = out
    for part in path.split(".") if path else []:
        node = node[int(part)] if part.isdigit() else node[part]
    node[key] = value
    return out


TYPOS = [
    ("a typo deep in a Deployment", "apps/v1/Deployment",
     with_(DEPLOYMENT, "spec.template.spec.containers.0", "imagePullPolicyy", "Always"),
     ["spec.template.spec.containers[0].imagePullPolicyy"]),
    ("in a probe", "apps/v1/Deployment",
     with_(DEPLOYMENT, "spec.template.spec.containers.0.livenessProbe.httpGet", "paht", "/"),
     ["spec.template.spec.containers[0].livenessProbe.httpGet.paht"]),
    ("in a volume", "apps/v1/Deployment",
     with_(DEPLOYMENT, "spec.template.spec.volumes.2", "emptydir", {}),
     ["spec.template.spec.volumes[2].emptydir"]),
    ("at the top", "v1/Pod", with_(POD, "", "sepc", {}), ["sepc"]),
    ("in metadata", "v1/Service", with_(SERVICE, "metadata", "label", {}), ["metadata.label"]),
    ("in status", "v1/Node", with_(NODE, "status.nodeInfo", "kernel", "6"),
     ["status.nodeInfo.kernel"]),
    ("several at once, in document order", "v1/Pod",
     with_(with_(POD, "spec", "nodename", "x"), "spec.containers.0.ports.0", "port", 80),
     ["spec.containers[0].ports[0].port", "spec.nodename"]),
    ("DeleteOptions", "v1/DeleteOptions", {"kind": "DeleteOptions", "propagation": "x"},
     ["propagation"]),
]


@pytest.mark.parametrize(("name", "kind", "obj", "paths"), TYPOS, ids=[t[0] for t in TYPOS])
def test_unknown_fields_are_reported_with_their_path(name: str, kind: str, obj: dict[str, Any],
                                                     paths: list[str]) -> None:
    errors = unknown_fields(kind, obj)
    assert sorted(e.field for e in errors) == sorted(paths)
    assert all(e.reason == UNKNOWN_FIELD for e in errors)
    assert str(errors[0]) == f'unknown field "{errors[0].field}"'


def test_any_fields_map_keys_and_unknown_kinds_accept_anything() -> None:
    anything = {"deeply": {"nested": [1, {"x": None}]}}
    pod = with_(POD, "metadata", "annotations", {"any/key": "v"})
    pod["spec"]["volumes"].append({"name": "odd", "rbd": anything})
    pod["metadata"]["managedFields"] = [{"manager": "m", "fieldsV1": anything}]
    assert unknown_fields("v1/Pod", pod) == []
    assert unknown_fields("example.com/v1/Widget", {"whatever": 1}) == []


# --- integrity of the tables


def test_every_served_kind_has_a_schema() -> None:
    for resource in RESOURCES:
        assert struct_for(resource.key) == resource.kind
    assert struct_for("autoscaling/v1/Scale") == "Scale"
    assert struct_for("v1/Binding") == "Binding"


def test_every_reference_resolves() -> None:
    for name, fields in STRUCTS.items():
        for field_name, field in fields.items():
            if field.ref and field.type != "time":
                assert field.ref in STRUCTS, f"{name}.{field_name} -> {field.ref}"
    for struct in KINDS.values():
        assert struct in STRUCTS


def test_merge_keys_and_list_map_keys_are_fields_of_the_elements() -> None:
    for name, fields in STRUCTS.items():
        for field_name, field in fields.items():
            where = f"{name}.{field_name}"
            for key in filter(None, (field.merge_key, *field.list_map_keys)):
                assert field_of(field.ref, key) is not None, where
            assert field.strategy in (None, "merge", "replace", "retainKeys",
                                      "merge,retainKeys"), where
            assert field.list_type in (None, "atomic", "set", "map"), where
            assert bool(field.list_map_keys) == (field.list_type == "map"), where


# Upstream's tags, spot-checked: (struct, field, merge key, strategy, list type, map keys).
TAGS = [
    ("PodSpec", "containers", "name", "merge", "map", ("name",)),
    ("PodSpec", "volumes", "name", "merge,retainKeys", "map", ("name",)),
    ("PodSpec", "tolerations", None, None, "atomic", ()),
    ("PodSpec", "topologySpreadConstraints", "topologyKey", "merge", "map",
     ("topologyKey", "whenUnsatisfiable")),
    ("Container", "ports", "containerPort", "merge", "map", ("containerPort", "protocol")),
    ("Container", "env", "name", "merge", "map", ("name",)),
    ("Container", "volumeMounts", "mountPath", "merge", "map", ("mountPath",)),
    ("Container", "envFrom", None, None, "atomic", ()),
    ("ServiceSpec", "ports", "port", "merge", "map", ("port", "protocol")),
    ("ObjectMeta", "finalizers", None, "merge", "set", ()),
    ("ObjectMeta", "ownerReferences", "uid", "merge", "map", ("uid",)),
    ("NodeSpec", "podCIDRs", None, "merge", "set", ()),
    ("NodeStatus", "addresses", "type", "merge", "map", ("type",)),
    ("PodStatus", "hostIPs", "ip", "merge", "atomic", ()),
    ("JobStatus", "conditions", "type", "merge", "atomic", ()),
    ("DeploymentSpec", "strategy", None, "retainKeys", None, ()),
    ("DaemonSetSpec", "updateStrategy", None, None, None, ()),
    ("ResourceRequirements", "claims", None, None, "map", ("name",)),
]


@pytest.mark.parametrize("row", TAGS, ids=[f"{r[0]}.{r[1]}" for r in TAGS])
def test_patch_tags_match_kubernetes(row: tuple[Any, ...]) -> None:
    struct, name, merge_key, strategy, list_type, keys = row
    field = field_of(struct, name)
    assert field is not None
    assert (field.merge_key, field.strategy, field.list_type, field.list_map_keys) == \
        (merge_key, strategy, list_type, keys)


# Fields k8s.io/api v1.30 had that later releases removed.
REMOVED_SINCE_1_30 = {("PodResourceClaim", "source")}


def test_field_names_exist_in_the_official_client() -> None:
    """Every declared field is one the kubernetes Python client (a later API) knows too."""
    models = pytest.importorskip("kubernetes.client.models")
    checked = 0
    for name, fields in STRUCTS.items():
        # The client's class of the struct's own version: V2 for autoscaling/v2's.
        version, go_name = OPENAPI_NAMES[name].split(".")[-2:]
        prefix = version.capitalize()
        cls = getattr(models, f"{prefix}{go_name}", None) or \
            getattr(models, f"Core{prefix}{go_name}", None)
        if cls is None:
            continue
        known = set(getattr(cls, f"_{cls.__name__}__properties"))
        extra = {f for f in fields if f not in known and (name, f) not in REMOVED_SINCE_1_30}
        assert not extra, f"{name}: {sorted(extra)}"
        checked += 1
    assert checked > 140


# --- OpenAPI


def test_openapi_components_are_named_and_linked_like_kubernetes() -> None:
    components = openapi_components()
    assert "io.k8s.api.core.v1.Pod" in components
    assert "io.k8s.api.apps.v1.Deployment" in components
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in components
    assert "io.k8s.api.autoscaling.v1.Scale" in components

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            found = [value["$ref"]] if "$ref" in value else []
            return found + [r for v in value.values() for r in refs(v)]
        if isinstance(value, list):
            return [r for v in value for r in refs(v)]
        return []

    for ref in refs(components):
        assert ref.removeprefix("#/components/schemas/") in components, ref


OPENAPI = [
    ("Pod", None, {"x-kubernetes-group-version-kind":
                   [{"group": "", "kind": "Pod", "version": "v1"}]}),
    ("Deployment", None, {"x-kubernetes-group-version-kind":
                          [{"group": "apps", "kind": "Deployment", "version": "v1"}]}),
    ("PodSpec", "containers", {
        "type": "array", "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"},
        "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    ("ObjectMeta", "finalizers", {
        "type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-list-type": "set"}),
    ("ServicePort", "targetPort", {"x-kubernetes-int-or-string": True,
                                   "anyOf": [{"type": "integer"}, {"type": "string"}]}),
    ("ServicePort", "protocol", {"type": "string", "default": "TCP"}),
    ("ResourceRequirements", "limits", {
        "type": "object", "additionalProperties": {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}]}}),
    ("ServiceSpec", "selector", {"type": "object", "additionalProperties": {"type": "string"},
                                 "x-kubernetes-map-type": "atomic"}),
    ("DeploymentSpec", "strategy", {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}],
        "x-kubernetes-patch-strategy": "retainKeys"}),
    ("ObjectMeta", "creationTimestamp",
     {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time"}),
    ("Secret", "data", {"type": "object",
                        "additionalProperties": {"type": "string", "format": "byte"}}),
    ("LabelSelector", None, {"x-kubernetes-map-type": "atomic"}),
]


@pytest.mark.parametrize(("struct", "field", "expected"), OPENAPI,
                         ids=[f"{s}.{f}" if f else s for s, f, _ in OPENAPI])
def test_openapi_schemas(struct: str, field: str | None, expected: dict[str, Any]) -> None:
    component = openapi_schema(struct)
    if field is None:
        assert expected.items() <= component.items()
    else:
        assert component["properties"][field] == expected


def test_child_and_element_fields_walk_the_schema() -> None:
    spec = schema.field_of("PodSpec", "containers")
    element = schema.element_field(spec)
    assert element is not None and element.ref == "Container"
    assert schema.child_field(element, "image") == schema.STRING
    labels = schema.field_of("ObjectMeta", "labels")
    assert schema.child_field(labels, "anything") == schema.Field("string")
    assert schema.child_field(schema.ANY, "x") is None


def test_prune_unknown_fields_removes_exactly_what_unknown_fields_reports() -> None:
    from bramble.master.api.schema import prune_unknown_fields

    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "x": 1},
           "spec": {"replicaz": 3, "template": {"spec": {"containers": [
               {"name": "c", "image": "i", "imagePullPolicyy": "Always"}]}}}}
    expected = [e.field for e in unknown_fields("apps/v1/Deployment", obj)]
    removed = [e.field for e in prune_unknown_fields("apps/v1/Deployment", obj)]
    assert removed == expected == ["metadata.x", "spec.replicaz",
                                   "spec.template.spec.containers[0].imagePullPolicyy"]
    assert obj == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                   "spec": {"template": {"spec": {"containers": [{"name": "c",
                                                                   "image": "i"}]}}}}
    assert unknown_fields("apps/v1/Deployment", obj) == []
