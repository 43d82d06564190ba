"""Validation of the core group (v1): Pod and pod templates, Node, Namespace, Service,
Endpoints, ConfigMap, Secret, Event.

Role: the rules of pkg/apis/core/validation/validation.go that matter to bramble, with the
same field paths and messages, so `kubectl` users see the errors they know.

Invariants:
- Objects arrive defaulted (the package entry points default a copy first), so a field the
  defaulters always fill is reported as Required when a client explicitly empties it, as
  Kubernetes does.
- Every function returns all the errors it finds; none raises on malformed input.
- bramble-specific narrowing is explicit and named: SERVICE_TYPES (no LoadBalancer or
  ExternalName), the NodePort range.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from bramble.kube import names
from bramble.kube.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from bramble.kube.quantity import format_quantity, parse_with_format
from bramble.master.api.validation.meta import (
    IMMUTABLE,
    MAX_INT32,
    NEGATIVE,
    Errs,
    Obj,
    as_list,
    child,
    cidr,
    dig,
    dns1123_label,
    dns1123_subdomain,
    get_int,
    get_list,
    get_map,
    get_str,
    immutable,
    index,
    ip_address,
    items,
    key,
    messages,
    non_special_ip,
    nonnegative_field,
    not_found,
    one_of,
    port_num_or_name,
    port_number,
    qualified_name,
    string_map,
    typed,
    validate_annotations,
    validate_finalizers,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONDITION_STATUSES = ("True", "False", "Unknown")
# Kubernetes also has LoadBalancer and ExternalName; bramble implements neither.
SERVICE_TYPES = ("ClusterIP", "NodePort")
NODE_PORT_RANGE = (30000, 32767)
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
MAX_DATA_SIZE = 1024 * 1024  # core.MaxSecretSize, for ConfigMaps and Secrets alike
FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048

# The order Kubernetes checks volume sources in: the first one set wins, later ones are
# "may not specify more than 1 volume type".
_VOLUME_SOURCE_ORDER = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret",
    "nfs", "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs",
    "quobyte", "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)
_HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                    "FileOrCreate", "Socket")
_ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                    "spec.serviceAccountName", "status.hostIP", "status.hostIPs",
                    "status.podIP", "status.podIPs")
_VOLUME_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name",
                       "metadata.namespace", "metadata.uid")
_RESOURCE_FIELD_PATHS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory",
                         "requests.cpu", "requests.ephemeral-storage", "requests.memory")
_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
# helper.IsStandardResourceName: what an unprefixed resource name may be at all.
_STANDARD_RESOURCES = frozenset({
    "cpu", "memory", "ephemeral-storage", "storage", "pods", "services",
    "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
    "requests.cpu", "requests.memory", "requests.ephemeral-storage", "requests.storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage",
})
_SYSTEM_POD_CONDITIONS = frozenset({"PodScheduled", "Ready", "Initialized"})
_UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
    "negative)",
)


def _scalar(value: Any) -> Any:
    """A value usable as a set member: JSON lists and objects are compared by their text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


# --- paths on disk ----------------------------------------------------------------------------

def _no_backsteps(target: str, path: str) -> Errs:
    if ".." in target.replace("\\", "/").split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def _local_descending_path(target: str, path: str) -> Errs:
    errs = [invalid(path, target, "must be a relative path")] if target.startswith("/") else []
    return errs + _no_backsteps(target, path)


def _local_non_reserved_path(target: str, path: str) -> Errs:
    errs = _local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs


def _file_mode(obj: Obj, name: str, path: str, errs: Errs) -> None:
    mode = get_int(obj, name, path, errs)
    if mode is not None and not 0 <= mode <= 0o777:
        errs.append(invalid(child(path, name), mode, FILE_MODE_ERROR))


# --- volumes ------------------------------------------------------------------------------------

def _key_to_paths(source: Obj, path: str, errs: Errs) -> None:
    for _, p, item in items(source.get("items"), child(path, "items"), errs):
        if not item.get("key"):
            errs.append(required(child(p, "key")))
        target = get_str(item, "path", p, errs)
        if not target:
            errs.append(required(child(p, "path")))
        errs += _local_non_reserved_path(target, child(p, "path"))
        _file_mode(item, "mode", p, errs)


def _downward_api_items(source: Obj, path: str, errs: Errs) -> None:
    for _, p, item in items(source.get("items"), path, errs):
        target = get_str(item, "path", p, errs)
        if not target:
            errs.append(required(child(p, "path")))
        errs += _local_non_reserved_path(target, child(p, "path"))
        field_ref = typed(item, "fieldRef", dict, p, errs)
        resource_ref = typed(item, "resourceFieldRef", dict, p, errs)
        if field_ref is not None:
            errs += _object_field_selector(field_ref, _VOLUME_FIELD_PATHS, child(p, "fieldRef"))
            if resource_ref is not None:
                errs.append(invalid(p, "resource", "fieldRef and resourceFieldRef can not be "
                                                   "specified simultaneously"))
        elif resource_ref is not None:
            errs += _resource_field_selector(resource_ref, child(p, "resourceFieldRef"),
                                             volume=True)
        else:
            errs.append(required(p, "one of fieldRef and resourceFieldRef is required"))
        _file_mode(item, "mode", p, errs)


def _volume_source(name: str, source: Any, path: str) -> Errs:
    errs: Errs = []
    if not isinstance(source, dict):
        return [invalid(path, source, "must be of type object")]
    if name == "emptyDir" and source.get("sizeLimit") is not None:
        try:
            if parse_with_format(source["sizeLimit"])[0] < 0:
                errs.append(forbidden(child(path, "sizeLimit"),
                                      "SizeLimit field must be a valid resource quantity"))
        except ValueError as err:
            errs.append(invalid(child(path, "sizeLimit"), source["sizeLimit"], str(err)))
    elif name == "hostPath":
        target = get_str(source, "path", path, errs)
        if not target:
            return errs + [required(child(path, "path"))]
        errs += _no_backsteps(target, child(path, "path"))
        if source.get("type") not in _HOST_PATH_TYPES:
            errs.append(not_supported(child(path, "type"), source.get("type"),
                                      list(_HOST_PATH_TYPES)))
    elif name in ("secret", "configMap"):
        field_name = "secretName" if name == "secret" else "name"
        if not source.get(field_name):
            errs.append(required(child(path, field_name)))
        _file_mode(source, "defaultMode", path, errs)
        _key_to_paths(source, path, errs)
    elif name == "persistentVolumeClaim":
        if not source.get("claimName"):
            errs.append(required(child(path, "claimName")))
    elif name == "downwardAPI":
        _file_mode(source, "defaultMode", path, errs)
        _downward_api_items(source, path, errs)
    elif name == "nfs":
        if not source.get("server"):
            errs.append(required(child(path, "server")))
        target = get_str(source, "path", path, errs)
        if not target:
            errs.append(required(child(path, "path")))
        if not target.startswith("/"):
            errs.append(invalid(child(path, "path"), target, "must be an absolute path"))
    elif name == "projected":
        _file_mode(source, "defaultMode", path, errs)
        for _, p, projection in items(source.get("sources"), child(path, "sources"), errs):
            count = 0
            for kind in ("secret", "configMap", "downwardAPI", "serviceAccountToken",
                         "clusterTrustBundle", "podCertificate"):
                part = projection.get(kind)
                if part is None:
                    continue
                count += 1
                if not isinstance(part, dict):
                    errs.append(invalid(child(p, kind), part, "must be of type object"))
                elif kind in ("secret", "configMap"):
                    if not part.get("name"):
                        errs.append(required(child(p, kind, "name")))
                    _key_to_paths(part, child(p, kind), errs)
                elif kind == "downwardAPI":
                    _downward_api_items(part, child(p, kind, "items"), errs)
                elif kind == "serviceAccountToken" and not part.get("path"):
                    errs.append(required(child(p, kind, "path")))
            if count != 1:
                errs.append(forbidden(p, "may not specify more than 1 volume type per source")
                            if count else required(p, "must specify one of: `configMap`, "
                                                      "`secret`, `downwardAPI` or "
                                                      "`serviceAccountToken`"))
    return errs


