"""Table columns and cells per kind: what `kubectl get`, `bramble get` and `describe` show.

Pure functions of an object and the current time, mirroring kubernetes
pkg/printers/internalversion/printers.go so that columns, status strings and ages read
exactly as kubectl users expect. The API server always renders every column (as the
Kubernetes API server does, with Wide on); clients hide `priority: 1` columns unless
asked for wide output. The server wraps the cells into a meta.k8s.io/v1 Table whose rows
carry PartialObjectMetadata.

Types are looked up by `ResourceType.key` ("v1/Pod"); unknown keys get NAME and AGE.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Cell = str | int | bool | None

_NAME_DOC = ("Name must be unique within a namespace. Cannot be updated.")
_AGE_DOC = ("CreationTimestamp is a timestamp representing the server time when this object "
            "was created.")


def _col(name: str, type_: str = "string", description: str = "", *, priority: int = 0,
         format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": description,
            "priority": priority}


NAME = _col("Name", format_="name", description=_NAME_DOC)
AGE = _col("Age", description=_AGE_DOC)
_CONTAINERS = _col("Containers", description="Names of each container in the template.",
                   priority=1)
_IMAGES = _col("Images", description="Images referenced by each container in the template.",
               priority=1)
_SELECTOR = _col("Selector", description="Label query over pods that should match the "
                 "replica count.", priority=1)


# --- durations ------------------------------------------------------------------------------

def human_duration(seconds: float) -> str:
    """kubectl's age format (apimachinery duration.HumanDuration): ~2-3 significant figures,
    e.g. 5s, 119s, 3m2s, 10m, 4h5m, 20h, 3d4h, 45d, 2y45d, 9y."""
    whole = int(seconds)  # truncates toward zero, as Go's int(d.Seconds())
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        s = whole % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (Time or MicroTime) as an aware datetime; None if unset/bad."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since(value: Any, now: datetime) -> str:
    """translateTimestampSince: the age of a timestamp, "<unknown>" when unset."""
    t = parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration((now - t).total_seconds())


# --- small formatters shared by kinds -------------------------------------------------------

def format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: "a=1,b=2" sorted by key, "<none>" when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: dict[str, Any] | None) -> str:
    """A LabelSelector as labels.Selector.String(): requirements sorted by key."""
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        reqs.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(op, f"{key} {op} ({values})")
        reqs.append((key, text))
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def format_label_selector(selector: dict[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: like selector_string, "<none>" when it selects all/none."""
    return selector_string(selector) or "<none>"


def _containers(template_spec: Obj) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _template_spec(obj: Obj) -> Obj:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _name(obj: Obj) -> str:
    return _meta(obj).get("name", "")


def _age(obj: Obj, now: datetime) -> str:
    return since(_meta(obj).get("creationTimestamp"), now)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _condition(conditions: list[Obj] | None, type_: str) -> Obj | None:
    for c in conditions or []:
        if c.get("type") == type_:
            return c
    return None


def _condition_true(conditions: list[Obj] | None, type_: str) -> bool:
    c = _condition(conditions, type_)
    return c is not None and c.get("status") == "True"


# --- pods -----------------------------------------------------------------------------------

POD_COLUMNS = [
    NAME,
    _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", description="The aggregate status of the containers in this pod."),
    _col("Restarts", description="The number of times the containers in this pod have been "
         "restarted and when the last container in this pod has restarted."),
    AGE,
    _col("IP", description="podIP address allocated to the pod.", priority=1),
    _col("Node", description="NodeName is the node the pod is scheduled onto.", priority=1),
    _col("Nominated Node", description="nominatedNodeName is set when this pod preempts other "
         "pods on the node.", priority=1),
    _col("Readiness Gates", description="If specified, all readiness gates will be evaluated "
         "for pod readiness.", priority=1),
]

# node.NodeUnreachablePodReason: the node controller's reason for pods on a lost node.
NODE_UNREACHABLE_POD_REASON = "NodeLost"


