"""API validation finds every error, at the path and with the message Kubernetes uses."""

import copy
import re

import pytest

from bramble.kube.errors import Invalid
from bramble.master.api.defaults import default
from bramble.master.api.validation import validate, validate_status

REQ, INV, UNS = "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported"
DUP, FORB, LONG, NF = "FieldValueDuplicate", "FieldValueForbidden", "FieldValueTooLong", \
    "FieldValueNotFound"
DELETE = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def change(obj, **paths):
    """A copy of obj with values set at Kubernetes-style paths (dots become __ in names,
    indexes become _N_): change(pod, spec__containers_0___image="x")."""
    obj = copy.deepcopy(obj)
    for raw, value in paths.items():
        path = re.sub(r"_(\d+)_", r"[\1]", raw).replace("__", ".")
        steps = [(n, int(i) if i else None) for n, i in _STEP.findall(path)]
        target = obj
        for (name, i), (_next_name, next_i) in zip(steps, steps[1:], strict=False):
            if i is not None:
                target = target[i]
            else:
                target = target.setdefault(name, [] if next_i is not None else {})
        name, i = steps[-1]
        if value is DELETE:
            del target[i if i is not None else name]
        elif i is not None:
            target[i] = value
        else:
            target[name] = value
    return obj


def meta(name="x", namespace="default", **extra):
    m = {"name": name, **extra}
    if namespace:
        m["namespace"] = namespace
    return m