def _volumes(spec: Obj, path: str, errs: Errs) -> dict[str, Obj]:
    """Checks spec.volumes and returns the valid ones by name, for mounts to refer to."""
    volumes: dict[str, Obj] = {}
    for _, p, volume in items(spec.get("volumes"), path, errs):
        volume_errs: Errs = []
        count = 0
        for source in _VOLUME_SOURCE_ORDER:
            if volume.get(source) is None:
                continue
            if count:
                volume_errs.append(forbidden(child(p, source),
                                             "may not specify more than 1 volume type"))
                continue
            count += 1
            volume_errs += _volume_source(source, volume[source], child(p, source))
        if not count:
            volume_errs.append(required(p, "must specify a volume type"))
        name = get_str(volume, "name", p, volume_errs)
        if not name:
            volume_errs.append(required(child(p, "name")))
        else:
            volume_errs += dns1123_label(name, child(p, "name"))
        if name in volumes:
            volume_errs.append(duplicate(child(p, "name"), name))
        if volume_errs:
            errs += volume_errs
        else:
            volumes[name] = volume
    return volumes


# --- containers ---------------------------------------------------------------------------------

def _object_field_selector(selector: Obj, supported: tuple[str, ...], path: str) -> Errs:
    if not selector.get("apiVersion"):
        return [required(child(path, "apiVersion"))]
    field_path = selector.get("fieldPath")
    if not field_path or not isinstance(field_path, str):
        return [required(child(path, "fieldPath"))]
    base, bracket, rest = field_path.partition("[")
    if bracket:
        subscript = rest.removesuffix("]").strip("'\"")
        if base == "metadata.annotations":
            return qualified_name(subscript.lower(), path)
        if base == "metadata.labels":
            return qualified_name(subscript, path)
        return [invalid(path, base, "does not support subscript")]
    if field_path not in supported:
        return [not_supported(child(path, "fieldPath"), field_path, list(supported))]
    return []


def _resource_field_selector(selector: Obj, path: str, volume: bool) -> Errs:
    resource = selector.get("resource")
    if volume and not selector.get("containerName"):
        return [required(child(path, "containerName"))]
    if not resource:
        return [required(child(path, "resource"))]
    if resource not in _RESOURCE_FIELD_PATHS and not str(resource).startswith(
            ("requests.hugepages-", "limits.hugepages-")):
        return [not_supported(child(path, "resource"), resource, list(_RESOURCE_FIELD_PATHS))]
    return []


def _key_selector(selector: Obj, path: str) -> Errs:
    name = selector.get("name") if isinstance(selector.get("name"), str) else ""
    errs = messages(child(path, "name"), name, names.name_is_dns_subdomain(name))
    k = selector.get("key") if isinstance(selector.get("key"), str) else ""
    if not k:
        errs.append(required(child(path, "key")))
    else:
        errs += messages(child(path, "key"), k, names.is_config_map_key(k))
    return errs


def _env(container: Obj, path: str, errs: Errs) -> None:
    for _, p, var in items(container.get("env"), child(path, "env"), errs):
        name = get_str(var, "name", p, errs)
        if not name:
            errs.append(required(child(p, "name")))
        else:
            errs += messages(child(p, "name"), name, names.is_env_var_name(name))
        value_from = typed(var, "valueFrom", dict, p, errs)
        if value_from is None:
            continue
        vp = child(p, "valueFrom")
        sources = 0
        for source, check in (
            ("fieldRef", lambda s, sp: _object_field_selector(s, _ENV_FIELD_PATHS, sp)),
            ("resourceFieldRef", lambda s, sp: _resource_field_selector(s, sp, volume=False)),
            ("configMapKeyRef", _key_selector),
            ("secretKeyRef", _key_selector),
        ):
            selector = typed(value_from, source, dict, vp, errs)
            if selector is not None:
                sources += 1
                errs += check(selector, child(vp, source))
        if sources == 0:
            errs.append(invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                        "`configMapKeyRef` or `secretKeyRef`"))
        elif var.get("value"):
            errs.append(invalid(vp, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            errs.append(invalid(vp, "", "may not have more than one field specified at a time"))
    for _, p, source in items(container.get("envFrom"), child(path, "envFrom"), errs):
        prefix = get_str(source, "prefix", p, errs)
        if prefix:
            errs += messages(child(p, "prefix"), prefix, names.is_env_var_name(prefix))
        count = 0
        for kind in ("configMapRef", "secretRef"):
            ref = typed(source, kind, dict, p, errs)
            if ref is None:
                continue
            count += 1
            ref_name = ref.get("name") if isinstance(ref.get("name"), str) else ""
            if not ref_name:
                errs.append(required(child(p, kind, "name")))
            else:
                errs += messages(child(p, kind, "name"), ref_name,
                                 names.name_is_dns_subdomain(ref_name, True))
        if count == 0:
            errs.append(invalid(child(path, "envFrom"), "",
                                "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errs.append(invalid(child(path, "envFrom"), "",
                                "may not have more than one field specified at a time"))


def _ports(container: Obj, path: str, errs: Errs) -> None:
    seen: set[str] = set()
    for _, p, port in items(container.get("ports"), child(path, "ports"), errs):
        name = get_str(port, "name", p, errs)
        if name:
            msgs = names.is_port_name(name)
            if msgs:
                errs += messages(child(p, "name"), name, msgs)
            elif name in seen:
                errs.append(duplicate(child(p, "name"), name))
            else:
                seen.add(name)
        container_port = port.get("containerPort")
        if container_port in (None, 0):
            errs.append(required(child(p, "containerPort")))
        else:
            errs += port_number(container_port, child(p, "containerPort"))
        if port.get("hostPort") not in (None, 0):
            errs += port_number(port["hostPort"], child(p, "hostPort"))
        errs += one_of(port.get("protocol"), PROTOCOLS, child(p, "protocol"))


def _volume_mounts(container: Obj, volumes: dict[str, Obj], path: str, errs: Errs) -> None:
    mounts_path = child(path, "volumeMounts")
    mount_points: set[str] = set()
    for _, p, mount in items(container.get("volumeMounts"), mounts_path, errs):
        name = get_str(mount, "name", p, errs)
        if not name:
            errs.append(required(child(p, "name")))
        if name not in volumes:
            errs.append(not_found(child(p, "name"), name))
        mount_path = get_str(mount, "mountPath", p, errs)
        if not mount_path:
            errs.append(required(child(p, "mountPath")))
        if mount_path in mount_points:
            errs.append(invalid(child(p, "mountPath"), mount_path, "must be unique"))
        mount_points.add(mount_path)
        sub_path = get_str(mount, "subPath", p, errs)
        if sub_path:
            # Kubernetes reports sub paths at the list's path, without the index.
            errs += _local_descending_path(sub_path, child(mounts_path, "subPath"))
        sub_path_expr = get_str(mount, "subPathExpr", p, errs)
        if sub_path_expr:
            if sub_path:
                errs.append(invalid(child(p, "subPathExpr"), sub_path_expr,
                                    "subPathExpr and subPath are mutually exclusive"))
            errs += _local_descending_path(sub_path_expr, child(mounts_path, "subPathExpr"))


def _is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    return _is_native(name) and not name.startswith("hugepages-")


def _is_extended(name: str) -> bool:
    if _is_native(name) or name.startswith("requests."):
        return False
    return not names.is_qualified_name("requests." + name)


def _container_resource_name(name: str, path: str) -> Errs:
    errs = messages(path, name, names.is_qualified_name(name))
    if errs:
        return errs
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in _CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native(name) and not _is_extended(name):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def _resource_list(value: Any, path: str, errs: Errs) -> dict[str, tuple[Any, str]]:
    """Checks names and quantities; returns {name: (value, canonical string)} of the valid."""
    parsed = {}
    if value is None:
        return parsed
    if not isinstance(value, dict):
        errs.append(invalid(path, value, "must be of type object"))
        return parsed
    for name, raw in value.items():
        p = key(path, name)
        errs += _container_resource_name(name, p)
        try:
            amount, fmt = parse_with_format(raw)
        except ValueError as err:
            errs.append(invalid(p, raw, str(err)))
            continue
        shown = format_quantity(amount, fmt)
        if amount < 0:
            errs.append(invalid(p, shown, NEGATIVE))
        elif (_is_extended(name) or name in ("pods",)) and amount.denominator != 1:
            errs.append(invalid(p, shown, "must be an integer"))
        parsed[name] = (amount, shown)
    return parsed


def validate_resource_requirements(resources: Any, path: str) -> Errs:
    """Names and quantities of requests and limits, and requests <= limits."""
    errs: Errs = []
    if resources is None:
        return errs
    if not isinstance(resources, dict):
        return [invalid(path, resources, "must be of type object")]
    limits_path, requests_path = child(path, "limits"), child(path, "requests")
    limits = _resource_list(resources.get("limits"), limits_path, errs)
    requests = _resource_list(resources.get("requests"), requests_path, errs)
    for name, (amount, shown) in requests.items():
        if name in limits:
            limit, limit_shown = limits[name]
            if amount != limit and not _overcommit_allowed(name):
                errs.append(invalid(requests_path, shown,
                                    f"must be equal to {name} limit of {limit_shown}"))
            elif amount > limit:
                errs.append(invalid(requests_path, shown,
                                    f"must be less than or equal to {name} limit of {limit_shown}"))
        elif not _overcommit_allowed(name):
            errs.append(required(limits_path, "Limit must be set for non overcommitable resources"))
    names_used = set(limits) | set(requests)
    if any(n.startswith("hugepages-") for n in names_used) and not names_used & {"cpu", "memory"}:
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    return errs


def _handler(handler: Obj, path: str, grace: Any, probe: bool) -> Errs:
    """Exactly one of exec/httpGet/tcpSocket/grpc (probes) or exec/httpGet/tcpSocket/sleep."""
    errs: Errs = []
    kinds = ("exec", "httpGet", "tcpSocket", "grpc") if probe else (
        "exec", "httpGet", "tcpSocket", "sleep")
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if action is None:
            continue
        if count:
            errs.append(forbidden(child(path, kind), "may not specify more than 1 handler type"))
            continue
        count += 1
        p = child(path, kind)
        if not isinstance(action, dict):
            errs.append(invalid(p, action, "must be of type object"))
        elif kind == "exec":
            if not action.get("command"):
                errs.append(required(child(p, "command")))
        elif kind == "httpGet":
            if not action.get("path"):
                errs.append(required(child(p, "path")))
            errs += port_num_or_name(action.get("port"), child(p, "port"))
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.append(not_supported(child(p, "scheme"), action.get("scheme"),
                                          ["HTTP", "HTTPS"]))
            for _, _hp, header in items(action.get("httpHeaders"), child(p, "httpHeaders"), errs):
                header_name = header.get("name") if isinstance(header.get("name"), str) else ""
                errs += messages(child(p, "httpHeaders"), header_name,
                                 names.is_http_header_name(header_name))
        elif kind in ("tcpSocket", "grpc"):
            value = action.get("port")
            errs += (port_number(value, child(p, "port")) if kind == "grpc"
                     else port_num_or_name(value, child(p, "port")))
        elif kind == "sleep":
            seconds = action.get("seconds")
            if isinstance(grace, int) and (not isinstance(seconds, int) or not
                                           0 <= seconds <= grace):
                errs.append(invalid(p, seconds, "must be non-negative and less than "
                                                f"terminationGracePeriodSeconds ({grace})"))
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _probe(container: Obj, name: str, path: str, grace: Any, errs: Errs) -> None:
    probe = typed(container, name, dict, path, errs)
    if probe is None:
        return
    p = child(path, name)
    errs += _handler(probe, p, grace, probe=True)
    for field_ in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                   "failureThreshold"):
        nonnegative_field(probe, field_, p, errs)
    grace_period = probe.get("terminationGracePeriodSeconds")
    if name == "readinessProbe" and grace_period is not None:
        errs.append(invalid(child(p, "terminationGracePeriodSeconds"), grace_period,
                            "must not be set for readinessProbes"))
    elif isinstance(grace_period, int) and grace_period <= 0:
        errs.append(invalid(child(p, "terminationGracePeriodSeconds"), grace_period,
                            "must be greater than 0"))
    if name != "readinessProbe" and probe.get("successThreshold", 1) != 1:
        errs.append(invalid(child(p, "successThreshold"), probe["successThreshold"], "must be 1"))


def _probes_and_lifecycle(container: Obj, path: str, grace: Any, errs: Errs) -> None:
    lifecycle = typed(container, "lifecycle", dict, path, errs)
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            handler = typed(lifecycle, hook, dict, child(path, "lifecycle"), errs)
            if handler is not None:
                errs += _handler(handler, child(path, "lifecycle", hook), grace, probe=False)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container, probe, path, grace, errs)


