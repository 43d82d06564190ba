"""Defaulting fills what the apiserver fills, keeps what the client set, and is idempotent."""

import copy
import re

import pytest

from bramble.master.api.defaults import default

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def at(obj, path):
    """The value at a Kubernetes-style path ("spec.containers[0].image"), or KeyError."""
    for name, i in _STEP.findall(path):
        obj = obj[int(i)] if i else obj[name]
    return obj


def pod_spec(**fields):
    return {"containers": [{"name": "c", "image": "nginx:1.25"}], **fields}


def pod(**fields):
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": pod_spec(**fields)}


def template(**fields):
    return {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec(**fields)}


def workload(**spec):
    return {"metadata": {"name": "w", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template(), **spec}}


CASES = [
    # (name, key, object, {path: expected value after defaulting})
    ("pod spec", "v1/Pod", pod(), {
        "spec.restartPolicy": "Always",
        "spec.dnsPolicy": "ClusterFirst",
        "spec.schedulerName": "default-scheduler",
        "spec.terminationGracePeriodSeconds": 30,
        "spec.securityContext": {},
        "spec.enableServiceLinks": True,
        "spec.preemptionPolicy": "PreemptLowerPriority",
        "spec.priority": 0,
        "spec.containers[0].imagePullPolicy": "IfNotPresent",
        "spec.containers[0].terminationMessagePath": "/dev/termination-log",
        "spec.containers[0].terminationMessagePolicy": "File",
        "spec.containers[0].resources": {},
    }),
    ("explicit values kept", "v1/Pod",
     pod(restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=0,
         enableServiceLinks=False), {
         "spec.restartPolicy": "Never", "spec.dnsPolicy": "Default",
         "spec.terminationGracePeriodSeconds": 0, "spec.enableServiceLinks": False}),
    ("empty string is unset", "v1/Pod", pod(restartPolicy=""), {"spec.restartPolicy": "Always"}),
    ("latest pulls always", "v1/Pod",
     {"spec": {"containers": [{"name": "a", "image": "nginx"},
                              {"name": "b", "image": "nginx:latest"},
                              {"name": "c", "image": "localhost:5000/nginx"},
                              {"name": "d", "image": "nginx@sha256:abc"},
                              {"name": "e", "image": "r.io/x/nginx:1.2"},
                              {"name": "f", "image": "nginx", "imagePullPolicy": "Never"}]}}, {
         "spec.containers[0].imagePullPolicy": "Always",
         "spec.containers[1].imagePullPolicy": "Always",
         "spec.containers[2].imagePullPolicy": "Always",  # a registry port is not a tag
         "spec.containers[3].imagePullPolicy": "IfNotPresent",  # a digest pins the image
         "spec.containers[4].imagePullPolicy": "IfNotPresent",
         "spec.containers[5].imagePullPolicy": "Never"}),
    ("ports and probes", "v1/Pod",
     {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                               "livenessProbe": {"httpGet": {"port": 80}},
                               "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 3},
                               "lifecycle": {"preStop": {"httpGet": {"port": 80}}}}]}}, {
         "spec.containers[0].ports[0].protocol": "TCP",
         "spec.containers[0].livenessProbe.timeoutSeconds": 1,
         "spec.containers[0].livenessProbe.periodSeconds": 10,
         "spec.containers[0].livenessProbe.successThreshold": 1,
         "spec.containers[0].livenessProbe.failureThreshold": 3,
         "spec.containers[0].livenessProbe.httpGet.path": "/",
         "spec.containers[0].livenessProbe.httpGet.scheme": "HTTP",
         "spec.containers[0].readinessProbe.periodSeconds": 3,
         "spec.containers[0].lifecycle.preStop.httpGet.path": "/"}),
    ("resources canonical and milli-rounded", "v1/Pod",
     {"spec": {"containers": [{"name": "c", "image": "i", "resources": {
         "limits": {"cpu": 2, "memory": "1024Mi"},
         "requests": {"cpu": "0.5", "memory": "0.0001m", "bad": "2x"}}}]}}, {
         "spec.containers[0].resources.limits": {"cpu": "2", "memory": "1Gi"},
         "spec.containers[0].resources.requests": {"cpu": "500m", "memory": "1m", "bad": "2x"}}),
    ("pod requests default to limits", "v1/Pod",
     {"spec": {"containers": [{"name": "c", "image": "i", "resources": {
         "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "250m"}}}]}}, {
         "spec.containers[0].resources.requests": {"cpu": "250m", "memory": "1Gi"}}),
    ("host network ports", "v1/Pod",
     pod(hostNetwork=True, containers=[{"name": "c", "image": "i",
                                        "ports": [{"containerPort": 8080}]}]),
     {"spec.containers[0].ports[0].hostPort": 8080}),
    ("volumes", "v1/Pod",
     pod(volumes=[{"name": "a"}, {"name": "b", "secret": {"secretName": "s"}},
                  {"name": "c", "configMap": {"name": "m", "defaultMode": 0o400}},
                  {"name": "d", "hostPath": {"path": "/x"}},
                  {"name": "e", "downwardAPI": {"items": [
                      {"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]), {
         "spec.volumes[0].emptyDir": {},
         "spec.volumes[1].secret.defaultMode": 420,
         "spec.volumes[2].configMap.defaultMode": 256,
         "spec.volumes[3].hostPath.type": "",
         "spec.volumes[4].downwardAPI.defaultMode": 420,
         "spec.volumes[4].downwardAPI.items[0].fieldRef.apiVersion": "v1"}),
    ("env field refs", "v1/Pod",
     pod(containers=[{"name": "c", "image": "i", "env": [
         {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]),
     {"spec.containers[0].env[0].valueFrom.fieldRef.apiVersion": "v1"}),
    ("service", "v1/Service",
     {"spec": {"selector": {"app": "a"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}, {
         "spec.type": "ClusterIP",
         "spec.sessionAffinity": "None",
         "spec.ports[0].protocol": "TCP",
         "spec.ports[0].targetPort": 80,
         "spec.ports[1].targetPort": "https",
         "spec.internalTrafficPolicy": "Cluster",
         "spec.ipFamilyPolicy": "SingleStack",
         "spec.ipFamilies": ["IPv4"]}),
    ("node port service", "v1/Service",
     {"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 0}]}}, {
         "spec.externalTrafficPolicy": "Cluster", "spec.ports[0].targetPort": 80}),
    ("cluster IPs in step", "v1/Service",
     {"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}},
     {"spec.clusterIPs": ["10.96.0.10"]}),
    ("headless", "v1/Service", {"spec": {"clusterIP": "None"}},
     {"spec.clusterIPs": ["None"], "spec.ipFamilies": ["IPv4"]}),
    ("client IP affinity", "v1/Service",
     {"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}},
     {"spec.sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}}),
    ("secret", "v1/Secret", {"metadata": {"name": "s"}, "stringData": {"k": "v"},
                             "data": {"k": "b2xk", "o": "eA=="}},
     {"type": "Opaque", "data": {"k": "dg==", "o": "eA=="}}),
    ("namespace", "v1/Namespace", {"metadata": {"name": "team"}}, {
        "status.phase": "Active", "metadata.labels": {"kubernetes.io/metadata.name": "team"}}),
    ("endpoints", "v1/Endpoints",
     {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
     {"subsets[0].ports[0].protocol": "TCP"}),
    ("deployment", "apps/v1/Deployment", workload(), {
        "spec.replicas": 1,
        "spec.strategy": {"type": "RollingUpdate",
                          "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "spec.revisionHistoryLimit": 10,
        "spec.progressDeadlineSeconds": 600,
        "spec.template.spec.restartPolicy": "Always",
        "spec.template.spec.containers[0].imagePullPolicy": "IfNotPresent"}),
    ("deployment replicas 0 kept", "apps/v1/Deployment", workload(replicas=0),
     {"spec.replicas": 0}),
    ("recreate has no rollingUpdate", "apps/v1/Deployment",
     workload(strategy={"type": "Recreate"}), {"spec.strategy": {"type": "Recreate"}}),
    ("replicaset", "apps/v1/ReplicaSet", workload(), {
        "spec.replicas": 1, "spec.template.spec.dnsPolicy": "ClusterFirst"}),
    ("daemonset", "apps/v1/DaemonSet", workload(), {
        "spec.updateStrategy": {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        "spec.revisionHistoryLimit": 10}),
    ("job", "batch/v1/Job", workload(), {
        "spec.completions": 1, "spec.parallelism": 1, "spec.backoffLimit": 6,
        "spec.completionMode": "NonIndexed", "spec.suspend": False,
        "spec.podReplacementPolicy": "TerminatingOrFailed",
        "metadata.labels": {"app": "a"},  # from the template, when the job has none
        "spec.template.spec.restartPolicy": "Always"}),
    ("job parallel", "batch/v1/Job", workload(parallelism=3),
     {"spec.parallelism": 3, "spec.backoffLimit": 6}),
]


@pytest.mark.parametrize(("name", "key", "obj", "expected"), CASES, ids=[c[0] for c in CASES])
def test_defaults(name, key, obj, expected):
    obj = copy.deepcopy(obj)
    default(key, obj)
    for path, value in expected.items():
        assert at(obj, path) == value, path
    # Idempotent: defaulting a defaulted object changes nothing.
    again = copy.deepcopy(obj)
    default(key, again)
    assert again == obj


ABSENT = [
    # (key, object, paths that must NOT be set)
    ("v1/Pod", {"spec": pod_spec(), "metadata": {}}, ["spec.tolerations", "spec.serviceAccountName"]),
    ("apps/v1/Deployment", workload(), ["spec.template.spec.enableServiceLinks",
                                        "spec.template.spec.preemptionPolicy"]),
    ("v1/Namespace", {"metadata": {"name": "n"}}, ["spec"]),  # no finalizers nobody removes
    ("v1/Node", {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}}},
     ["status.allocatable"]),
    ("v1/Service", {"spec": {"type": "ExternalName", "externalName": "x.com"}},
     ["spec.ipFamilies", "spec.internalTrafficPolicy"]),
    ("batch/v1/Job", workload(), ["spec.selector.matchLabels.controller-uid",
                                  "spec.manualSelector"]),
]


@pytest.mark.parametrize(("key", "obj", "paths"), ABSENT, ids=[a[0] for a in ABSENT])
def test_not_defaulted(key, obj, paths):
    obj = copy.deepcopy(obj)
    default(key, obj)
    for path in paths:
        with pytest.raises((KeyError, IndexError)):
            at(obj, path)


MALFORMED = [
    ("v1/Pod", {"spec": "nope"}),
    ("v1/Pod", {"spec": {"containers": "x", "volumes": [1, None], "securityContext": 3}}),
    ("v1/Pod", {"spec": {"containers": [{"name": "c", "resources": "x", "ports": [7]}]}}),
    ("v1/Service", {"spec": {"ports": "x", "sessionAffinity": "ClientIP",
                             "sessionAffinityConfig": 1}}),
    ("v1/Secret", {"stringData": {"k": 1}, "data": "x"}),
    ("apps/v1/Deployment", {"spec": {"strategy": "x", "template": []}}),
    ("batch/v1/Job", {"metadata": "x", "spec": {"template": {"metadata": 1}}}),
    ("v1/Pod", "not an object"),
    ("example.com/v1/Unknown", {"spec": {}}),
]


@pytest.mark.parametrize(("key", "obj"), MALFORMED, ids=[str(m[1])[:30] for m in MALFORMED])
def test_malformed_input_is_left_for_validation(key, obj):
    default(key, copy.deepcopy(obj))  # never raises
