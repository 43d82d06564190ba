"""Defaulting: the fields the apiserver fills in when an object is created or replaced.

Role: `default(key, obj)` mirrors the apiserver's defaulters (pkg/apis/core/v1/defaults.go,
apps/v1, batch/v1, plus the declarative `+default` tags and the few values the service
allocator and priority admission add), so objects read back from bramble look like the
same objects read back from Kubernetes. It runs before validation on every write.

Invariants:
- In place and idempotent: default(default(x)) == default(x).
- "" and a missing key both count as unset, as Go's zero values do; for Go pointer fields
  (replicas, suspend, ...) an explicit 0/false is a value and is kept.
- Never raises on malformed input: a field of the wrong type is left alone for validation
  to report with its path.
- A Job's generated selector and controller-uid labels need the uid: they are set once it
  is (create stamps it before defaulting; see the job section at the end).
- Not done here, by design: service clusterIP/nodePort allocation, tolerations and
  serviceAccount (admission in Kubernetes), namespace `spec.finalizers` (nothing in bramble
  would remove the "kubernetes" finalizer), Node defaults (none).
"""

from __future__ import annotations

import base64
import ipaddress
import math
from collections.abc import Callable
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from bramble.kube.quantity import canonicalize, format_quantity, parse_with_format

Obj = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800
# 0644, the mode Kubernetes gives files projected from secrets and config maps.
DEFAULT_VOLUME_FILE_MODE = 0o644
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# Every VolumeSource member; a volume with none of them becomes an emptyDir.
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)
_MILLI = Fraction(1, 1000)


def default(key: str, obj: Obj) -> None:
    """Fill in the defaults of an object of the resource type `key`, in place."""
    defaulter = _DEFAULTERS.get(key)
    if defaulter is not None and isinstance(obj, dict):
        defaulter(obj)


# --- small helpers ------------------------------------------------------------------------

def _unset(value: Any) -> bool:
    return value is None or value == ""


def _set(obj: Obj, key: str, value: Any) -> None:
    """Default a string or Go-pointer field: only a missing/None/"" value is replaced."""
    if _unset(obj.get(key)):
        obj[key] = value


def _set_nonzero(obj: Obj, key: str, value: int) -> None:
    """Default a Go non-pointer int field, where 0 means unset."""
    if obj.get(key) in (None, 0):
        obj[key] = value


def _dict(obj: Obj, key: str, create: bool = False) -> Obj | None:
    value = obj.get(key)
    if value is None and create:
        value = obj[key] = {}
    return value if isinstance(value, dict) else None


def _dicts(obj: Obj, key: str) -> list[Obj]:
    value = obj.get(key)
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def canonical_resource_list(resources: Obj) -> None:
    """Quantities in canonical form, rounded up to milli precision (SetDefaults_ResourceList).

    Unparseable values stay as they are, for validation to report.
    """
    for name, raw in list(resources.items()):
        try:
            value, fmt = parse_with_format(raw)
        except ValueError:
            continue
        milli = value / _MILLI
        if milli.denominator != 1:
            value = (math.ceil(milli) if milli > 0 else math.floor(milli)) * _MILLI
        resources[name] = format_quantity(value, fmt)


def _image_pull_policy(image: Any) -> str:
    # Always for ":latest" or no tag (which means latest); a digest alone pins the image.
    if not isinstance(image, str):
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if tag == "latest" or (not tag and not digest):
        return "Always"
    return "IfNotPresent"


# --- pods -----------------------------------------------------------------------------------

def _http_get(handler: Obj | None) -> None:
    if handler is None:
        return
    http_get = _dict(handler, "httpGet")
    if http_get is not None:
        _set(http_get, "path", "/")
        _set(http_get, "scheme", "HTTP")


def _probe(probe: Obj | None) -> None:
    if probe is None:
        return
    _set_nonzero(probe, "timeoutSeconds", 1)
    _set_nonzero(probe, "periodSeconds", 10)
    _set_nonzero(probe, "successThreshold", 1)
    _set_nonzero(probe, "failureThreshold", 3)
    _http_get(probe)


def _field_ref(holder: Obj | None) -> None:
    if holder is None:
        return
    field_ref = _dict(holder, "fieldRef")
    if field_ref is not None:
        _set(field_ref, "apiVersion", "v1")