def _id_range(value: Any, path: str) -> Errs:
    if isinstance(value, int) and not 0 <= value <= 0xFFFFFFFF:
        return [invalid(path, value, names.inclusive_range_error(0, 0xFFFFFFFF))]
    return []


def _seccomp_profile(value: Any, path: str) -> Errs:
    if not isinstance(value, dict):
        return []
    errs = one_of(value.get("type"), ("Localhost", "RuntimeDefault", "Unconfined"),
                  child(path, "type"))
    if value.get("type") == "Localhost" and not value.get("localhostProfile"):
        errs.append(required(child(path, "localhostProfile"),
                             "must be set when seccomp type is Localhost"))
    elif value.get("type") != "Localhost" and value.get("localhostProfile") is not None:
        errs.append(invalid(child(path, "localhostProfile"), value,
                            "can only be set when seccomp type is Localhost"))
    return errs


def _container_security_context(container: Obj, path: str, errs: Errs) -> None:
    context = typed(container, "securityContext", dict, path, errs)
    if context is None:
        return
    p = child(path, "securityContext")
    errs += _id_range(context.get("runAsUser"), child(p, "runAsUser"))
    errs += _id_range(context.get("runAsGroup"), child(p, "runAsGroup"))
    if context.get("procMount") is not None:
        errs += one_of(context["procMount"], ("Default", "Unmasked"), child(p, "procMount"))
    errs += _seccomp_profile(context.get("seccompProfile"), child(p, "seccompProfile"))
    if context.get("allowPrivilegeEscalation") is False:
        if context.get("privileged") is True:
            errs.append(invalid(p, context, "cannot set `allowPrivilegeEscalation` to false "
                                            "and `privileged` to true"))
        capabilities = context.get("capabilities")
        if "CAP_SYS_ADMIN" in as_list(dig(capabilities, "add")):
            errs.append(invalid(p, context, "cannot set `allowPrivilegeEscalation` to false and "
                                            "`capabilities.Add` CAP_SYS_ADMIN"))


def _container_common(container: Obj, path: str, volumes: dict[str, Obj], is_pod: bool) -> Errs:
    errs: Errs = []
    name = get_str(container, "name", path, errs)
    if not name:
        errs.append(required(child(path, "name")))
    else:
        errs += dns1123_label(name, child(path, "name"))
    image = get_str(container, "image", path, errs)
    if not image:
        errs.append(required(child(path, "image")))
    elif is_pod and image != image.strip():
        errs.append(invalid(child(path, "image"), image,
                            "must not have leading or trailing whitespace"))
    errs += one_of(container.get("terminationMessagePolicy"), TERMINATION_MESSAGE_POLICIES,
                   child(path, "terminationMessagePolicy"))
    _ports(container, path, errs)
    _env(container, path, errs)
    _volume_mounts(container, volumes, path, errs)
    errs += one_of(container.get("imagePullPolicy"), PULL_POLICIES, child(path, "imagePullPolicy"))
    errs += validate_resource_requirements(container.get("resources"), child(path, "resources"))
    _container_security_context(container, path, errs)
    return errs


def _host_port_conflicts(containers: list[tuple[str, Obj]], errs: Errs) -> None:
    seen: set[str] = set()
    for path, container in containers:
        ports = container.get("ports") if isinstance(container.get("ports"), list) else []
        for j, port in enumerate(ports):
            if not isinstance(port, dict) or port.get("hostPort") in (None, 0):
                continue
            signature = f"{port.get('protocol', '')}/{port.get('hostIP', '')}/{port['hostPort']}"
            if signature in seen:
                errs.append(duplicate(child(index(child(path, "ports"), j), "hostPort"), signature))
            seen.add(signature)