def _restartable(container: Obj | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _finished_at(status: Obj) -> datetime | None:
    terminated = ((status.get("lastState") or {}).get("terminated")) or None
    return parse_time(terminated.get("finishedAt")) if terminated else None


def pod_status(pod: Obj) -> tuple[int, int, str, int, datetime | None]:
    """(ready, total, reason, restarts, last restart time): kubectl's printPod logic."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    conditions = status.get("conditions") or []
    restarts = 0
    sidecar_restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total += sum(1 for c in init_specs.values() if _restartable(c))

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += _int(cs.get("restartCount"))
        finished = _finished_at(cs)
        if finished and (last_restart is None or finished > last_restart):
            last_restart = finished
        sidecar = _restartable(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += _int(cs.get("restartCount"))
            if finished and (last_sidecar_restart is None or finished > last_sidecar_restart):
                last_sidecar_restart = finished
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif _int(terminated.get("signal")):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
        elif (waiting is not None and waiting.get("reason")
              and waiting["reason"] != "PodInitializing"):
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        error_reason = ""
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += _int(cs.get("restartCount"))
            finished = _finished_at(cs)
            if finished and (last_restart is None or finished > last_restart):
                last_restart = finished
            state = cs.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None:
                if terminated.get("reason"):
                    reason = terminated["reason"]
                elif _int(terminated.get("signal")):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{_int(terminated.get('exitCode'))}"
                if _int(terminated.get("exitCode")) != 0:
                    error_reason = reason
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        # A pod whose last container completed but others still run is Running (or
        # NotReady), and one that has a failed container shows that failure.
        if reason == "Completed":
            if has_running and _condition_true(conditions, "Ready"):
                reason = "Running"
            elif error_reason:
                reason = error_reason
            elif has_running:
                reason = "NotReady"

    deleting = bool(_meta(pod).get("deletionTimestamp"))
    if deleting and status.get("reason") == NODE_UNREACHABLE_POD_REASON:
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def _pod_cells(pod: Obj, now: datetime) -> list[Cell]:
    ready, total, reason, restarts, last_restart = pod_status(pod)
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ips = status.get("podIPs") or []
    pod_ip = (ips[0].get("ip") if ips else None) or status.get("podIP") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        conditions = status.get("conditions") or []
        true_count = sum(1 for g in gates
                         if _condition_true(conditions, g.get("conditionType", "")))
        gates_text = f"{true_count}/{len(gates)}"
    return [_name(pod), f"{ready}/{total}", reason, restarts_text, _age(pod, now),
            pod_ip, spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gates_text]


# --- workloads ------------------------------------------------------------------------------

DEPLOYMENT_COLUMNS = [
    NAME,
    _col("Ready", description="Number of the pod with ready state"),
    _col("Up-to-date", description="Total number of non-terminated pods targeted by this "
         "deployment that have the desired template spec."),
    _col("Available", description="Total number of available pods (ready for at least "
         "minReadySeconds) targeted by this deployment."),
    AGE, _CONTAINERS, _IMAGES, _SELECTOR,
]


def _deployment_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    desired = spec.get("replicas", 1)
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{_int(desired)}",
            _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")),
            _age(obj, now), names, images, selector_string(spec.get("selector"))]


def _replicas_columns(owner: str) -> list[Obj]:
    return [
        NAME,
        _col("Desired", "integer", "Replicas is the number of desired replicas."),
        _col("Current", "integer", "Replicas is the most recently observed number of replicas."),
        _col("Ready", "integer", f"The number of ready replicas for this {owner}."),
        AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ]


def _replicas_cells(obj: Obj, now: datetime, selector: str) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    return [_name(obj), _int(spec.get("replicas", 1)), _int(status.get("replicas")),
            _int(status.get("readyReplicas")), _age(obj, now), names, images, selector]


REPLICASET_COLUMNS = _replicas_columns("replica set")


def _replicaset_cells(obj: Obj, now: datetime) -> list[Cell]:
    selector = (obj.get("spec") or {}).get("selector")
    return _replicas_cells(obj, now, format_label_selector(selector))


# ReplicationController: as a ReplicaSet, with its selector a plain map.
REPLICATIONCONTROLLER_COLUMNS = _replicas_columns("replication controller")


def _replicationcontroller_cells(obj: Obj, now: datetime) -> list[Cell]:
    selector = (obj.get("spec") or {}).get("selector")
    return _replicas_cells(obj, now,
                           format_labels(selector if isinstance(selector, dict) else None))


DAEMONSET_COLUMNS = [
    NAME,
    _col("Desired", "integer", "The total number of nodes that should be running the daemon "
         "pod."),
    _col("Current", "integer", "The number of nodes that are running at least 1 daemon pod "
         "and are supposed to run the daemon pod."),
    _col("Ready", "integer", "The number of nodes that should be running the daemon pod and "
         "have one or more of the daemon pod running and ready."),
    _col("Up-to-date", "integer", "The total number of nodes that are running updated daemon "
         "pod"),
    _col("Available", "integer", "The number of nodes that should be running the daemon pod "
         "and have one or more of the daemon pod running and available."),
    _col("Node Selector", description="NodeSelector is a selector which must be true for the "
         "pod to fit on a node."),
    AGE, _CONTAINERS, _IMAGES, _SELECTOR,
]


def _daemonset_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    template = _template_spec(obj)
    names, images = _containers(template)
    return [_name(obj), _int(status.get("desiredNumberScheduled")),
            _int(status.get("currentNumberScheduled")), _int(status.get("numberReady")),
            _int(status.get("updatedNumberScheduled")), _int(status.get("numberAvailable")),
            format_labels(template.get("nodeSelector")), _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))]


JOB_COLUMNS = [
    NAME,
    _col("Status", description="Status of the job."),
    _col("Completions", description="The number of pods which reached phase Succeeded."),
    _col("Duration", description="Time required to complete the job."),
    AGE, _CONTAINERS, _IMAGES, _SELECTOR,
]


def job_status(obj: Obj) -> str:
    conditions = (obj.get("status") or {}).get("conditions") or []
    if _condition_true(conditions, "Complete"):
        return "Complete"
    if _condition_true(conditions, "Failed"):
        return "Failed"
    if _meta(obj).get("deletionTimestamp"):
        return "Terminating"
    if _condition_true(conditions, "Suspended"):
        return "Suspended"
    if _condition_true(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec['completions'])}"
    else:
        parallelism = _int(spec.get("parallelism"))
        completions = (f"{succeeded}/1 of {parallelism}" if parallelism > 1
                       else f"{succeeded}/1")
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(((end or now) - start).total_seconds())
    names, images = _containers(_template_spec(obj))
    return [_name(obj), job_status(obj), completions, duration, _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))]


# --- nodes ----------------------------------------------------------------------------------

NODE_COLUMNS = [
    NAME,
    _col("Status", description="The status of the node"),
    _col("Roles", description="The roles of the node"),
    AGE,
    _col("Version", description="Kubelet Version reported by the node."),
    _col("Internal-IP", description="List of addresses reachable to the node.", priority=1),
    _col("External-IP", description="List of addresses reachable to the node.", priority=1),
    _col("OS-Image", description="OS Image reported by the node from /etc/os-release.",
         priority=1),
    _col("Kernel-Version", description="Kernel Version reported by the node.", priority=1),
    _col("Container-Runtime", description="ContainerRuntime Version reported by the node.",
         priority=1),
]

NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
NODE_ROLE_LABEL = "kubernetes.io/role"


def node_status(node: Obj) -> str:
    ready = _condition((node.get("status") or {}).get("conditions"), "Ready")
    parts = ["Unknown" if ready is None else "Ready" if ready.get("status") == "True"
             else "NotReady"]
    if (node.get("spec") or {}).get("unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Obj) -> str:
    roles = set()
    for key, value in (_meta(node).get("labels") or {}).items():
        if key.startswith(NODE_ROLE_PREFIX) and key[len(NODE_ROLE_PREFIX):]:
            roles.add(key[len(NODE_ROLE_PREFIX):])
        elif key == NODE_ROLE_LABEL and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: Obj, type_: str) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == type_:
            return address.get("address", "")
    return "<none>"


def _node_cells(obj: Obj, now: datetime) -> list[Cell]:
    info = (obj.get("status") or {}).get("nodeInfo") or {}
    return [_name(obj), node_status(obj), node_roles(obj), _age(obj, now),
            info.get("kubeletVersion", ""), _node_address(obj, "InternalIP"),
            _node_address(obj, "ExternalIP"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


# --- services and endpoints -----------------------------------------------------------------

SERVICE_COLUMNS = [
    NAME,
    _col("Type", description="type determines how the Service is exposed."),
    _col("Cluster-IP", description="clusterIP is the IP address of the service."),
    _col("External-IP", description="externalIPs is a list of IP addresses for which nodes "
         "in the cluster will also accept traffic for this service."),
    _col("Port(s)", description="The list of ports that are exposed by this service."),
    AGE,
    _col("Selector", description="Route service traffic to pods with label keys and values "
         "matching this selector.", priority=1),
]


def service_ports(ports: list[Obj] | None) -> str:
    """makePortString: "80/TCP", "80:30080/TCP" with a node port, comma separated."""
    pieces = []
    for p in ports or []:
        proto = p.get("protocol") or "TCP"
        if _int(p.get("nodePort")) > 0:
            pieces.append(f"{_int(p.get('port'))}:{p['nodePort']}/{proto}")
        else:
            pieces.append(f"{_int(p.get('port'))}/{proto}")
    return ",".join(pieces)


def service_external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    type_ = spec.get("type") or "ClusterIP"
    external = spec.get("externalIPs") or []
    if type_ in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if type_ == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb = sorted({i.get("ip") or i.get("hostname") for i in ingress
                     if i.get("ip") or i.get("hostname")})
        if external:
            return ",".join(lb + external)
        return ",".join(lb) or "<pending>"
    if type_ == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _service_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or []
    cluster_ip = (cluster_ips[0] if cluster_ips else spec.get("clusterIP")) or "<none>"
    return [_name(obj), spec.get("type") or "ClusterIP", cluster_ip, service_external_ip(obj),
            service_ports(spec.get("ports")) or "<none>", _age(obj, now),
            format_labels(spec.get("selector"))]


ENDPOINTS_COLUMNS = [
    NAME,
    _col("Endpoints", description="The set of all endpoints is the union of all subsets."),
    AGE,
]


def _join_host_port(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def format_endpoints(endpoints: Obj, limit: int = 3) -> str:
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:  # headless services may have no ports
            count += len(addresses)
            shown += addresses[:max(0, limit - len(shown))]
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    break
                shown.append(_join_host_port(ip, _int(port.get("port"))))
    text = ",".join(shown)
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text


def _endpoints_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), format_endpoints(obj), _age(obj, now)]


# --- config, secrets, namespaces, events ----------------------------------------------------

CONFIGMAP_COLUMNS = [NAME, _col("Data", description="Data contains the configuration data."),
                     AGE]


def _configmap_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}),
            _age(obj, now)]


SECRET_COLUMNS = [
    NAME,
    _col("Type", description="Used to facilitate programmatic handling of secret data."),
    _col("Data", description="Data contains the secret data."),
    AGE,
]


def _secret_cells(obj: Obj, now: datetime) -> list[Cell]:
    data = set(obj.get("data") or {}) | set(obj.get("stringData") or {})
    return [_name(obj), obj.get("type") or "Opaque", len(data), _age(obj, now)]


NAMESPACE_COLUMNS = [NAME, _col("Status", description="The status of the namespace"), AGE]


def _namespace_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), (obj.get("status") or {}).get("phase") or "Active", _age(obj, now)]


EVENT_COLUMNS = [
    _col("Last Seen", description="The time at which the most recent occurrence of this "
         "event was recorded."),
    _col("Type", description="Type of this event (Normal, Warning)."),
    _col("Reason", description="This should be a short, machine understandable string that "
         "gives the reason for the transition into the object's current status."),
    _col("Object", description="The object that this event is about."),
    _col("Subobject", description="The field of the object this event is about.", priority=1),
    _col("Source", description="The component reporting this event.", priority=1),
    _col("Message", description="A human-readable description of the status of this "
         "operation."),
    _col("First Seen", description="The time at which the event was first recorded.",
         priority=1),
    _col("Count", description="The number of times this event has occurred.", priority=1),
    _col("Name", format_="name", description=_NAME_DOC, priority=1),
]


def event_source(event: Obj) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingController") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def event_times(event: Obj, now: datetime) -> tuple[str, str, int]:
    """(last seen, first seen, count) as kubectl prints them."""
    first = (since(event.get("firstTimestamp"), now) if event.get("firstTimestamp")
             else since(event.get("eventTime"), now))
    last = since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = _int(event.get("count"))
    series = event.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events of the newer API carry no count
    return last, first, count


def _event_cells(obj: Obj, now: datetime) -> list[Cell]:
    last, first, count = event_times(obj, now)
    involved = obj.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [last, obj.get("type", ""), obj.get("reason", ""), target,
            involved.get("fieldPath", ""), event_source(obj), (obj.get("message") or "").strip(),
            first, count, _name(obj)]


# --- HorizontalPodAutoscaler (autoscaling/v2) ----------------------------------------------

HPA_COLUMNS = [
    NAME,
    _col("Reference", description="scaleTargetRef points to the target resource to scale, "
         "and is used to the pods for which metrics should be collected, as well as to "
         "actually change the replica count."),
    _col("Targets", description="metrics contains the specifications for which to use to "
         "calculate the desired replica count (the maximum replica count across all "
         "metrics will be used)."),
    _col("MinPods", description="minReplicas is the lower limit for the number of replicas "
         "to which the autoscaler can scale down."),
    _col("MaxPods", "integer", "maxReplicas is the upper limit for the number of replicas to "
         "which the autoscaler can scale up."),
    _col("Replicas", "integer", "currentReplicas is current number of replicas of pods "
         "managed by this autoscaler, as last seen by the autoscaler."),
    AGE,
]

_UNKNOWN = "<unknown>"


def _hpa_metric(spec: Obj, status: Obj | None) -> str:
    """One metric of formatHPAMetrics: "cpu: 42%/50%", "memory: 12Mi/100Mi", "5/10 (avg)"."""
    kind = spec.get("type")
    status = status or {}
    if kind in ("Resource", "ContainerResource"):
        field = "resource" if kind == "Resource" else "containerResource"
        src = spec.get(field) or {}
        target = src.get("target") or {}
        current = (status.get(field) or {}).get("current")
        name = src.get("name", "")
        if target.get("averageValue") is not None:
            now = (current or {}).get("averageValue", _UNKNOWN)
            return f"{name}: {now}/{target['averageValue']}"
        now = _UNKNOWN
        if current is not None and current.get("averageUtilization") is not None:
            now = f"{current['averageUtilization']}%"
        wanted = f"{target['averageUtilization']}%" \
            if target.get("averageUtilization") is not None else "<auto>"
        return f"{name}: {now}/{wanted}"
    if kind in ("External", "Object"):
        field = kind.lower()
        target = (spec.get(field) or {}).get("target") or {}
        current = (status.get(field) or {}).get("current") or {}
        if target.get("averageValue") is not None:
            return f"{current.get('averageValue', _UNKNOWN)}/{target['averageValue']} (avg)"
        return f"{current.get('value', _UNKNOWN)}/{target.get('value', '')}"
    if kind == "Pods":
        target = (spec.get("pods") or {}).get("target") or {}
        current = (status.get("pods") or {}).get("current") or {}
        return f"{current.get('averageValue', _UNKNOWN)}/{target.get('averageValue', '')}"
    return "<unknown type>"


def format_hpa_metrics(specs: list[Obj] | None, statuses: list[Obj] | None) -> str:
    """formatHPAMetrics: each metric's current/target, at most two then "+ N more..."."""
    specs = [m for m in specs or [] if isinstance(m, dict)]
    if not specs:
        return "<none>"
    statuses = statuses or []
    shown = [_hpa_metric(m, statuses[i] if i < len(statuses) else None)
             for i, m in enumerate(specs)]
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


def _hpa_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    minimum = spec.get("minReplicas")
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            format_hpa_metrics(spec.get("metrics"), status.get("currentMetrics")),
            "<unset>" if minimum is None else str(minimum), _int(spec.get("maxReplicas")),
            _int(status.get("currentReplicas")), _age(obj, now)]