CONTAINER = {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80, "name": "http"}]}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": meta("web"),
       "spec": {"containers": [CONTAINER]}}
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [CONTAINER]}}
DEPLOYMENT = {"metadata": meta("web"),
              "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}}
DAEMONSET = DEPLOYMENT
JOB = {"metadata": meta("once"),
       "spec": {"template": change(TEMPLATE, spec__restartPolicy="Never")}}
SERVICE = {"metadata": meta("web"),
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
NODE = {"metadata": meta("pi-1", namespace=None),
        "spec": {"podCIDR": "10.244.1.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}
NAMESPACE = {"metadata": meta("team", namespace=None)}
ENDPOINTS = {"metadata": meta("web"), "subsets": [
    {"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 80}]}]}
CONFIG_MAP = {"metadata": meta("conf"), "data": {"app.conf": "x=1"}, "binaryData": {"b": "AAE="}}
SECRET = {"metadata": meta("creds"), "data": {"password": "aHVudGVyMg=="}}
TLS = {"metadata": meta("tls"), "type": "kubernetes.io/tls",
       "data": {"tls.crt": "YQ==", "tls.key": "Yg=="}}
EVENT = {"metadata": meta("web.1"), "type": "Normal", "reason": "Started",
         "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"}}

# Every optional part bramble validates, filled in correctly: valid as a whole, and the
# ground the wrong-type test below walks over.
KITCHEN_SINK_POD = change(POD, spec={
    "serviceAccountName": "runner", "priorityClassName": "high", "hostname": "web",
    "subdomain": "svc", "dnsPolicy": "None", "overhead": {"cpu": "10m"},
    "dnsConfig": {"nameservers": ["10.96.0.10"], "searches": ["svc.cluster.local."],
                  "options": [{"name": "ndots", "value": "2"}]},
    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db.local"]}],
    "imagePullSecrets": [{"name": "registry"}],
    "readinessGates": [{"conditionType": "example.com/ready"}],
    "securityContext": {"fsGroup": 2000, "runAsUser": 1000, "supplementalGroups": [3000],
                        "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}],
                        "seccompProfile": {"type": "RuntimeDefault"}},
    "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute",
                     "tolerationSeconds": 30}, {"operator": "Exists"}],
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                   "whenUnsatisfiable": "DoNotSchedule",
                                   "labelSelector": {"matchLabels": {"app": "web"}}}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "arch", "operator": "In", "values": ["arm64"]},
                                      {"key": "mem", "operator": "Gt", "values": ["4"]}],
                 "matchFields": [{"key": "metadata.name", "operator": "In",
                                  "values": ["pi-1"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [
                    {"key": "ssd", "operator": "Exists"}]}}]},
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone",
             "namespaces": ["data"]}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {
                "labelSelector": {"matchExpressions": [
                    {"key": "app", "operator": "NotIn", "values": ["web"]}]},
                "topologyKey": "kubernetes.io/hostname"}}]}},
    "volumes": [
        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
        {"name": "cfg", "configMap": {"name": "c", "items": [{"key": "k", "path": "k.conf",
                                                              "mode": 0o400}]}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o440}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "nfs", "nfs": {"server": "nas", "path": "/export"}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "app",
                                                 "resource": "limits.cpu"}}]}},
        {"name": "all", "projected": {"sources": [
            {"configMap": {"name": "c"}}, {"secret": {"name": "s"}},
            {"serviceAccountToken": {"path": "token"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {
                "fieldPath": "metadata.namespace"}}]}}]}}],
    "initContainers": [
        {"name": "setup", "image": "busybox", "command": ["sh", "-c", "true"]},
        {"name": "sidecar", "image": "proxy", "restartPolicy": "Always",
         "readinessProbe": {"tcpSocket": {"port": 15000}}}],
    "containers": [change(CONTAINER, **{
        "env": [{"name": "PLAIN", "value": "v"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "LABEL", "valueFrom": {"fieldRef": {
                    "fieldPath": "metadata.labels['app']"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                {"name": "SEC", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "envFrom": [{"configMapRef": {"name": "c"}}, {"prefix": "S_", "secretRef": {"name": "s"}}],
        "volumeMounts": [{"name": n, "mountPath": f"/{n}"} for n in
                         ("scratch", "host", "cfg", "sec", "claim", "nfs", "info", "all")]
        + [{"name": "scratch", "mountPath": "/sub", "subPath": "a/b"}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                      "limits": {"cpu": "1", "memory": "128Mi", "hugepages-2Mi": "2Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTPS",
                                      "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                          "initialDelaySeconds": 5, "terminationGracePeriodSeconds": 10},
        "readinessProbe": {"tcpSocket": {"port": 80}, "successThreshold": 2},
        "startupProbe": {"grpc": {"port": 9000}},
        "lifecycle": {"postStart": {"exec": {"command": ["true"]}},
                      "preStop": {"sleep": {"seconds": 5}}},
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000,
                            "allowPrivilegeEscalation": False, "procMount": "Default",
                            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                            "seccompProfile": {"type": "Localhost",
                                               "localhostProfile": "p.json"}}})],
})
KITCHEN_SINK_SERVICE = change(SERVICE, spec={
    "type": "NodePort", "selector": {"app": "web"}, "sessionAffinity": "ClientIP",
    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
    "externalIPs": ["192.168.1.50"], "externalTrafficPolicy": "Local",
    "internalTrafficPolicy": "Local", "clusterIP": "10.96.0.7",
    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080,
               "appProtocol": "http"},
              {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}]})
KITCHEN_SINK_NODE = change(NODE, spec__podCIDRs=["10.244.1.0/24", "fd00::/64"],
                           spec__providerID="pi://1", status={
    "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
    "allocatable": {"cpu": "3800m", "memory": "7Gi", "pods": "110"},
    "conditions": [{"type": "Ready", "status": "True"}],
    "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                  {"type": "Hostname", "address": "pi-1"}]})
KITCHEN_SINK_JOB = change(JOB, spec__completionMode="Indexed", spec__completions=3,
                          spec__parallelism=3, spec__activeDeadlineSeconds=600,
                          spec__ttlSecondsAfterFinished=60, spec__backoffLimitPerIndex=1,
                          spec__maxFailedIndexes=1, status={
    "active": 1, "succeeded": 1, "failed": 0, "ready": 1,
    "uncountedTerminatedPods": {"succeeded": ["u1"], "failed": ["u2"]},
    "conditions": [{"type": "Complete", "status": "False"}]})
KITCHEN_SINK_DEPLOYMENT = change(DEPLOYMENT, spec__replicas=3, spec__minReadySeconds=5,
                                 spec__strategy={"type": "RollingUpdate", "rollingUpdate": {
                                     "maxUnavailable": 1, "maxSurge": "50%"}},
                                 spec__selector={"matchLabels": {"app": "web"},
                                                 "matchExpressions": [{
                                                     "key": "tier", "operator": "DoesNotExist"}]},
                                 status={"replicas": 3, "readyReplicas": 2,
                                         "availableReplicas": 2, "updatedReplicas": 3,
                                         "observedGeneration": 4, "collisionCount": 1})

VALID = [
    ("v1/Pod", KITCHEN_SINK_POD),
    ("v1/Service", KITCHEN_SINK_SERVICE),
    ("v1/Node", KITCHEN_SINK_NODE),
    ("batch/v1/Job", KITCHEN_SINK_JOB),
    ("apps/v1/Deployment", KITCHEN_SINK_DEPLOYMENT),
    ("apps/v1/DaemonSet", change(DAEMONSET, spec__updateStrategy={"type": "OnDelete"})),
    ("v1/Pod", POD),
    ("v1/Pod", change(POD, metadata__name=DELETE, metadata__generateName="web-")),
    ("v1/Pod", change(POD, spec__volumes=[{"name": "data"}, {"name": "cfg",
                                                              "configMap": {"name": "c"}}],
                      spec__containers_0___volumeMounts=[{"name": "data", "mountPath": "/d"},
                                                         {"name": "cfg", "mountPath": "/c"}])),
    ("v1/Pod", change(POD, spec__hostNetwork=True)),  # hostPort defaults to containerPort
    ("v1/Pod", change(POD, spec__containers_0___resources={
        "requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "1Gi",
                                                                   "example.com/dongle": 1}})),
    ("v1/Node", NODE),
    ("v1/Namespace", NAMESPACE),
    ("v1/Service", SERVICE),
    ("v1/Service", change(SERVICE, spec__clusterIP="None", spec__ports=DELETE)),
    ("v1/Service", change(SERVICE, spec__type="NodePort", spec__ports_0___nodePort=30080)),
    ("v1/Endpoints", ENDPOINTS),
    ("v1/ConfigMap", CONFIG_MAP),
    ("v1/Secret", SECRET),
    ("v1/Secret", TLS),
    ("v1/Secret", {"metadata": meta("s"), "stringData": {"token": "t"}}),
    ("v1/Event", EVENT),
    ("apps/v1/Deployment", DEPLOYMENT),
    ("apps/v1/Deployment", change(DEPLOYMENT, spec__strategy={"type": "Recreate"})),
    ("apps/v1/ReplicaSet", DEPLOYMENT),
    ("apps/v1/DaemonSet", DAEMONSET),
    ("batch/v1/Job", JOB),
    ("batch/v1/Job", change(JOB, spec__manualSelector=True,
                            spec__selector={"matchLabels": {"app": "web"}})),
    ("example.com/v1/Widget", {"metadata": meta("w")}),
]


@pytest.mark.parametrize(("key", "obj"), VALID, ids=[f"{k}-{i}" for i, (k, _) in enumerate(VALID)])
def test_valid_objects(key, obj):
    assert validate(key, obj) == []


def _check(errs, expected):
    got = sorted((e.field, e.reason) for e in errs)
    want = sorted((f, r) for f, r, *_ in expected)
    assert got == want, "\n".join(str(e) for e in errs)
    for f, r, *fragment in expected:
        if fragment:
            messages = [str(e) for e in errs if e.field == f and e.reason == r]
            assert any(fragment[0] in m for m in messages), (fragment[0], messages)


SUBDOMAIN = "a lowercase RFC 1123 subdomain must consist of"
QUANTITY = ("quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")

CREATE = [
    # (id, key, object, expected [(field, reason[, message fragment])])
    # -- metadata
    ("name required", "v1/Pod", change(POD, metadata__name=DELETE),
     [("metadata.name", REQ, "name or generateName is required")]),
    ("name format", "v1/Pod", change(POD, metadata__name="Web_1"),
     [("metadata.name", INV, 'Invalid value: "Web_1": ' + SUBDOMAIN)]),
    ("generateName format", "v1/Pod",
     change(POD, metadata__name=DELETE, metadata__generateName="Web-"),
     [("metadata.generateName", INV, SUBDOMAIN)]),
    ("namespace required", "v1/Pod", change(POD, metadata__namespace=DELETE),
     [("metadata.namespace", REQ)]),
    ("namespace format", "v1/Pod", change(POD, metadata__namespace="a.b"),
     [("metadata.namespace", INV, "must not contain dots")]),
    ("namespace forbidden on nodes", "v1/Node", change(NODE, metadata__namespace="default"),
     [("metadata.namespace", FORB, "not allowed on this type")]),
    ("labels", "v1/Pod", change(POD, metadata__labels={"-k": "v", "ok": "bad value", "n": 1}),
     [("metadata.labels", INV, 'Invalid value: "-k": name part must consist'),
      ("metadata.labels", INV, 'Invalid value: "bad value": a valid label must be'),
      ("metadata.labels[n]", INV, "must be of type string")]),
    ("annotations", "v1/Pod",
     change(POD, metadata__annotations={"Example.COM/Key": "x", "a": "x" * (256 * 1024)}),
     [("metadata.annotations", LONG, "Too long: must have at most 262144 bytes")]),
    ("owner references", "v1/Pod", change(POD, metadata__ownerReferences=[
        {"apiVersion": "apps/", "kind": "", "name": "a", "uid": "", "controller": True},
        {"apiVersion": "v1", "kind": "Event", "name": "b", "uid": "u", "controller": True}]),
     [("metadata.ownerReferences.apiVersion", INV, "version must not be empty"),
      ("metadata.ownerReferences.kind", INV, "must not be empty"),
      ("metadata.ownerReferences.uid", INV, "must not be empty"),
      ("metadata.ownerReferences", INV, "/v1, Kind=Event is disallowed from being an owner"),
      ("metadata.ownerReferences", INV, "Only one reference can have Controller set to true")]),
    ("finalizers", "v1/Pod",
     change(POD, metadata__finalizers=["example.com/ok", "orphan", "custom", "foregroundDeletion"]),
     [("metadata.finalizers[2]", INV, "name is neither a standard finalizer name nor is it "
                                     "fully qualified"),
      ("metadata.finalizers", INV, "finalizer orphan and foregroundDeletion cannot be both set")]),
    # -- pod: containers
    ("containers required", "v1/Pod", change(POD, spec__containers=[]),
     [("spec.containers", REQ)]),
    ("container name and image", "v1/Pod", change(POD, spec__containers=[{"name": "App"}]),
     [("spec.containers[0].name", INV, "a lowercase RFC 1123 label"),
      ("spec.containers[0].image", REQ)]),
    ("image whitespace", "v1/Pod", change(POD, spec__containers_0___image=" nginx"),
     [("spec.containers[0].image", INV, "must not have leading or trailing whitespace")]),
    ("duplicate container names", "v1/Pod",
     change(POD, spec__containers=[CONTAINER, change(CONTAINER, ports=[])],
            spec__initContainers=[{"name": "app", "image": "busybox"}]),
     [("spec.containers[1].name", DUP), ("spec.initContainers[0].name", DUP)]),
    ("ports", "v1/Pod", change(POD, spec__containers_0___ports=[
        {"containerPort": 0}, {"containerPort": 70000, "protocol": "HTTP", "name": "Web"},
        {"containerPort": 81, "name": "http"}, {"containerPort": 82, "name": "http"},
        {"containerPort": 83, "hostPort": -1}]),
     [("spec.containers[0].ports[0].containerPort", REQ),
      ("spec.containers[0].ports[1].containerPort", INV, "must be between 1 and 65535, inclusive"),
      ("spec.containers[0].ports[1].protocol", UNS,
       'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
      ("spec.containers[0].ports[1].name", INV, "must contain only alpha-numeric characters"),
      ("spec.containers[0].ports[3].name", DUP),
      ("spec.containers[0].ports[4].hostPort", INV)]),
    ("host port conflict", "v1/Pod", change(POD, spec__containers_0___ports=[
        {"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}]),
     [("spec.containers[0].ports[1].hostPort", DUP, '"TCP//8080"')]),
    ("host network ports", "v1/Pod", change(POD, spec__hostNetwork=True,
                                            spec__containers_0___ports_0___hostPort=8080),
     [("spec.containers[0].ports[0].hostPort", INV,
       "must match `containerPort` when `hostNetwork` is true")]),
    ("env", "v1/Pod", change(POD, spec__containers_0___env=[
        {"name": ""}, {"name": "A=B"}, {"name": "X", "valueFrom": {}},
        {"name": "Y", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "Z", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}},
        {"name": "W", "valueFrom": {"secretKeyRef": {"name": "s", "key": ""}}}]),
     [("spec.containers[0].env[0].name", REQ),
      ("spec.containers[0].env[1].name", INV, "printable ASCII characters other than '='"),
      ("spec.containers[0].env[2].valueFrom", INV, "must specify one of: `fieldRef`"),
      ("spec.containers[0].env[3].valueFrom", INV, "may not be specified when `value` is not "
                                                   "empty"),
      ("spec.containers[0].env[4].valueFrom.fieldRef.fieldPath", UNS),
      ("spec.containers[0].env[5].valueFrom.secretKeyRef.key", REQ)]),
    ("envFrom", "v1/Pod", change(POD, spec__containers_0___envFrom=[
        {"prefix": "P_"}, {"configMapRef": {"name": "c"}, "secretRef": {"name": "s"}}]),
     [("spec.containers[0].envFrom", INV, "must specify one of: `configMapRef` or `secretRef`"),
      ("spec.containers[0].envFrom", INV, "may not have more than one field specified")]),
    ("policies", "v1/Pod", change(POD, spec__restartPolicy="Sometimes", spec__dnsPolicy="Any",
                                  spec__containers_0___imagePullPolicy="Maybe",
                                  spec__containers_0___terminationMessagePolicy="Log"),
     [("spec.restartPolicy", UNS, 'supported values: "Always", "OnFailure", "Never"'),
      ("spec.dnsPolicy", UNS), ("spec.containers[0].imagePullPolicy", UNS),
      ("spec.containers[0].terminationMessagePolicy", UNS)]),
    ("explicitly emptied grace period", "v1/Pod",
     change(POD, spec__terminationGracePeriodSeconds=None, spec__restartPolicy=""),
     []),  # defaulting refills both
    # -- pod: resources
    ("bad quantity", "v1/Pod", change(POD, spec__containers_0___resources={
        "requests": {"cpu": "2x"}}),
     [("spec.containers[0].resources.requests[cpu]", INV, 'Invalid value: "2x": ' + QUANTITY)]),
    ("requests above limits", "v1/Pod", change(POD, spec__containers_0___resources={
        "requests": {"cpu": "1500m", "memory": "-1"}, "limits": {"cpu": "1"}}),
     [("spec.containers[0].resources.requests", INV,
       'Invalid value: "1500m": must be less than or equal to cpu limit of 1'),
      ("spec.containers[0].resources.requests[memory]", INV,
       'Invalid value: "-1": must be greater than or equal to 0')]),
    # In a template, so that limits are not copied into requests as they are for pods.
    ("resource names", "apps/v1/Deployment", change(
        DEPLOYMENT, spec__template__spec__containers_0___resources={
            "limits": {"foo": "1", "pods": "1", "example.com/gpu": "0.5", "a/b/c": "1"},
            "requests": {"example.com/dongle": "1"}}),
     [("spec.template.spec.containers[0].resources.limits[foo]", INV,
       "must be a standard resource type or fully qualified"),
      ("spec.template.spec.containers[0].resources.limits[foo]", INV,
       "must be a standard resource for containers"),
      ("spec.template.spec.containers[0].resources.limits[pods]", INV,
       "must be a standard resource for containers"),
      ("spec.template.spec.containers[0].resources.limits[example.com/gpu]", INV,
       'Invalid value: "500m": must be an integer'),
      ("spec.template.spec.containers[0].resources.limits[a/b/c]", INV, "a qualified name"),
      ("spec.template.spec.containers[0].resources.limits", REQ,
       "Limit must be set for non overcommitable resources")]),
    ("extended resources equal", "v1/Pod", change(POD, spec__containers_0___resources={
        "limits": {"example.com/gpu": "2"}, "requests": {"example.com/gpu": "1"}}),
     [("spec.containers[0].resources.requests", INV, "must be equal to example.com/gpu limit "
                                                     "of 2")]),
    # -- pod: volumes
    ("volumes", "v1/Pod", change(POD, spec__volumes=[
        {"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}},
        {"name": "B", "configMap": {}}, {"name": "c", "secret": {"secretName": "s"},
                                         "hostPath": {"path": "/x"}},
        {"name": "d", "hostPath": {"path": "/x/../etc", "type": "Weird"}},
        {"name": "e", "secret": {"secretName": "s", "defaultMode": 512,
                                 "items": [{"key": "k", "path": "/abs"}]}}]),
     [("spec.volumes[1].name", DUP),
      ("spec.volumes[2].name", INV), ("spec.volumes[2].configMap.name", REQ),
      # Kubernetes checks hostPath before secret: the later one is the extra.
      ("spec.volumes[3].secret", FORB, "may not specify more than 1 volume type"),
      ("spec.volumes[4].hostPath.path", INV, "must not contain '..'"),
      ("spec.volumes[4].hostPath.type", UNS),
      ("spec.volumes[5].secret.defaultMode", INV, "must be a number between 0 and 0777 (octal)"),
      ("spec.volumes[5].secret.items[0].path", INV, "must be a relative path")]),
    ("volume mounts", "v1/Pod", change(POD, spec__volumes=[{"name": "data"}],
                                       spec__containers_0___volumeMounts=[
                                           {"name": "data", "mountPath": "/d"},
                                           {"name": "nope", "mountPath": "/d"},
                                           {"name": "data", "mountPath": "",
                                            "subPath": "../x"}]),
     [("spec.containers[0].volumeMounts[1].name", NF, 'Not found: "nope"'),
      ("spec.containers[0].volumeMounts[1].mountPath", INV, "must be unique"),
      ("spec.containers[0].volumeMounts[2].mountPath", REQ),
      ("spec.containers[0].volumeMounts.subPath", INV, "must not contain '..'")]),
    # -- pod: probes and lifecycle
    ("probes", "v1/Pod", change(POD, spec__containers_0___livenessProbe={
        "exec": {"command": ["true"]}, "httpGet": {"port": 80}, "successThreshold": 2},
        spec__containers_0___readinessProbe={"periodSeconds": -1},
        spec__containers_0___startupProbe={"httpGet": {"port": 0}},
        spec__containers_0___lifecycle={"preStop": {"sleep": {"seconds": 60}}}),
     [("spec.containers[0].livenessProbe.httpGet", FORB, "may not specify more than 1 handler"),
      ("spec.containers[0].livenessProbe.successThreshold", INV, "must be 1"),
      ("spec.containers[0].readinessProbe", REQ, "must specify a handler type"),
      ("spec.containers[0].readinessProbe.periodSeconds", INV),
      ("spec.containers[0].startupProbe.httpGet.port", INV),
      ("spec.containers[0].lifecycle.preStop.sleep", INV,
       "must be non-negative and less than terminationGracePeriodSeconds (30)")]),
    ("init containers", "v1/Pod", change(POD, spec__initContainers=[
        {"name": "i1", "image": "b", "readinessProbe": {"exec": {"command": ["x"]}},
         "restartPolicy": "OnFailure"},
        {"name": "i2", "image": "b", "restartPolicy": "Always",
         "readinessProbe": {"exec": {"command": ["x"]}}}],
        spec__containers_0___restartPolicy="Always"),
     [("spec.initContainers[0].restartPolicy", UNS),
      ("spec.initContainers[0].readinessProbe", FORB, "may not be set for init containers "
                                                      "without restartPolicy=Always"),
      ("spec.containers[0].restartPolicy", FORB, "may not be set for non-init containers")]),
    # -- pod: scheduling
    ("node selector", "v1/Pod", change(POD, spec__nodeSelector={"disk": "s s d"}),
     [("spec.nodeSelector", INV)]),
    ("tolerations", "v1/Pod", change(POD, spec__tolerations=[
        {"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Near"},
        {"key": "k", "effect": "Sometimes"}, {"key": "k", "effect": "NoSchedule",
                                               "tolerationSeconds": 5},
        {"key": "k", "operator": "Exists", "value": "v"}, {"operator": "Exists"}]),
     [("spec.tolerations[0].operator", INV, "operator must be Exists when `key` is empty"),
      ("spec.tolerations[1].operator", UNS, 'supported values: "Equal", "Exists"'),
      ("spec.tolerations[2].effect", UNS,
       'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'),
      ("spec.tolerations[3].effect", INV, "effect must be 'NoExecute' when `tolerationSeconds` "
                                          "is set"),
      ("spec.tolerations[4].operator", INV, "value must be empty when `operator` is 'Exists'")]),
    ("affinity", "v1/Pod", change(POD, spec__affinity={
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 0, "preference": {"matchExpressions": [
                    {"key": "k", "operator": "Near", "values": ["a"]}]}}]},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}]}}),
     [("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
       "nodeSelectorTerms", REQ, "must have at least one node selector term"),
      ("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
       INV, "must be in the range 1-100"),
      ("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]."
       "preference.matchExpressions[0].operator", INV, "not a valid selector operator"),
      ("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]."
       "labelSelector.matchExpressions[0].values", REQ),
      ("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]."
       "topologyKey", REQ, "can not be empty"),
      # ...and, as in Kubernetes, the qualified-name rule reports "" twice more.
      ("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]."
       "topologyKey", INV, "name part must be non-empty"),
      ("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]."
       "topologyKey", INV, "name part must consist of")]),
    ("pod spec fields", "v1/Pod", change(POD, spec__activeDeadlineSeconds=0,
                                         spec__nodeName="Pi_1", spec__hostname="a.b",
                                         spec__ephemeralContainers=[{"name": "dbg"}],
                                         spec__dnsPolicy="None"),
     [("spec.activeDeadlineSeconds", INV, "must be between 1 and 2147483647, inclusive"),
      ("spec.nodeName", INV), ("spec.hostname", INV, "must not contain dots"),
      ("spec.ephemeralContainers", FORB, "cannot be set on create"),
      ("spec.dnsConfig", REQ, "must provide `dnsConfig` when `dnsPolicy` is None")]),
    ("wrong JSON types", "v1/Pod", change(POD, spec__containers_0___ports="80",
                                          spec__priority="high", spec__volumes={"a": 1}),
     [("spec.containers[0].ports", INV, "must be of type array"),
      ("spec.volumes", INV, "must be of type array")]),
    # -- nodes and namespaces
    ("node", "v1/Node", change(NODE, spec__podCIDR="10.244.1.0", spec__taints=[
        {"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"},
        {"key": "", "value": "a b", "effect": "Bad"}],
        status__capacity={"cpu": "four"}),
     [("spec.podCIDR", INV, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"),
      ("spec.taints[1]", DUP, "taints must be unique by key and effect pair"),
      ("spec.taints[2].key", INV, "name part must be non-empty"),
      ("spec.taints[2].key", INV, "name part must consist of"),
      ("spec.taints[2].value", INV), ("spec.taints[2].effect", UNS),
      ("status.capacity.cpu", INV, QUANTITY)]),
    ("namespace", "v1/Namespace", change(NAMESPACE, metadata__name="Team.A",
                                         spec__finalizers=["custom"]),
     [("metadata.name", INV, "a lowercase RFC 1123 label"),
      ("spec.finalizers", INV, "name is neither a standard finalizer name")]),
    # -- services and endpoints
    ("service ports", "v1/Service", change(SERVICE, spec__ports=[
        {"port": 80}, {"port": 0, "name": "b", "protocol": "HTTP", "targetPort": "Http"},
        {"port": 80, "name": "c", "nodePort": 30001, "targetPort": 70000}]),
     [("spec.ports[0].name", REQ),
      ("spec.ports[1].port", INV, "must be between 1 and 65535, inclusive"),
      ("spec.ports[1].protocol", UNS), ("spec.ports[1].targetPort", INV),
      ("spec.ports[2].nodePort", FORB, "may not be used when `type` is 'ClusterIP'"),
      ("spec.ports[2].targetPort", INV),
      ("spec.ports[2]", DUP, '{"port":80,"protocol":"TCP"}')]),
    ("service ports required", "v1/Service", change(SERVICE, spec__ports=[]),
     [("spec.ports", REQ)]),
    ("service type", "v1/Service", change(SERVICE, spec__type="LoadBalancer"),
     [("spec.type", UNS, 'Unsupported value: "LoadBalancer": supported values: "ClusterIP", '
                         '"NodePort"')]),
    ("node ports", "v1/Service", change(SERVICE, spec__type="NodePort", spec__ports=[
        {"port": 80, "name": "a", "nodePort": 80}, {"port": 81, "name": "b", "nodePort": 30000},
        {"port": 82, "name": "c", "nodePort": 30000}]),
     [("spec.ports[0].nodePort", INV, "provided port is not in the valid range. The range of "
                                      "valid ports is 30000-32767"),
      ("spec.ports[2].nodePort", DUP)]),
    ("headless node port", "v1/Service", change(SERVICE, spec__type="NodePort",
                                                spec__clusterIP="None"),
     [("spec.clusterIPs[0]", INV, "may not be set to 'None' for NodePort services")]),
    ("service fields", "v1/Service", change(SERVICE, metadata__name="1web", spec__clusterIP="10.1",
                                            spec__sessionAffinity="Sticky",
                                            spec__selector={"app": "a b"},
                                            spec__externalTrafficPolicy="Local"),
     [("metadata.name", INV, "a DNS-1035 label must consist of"),
      ("spec.clusterIPs[0]", INV, "must be a valid IP address"),
      ("spec.sessionAffinity", UNS), ("spec.selector", INV),
      ("spec.externalTrafficPolicy", INV, "may only be set for externally-accessible services")]),
    ("client IP timeout", "v1/Service", change(SERVICE, spec__sessionAffinity="ClientIP",
                                               spec__sessionAffinityConfig={
                                                   "clientIP": {"timeoutSeconds": 0}}),
     [("spec.sessionAffinityConfig.clientIP.timeoutSeconds", INV,
       "must be greater than 0 and less than 86400")]),
    ("endpoints", "v1/Endpoints", change(ENDPOINTS, subsets=[
        {"ports": [{"port": 80}]},
        {"addresses": [{"ip": "127.0.0.1"}, {"ip": "x"}],
         "ports": [{"port": 80}, {"port": 81, "name": "b", "protocol": "ICMP"}]}]),
     [("subsets[0]", REQ, "must specify `addresses` or `notReadyAddresses`"),
      ("subsets[1].addresses[0].ip", INV, "may not be in the loopback range"),
      ("subsets[1].addresses[1].ip", INV, "must be a valid IP address"),
      ("subsets[1].ports[0].name", REQ), ("subsets[1].ports[1].protocol", UNS)]),
    # -- config maps, secrets, events
    ("config map keys", "v1/ConfigMap", change(CONFIG_MAP, data={"a/b": "x", "..": "y", "b": "z"}),
     [("data[a/b]", INV, "a valid config key must consist of alphanumeric characters"),
      ("data[..]", INV, "must not be '..'"),
      ("data[b]", INV, "duplicate of key present in binaryData")]),
    ("config map size", "v1/ConfigMap", change(CONFIG_MAP, data={"big": "x" * (1024 * 1024)}),
     [("[]", LONG, "[]: Too long: must have at most 1048576 bytes")]),
    ("config map binary", "v1/ConfigMap", change(CONFIG_MAP, binaryData={"b": "not base64!"}),
     [("binaryData[b]", INV, "illegal base64 data")]),
    ("secret data", "v1/Secret", change(SECRET, data={"k": "***", "a b": "eA=="}),
     [("data[k]", INV, 'Invalid value: "<secret contents redacted>": illegal base64 data'),
      ("data[a b]", INV)]),
    ("tls secret keys", "v1/Secret", change(TLS, data={"tls.crt": "YQ=="}),
     [("data[tls.key]", REQ)]),
    ("docker config", "v1/Secret", {"metadata": meta("reg"),
                                     "type": "kubernetes.io/dockerconfigjson",
                                     "data": {".dockerconfigjson": "bm90IGpzb24="}},
     [("data[.dockerconfigjson]", INV)]),
    ("event", "v1/Event", change(EVENT, involvedObject=DELETE, type="Info",
                                 metadata__namespace="other"),
     [("involvedObject", REQ), ("type", UNS, 'supported values: "Normal", "Warning"'),
      ("involvedObject.namespace", INV, "does not match event.namespace")]),
    # -- apps
    ("deployment selector", "apps/v1/Deployment", change(DEPLOYMENT, spec__selector=DELETE),
     [("spec.selector", REQ),
      ("spec.template.metadata.labels", INV, "`selector` does not match template `labels`")]),
    ("deployment empty selector", "apps/v1/Deployment", change(DEPLOYMENT, spec__selector={}),
     [("spec.selector", INV, "empty selector is invalid for deployment")]),
    ("deployment mismatch", "apps/v1/Deployment",
     change(DEPLOYMENT, spec__template__metadata__labels={"app": "api"}),
     [("spec.template.metadata.labels", INV,
       'Invalid value: {"app":"api"}: `selector` does not match template `labels`')]),
    ("deployment selector expressions", "apps/v1/Deployment", change(
        DEPLOYMENT, spec__selector={"matchExpressions": [{"key": "app", "operator": "Is",
                                                          "values": ["web"]}]}),
     [("spec.selector.matchExpressions[0].operator", INV, "not a valid selector operator"),
      ("spec.selector", INV, "invalid label selector")]),
    ("deployment numbers", "apps/v1/Deployment", change(
        DEPLOYMENT, spec__replicas=-1, spec__revisionHistoryLimit=-1, spec__minReadySeconds=700),
     [("spec.replicas", INV, "must be greater than or equal to 0"),
      ("spec.revisionHistoryLimit", INV),
      ("spec.progressDeadlineSeconds", INV, "must be greater than minReadySeconds")]),
    ("deployment strategy zero", "apps/v1/Deployment", change(
        DEPLOYMENT, spec__strategy={"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}}),
     [("spec.strategy.rollingUpdate.maxUnavailable", INV, "may not be 0 when `maxSurge` is 0")]),
    ("deployment strategy values", "apps/v1/Deployment", change(
        DEPLOYMENT, spec__strategy={"rollingUpdate": {"maxUnavailable": "110%",
                                                      "maxSurge": "x"}}),
     [("spec.strategy.rollingUpdate.maxUnavailable", INV, "must not be greater than 100%"),
      ("spec.strategy.rollingUpdate.maxSurge", INV, "a valid percent string")]),
    ("deployment strategy type", "apps/v1/Deployment", change(
        DEPLOYMENT, spec__strategy={"type": "BlueGreen"}),
     [("spec.strategy", UNS, 'supported values: "Recreate", "RollingUpdate"')]),
    ("recreate with rolling update", "apps/v1/Deployment", change(
        DEPLOYMENT, spec__strategy={"type": "Recreate", "rollingUpdate": {}}),
     [("spec.strategy.rollingUpdate", FORB)]),
    ("deployment template", "apps/v1/Deployment", change(
        DEPLOYMENT, spec__template__spec__restartPolicy="Never",
        spec__template__spec__activeDeadlineSeconds=10,
        spec__template__spec__containers_0___image=""),
     [("spec.template.spec.restartPolicy", UNS, 'supported values: "Always"'),
      ("spec.template.spec.activeDeadlineSeconds", FORB,
       "activeDeadlineSeconds in ReplicaSet is not Supported"),
      ("spec.template.spec.containers[0].image", REQ)]),
    ("replicaset", "apps/v1/ReplicaSet", change(DEPLOYMENT, spec__replicas=-2, spec__selector={}),
     [("spec.replicas", INV), ("spec.selector", INV, "empty selector is invalid for replicaset")]),
    ("daemonset strategy", "apps/v1/DaemonSet", change(
        DAEMONSET, spec__updateStrategy={"rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}),
     [("spec.updateStrategy.rollingUpdate.maxSurge", INV,
       "may not be set when maxUnavailable is non-zero")]),
    ("daemonset strategy zero", "apps/v1/DaemonSet", change(
        DAEMONSET, spec__updateStrategy={"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
     [("spec.updateStrategy.rollingUpdate.maxUnavailable", REQ, "cannot be 0 when maxSurge is 0")]),
    ("daemonset template", "apps/v1/DaemonSet", change(
        DAEMONSET, spec__template__metadata__labels={}, spec__minReadySeconds=-1),
     [("spec.template.metadata.labels", INV), ("spec.minReadySeconds", INV)]),
    # -- batch
    ("job restart policy unset", "batch/v1/Job", change(JOB, spec__template__spec__restartPolicy=DELETE),
     [("spec.template.spec.restartPolicy", REQ, 'Required value: valid values: "OnFailure", '
                                                '"Never"')]),
    ("job numbers", "batch/v1/Job", change(JOB, spec__parallelism=-1, spec__backoffLimit=-1,
                                           spec__completionMode="Sometimes",
                                           spec__activeDeadlineSeconds=-5),
     [("spec.parallelism", INV), ("spec.backoffLimit", INV), ("spec.activeDeadlineSeconds", INV),
      ("spec.completionMode", UNS, 'supported values: "NonIndexed", "Indexed"')]),
    ("job manual selector", "batch/v1/Job", change(JOB, spec__manualSelector=True),
     [("spec.selector", REQ), ("spec.template.metadata.labels", INV)]),
    ("job selector mismatch", "batch/v1/Job", change(JOB, spec__selector={
        "matchLabels": {"app": "other"}}),
     [("spec.template.metadata.labels", INV, "`selector` does not match template `labels`")]),
    ("indexed job name", "batch/v1/Job", change(JOB, metadata__name="x" * 62, spec__completions=10,
                                                spec__completionMode="Indexed"),
     [("metadata.name", INV, "will not able to create pod with invalid DNS label")]),
]


@pytest.mark.parametrize(("key", "obj", "expected"), [c[1:] for c in CREATE],
                         ids=[c[0] for c in CREATE])
def test_create(key, obj, expected):
    _check(validate(key, obj), expected)


def stored(key, obj):
    obj = copy.deepcopy(obj)
    obj["metadata"].update(uid="u-1", resourceVersion="5", creationTimestamp="2024-01-01T00:00:00Z")
    default(key, obj)
    return obj


S_POD = stored("v1/Pod", change(POD, spec__tolerations=[{"key": "k", "operator": "Exists"}],
                                spec__activeDeadlineSeconds=100))
S_SERVICE = stored("v1/Service", change(SERVICE, spec__clusterIP="10.96.0.5"))
S_DEPLOYMENT = stored("apps/v1/Deployment", DEPLOYMENT)
S_JOB = stored("batch/v1/Job", change(JOB, spec__selector={"matchLabels": {"app": "web"}}))
S_NODE = stored("v1/Node", NODE)

UPDATE = [
    # (id, key, new, old, expected)
    ("pod image", "v1/Pod", change(S_POD, spec__containers_0___image="nginx:1.26"), S_POD, []),
    ("pod unchanged", "v1/Pod", S_POD, S_POD, []),
    ("pod uid left out", "v1/Pod", change(S_POD, metadata__uid=DELETE), S_POD, []),
    ("pod metadata", "v1/Pod", change(S_POD, metadata__uid="u-2", metadata__namespace="other",
                                      metadata__creationTimestamp="2025-01-01T00:00:00Z",
                                      metadata__labels={"new": "label"}), S_POD,
     [("metadata.uid", INV, "field is immutable"), ("metadata.namespace", INV),
      ("metadata.creationTimestamp", INV)]),
    ("pod spec", "v1/Pod", change(S_POD, spec__containers_0___ports_0___containerPort=8080), S_POD,
     [("spec", FORB, "pod updates may not change fields other than `spec.containers[*].image`,"
                     "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                     "`spec.tolerations` (only additions to existing tolerations),"
                     "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                     "previously negative)\n  spec.containers[0].ports[0].containerPort: 80 -> "
                     "8080")]),
    ("pod containers", "v1/Pod", change(S_POD, spec__containers=[
        CONTAINER, change(CONTAINER, name="two", ports=[])]), S_POD,
     [("spec.containers", FORB, "pod updates may not add or remove containers")]),
    ("pod deadline shorter", "v1/Pod", change(S_POD, spec__activeDeadlineSeconds=50), S_POD, []),
    ("pod deadline longer", "v1/Pod", change(S_POD, spec__activeDeadlineSeconds=500), S_POD,
     [("spec.activeDeadlineSeconds", INV, "must be less than or equal to previous value")]),
    ("pod deadline removed", "v1/Pod", change(S_POD, spec__activeDeadlineSeconds=DELETE), S_POD,
     [("spec.activeDeadlineSeconds", INV, "must not update from a positive integer to nil")]),
    ("toleration added", "v1/Pod", change(S_POD, spec__tolerations=[
        {"key": "k", "operator": "Exists"}, {"key": "j", "operator": "Exists"}]), S_POD, []),
    ("toleration changed", "v1/Pod", change(S_POD, spec__tolerations=[
        {"key": "k", "operator": "Exists", "effect": "NoSchedule"}]), S_POD,
     [("spec.tolerations", FORB, "existing toleration can not be modified except its "
                                 "tolerationSeconds")]),
    ("grace period 1 after negative", "v1/Pod",
     change(S_POD, spec__terminationGracePeriodSeconds=1),
     change(S_POD, spec__terminationGracePeriodSeconds=-1), []),
    ("node cidr", "v1/Node", change(S_NODE, spec__podCIDR="10.244.9.0/24",
                                    spec__taints=[], spec__unschedulable=True), S_NODE,
     [("spec.podCIDR", FORB, 'node updates may not change podCIDR except from "" to valid')]),
    ("service cluster IP", "v1/Service", change(S_SERVICE, spec__clusterIP="10.96.0.6",
                                                spec__clusterIPs=["10.96.0.6"]), S_SERVICE,
     [("spec.clusterIPs[0]", INV, "may not change once set")]),
    ("service cluster IP left out", "v1/Service",
     change(S_SERVICE, spec__clusterIP=DELETE, spec__clusterIPs=DELETE), S_SERVICE, []),
    ("service ports", "v1/Service", change(S_SERVICE, spec__ports_0___port=8080), S_SERVICE, []),
    ("immutable config map", "v1/ConfigMap", change(CONFIG_MAP, data={"new": "1"}, immutable=False),
     change(CONFIG_MAP, immutable=True),
     [("immutable", FORB, "field is immutable when `immutable` is set"), ("data", FORB)]),
    ("immutable secret", "v1/Secret", change(SECRET, data={}, type="example.com/other",
                                             immutable=True),
     change(SECRET, immutable=True),
     [("data", FORB), ("type", INV, "field is immutable")]),
    ("deployment scale and image", "apps/v1/Deployment", change(
        S_DEPLOYMENT, spec__replicas=5, spec__template__spec__containers_0___image="n:2"),
     S_DEPLOYMENT, []),
    ("deployment selector", "apps/v1/Deployment", change(
        S_DEPLOYMENT, spec__selector__matchLabels={"app": "web", "v": "2"},
        spec__template__metadata__labels={"app": "web", "v": "2"}), S_DEPLOYMENT,
     [("spec.selector", INV, "field is immutable")]),
    ("job template", "batch/v1/Job", change(S_JOB, spec__template__spec__containers_0___image="x"),
     S_JOB, [("spec.template", INV, "field is immutable")]),
    ("job selector and completions", "batch/v1/Job", change(
        S_JOB, spec__selector={"matchLabels": {"app": "web", "x": "y"}}, spec__completions=3),
     S_JOB,
     [("spec.selector", INV, "field is immutable"), ("spec.completions", INV),
      ("spec.template.metadata.labels", INV)]),
    ("suspended job placement", "batch/v1/Job", change(
        S_JOB, spec__template__spec__nodeSelector={"disk": "ssd"}),
     change(S_JOB, spec__suspend=True), []),
    ("job parallelism", "batch/v1/Job", change(S_JOB, spec__parallelism=4), S_JOB, []),
]


@pytest.mark.parametrize(("key", "new", "old", "expected"), [c[1:] for c in UPDATE],
                         ids=[c[0] for c in UPDATE])
def test_update(key, new, old, expected):
    _check(validate(key, new, old), expected)


STATUS = [
    # (id, key, new, old, expected) - writes to the status subresource
    ("pod status ok", "v1/Pod", change(S_POD, status={
        "phase": "Running", "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}],
        "hostIP": "192.168.1.10", "hostIPs": [{"ip": "192.168.1.10"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "app", "restartCount": 0}]}), S_POD, []),
    ("pod status bad", "v1/Pod", change(S_POD, spec__nodeName="pi-2", status={
        "phase": "Done", "podIP": "10.244.1.300", "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.2"}],
        "conditions": [{"type": "bad type!", "status": "Yes"}, {"status": "True"}],
        "containerStatuses": [{"name": "app", "restartCount": -1}]}), S_POD,
     [("status.nodeName", FORB, "may not be changed directly"),
      ("status.phase", UNS, 'supported values: "Pending", "Running", "Succeeded", "Failed", '
                            '"Unknown"'),
      ("status.podIP", INV), ("status.hostIPs[0].ip", INV, "must be equal to `hostIP`"),
      ("status.conditions[0].type", INV), ("status.conditions[0].status", UNS),
      ("status.conditions[1].type", REQ),
      ("status.containerStatuses[0].restartCount", INV, "must be greater than or equal to 0")]),
    ("node status", "v1/Node", change(S_NODE, status={
        "conditions": [{"type": "Ready", "status": "Maybe"}],
        "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                      {"type": "InternalIP", "address": "192.168.1.10"}],
        "capacity": {"cpu": "-1"}}), S_NODE,
     [("status.conditions[0].status", UNS), ("status.addresses[1]", DUP),
      ("status.capacity.cpu", INV, "must be greater than or equal to 0")]),
    ("namespace status", "v1/Namespace", change(stored("v1/Namespace", NAMESPACE),
                                                status={"phase": "Terminating"}),
     stored("v1/Namespace", NAMESPACE),
     [("status.Phase", INV, "may only be 'Active' if `deletionTimestamp` is empty")]),
    ("deployment status", "apps/v1/Deployment", change(S_DEPLOYMENT, status={
        "replicas": 2, "readyReplicas": 3, "availableReplicas": 3, "updatedReplicas": -1,
        "collisionCount": 0, "conditions": [{"type": "Available", "status": "Yes"}]}),
     change(S_DEPLOYMENT, status={"collisionCount": 1}),
     [("status.readyReplicas", INV, "cannot be greater than status.replicas"),
      ("status.availableReplicas", INV, "cannot be greater than status.replicas"),
      ("status.updatedReplicas", INV, "must be greater than or equal to 0"),
      ("status.collisionCount", INV, "cannot be decremented"),
      ("status.conditions[0].status", UNS)]),
    ("replicaset status", "apps/v1/ReplicaSet", change(S_DEPLOYMENT, status={
        "replicas": 1, "readyReplicas": 1, "availableReplicas": 2}), S_DEPLOYMENT,
     [("status.availableReplicas", INV, "cannot be greater than status.replicas"),
      ("status.availableReplicas", INV, "cannot be greater than readyReplicas")]),
    ("daemonset status", "apps/v1/DaemonSet", change(S_DEPLOYMENT, status={
        "numberReady": -1, "desiredNumberScheduled": "3"}), S_DEPLOYMENT,
     [("status.numberReady", INV), ("status.desiredNumberScheduled", INV,
                                    "must be of type integer")]),
    ("job status", "batch/v1/Job", change(S_JOB, status={
        "active": -1, "succeeded": 1,
        "uncountedTerminatedPods": {"succeeded": ["a", ""], "failed": ["a"]}}), S_JOB,
     [("status.active", INV), ("status.uncountedTerminatedPods.succeeded[1]", INV),
      ("status.uncountedTerminatedPods.failed[0]", DUP)]),
    ("status keeps metadata", "v1/ConfigMap", change(CONFIG_MAP, metadata__name="other"),
     CONFIG_MAP, [("metadata.name", INV, "field is immutable")]),
]


@pytest.mark.parametrize(("key", "new", "old", "expected"), [c[1:] for c in STATUS],
                         ids=[c[0] for c in STATUS])
def test_status(key, new, old, expected):
    _check(validate_status(key, new, old), expected)


def test_validation_does_not_touch_its_input_and_ignores_defaulting_order():
    obj = change(DEPLOYMENT, spec__replicas=-1)
    before = copy.deepcopy(obj)
    errs = validate("apps/v1/Deployment", obj)
    assert obj == before
    defaulted = copy.deepcopy(obj)
    default("apps/v1/Deployment", defaulted)
    assert validate("apps/v1/Deployment", defaulted) == errs


MALFORMED = [
    ("v1/Pod", {"metadata": "x", "spec": []}),
    ("v1/Pod", {"metadata": {"name": 5}, "spec": {"containers": [1, {"name": []}]}}),
    ("v1/Service", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": "80"}], "type": 3}}),
    ("apps/v1/Deployment", {"spec": {"selector": "app=web", "template": "x"}}),
    ("batch/v1/Job", {"spec": {"template": {"spec": {"containers": "x"}}}}),
    ("v1/Secret", {"data": {"k": 1}, "type": 7}),
    ("v1/Event", {"involvedObject": "pod"}),
]


@pytest.mark.parametrize(("key", "obj"), MALFORMED, ids=[f"{k}-{i}" for i, (k, _) in
                                                          enumerate(MALFORMED)])
def test_malformed_objects_give_errors_not_exceptions(key, obj):
    errs = validate(key, obj)
    assert errs
    # And the errors make a proper Kubernetes Status.
    status = Invalid("Thing", "t", errs).status()
    assert status["code"] == 422 and status["details"]["causes"]


def test_not_an_object():
    assert [str(e) for e in validate("v1/Pod", [])] == [
        ": Invalid value: []: must be of type object"]


def test_messages_read_like_kubectls():
    errs = validate("v1/Pod", change(POD, spec__containers_0___resources={
        "requests": {"cpu": "2x"}}))
    assert Invalid("Pod", "web", errs).message == (
        'Pod "web" is invalid: spec.containers[0].resources.requests[cpu]: Invalid value: "2x": '
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _replaced(obj, path, value):
    obj = copy.deepcopy(obj)
    if not path:
        return value
    target = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return obj


@pytest.mark.parametrize(("key", "obj"), VALID, ids=[f"{k}-{i}" for i, (k, _) in enumerate(VALID)])
def test_any_value_of_the_wrong_type_is_an_error_not_a_crash(key, obj):
    # Every field of every valid object, replaced by a value of every other JSON type.
    # Two of the nine types per field, rotating, keep this quick (an exhaustive run over all
    # nine found nothing more).
    wrong = (None, "x", -1, 1.5, True, [], {}, ["x"], {"x": 1})
    full = copy.deepcopy(obj)
    default(key, full)
    for n, path in enumerate(_paths(full)):
        for value in (wrong[n % len(wrong)], wrong[(n + 4) % len(wrong)]):
            broken = _replaced(full, path, value)
            if isinstance(broken, dict):
                default(key, copy.deepcopy(broken))
            validate(key, broken)
            validate(key, broken, full)
            validate_status(key, full, broken)