def _containers(spec: Obj, path: str, volumes: dict[str, Obj], is_pod: bool, errs: Errs) -> None:
    grace = spec.get("terminationGracePeriodSeconds")
    containers_path = child(path, "containers")
    if spec.get("containers") in (None, []):
        errs.append(required(containers_path))
    containers = list(items(spec.get("containers"), containers_path, errs))
    names_seen: set[str] = set()
    for _, p, container in containers:
        errs += _container_common(container, p, volumes, is_pod)
        name = container.get("name") if isinstance(container.get("name"), str) else ""
        if name in names_seen:
            errs.append(duplicate(child(p, "name"), name))
        names_seen.add(name)
        _probes_and_lifecycle(container, p, grace, errs)
        if container.get("restartPolicy") is not None:
            errs.append(forbidden(child(p, "restartPolicy"), "may not be set for non-init containers"))
    _host_port_conflicts([(p, c) for _, p, c in containers], errs)

    init_path = child(path, "initContainers")
    for _, p, container in items(spec.get("initContainers"), init_path, errs):
        errs += _container_common(container, p, volumes, is_pod)
        restart_always = False
        if container.get("restartPolicy") is not None:
            errs += one_of(container["restartPolicy"], ("Always",), child(p, "restartPolicy"))
            restart_always = container["restartPolicy"] == "Always"
        name = container.get("name") if isinstance(container.get("name"), str) else ""
        if name in names_seen:
            errs.append(duplicate(child(p, "name"), name))
        elif name:
            names_seen.add(name)
        # Init containers run one at a time, so their host ports only clash with themselves.
        _host_port_conflicts([(p, container)], errs)
        if restart_always:
            _probes_and_lifecycle(container, p, grace, errs)
        else:
            for field_ in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if container.get(field_) is not None:
                    errs.append(forbidden(child(p, field_), "may not be set for init containers "
                                                            "without restartPolicy=Always"))


# --- scheduling -----------------------------------------------------------------------------------