def _container(container: Obj) -> None:
    if _unset(container.get("imagePullPolicy")):
        container["imagePullPolicy"] = _image_pull_policy(container.get("image"))
    _set(container, "terminationMessagePath", TERMINATION_MESSAGE_PATH)
    _set(container, "terminationMessagePolicy", "File")
    resources = _dict(container, "resources", create=True)
    if resources is not None:
        for part in ("limits", "requests"):
            resource_list = _dict(resources, part)
            if resource_list is not None:
                canonical_resource_list(resource_list)
    for port in _dicts(container, "ports"):
        _set(port, "protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(_dict(container, probe))
    lifecycle = _dict(container, "lifecycle")
    if lifecycle is not None:
        _http_get(_dict(lifecycle, "postStart"))
        _http_get(_dict(lifecycle, "preStop"))
    for env in _dicts(container, "env"):
        _field_ref(_dict(env, "valueFrom"))


def _volume(volume: Obj) -> None:
    if not any(volume.get(source) is not None for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        spec = _dict(volume, source)
        if spec is not None:
            _set(spec, "defaultMode", DEFAULT_VOLUME_FILE_MODE)
    downward = _dict(volume, "downwardAPI")
    if downward is not None:
        for item in _dicts(downward, "items"):
            _field_ref(item)
    projected = _dict(volume, "projected")
    if projected is not None:
        for source in _dicts(projected, "sources"):
            token = _dict(source, "serviceAccountToken")
            if token is not None:
                _set(token, "expirationSeconds", 3600)
            downward = _dict(source, "downwardAPI")
            for item in _dicts(downward, "items") if downward is not None else []:
                _field_ref(item)
    host_path = _dict(volume, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    empty_dir = _dict(volume, "emptyDir")
    if empty_dir is not None and "sizeLimit" in empty_dir:
        canonical_resource_list(empty_dir)


def default_pod_spec(spec: Obj, is_pod: bool) -> None:
    """SetDefaults_PodSpec and everything below it; `is_pod` adds what only Pods get
    (a PodSpec inside a Deployment is left as its author wrote those fields)."""
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    _set(spec, "terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS)
    _set(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in _dicts(spec, kind):
            _container(container)
    for volume in _dicts(spec, "volumes"):
        _volume(volume)
    overhead = _dict(spec, "overhead")
    if overhead is not None:
        canonical_resource_list(overhead)
    if not is_pod:
        return
    _set(spec, "enableServiceLinks", True)
    # Priority admission's defaults when no priorityClassName resolves to a class.
    _set(spec, "priority", 0)
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")
    for kind in ("initContainers", "containers"):
        for container in _dicts(spec, kind):
            # Limits without requests: the requests are the limits (SetDefaults_Pod).
            resources = _dict(container, "resources")
            limits = _dict(resources, "limits") if resources is not None else None
            if resources is None or not limits:
                continue
            requests = _dict(resources, "requests", create=True)
            if requests is not None:
                for name, value in limits.items():
                    requests.setdefault(name, value)
    if spec.get("hostNetwork") is True:
        for kind in ("initContainers", "containers"):
            for container in _dicts(spec, kind):
                for port in _dicts(container, "ports"):
                    if port.get("hostPort") in (None, 0):
                        port["hostPort"] = port.get("containerPort")


def _pod(obj: Obj) -> None:
    spec = _dict(obj, "spec", create=True)
    if spec is not None:
        default_pod_spec(spec, is_pod=True)


def _template(spec: Obj) -> None:
    template = _dict(spec, "template")
    pod_spec = _dict(template, "spec") if template is not None else None
    if pod_spec is not None:
        default_pod_spec(pod_spec, is_pod=False)


# --- core -----------------------------------------------------------------------------------

def _ip_family(ip: Any) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"


def _service(obj: Obj) -> None:
    spec = _dict(obj, "spec", create=True)
    if spec is None:
        return
    _set(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec.get("sessionAffinity") == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {
                "clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}}
    _set(spec, "type", "ClusterIP")
    service_type = spec.get("type")
    for port in _dicts(spec, "ports"):
        _set(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if service_type in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if service_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        _set(spec, "internalTrafficPolicy", "Cluster")
    if service_type == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    if service_type == "ExternalName":
        return
    # What the service REST storage does before validation: clusterIP and clusterIPs agree,
    # and a single-stack family is chosen (bramble clusters are single-stack).
    cluster_ip, cluster_ips = spec.get("clusterIP"), spec.get("clusterIPs")
    if not _unset(cluster_ip) and not cluster_ips:
        spec["clusterIPs"] = [cluster_ip]
    elif _unset(cluster_ip) and isinstance(cluster_ips, list) and cluster_ips:
        spec["clusterIP"] = cluster_ips[0]
    _set(spec, "ipFamilyPolicy", "SingleStack")
    if not spec.get("ipFamilies"):
        first = spec.get("clusterIP")
        spec["ipFamilies"] = [_ip_family(first) if first not in (None, "", "None") else "IPv4"]


def _secret(obj: Obj) -> None:
    _set(obj, "type", "Opaque")
    # The v1 conversion merges stringData into data (base64) and drops it; stringData wins.
    string_data = obj.get("stringData")
    if isinstance(string_data, dict):
        data = _dict(obj, "data", create=True)
        if data is not None and all(isinstance(v, str) for v in string_data.values()):
            for key, value in string_data.items():
                data[key] = base64.b64encode(value.encode()).decode()
            del obj["stringData"]


def _namespace(obj: Obj) -> None:
    metadata = _dict(obj, "metadata")
    name = metadata.get("name") if metadata is not None else None
    if isinstance(name, str) and name:
        labels = _dict(metadata, "labels", create=True)
        if labels is not None:
            labels[NAMESPACE_NAME_LABEL] = name
    status = _dict(obj, "status", create=True)
    if status is not None:
        _set(status, "phase", "Active")


def _endpoints(obj: Obj) -> None:
    for subset in _dicts(obj, "subsets"):
        for port in _dicts(subset, "ports"):
            _set(port, "protocol", "TCP")


# --- apps and batch ---------------------------------------------------------------------------

def _deployment(obj: Obj) -> None:
    spec = _dict(obj, "spec", create=True)
    if spec is None:
        return
    _set(spec, "replicas", 1)
    strategy = _dict(spec, "strategy", create=True)
    if strategy is not None:
        _set(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _dict(strategy, "rollingUpdate", create=True)
            if rolling is not None:
                _set(rolling, "maxUnavailable", "25%")
                _set(rolling, "maxSurge", "25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    _template(spec)


# --- ReplicationController (core/v1): the 1.0 ReplicaSet --------------------------------------

def _replication_controller(obj: Obj) -> None:
    """SetDefaults_ReplicationController: without a selector the RC selects its template's
    labels, and without labels of its own it carries them too (both as copies: the three
    maps stay independent once stored); one replica."""
    spec = _dict(obj, "spec", create=True)
    if spec is None:
        return
    template = _dict(spec, "template")
    template_meta = _dict(template, "metadata") if template is not None else None
    labels = template_meta.get("labels") if template_meta is not None else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        metadata = _dict(obj, "metadata", create=True)
        if metadata is not None and not metadata.get("labels"):
            metadata["labels"] = dict(labels)
    _set(spec, "replicas", 1)
    _template(spec)


def _replica_set(obj: Obj) -> None:
    spec = _dict(obj, "spec", create=True)
    if spec is None:
        return
    _set(spec, "replicas", 1)
    _template(spec)


def _daemon_set(obj: Obj) -> None:
    spec = _dict(obj, "spec", create=True)
    if spec is None:
        return
    strategy = _dict(spec, "updateStrategy", create=True)
    if strategy is not None:
        _set(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _dict(strategy, "rollingUpdate", create=True)
            if rolling is not None:
                _set(rolling, "maxUnavailable", 1)
                _set(rolling, "maxSurge", 0)
    _set(spec, "revisionHistoryLimit", 10)
    _template(spec)


def _job(obj: Obj) -> None:
    spec = _dict(obj, "spec", create=True)
    if spec is None:
        return
    # A non-parallel job may leave both unset; then both are 1.
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _set(spec, "parallelism", 1)
    _set(spec, "backoffLimit", 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(spec, "podReplacementPolicy",
         "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed")
    # Before the labels are copied: Kubernetes' Job shares its template's label map, so the
    # generated labels show on the Job too.
    _job_selector(obj)
    template = _dict(spec, "template")
    template_meta = _dict(template, "metadata") if template is not None else None
    template_labels = template_meta.get("labels") if template_meta is not None else None
    metadata = _dict(obj, "metadata", create=True)
    if isinstance(template_labels, dict) and template_labels and metadata is not None \
            and not metadata.get("labels"):
        metadata["labels"] = dict(template_labels)
    _template(spec)


# --- job: the generated selector (added with the Job controller, issue 4) ------------------

JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
JOB_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")


def _job_selector(obj: Obj) -> None:
    """jobStrategy.PrepareForCreate's generateSelector: unless manualSelector is true, the
    template gets the job-name and controller-uid labels (legacy and batch.kubernetes.io/)
    where it lacks them, and the selector matches the uid. Without a uid yet (an object that
    is not being created or stored) nothing happens; with one, repeating it changes nothing."""
    spec = _dict(obj, "spec")
    metadata = _dict(obj, "metadata")
    if spec is None or metadata is None or spec.get("manualSelector") is True:
        return
    uid, name = metadata.get("uid"), metadata.get("name")
    template = _dict(spec, "template")
    if not uid or not isinstance(uid, str) or not isinstance(name, str) or template is None:
        return
    template_meta = _dict(template, "metadata", create=True)
    labels = _dict(template_meta, "labels", create=True) if template_meta is not None else None
    if labels is None:
        return
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, name)
    for key in JOB_UID_LABELS:
        labels.setdefault(key, uid)
    if spec.get("selector") is None:
        spec["selector"] = {}
    selector = spec["selector"]
    if isinstance(selector, dict):
        match = _dict(selector, "matchLabels", create=True)
        if match is not None:
            match.setdefault(JOB_UID_LABELS[1], uid)


# --- HorizontalPodAutoscaler (autoscaling/v2) ---------------------------------------------

DEFAULT_CPU_UTILIZATION = 80


def _hpa_scale_up_rules() -> Obj:
    # Kubernetes' behaviour before `behavior` existed: double, or add 4 pods, per 15 s.
    return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _hpa_scale_down_rules() -> Obj:
    # No stabilizationWindowSeconds: left unset, the controller applies its own
    # (--horizontal-pod-autoscaler-downscale-stabilization, a ControllerSettings tunable).
    return {"selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _hpa_rules(rules: Any, defaults: Obj) -> Any:
    """copyHPAScalingRules: the set fields of `rules` over the defaults."""
    if rules is None:
        return defaults
    if not isinstance(rules, dict):
        return rules
    for key in ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"):
        if rules.get(key) is not None:
            defaults[key] = rules[key]
    return defaults


def _canonical_quantities(holder: Any, *keys: str) -> None:
    """Quantities as the apiserver serializes them ("0.5" -> "500m"); bad ones stay."""
    if not isinstance(holder, dict):
        return
    for key in keys:
        value = holder.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                holder[key] = canonicalize(value)
            except ValueError:
                pass


def _horizontal_pod_autoscaler(obj: Obj) -> None:
    """SetDefaults_HorizontalPodAutoscaler (autoscaling/v2): one replica at least, 80% CPU
    when no metric is given, and a behavior that is given filled in with the defaults."""
    spec = _dict(obj, "spec", create=True)
    if spec is None:
        return
    _set(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    for metric in _dicts(spec, "metrics"):
        for source in ("resource", "containerResource", "pods", "object", "external"):
            src = metric.get(source)
            if isinstance(src, dict):
                _canonical_quantities(src.get("target"), "value", "averageValue")
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _hpa_rules(behavior.get("scaleUp"), _hpa_scale_up_rules())
        behavior["scaleDown"] = _hpa_rules(behavior.get("scaleDown"), _hpa_scale_down_rules())
        for rules in (behavior["scaleUp"], behavior["scaleDown"]):
            _canonical_quantities(rules, "tolerance")


_DEFAULTERS: MappingProxyType[str, Callable[[Obj], None]] = MappingProxyType({
    "v1/Pod": _pod,
    "v1/Service": _service,
    "v1/Secret": _secret,
    "v1/Namespace": _namespace,
    "v1/Endpoints": _endpoints,
    "v1/ReplicationController": _replication_controller,
    "apps/v1/Deployment": _deployment,
    "apps/v1/ReplicaSet": _replica_set,
    "apps/v1/DaemonSet": _daemon_set,
    "batch/v1/Job": _job,
    "autoscaling/v2/HorizontalPodAutoscaler": _horizontal_pod_autoscaler,
})