# --- fallback and lookup --------------------------------------------------------------------

DEFAULT_COLUMNS = [NAME, AGE]


def _default_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _age(obj, now)]


_KINDS: dict[str, tuple[list[dict[str, Any]], Callable[[Obj, datetime], list[Cell]]]] = {
    "v1/Pod": (POD_COLUMNS, _pod_cells),
    "v1/Node": (NODE_COLUMNS, _node_cells),
    "v1/Service": (SERVICE_COLUMNS, _service_cells),
    "v1/Endpoints": (ENDPOINTS_COLUMNS, _endpoints_cells),
    "v1/ConfigMap": (CONFIGMAP_COLUMNS, _configmap_cells),
    "v1/Secret": (SECRET_COLUMNS, _secret_cells),
    "v1/Namespace": (NAMESPACE_COLUMNS, _namespace_cells),
    "v1/Event": (EVENT_COLUMNS, _event_cells),
    "v1/ReplicationController": (REPLICATIONCONTROLLER_COLUMNS, _replicationcontroller_cells),
    "apps/v1/Deployment": (DEPLOYMENT_COLUMNS, _deployment_cells),
    "autoscaling/v2/HorizontalPodAutoscaler": (HPA_COLUMNS, _hpa_cells),
    "apps/v1/ReplicaSet": (REPLICASET_COLUMNS, _replicaset_cells),
    "apps/v1/DaemonSet": (DAEMONSET_COLUMNS, _daemonset_cells),
    "batch/v1/Job": (JOB_COLUMNS, _job_cells),
}


def column_definitions(key: str) -> list[dict[str, Any]]:
    """meta.k8s.io/v1 TableColumnDefinitions for the type `key` ("apps/v1/Deployment")."""
    columns, _ = _KINDS.get(key, (DEFAULT_COLUMNS, _default_cells))
    return [dict(c) for c in columns]


def cells(key: str, obj: Obj, now: datetime) -> list[Cell]:
    """One row's cells, one per column of `column_definitions(key)` (wide ones included)."""
    _, render = _KINDS.get(key, (DEFAULT_COLUMNS, _default_cells))
    return render(obj, now)