def validate_tolerations(value: Any, path: str) -> Errs:
    errs: Errs = []
    for _, p, toleration in items(value, path, errs):
        tol_key = get_str(toleration, "key", p, errs)
        operator = get_str(toleration, "operator", p, errs)
        effect = get_str(toleration, "effect", p, errs)
        tol_value = get_str(toleration, "value", p, errs)
        if tol_key:
            errs += qualified_name(tol_key, child(p, "key"))
        if not tol_key and operator != "Exists":
            errs.append(invalid(child(p, "operator"), operator,
                                "operator must be Exists when `key` is empty, which means "
                                '"match all values and all keys"'))
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(child(p, "effect"), effect,
                                "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("Equal", ""):
            msgs = names.is_label_value(tol_value)
            if msgs:
                errs.append(invalid(child(p, "operator"), tol_value, ";".join(msgs)))
        elif operator == "Exists":
            if tol_value:
                errs.append(invalid(child(p, "operator"), tol_value,
                                    "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(child(p, "operator"), operator, ["Equal", "Exists"]))
        if effect:
            errs += one_of(effect, TAINT_EFFECTS, child(p, "effect"))
    return errs


def _node_selector_requirement(req: Obj, path: str, check_values: bool) -> Errs:
    errs: Errs = []
    operator = req.get("operator")
    values = req.get("values") if isinstance(req.get("values"), list) else []
    if operator in ("In", "NotIn"):
        if not values:
            errs.append(required(child(path, "values"),
                                 "must be specified when `operator` is 'In' or 'NotIn'"))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(child(path, "values"), "may not be specified when `operator` "
                                                         "is 'Exists' or 'DoesNotExist'"))
    elif operator in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(required(child(path, "values"), "must be specified single value when "
                                                        "`operator` is 'Lt' or 'Gt'"))
    else:
        errs.append(invalid(child(path, "operator"), operator, "not a valid selector operator"))
    req_key = req.get("key") if isinstance(req.get("key"), str) else ""
    errs += qualified_name(req_key, child(path, "key"))
    if check_values:
        for i, v in enumerate(values):
            errs += messages(index(child(path, "values"), i), v,
                             names.is_label_value(v) if isinstance(v, str)
                             else ["must be of type string"])
    return errs


def _node_selector_term(term: Obj, path: str, check_values: bool, errs: Errs) -> None:
    for _, p, req in items(term.get("matchExpressions"), child(path, "matchExpressions"), errs):
        errs += _node_selector_requirement(req, p, check_values)
    for _, p, req in items(term.get("matchFields"), child(path, "matchFields"), errs):
        if req.get("operator") not in ("In", "NotIn"):
            errs.append(invalid(child(p, "operator"), req.get("operator"),
                                "not a valid selector operator"))
        elif len(as_list(req.get("values"))) != 1:
            errs.append(required(child(p, "values"), "must be only one value when `operator` is "
                                                     "'In' or 'NotIn' for node field selector"))
        if req.get("key") != "metadata.name":
            errs.append(invalid(child(p, "key"), req.get("key"), "not a valid field selector key"))
        else:
            for i, v in enumerate(as_list(req.get("values"))):
                errs += messages(index(child(p, "values"), i), v,
                                 names.name_is_dns_subdomain(v) if isinstance(v, str) else [])


def _pod_affinity_terms(value: Any, path: str, weighted: bool, errs: Errs) -> None:
    for _, p, term in items(value, path, errs):
        if weighted:
            weight = term.get("weight")
            if not isinstance(weight, int) or not 1 <= weight <= 100:
                errs.append(invalid(child(p, "weight"), weight, "must be in the range 1-100"))
            p = child(p, "podAffinityTerm")
            term = term.get("podAffinityTerm") if isinstance(term.get("podAffinityTerm"),
                                                             dict) else {}
        errs += validate_label_selector(term.get("labelSelector"), child(p, "labelSelector"))
        errs += validate_label_selector(term.get("namespaceSelector"),
                                        child(p, "namespaceSelector"))
        for namespace in as_list(term.get("namespaces")):
            errs += messages(child(p, "namespace"), namespace,
                             names.name_is_dns_label(namespace) if isinstance(namespace, str)
                             else ["must be of type string"])
        topology_key = term.get("topologyKey") if isinstance(term.get("topologyKey"), str) else ""
        if not topology_key:
            errs.append(required(child(p, "topologyKey"), "can not be empty"))
        errs += qualified_name(topology_key, child(p, "topologyKey"))


def _affinity(spec: Obj, path: str, errs: Errs) -> None:
    affinity = typed(spec, "affinity", dict, path, errs)
    if affinity is None:
        return
    path = child(path, "affinity")
    node = typed(affinity, "nodeAffinity", dict, path, errs)
    if node is not None:
        np = child(path, "nodeAffinity")
        hard = typed(node, "requiredDuringSchedulingIgnoredDuringExecution", dict, np, errs)
        if hard is not None:
            hp = child(np, "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
            terms = hard.get("nodeSelectorTerms")
            if not terms:
                errs.append(required(hp, "must have at least one node selector term"))
            for _, p, term in items(terms, hp, errs):
                _node_selector_term(term, p, True, errs)
        soft_path = child(np, "preferredDuringSchedulingIgnoredDuringExecution")
        for _, p, pref in items(node.get("preferredDuringSchedulingIgnoredDuringExecution"),
                                soft_path, errs):
            weight = pref.get("weight")
            if not isinstance(weight, int) or not 1 <= weight <= 100:
                errs.append(invalid(child(p, "weight"), weight, "must be in the range 1-100"))
            preference = pref.get("preference") if isinstance(pref.get("preference"), dict) else {}
            # Preferred terms tolerate invalid values: they can still match on one node.
            _node_selector_term(preference, child(p, "preference"), False, errs)
    for kind in ("podAffinity", "podAntiAffinity"):
        pod = typed(affinity, kind, dict, path, errs)
        if pod is None:
            continue
        kp = child(path, kind)
        _pod_affinity_terms(pod.get("requiredDuringSchedulingIgnoredDuringExecution"),
                            child(kp, "requiredDuringSchedulingIgnoredDuringExecution"), False, errs)
        _pod_affinity_terms(pod.get("preferredDuringSchedulingIgnoredDuringExecution"),
                            child(kp, "preferredDuringSchedulingIgnoredDuringExecution"), True, errs)


def _topology_spread(spec: Obj, path: str, errs: Errs) -> None:
    constraints = list(items(spec.get("topologySpreadConstraints"),
                             child(path, "topologySpreadConstraints"), errs))
    for n, (_, p, constraint) in enumerate(constraints):
        max_skew = constraint.get("maxSkew")
        if not isinstance(max_skew, int) or max_skew <= 0:
            errs.append(invalid(child(p, "maxSkew"), max_skew, "must be greater than zero"))
        if not constraint.get("topologyKey"):
            errs.append(required(child(p, "topologyKey"), "can not be empty"))
        action = constraint.get("whenUnsatisfiable")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(not_supported(child(p, "whenUnsatisfiable"), action,
                                      ["DoNotSchedule", "ScheduleAnyway"]))
        pair = (constraint.get("topologyKey"), action)
        if any((c.get("topologyKey"), c.get("whenUnsatisfiable")) == pair
               for _, _, c in constraints[n + 1:]):
            errs.append(duplicate(child(p, "{topologyKey, whenUnsatisfiable}"),
                                  f"{{{pair[0]}, {pair[1]}}}"))
        errs += validate_label_selector(constraint.get("labelSelector"), child(p, "labelSelector"))


def _dns_config(spec: Obj, path: str, errs: Errs) -> None:
    config = typed(spec, "dnsConfig", dict, path, errs)
    cp = child(path, "dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if config is None:
            errs.append(required(cp, "must provide `dnsConfig` when `dnsPolicy` is None"))
            return
        if not config.get("nameservers"):
            errs.append(required(child(cp, "nameservers"), "must provide at least one DNS "
                                                           "nameserver when `dnsPolicy` is None"))
            return
    if config is None:
        return
    nameservers = get_list(config, "nameservers", cp, errs)
    if len(nameservers) > MAX_DNS_NAMESERVERS:
        errs.append(invalid(child(cp, "nameservers"), nameservers,
                            f"must not have more than {MAX_DNS_NAMESERVERS} nameservers"))
    for i, server in enumerate(nameservers):
        errs += ip_address(server, index(child(cp, "nameservers"), i))
    searches = [s for s in get_list(config, "searches", cp, errs) if isinstance(s, str)]
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        errs.append(invalid(child(cp, "searches"), searches,
                            f"must not have more than {MAX_DNS_SEARCH_PATHS} search paths"))
    if len(" ".join(searches)) > MAX_DNS_SEARCH_LIST_CHARS:
        errs.append(invalid(child(cp, "searches"), searches,
                            f"must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters "
                            "(including spaces) in the search list"))
    for i, search in enumerate(searches):
        errs += dns1123_subdomain(search.removesuffix("."), index(child(cp, "searches"), i))
    for i, option in enumerate(get_list(config, "options", cp, errs)):
        if not isinstance(option, dict) or not option.get("name"):
            errs.append(required(index(child(cp, "options"), i), "must not be empty"))


def _pod_security_context(spec: Obj, path: str, errs: Errs) -> None:
    context = typed(spec, "securityContext", dict, path, errs)
    if context is None:
        return
    p = child(path, "securityContext")
    for field_ in ("fsGroup", "runAsUser", "runAsGroup"):
        errs += _id_range(context.get(field_), child(p, field_))
    for i, gid in enumerate(as_list(context.get("supplementalGroups"))):
        errs += _id_range(gid, index(child(p, "supplementalGroups"), i))
    if context.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        errs.append(invalid(child(p, "shareProcessNamespace"), True,
                            "ShareProcessNamespace and HostPID cannot both be enabled"))
    errs += _seccomp_profile(context.get("seccompProfile"), child(p, "seccompProfile"))
    seen: set[str] = set()
    for _, sp, sysctl in items(context.get("sysctls"), child(p, "sysctls"), errs):
        name = sysctl.get("name") if isinstance(sysctl.get("name"), str) else ""
        if not name:
            errs.append(required(child(sp, "name")))
        elif name in seen:
            errs.append(duplicate(child(sp, "name"), name))
        seen.add(name)


# --- pods -------------------------------------------------------------------------------------------

def validate_pod_spec(spec: Any, path: str, *, is_pod: bool) -> Errs:
    """ValidatePodSpec. `is_pod` adds the checks Kubernetes applies to Pods but not to the
    pod templates of workloads (hostPort must equal containerPort under hostNetwork, image
    whitespace)."""
    if not isinstance(spec, dict):
        return [required(path)] if spec is None else [invalid(path, spec, "must be of type object")]
    errs: Errs = []
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(required(child(path, "terminationGracePeriodSeconds")))
    else:
        get_int(spec, "terminationGracePeriodSeconds", path, errs)
    volumes = _volumes(spec, child(path, "volumes"), errs)
    _containers(spec, path, volumes, is_pod, errs)
    if spec.get("hostNetwork") is True:
        for _, cp, container in items(spec.get("containers"), child(path, "containers"), []):
            for _, pp, port in items(container.get("ports"), child(cp, "ports"), []):
                host_port, container_port = port.get("hostPort"), port.get("containerPort")
                if (is_pod or host_port not in (None, 0)) and host_port != container_port:
                    errs.append(invalid(child(pp, "hostPort"), host_port,
                                        "must match `containerPort` when `hostNetwork` is true"))
    errs += one_of(spec.get("restartPolicy"), RESTART_POLICIES, child(path, "restartPolicy"))
    errs += one_of(spec.get("dnsPolicy"), DNS_POLICIES, child(path, "dnsPolicy"))
    errs += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    _pod_security_context(spec, path, errs)
    for _, p, secret in items(spec.get("imagePullSecrets"), child(path, "imagePullSecrets"), errs):
        if set(secret) - {"name"}:
            errs.append(invalid(p, secret, "only name may be set"))
    _affinity(spec, path, errs)
    _dns_config(spec, path, errs)
    _topology_spread(spec, path, errs)
    for _, p, gate in items(spec.get("readinessGates"), child(path, "readinessGates"), errs):
        condition = gate.get("conditionType") if isinstance(gate.get("conditionType"), str) else ""
        errs += qualified_name(condition, child(p, "conditionType"))
    gates_seen: set[str] = set()
    for _, gp, gate in items(spec.get("schedulingGates"), child(path, "schedulingGates"), errs):
        name = gate.get("name") if isinstance(gate.get("name"), str) else ""
        errs += qualified_name(name, gp)
        if name in gates_seen:
            errs.append(duplicate(gp, name))
        gates_seen.add(name)
    for field_, check in (("serviceAccountName", names.name_is_dns_subdomain),
                          ("nodeName", names.name_is_dns_subdomain),
                          ("priorityClassName", names.name_is_dns_subdomain),
                          ("hostname", names.is_dns1123_label),
                          ("subdomain", names.is_dns1123_label)):
        value = get_str(spec, field_, path, errs)
        if value:
            errs += messages(child(path, field_), value, check(value))
    deadline = get_int(spec, "activeDeadlineSeconds", path, errs)
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        errs.append(invalid(child(path, "activeDeadlineSeconds"), deadline,
                            names.inclusive_range_error(1, MAX_INT32)))
    errs += validate_tolerations(spec.get("tolerations"), child(path, "tolerations"))
    for _, p, alias in items(spec.get("hostAliases"), child(path, "hostAliases"), errs):
        errs += ip_address(alias.get("ip"), child(p, "ip"))
        for j, hostname in enumerate(as_list(alias.get("hostnames"))):
            errs += dns1123_subdomain(str(hostname), index(child(p, "hostnames"), j))
    if spec.get("preemptionPolicy") is not None:
        errs += one_of(spec["preemptionPolicy"], ("PreemptLowerPriority", "Never"),
                       child(path, "preemptionPolicy"))
    if spec.get("overhead") is not None:
        _resource_list(spec["overhead"], child(path, "overhead"), errs)
    return errs


def validate_pod_template(template: Any, path: str) -> Errs:
    """ValidatePodTemplateSpec: template labels and annotations, and its pod spec."""
    if not isinstance(template, dict):
        return [required(path)] if template is None else [
            invalid(path, template, "must be of type object")]
    errs: Errs = []
    meta = get_map(template, "metadata", path, errs)
    errs += validate_labels(meta.get("labels"), child(path, "metadata", "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "metadata", "annotations"))
    errs += validate_pod_spec(template.get("spec"), child(path, "spec"), is_pod=False)
    pod_spec = template.get("spec")
    if isinstance(pod_spec, dict) and pod_spec.get("ephemeralContainers"):
        errs.append(forbidden(child(path, "spec", "ephemeralContainers"),
                              "ephemeral containers not allowed in pod template"))
    return errs


def _pod(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    errs += validate_pod_spec(obj.get("spec"), "spec", is_pod=True)
    return errs


def validate_pod(obj: Obj) -> Errs:
    errs = _pod(obj)
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if spec.get("ephemeralContainers"):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and spec.get("schedulingGates"):
        errs.append(forbidden("spec.nodeName",
                              "cannot be set until all schedulingGates have been cleared"))
    return errs


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    """Where two JSON values differ, one line per leaf, in the spirit of cmp.Diff."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new), key=str):
            _diff(old.get(k), new.get(k), child(path, str(k)), out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, index(path, i), out)
    elif old != new:
        out.append(f"  {path}: {json.dumps(old)} -> {json.dumps(new)}")


def validate_pod_update(new: Obj, old: Obj) -> Errs:
    """ValidatePodUpdate: only images, activeDeadlineSeconds, added tolerations and a
    negative terminationGracePeriodSeconds set to 1 may change in a pod's spec."""
    errs = validate_object_meta_update(new, old)
    errs += _pod(new)
    spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    for kind in ("containers", "initContainers"):
        new_list = spec.get(kind) if isinstance(spec.get(kind), list) else []
        old_list = old_spec.get(kind) if isinstance(old_spec.get(kind), list) else []
        if len(new_list) != len(old_list):
            errs.append(forbidden(f"spec.{kind}", "pod updates may not add or remove containers"))
            return errs
    deadline, old_deadline = spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int):
        if not 0 <= deadline <= MAX_INT32:
            errs.append(invalid("spec.activeDeadlineSeconds", deadline,
                                names.inclusive_range_error(0, MAX_INT32)))
            return errs
        if isinstance(old_deadline, int) and old_deadline < deadline:
            errs.append(invalid("spec.activeDeadlineSeconds", deadline,
                                "must be less than or equal to previous value"))
            return errs
    elif deadline is None and old_deadline is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", None,
                            "must not update from a positive integer to nil value"))
    new_tolerations = as_list(spec.get("tolerations"))
    for old_toleration in as_list(old_spec.get("tolerations")):
        if not isinstance(old_toleration, dict):
            continue
        kept = {k: v for k, v in old_toleration.items() if k != "tolerationSeconds"}
        if not any({k: v for k, v in t.items() if k != "tolerationSeconds"} == kept
                   for t in new_tolerations if isinstance(t, dict)):
            errs.append(forbidden("spec.tolerations",
                                  "existing toleration can not be modified except its "
                                  "tolerationSeconds"))
            break
    old_gates = {_scalar(g.get("name")) for g in as_list(old_spec.get("schedulingGates"))
                 if isinstance(g, dict)}
    for i, gate in enumerate(as_list(spec.get("schedulingGates"))):
        if isinstance(gate, dict) and _scalar(gate.get("name")) not in old_gates:
            errs.append(forbidden(f"spec.schedulingGates[{i}].name", "only deletion is allowed, "
                                  f"but found new scheduling gate '{gate.get('name')}'"))
    if spec == old_spec:
        return errs
    # Put back what may change, then anything left over is a forbidden change.
    munged = dict(spec)
    for kind in ("containers", "initContainers"):
        if isinstance(spec.get(kind), list):
            munged[kind] = [
                {**c, "image": o.get("image")} if isinstance(c, dict) and isinstance(o, dict)
                and "image" in o else c
                for c, o in zip(spec[kind], as_list(old_spec.get(kind)), strict=False)]
    for field_ in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged.pop(field_, None)
        if field_ in old_spec:
            munged[field_] = old_spec[field_]
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and munged.get(
            "terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if munged != old_spec:
        lines: list[str] = []
        _diff(old_spec, munged, "spec", lines)
        errs.append(forbidden("spec", "pod updates may not change fields other than "
                              + ",".join(_UPDATABLE_POD_SPEC_FIELDS) + "\n" + "\n".join(lines)))
    return errs


def _conditions(value: Any, path: str, errs: Errs, qualified_types: bool = False) -> None:
    for _, p, condition in items(value, path, errs):
        condition_type = condition.get("type")
        if not condition_type or not isinstance(condition_type, str):
            errs.append(required(child(p, "type")))
        elif qualified_types and condition_type not in _SYSTEM_POD_CONDITIONS:
            errs += qualified_name(condition_type, child(p, "type"))
        errs += one_of(condition.get("status"), CONDITION_STATUSES, child(p, "status"))


def _ip_list(status: Obj, name: str, path: str, errs: Errs) -> None:
    ips = []
    for _, p, entry in items(status.get(name), child(path, name), errs):
        errs += ip_address(entry.get("ip"), p)
        if entry.get("ip") in ips:
            errs.append(duplicate(p, entry))
        ips.append(entry.get("ip"))
    if len(ips) > 2:
        errs.append(invalid(child(path, name), status.get(name),
                            "may specify no more than one IP for each IP family"))


def validate_pod_status(new: Obj, old: Obj) -> Errs:
    """ValidatePodStatusUpdate, light: phase, conditions, IPs, counters, nodeName."""
    errs = validate_object_meta_update(new, old)
    status = get_map(new, "status", "", errs)
    spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    if spec.get("nodeName") != old_spec.get("nodeName"):
        errs.append(forbidden("status.nodeName", "may not be changed directly"))
    if status.get("phase") is not None:
        errs += one_of(status["phase"], POD_PHASES, "status.phase")
    _conditions(status.get("conditions"), "status.conditions", errs, qualified_types=True)
    for field_ in ("podIP", "hostIP"):
        if status.get(field_):
            errs += ip_address(status[field_], f"status.{field_}")
    _ip_list(status, "podIPs", "status", errs)
    _ip_list(status, "hostIPs", "status", errs)
    host_ips = status.get("hostIPs")
    if isinstance(host_ips, list) and host_ips and isinstance(host_ips[0], dict) \
            and host_ips[0].get("ip") != status.get("hostIP"):
        errs.append(invalid("status.hostIPs[0].ip", host_ips[0].get("ip"),
                            "must be equal to `hostIP`"))
    if status.get("nominatedNodeName"):
        errs += messages("status.nominatedNodeName", status["nominatedNodeName"],
                         names.name_is_dns_subdomain(str(status["nominatedNodeName"])))
    old_status = old.get("status") if isinstance(old.get("status"), dict) else {}
    if old_status.get("qosClass"):
        errs += immutable(status.get("qosClass"), old_status["qosClass"], "status.qosClass")
    for kind in ("containerStatuses", "initContainerStatuses"):
        for _, p, container in items(status.get(kind), f"status.{kind}", errs):
            if not container.get("name"):
                errs.append(required(child(p, "name")))
            nonnegative_field(container, "restartCount", p, errs)
    return errs


# --- namespaces and nodes ---------------------------------------------------------------------------

def validate_namespace(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=False, name_fn=names.name_is_dns_label)
    spec = get_map(obj, "spec", "", errs)
    errs += validate_finalizers(spec.get("finalizers"), "spec.finalizers", indexed=False)
    return errs


def validate_namespace_update(new: Obj, old: Obj) -> Errs:
    return validate_object_meta_update(new, old) + validate_namespace(new)


def validate_namespace_status(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    phase = dig(new, "status", "phase")
    deleting = bool(dig(new, "metadata", "deletionTimestamp"))
    # "Phase" with a capital P: Kubernetes reports it that way.
    if not deleting and phase != "Active":
        errs.append(invalid("status.Phase", phase,
                            "may only be 'Active' if `deletionTimestamp` is empty"))
    elif deleting and phase != "Terminating":
        errs.append(invalid("status.Phase", phase,
                            "may only be 'Terminating' if `deletionTimestamp` is not empty"))
    return errs


def validate_taints(value: Any, path: str) -> Errs:
    errs: Errs = []
    seen: set[tuple[str, str]] = set()
    for _, p, taint in items(value, path, errs):
        taint_key = taint.get("key") if isinstance(taint.get("key"), str) else ""
        errs += qualified_name(taint_key, child(p, "key"))
        taint_value = taint.get("value") if isinstance(taint.get("value"), str) else ""
        msgs = names.is_label_value(taint_value)
        if msgs:
            errs.append(invalid(child(p, "value"), taint_value, ";".join(msgs)))
        errs += one_of(taint.get("effect"), TAINT_EFFECTS, child(p, "effect"))
        pair = (taint_key, _scalar(taint.get("effect") or ""))
        if pair in seen:
            errs.append(FieldError("FieldValueDuplicate", p,
                                   "taints must be unique by key and effect pair", taint))
        seen.add(pair)
    return errs


def _node_resources(status: Obj, errs: Errs) -> None:
    for part in ("capacity", "allocatable"):
        resources = typed(status, part, dict, "status", errs) or {}
        for name, raw in resources.items():
            # The apiserver's path here is status.capacity.<name>, not capacity[name].
            p = f"status.{part}.{name}"
            try:
                amount, fmt = parse_with_format(raw)
            except ValueError as err:
                errs.append(invalid(p, raw, str(err)))
                continue
            if amount < 0:
                errs.append(invalid(p, format_quantity(amount, fmt), NEGATIVE))


def _pod_cidrs(spec: Obj, errs: Errs) -> None:
    if spec.get("podCIDR"):
        errs += cidr(spec["podCIDR"], "spec.podCIDR")
    cidrs = get_list(spec, "podCIDRs", "spec", errs)
    for i, value in enumerate(cidrs):
        errs += cidr(value, f"spec.podCIDRs[{i}]")
    if len(cidrs) > 2:
        errs.append(invalid("spec.podCIDRs", cidrs,
                            "may specify no more than one CIDR for each IP family"))
    for i, value in enumerate(cidrs):
        if value in cidrs[:i]:
            errs.append(duplicate(f"spec.podCIDRs[{i}]", value))


def validate_node(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=False, name_fn=names.name_is_dns_subdomain)
    spec = get_map(obj, "spec", "", errs)
    # Kubernetes reports taints under metadata.taints (a slip in its code); bramble uses
    # the path the field really has.
    errs += validate_taints(spec.get("taints"), "spec.taints")
    _pod_cidrs(spec, errs)
    _node_resources(get_map(obj, "status", "", errs), errs)
    return errs


def validate_node_update(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old) + validate_node(new)
    spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    cidr_change = "node updates may not change podCIDR except from \"\" to valid"
    if old_spec.get("podCIDR") and spec.get("podCIDR") != old_spec["podCIDR"]:
        errs.append(forbidden("spec.podCIDR", cidr_change))
    if old_spec.get("podCIDRs") and spec.get("podCIDRs") != old_spec["podCIDRs"]:
        errs.append(forbidden("spec.podCIDRs", cidr_change))
    if old_spec.get("providerID") and spec.get("providerID") != old_spec["providerID"]:
        errs.append(forbidden("spec.providerID",
                              "node updates may not change providerID except from \"\" to valid"))
    status = new.get("status") if isinstance(new.get("status"), dict) else {}
    seen: list[Any] = []
    for i, address in enumerate(as_list(status.get("addresses"))):
        if address in seen:
            errs.append(duplicate(f"status.addresses[{i}]", address))
        seen.append(address)
    return errs


def validate_node_status(new: Obj, old: Obj) -> Errs:
    errs = validate_node_update(new, old)
    status = new.get("status") if isinstance(new.get("status"), dict) else {}
    _conditions(status.get("conditions"), "status.conditions", errs)
    for _, p, address in items(status.get("addresses"), "status.addresses", errs):
        if not address.get("type"):
            errs.append(required(child(p, "type")))
        if not address.get("address"):
            errs.append(required(child(p, "address")))
    return errs


# --- services and endpoints ---------------------------------------------------------------------

def _cluster_ips(spec: Obj) -> list:
    ips = spec.get("clusterIPs")
    if isinstance(ips, list) and ips:
        return ips
    return [spec["clusterIP"]] if spec.get("clusterIP") else []


def _service_cluster_ips(spec: Obj, errs: Errs) -> None:
    cluster_ip = spec.get("clusterIP") or ""
    ips = get_list(spec, "clusterIPs", "spec", errs)
    if cluster_ip and not ips:
        errs.append(required("spec.clusterIPs"))
    elif cluster_ip and ips[0] != cluster_ip:
        errs.append(invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"))
    elif not cluster_ip and ips:
        errs.append(invalid("spec.clusterIPs", ips,
                            "must be empty when `clusterIP` is not specified"))
    families = get_list(spec, "ipFamilies", "spec", errs)
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            errs.append(not_supported(f"spec.ipFamilies[{i}]", family, ["IPv4", "IPv6"]))
        if family in families[:i]:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", family))
    if spec.get("ipFamilyPolicy") is not None:
        errs += one_of(spec["ipFamilyPolicy"], ("PreferDualStack", "RequireDualStack",
                                                "SingleStack"), "spec.ipFamilyPolicy")
    bad = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                bad = True
                errs.append(invalid("spec.clusterIPs", ips,
                                    "'None' must be the first and only value"))
            continue
        ip_errs = ip_address(ip, f"spec.clusterIPs[{i}]")
        bad = bad or bool(ip_errs)
        errs += ip_errs
    if len(ips) > 2:
        errs.append(invalid("spec.clusterIPs", ips, "may only hold up to 2 values"))
    if bad or ips == ["None"]:
        return
    for i, ip in enumerate(ips[: len(families)]):
        is_v6 = ":" in str(ip)
        if families[i] == "IPv4" and is_v6 or families[i] == "IPv6" and not is_v6:
            errs.append(invalid(f"spec.clusterIPs[{i}]", ip,
                                f"expected an {families[i]} value as indicated by "
                                f"`ipFamilies[{i}]`"))


def validate_service(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns1035_label)
    spec = get_map(obj, "spec", "", errs)
    service_type = spec.get("type")
    headless = _cluster_ips(spec) == ["None"]
    ports = list(items(spec.get("ports"), "spec.ports", errs))
    if not ports and not headless and service_type != "ExternalName":
        errs.append(required("spec.ports"))
    if service_type == "NodePort" and headless:
        errs.append(invalid("spec.clusterIPs[0]", "None",
                            "may not be set to 'None' for NodePort services"))
    port_names: set[str] = set()
    node_ports: set[tuple[Any, Any]] = set()
    port_keys: set[tuple[Any, Any]] = set()
    for _, p, port in ports:
        name = get_str(port, "name", p, errs)
        if len(ports) > 1 and not name:
            errs.append(required(child(p, "name")))
        elif name:
            errs += dns1123_label(name, child(p, "name"))
            if name in port_names:
                errs.append(duplicate(child(p, "name"), name))
            port_names.add(name)
        errs += port_number(port.get("port"), child(p, "port"))
        errs += one_of(port.get("protocol"), PROTOCOLS, child(p, "protocol"))
        errs += port_num_or_name(port.get("targetPort"), child(p, "targetPort"))
        if port.get("appProtocol") is not None:
            errs += qualified_name(str(port["appProtocol"]), child(p, "appProtocol"))
        node_port = port.get("nodePort")
        if node_port not in (None, 0):
            if service_type == "ClusterIP":
                errs.append(forbidden(child(p, "nodePort"),
                                      "may not be used when `type` is 'ClusterIP'"))
            elif not isinstance(node_port, int) or not (
                    NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]):
                errs.append(invalid(child(p, "nodePort"), node_port,
                                    "provided port is not in the valid range. The range of valid "
                                    f"ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"))
            if (_scalar(port.get("protocol")), _scalar(node_port)) in node_ports:
                errs.append(duplicate(child(p, "nodePort"), node_port))
            node_ports.add((_scalar(port.get("protocol")), _scalar(node_port)))
        signature = (_scalar(port.get("protocol")), _scalar(port.get("port")))
        if signature in port_keys:
            errs.append(duplicate(p, {"port": signature[1], "protocol": signature[0]}))
        port_keys.add(signature)
    if spec.get("selector") is not None:
        errs += validate_labels(spec["selector"], "spec.selector")
    affinity = spec.get("sessionAffinity")
    errs += one_of(affinity, ("ClientIP", "None"), "spec.sessionAffinity")
    config = spec.get("sessionAffinityConfig")
    if affinity == "ClientIP":
        timeout = dig(config, "clientIP", "timeoutSeconds")
        if timeout is None:
            errs.append(required("spec.sessionAffinityConfig",
                                 "when session affinity type is ClientIP"))
        elif not isinstance(timeout, int) or not 0 < timeout <= MAX_CLIENT_IP_AFFINITY_SECONDS:
            errs.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                                "must be greater than 0 and less than "
                                f"{MAX_CLIENT_IP_AFFINITY_SECONDS}"))
    elif affinity == "None" and config is not None:
        errs.append(forbidden("spec.sessionAffinityConfig",
                              "must not be set when session affinity is None"))
    _service_cluster_ips(spec, errs)
    for i, ip in enumerate(get_list(spec, "externalIPs", "spec", errs)):
        ip_errs = ip_address(ip, f"spec.externalIPs[{i}]")
        errs += ip_errs or non_special_ip(ip, f"spec.externalIPs[{i}]")
    errs += one_of(service_type, SERVICE_TYPES, "spec.type")
    externally_accessible = service_type in ("NodePort", "LoadBalancer")
    if spec.get("externalTrafficPolicy"):
        if not externally_accessible:
            errs.append(invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"],
                                "may only be set for externally-accessible services"))
        else:
            errs += one_of(spec["externalTrafficPolicy"], ("Cluster", "Local"),
                           "spec.externalTrafficPolicy")
    elif externally_accessible:
        errs.append(required("spec.externalTrafficPolicy"))
    if spec.get("internalTrafficPolicy") is None:
        if service_type in ("ClusterIP", "NodePort"):
            errs.append(required("spec.internalTrafficPolicy"))
    else:
        errs += one_of(spec["internalTrafficPolicy"], ("Cluster", "Local"),
                       "spec.internalTrafficPolicy")
    return errs


def validate_service_update(new: Obj, old: Obj) -> Errs:
    """Besides the create rules: a cluster IP, once allocated, never changes. An update
    that leaves clusterIP out keeps the stored one (the handler copies it, as the apiserver)."""
    errs = validate_object_meta_update(new, old)
    spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    ips, old_ips = _cluster_ips(spec), _cluster_ips(old_spec)
    if ips and old_ips and ips[0] != old_ips[0]:
        errs.append(invalid("spec.clusterIPs[0]", ips, "may not change once set"))
    families, old_families = as_list(spec.get("ipFamilies")), as_list(old_spec.get("ipFamilies"))
    if families and old_families and families[0] != old_families[0] and ips != ["None"]:
        errs.append(invalid("spec.ipFamilies[0]", families, "may not change once set"))
    return errs + validate_service(new)


def validate_service_status(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = new.get("status") if isinstance(new.get("status"), dict) else {}
    balancer = status.get("loadBalancer") if isinstance(status.get("loadBalancer"), dict) else {}
    for _, p, ingress in items(balancer.get("ingress"), "status.loadBalancer.ingress", errs):
        if ingress.get("ip"):
            errs += ip_address(ingress["ip"], child(p, "ip"))
        if ingress.get("hostname"):
            errs += dns1123_subdomain(str(ingress["hostname"]), child(p, "hostname"))
    _conditions(status.get("conditions"), "status.conditions", errs)
    return errs


def validate_endpoints(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    for _, sp, subset in items(obj.get("subsets"), "subsets", errs):
        if not subset.get("addresses") and not subset.get("notReadyAddresses"):
            errs.append(required(sp, "must specify `addresses` or `notReadyAddresses`"))
        for kind in ("addresses", "notReadyAddresses"):
            for _, p, address in items(subset.get(kind), child(sp, kind), errs):
                ip = address.get("ip")
                ip_errs = ip_address(ip, child(p, "ip"))
                errs += ip_errs or non_special_ip(ip, child(p, "ip"))
                if address.get("hostname"):
                    errs += dns1123_label(str(address["hostname"]), child(p, "hostname"))
                if address.get("nodeName") is not None:
                    errs += messages(child(p, "nodeName"), address["nodeName"],
                                     names.name_is_dns_subdomain(str(address["nodeName"])))
        ports = list(items(subset.get("ports"), child(sp, "ports"), errs))
        for _, p, port in ports:
            name = port.get("name") or ""
            if len(ports) > 1 and not name:
                errs.append(required(child(p, "name")))
            elif name:
                errs += dns1123_label(str(name), child(p, "name"))
            errs += port_number(port.get("port"), child(p, "port"))
            errs += one_of(port.get("protocol"), PROTOCOLS, child(p, "protocol"))
    return errs


def validate_endpoints_update(new: Obj, old: Obj) -> Errs:
    return validate_object_meta_update(new, old) + validate_endpoints(new)


# --- config maps and secrets ------------------------------------------------------------------

def _config_keys(data: dict, path: str) -> Errs:
    errs: Errs = []
    for k in data:
        errs += messages(key(path, k), k, names.is_config_map_key(k))
    return errs


def validate_config_map(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    data = string_map(obj.get("data"), "data", errs)
    binary = string_map(obj.get("binaryData"), "binaryData", errs)
    errs += _config_keys(data, "data")
    size = sum(len(v.encode()) for v in data.values())
    for k in data:
        if k in binary:
            errs.append(invalid(key("data", k), k, "duplicate of key present in binaryData"))
    errs += _config_keys(binary, "binaryData")
    for k, v in binary.items():
        decoded = _b64(v, key("binaryData", k), k, errs)
        size += len(decoded or b"")
    if size > MAX_DATA_SIZE:
        # "[]": the whole object, printed as Kubernetes prints an empty field path.
        errs.append(FieldError("FieldValueTooLong", "[]", f"must have at most {MAX_DATA_SIZE} bytes"))
    return errs


def _b64(value: str, path: str, shown: Any, errs: Errs) -> bytes | None:
    try:
        # Like Go's decoder: strict, except that line breaks are ignored.
        return base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError):
        errs.append(invalid(path, shown, "illegal base64 data"))
        return None


def validate_config_map_update(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    errs += _immutable_data(new, old, ("data", "binaryData"))
    return errs + validate_config_map(new)


def _immutable_data(new: Obj, old: Obj, fields: tuple[str, ...]) -> Errs:
    errs: Errs = []
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
        for field_ in fields:
            if (new.get(field_) or {}) != (old.get(field_) or {}):
                errs.append(forbidden(field_, "field is immutable when `immutable` is set"))
    return errs


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def validate_secret(obj: Obj) -> Errs:
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    data = string_map(obj.get("data"), "data", errs)
    errs += _config_keys(data, "data")
    decoded: dict[str, bytes] = {}
    for k, v in data.items():
        value = _b64(v, key("data", k), "<secret contents redacted>", errs)
        if value is not None:
            decoded[k] = value
    if sum(len(v) for v in decoded.values()) > MAX_DATA_SIZE:
        errs.append(FieldError("FieldValueTooLong", "data", f"must have at most {MAX_DATA_SIZE} bytes"))
    secret_type = obj.get("type") or "Opaque"
    if not isinstance(secret_type, str):
        return errs + [invalid("type", secret_type, "must be of type string")]
    if secret_type == "kubernetes.io/service-account-token":
        if not dig(obj, "metadata", "annotations", "kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif secret_type == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs += [required("data[username]"), required("data[password]")]
    for required_key in _SECRET_REQUIRED_KEYS.get(secret_type, ()):
        if required_key not in data or (secret_type == "kubernetes.io/ssh-auth"
                                        and not decoded.get(required_key)):
            errs.append(required(key("data", required_key)))
        elif required_key.startswith(".docker") and required_key in decoded:
            try:
                if not isinstance(json.loads(decoded[required_key]), dict):
                    raise ValueError("must be a JSON object")
            except ValueError as err:
                errs.append(invalid(key("data", required_key), "<secret contents redacted>",
                                    str(err)))
    return errs


def validate_secret_update(new: Obj, old: Obj) -> Errs:
    errs = validate_object_meta_update(new, old)
    errs += immutable(new.get("type") or "Opaque", old.get("type") or "Opaque", "type")
    errs += _immutable_data(new, old, ("data",))
    return errs + validate_secret(new)


# --- events -----------------------------------------------------------------------------------------

def validate_event(obj: Obj) -> Errs:
    """Events as the v1 API takes them, plus bramble's two musts: an involvedObject, and a
    type of Normal or Warning (Kubernetes' v1 API lets any type through)."""
    errs = validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict) or not involved:
        errs.append(required("involvedObject") if not involved else
                    invalid("involvedObject", involved, "must be of type object"))
        involved = {}
    namespace = dig(obj, "metadata", "namespace") or ""
    involved_namespace = involved.get("namespace") or ""
    if not obj.get("eventTime"):
        mismatch = (involved_namespace != namespace if involved_namespace
                    else namespace not in ("", "default"))
    else:
        mismatch = not involved_namespace and namespace not in ("default", "kube-system")
    if mismatch:
        errs.append(invalid("involvedObject.namespace", involved_namespace,
                            "does not match event.namespace"))
    if obj.get("type") not in (None, ""):
        errs += one_of(obj["type"], ("Normal", "Warning"), "type")
    nonnegative_field(obj, "count", "", errs)
    return errs


def validate_event_update(new: Obj, old: Obj) -> Errs:
    return validate_object_meta_update(new, old) + validate_event(new)


# Re-exported for apps and batch, which embed pod templates.
__all__ = [
    "IMMUTABLE", "validate_config_map", "validate_config_map_update", "validate_endpoints",
    "validate_endpoints_update", "validate_event", "validate_event_update", "validate_namespace",
    "validate_namespace_status", "validate_namespace_update", "validate_node",
    "validate_node_status", "validate_node_update", "validate_pod", "validate_pod_spec",
    "validate_pod_status", "validate_pod_template", "validate_pod_update",
    "validate_resource_requirements", "validate_secret", "validate_secret_update",
    "validate_service", "validate_service_status", "validate_service_update",
    "validate_taints", "validate_tolerations",
]
