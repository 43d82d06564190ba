"""`bramble describe`: readable, kubectl-like descriptions of objects. Pure.

`related_queries(key, obj)` says what else a description needs (the pods of a
ReplicaSet, the ReplicaSets of a Deployment, the Endpoints of a Service); the command
fetches those and the object's events, then `describe(...)` renders text. Layout follows
kubectl's describers (k8s.io/kubectl/pkg/describe): "Label:\\tvalue" lines aligned by a
tabwriter with padding 2, nested levels indented by two spaces.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bramble.cli.output import TabWriter

Obj = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_ANNOTATION_LEN = 140


@dataclass(frozen=True)
class Query:
    """A list (or, with `name`, a get) the description needs besides the object."""

    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    params: dict[str, str] = field(default_factory=dict)


# --- time helpers (the age format is the server's, shared with tables) ----------------------

def _parse(ts: Any) -> datetime | None:
    from bramble.kube.printers import parse_time

    return parse_time(ts)


def _since(ts: Any, now: datetime) -> str:
    from bramble.kube.printers import since

    return since(ts, now)


def _human(seconds: float) -> str:
    from bramble.kube.printers import human_duration

    return human_duration(seconds)


def format_time(ts: Any) -> str:
    """RFC 1123 with numeric zone, in local time: "Mon, 02 Jan 2006 15:04:05 -0700"."""
    t = _parse(ts)
    return t.astimezone().strftime("%a, %d %b %Y %H:%M:%S %z") if t else "<unset>"


# --- the writer -----------------------------------------------------------------------------

class _Writer:
    """kubectl's PrefixWriter: level-indented, tab-aligned text, flushed in sections."""

    def __init__(self) -> None:
        self._tw = TabWriter(minwidth=0, padding=2)
        self._chunks: list[str] = []

    def __call__(self, level: int, text: str) -> None:
        self._tw.write("  " * level + text)

    def flush(self) -> None:
        self._chunks.append(self._tw.flush())

    def text(self) -> str:
        self.flush()
        return "".join(self._chunks)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _labels(w: _Writer, title: str, labels: dict[str, str] | None, level: int = 0) -> None:
    if not labels:
        w(level, f"{title}:\t<none>\n")
        return
    for i, key in enumerate(sorted(labels)):
        w(level, f"{title}:\t" if i == 0 else "\t")
        w(0, f"{key}={labels[key]}\n")


def _annotations(w: _Writer, title: str, annotations: dict[str, str] | None,
                 level: int = 0) -> None:
    shown = {k: v for k, v in (annotations or {}).items() if k != LAST_APPLIED}
    if not shown:
        w(level, f"{title}:\t<none>\n")
        return
    for i, key in enumerate(sorted(shown)):
        value = str(shown[key]).replace("\n", " ")
        if len(value) > MAX_ANNOTATION_LEN:
            value = value[:MAX_ANNOTATION_LEN] + "..."
        w(level, f"{title}:\t" if i == 0 else "\t")
        w(0, f"{key}: {value}\n")


def _header(w: _Writer, obj: Obj, *, namespace: bool = True, created: bool = False) -> None:
    meta = _meta(obj)
    w(0, f"Name:\t{meta.get('name', '')}\n")
    if namespace and meta.get("namespace"):
        w(0, f"Namespace:\t{meta['namespace']}\n")
    if created:
        w(0, f"CreationTimestamp:\t{format_time(meta.get('creationTimestamp'))}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))


def controller_of(obj: Obj) -> str:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind', '')}/{ref.get('name', '')}"
    return ""


def _condition(conditions: list[Obj] | None, type_: str) -> Obj | None:
    for c in conditions or []:
        if c.get("type") == type_:
            return c
    return None


# --- containers, probes, volumes ------------------------------------------------------------

def _ports(container: Obj) -> tuple[str, str]:
    ports = container.get("ports") or []
    if not ports:
        return "<none>", "<none>"
    return (", ".join(f"{p.get('containerPort', 0)}/{p.get('protocol') or 'TCP'}"
                      for p in ports),
            ", ".join(f"{p.get('hostPort', 0)}/{p.get('protocol') or 'TCP'}" for p in ports))


def probe_text(probe: Obj) -> str:
    attrs = (f"delay={probe.get('initialDelaySeconds', 0)}s "
             f"timeout={probe.get('timeoutSeconds', 1)}s "
             f"period={probe.get('periodSeconds', 10)}s "
             f"#success={probe.get('successThreshold', 1)} "
             f"#failure={probe.get('failureThreshold', 3)}")
    if probe.get("exec"):
        return f"exec [{' '.join(probe['exec'].get('command') or [])}] {attrs}"
    if probe.get("httpGet"):
        h = probe["httpGet"]
        host = h.get("host", "")
        port = str(h.get("port", ""))
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"http-get {(h.get('scheme') or 'HTTP').lower()}://{hostport}{h.get('path', '')} {attrs}"
    if probe.get("tcpSocket"):
        t = probe["tcpSocket"]
        return f"tcp-socket {t.get('host', '')}:{t.get('port', '')} {attrs}"
    if probe.get("grpc"):
        g = probe["grpc"]
        return f"grpc <pod>:{g.get('port', '')} {g.get('service', '')} {attrs}"
    return f"unknown {attrs}"


def _env_value(env: Obj) -> str:
    if "value" in env:
        return str(env.get("value", ""))
    source = env.get("valueFrom") or {}
    if source.get("fieldRef"):
        ref = source["fieldRef"]
        return f"({ref.get('apiVersion', 'v1')}:{ref.get('fieldPath', '')})"
    if source.get("resourceFieldRef"):
        ref = source["resourceFieldRef"]
        return f"{ref.get('resource', '')} ({ref.get('containerName', '')})"
    if source.get("secretKeyRef"):
        ref = source["secretKeyRef"]
        return (f"<set to the key '{ref.get('key', '')}' in secret '{ref.get('name', '')}'>"
                f"\tOptional: {str(bool(ref.get('optional'))).lower()}")
    if source.get("configMapKeyRef"):
        ref = source["configMapKeyRef"]
        return (f"<set to the key '{ref.get('key', '')}' of config map '{ref.get('name', '')}'>"
                f"\tOptional: {str(bool(ref.get('optional'))).lower()}")
    return ""


def _state(w: _Writer, title: str, state: Obj, level: int) -> None:
    if state.get("running") is not None:
        w(level, f"{title}:\tRunning\n")
        w(level + 1, f"Started:\t{format_time(state['running'].get('startedAt'))}\n")
    elif state.get("waiting") is not None:
        w(level, f"{title}:\tWaiting\n")
        if state["waiting"].get("reason"):
            w(level + 1, f"Reason:\t{state['waiting']['reason']}\n")
        if state["waiting"].get("message"):
            w(level + 1, f"Message:\t{state['waiting']['message']}\n")
    elif state.get("terminated") is not None:
        t = state["terminated"]
        w(level, f"{title}:\tTerminated\n")
        if t.get("reason"):
            w(level + 1, f"Reason:\t{t['reason']}\n")
        if t.get("message"):
            w(level + 1, f"Message:\t{t['message'].strip()}\n")
        w(level + 1, f"Exit Code:\t{t.get('exitCode', 0)}\n")
        if t.get("signal"):
            w(level + 1, f"Signal:\t{t['signal']}\n")
        w(level + 1, f"Started:\t{format_time(t.get('startedAt'))}\n")
        w(level + 1, f"Finished:\t{format_time(t.get('finishedAt'))}\n")
    else:
        w(level, f"{title}:\tWaiting\n")


def _containers(w: _Writer, title: str, containers: list[Obj], statuses: list[Obj] | None,
                *, template: bool = False) -> None:
    # kubectl's layout: in a pod template the title is indented and the names by one
    # more space, while the fields stay where a pod's are.
    w(1 if template else 0, f"{title}:\n")
    by_name = {s.get("name"): s for s in statuses or []}
    for c in containers:
        status = by_name.get(c.get("name"))
        w(1, f"{' ' if template else ''}{c.get('name', '')}:\n")
        inner = 2
        if statuses is not None:
            w(inner, f"Container ID:\t{(status or {}).get('containerID', '')}\n")
        w(inner, f"Image:\t{c.get('image', '')}\n")
        if statuses is not None:
            w(inner, f"Image ID:\t{(status or {}).get('imageID', '')}\n")
        ports, host_ports = _ports(c)
        many = len(c.get("ports") or []) > 1
        w(inner, f"{'Ports' if many else 'Port'}:\t{ports}\n")
        w(inner, f"{'Host Ports' if many else 'Host Port'}:\t{host_ports}\n")
        for key, label in (("command", "Command"), ("args", "Args")):
            if c.get(key):
                w(inner, f"{label}:\n")
                for part in c[key]:
                    for line in str(part).split("\n"):
                        w(inner + 1, f"{line}\n")
        if statuses is not None:
            if status is not None:
                _state(w, "State", status.get("state") or {}, inner)
                last = status.get("lastState") or {}
                if last:
                    _state(w, "Last State", last, inner)
                w(inner, f"Ready:\t{'True' if status.get('ready') else 'False'}\n")
                w(inner, f"Restart Count:\t{status.get('restartCount', 0)}\n")
            else:
                w(inner, "State:\tWaiting\n")
                w(inner, "Ready:\tFalse\n")
                w(inner, "Restart Count:\t0\n")
        resources = c.get("resources") or {}
        for key, label in (("limits", "Limits"), ("requests", "Requests")):
            if resources.get(key):
                w(inner, f"{label}:\n")
                for name in sorted(resources[key]):
                    w(inner + 1, f"{name}:\t{resources[key][name]}\n")
        for key, label in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"),
                           ("startupProbe", "Startup")):
            if c.get(key):
                w(inner, f"{label}:\t{probe_text(c[key])}\n")
        env, env_from = c.get("env") or [], c.get("envFrom") or []
        if env_from:
            w(inner, "Environment Variables from:\n")
            for source in env_from:
                ref = source.get("configMapRef") or source.get("secretRef") or {}
                kind = "ConfigMap" if source.get("configMapRef") else "Secret"
                w(inner + 1, f"{ref.get('name', '')}\t{kind}\tOptional: "
                             f"{str(bool(ref.get('optional'))).lower()}\n")
        if env:
            w(inner, "Environment:\n")
            for e in env:
                w(inner + 1, f"{e.get('name', '')}:\t{_env_value(e)}\n")
        else:
            w(inner, "Environment:\t<none>\n")
        mounts = c.get("volumeMounts") or []
        if mounts:
            w(inner, "Mounts:\n")
            for m in sorted(mounts, key=lambda m: m.get("mountPath", "")):
                flags = "ro" if m.get("readOnly") else "rw"
                sub = f", path = \"{m['subPath']}\"" if m.get("subPath") else ""
                w(inner + 1, f"{m.get('mountPath', '')} from {m.get('name', '')} ({flags}{sub})\n")
        else:
            w(inner, "Mounts:\t<none>\n")


def _volumes(w: _Writer, volumes: list[Obj] | None, *, template: bool = False) -> None:
    level = 1 if template else 0
    if not volumes:
        w(level, "Volumes:\t<none>\n")
        return
    w(level, "Volumes:\n")
    for v in volumes:
        w(1, f"{' ' if template else ''}{v.get('name', '')}:\n")
        inner = 2
        if "emptyDir" in v:
            e = v.get("emptyDir") or {}
            w(inner, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
            w(inner, f"Medium:\t{e.get('medium', '')}\n")
            w(inner, f"SizeLimit:\t{e.get('sizeLimit') or '<unset>'}\n")
        elif "hostPath" in v:
            h = v.get("hostPath") or {}
            w(inner, "Type:\tHostPath (bare host directory volume)\n")
            w(inner, f"Path:\t{h.get('path', '')}\n")
            w(inner, f"HostPathType:\t{h.get('type', '')}\n")
        elif "configMap" in v:
            c = v.get("configMap") or {}
            w(inner, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
            w(inner, f"Name:\t{c.get('name', '')}\n")
            w(inner, f"Optional:\t{str(bool(c.get('optional'))).lower()}\n")
        elif "secret" in v:
            s = v.get("secret") or {}
            w(inner, "Type:\tSecret (a volume populated by a Secret)\n")
            w(inner, f"SecretName:\t{s.get('secretName', '')}\n")
            w(inner, f"Optional:\t{str(bool(s.get('optional'))).lower()}\n")
        else:
            kinds = [k for k in v if k != "name"]
            w(inner, f"Type:\t{kinds[0] if kinds else '<unknown>'}\n")


def _tolerations(w: _Writer, tolerations: list[Obj] | None, level: int = 0) -> None:
    if not tolerations:
        w(level, "Tolerations:\t<none>\n")
        return
    for i, t in enumerate(tolerations):
        text = t.get("key", "")
        if t.get("value"):
            text += f"={t['value']}"
        if t.get("effect"):
            text += f":{t['effect']}"
        if t.get("operator") == "Exists" and not t.get("value"):
            text += " op=Exists" if text else "op=Exists"
        if t.get("tolerationSeconds") is not None:
            text += f" for {t['tolerationSeconds']}s"
        w(level if i == 0 else 0, ("Tolerations:\t" if i == 0 else "\t") + text + "\n")


def _taints(w: _Writer, taints: list[Obj] | None) -> None:
    if not taints:
        w(0, "Taints:\t<none>\n")
        return
    for i, t in enumerate(taints):
        text = t.get("key", "") + (f"={t['value']}" if t.get("value") else "")
        text += f":{t.get('effect', '')}"
        w(0, ("Taints:\t" if i == 0 else "\t") + text + "\n")


def _pod_template(w: _Writer, template: Obj) -> None:
    meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    w(0, "Pod Template:\n")
    _labels(w, "Labels", meta.get("labels"), level=1)
    if meta.get("annotations"):
        _annotations(w, "Annotations", meta.get("annotations"), level=1)
    if spec.get("serviceAccountName"):
        w(1, f"Service Account:\t{spec['serviceAccountName']}\n")
    if spec.get("initContainers"):
        _containers(w, "Init Containers", spec["initContainers"], None, template=True)
    _containers(w, "Containers", spec.get("containers") or [], None, template=True)
    _volumes(w, spec.get("volumes"), template=True)
    _labels(w, "Node-Selectors", spec.get("nodeSelector"), level=1)
    _tolerations(w, spec.get("tolerations"), level=1)


def _conditions_table(w: _Writer, conditions: list[Obj] | None, *, reason: bool = True) -> None:
    if not conditions:
        return
    w(0, "Conditions:\n")
    if reason:
        w(1, "Type\tStatus\tReason\n")
        w(1, "----\t------\t------\n")
    else:  # a pod's conditions table has no rule under its header in kubectl
        w(1, "Type\tStatus\n")
    for c in conditions:
        if reason:
            w(1, f"{c.get('type', '')}\t{c.get('status', '')}\t{c.get('reason', '')}\n")
        else:
            w(1, f"{c.get('type', '')} \t{c.get('status', '')} \n")


def _pod_counts(pods: list[Obj], owner_uid: str) -> dict[str, int]:
    counts = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for pod in pods:
        owners = _meta(pod).get("ownerReferences") or []
        if owner_uid and owners and not any(o.get("uid") == owner_uid for o in owners):
            continue
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        counts[phase] = counts.get(phase, 0) + 1
    return counts


def _pods_status_line(counts: dict[str, int]) -> str:
    return (f"{counts['Running']} Running / {counts['Pending']} Waiting / "
            f"{counts['Succeeded']} Succeeded / {counts['Failed']} Failed")


def _events(w: _Writer, events: list[Obj] | None, now: datetime) -> None:
    if events is None:
        return
    if not events:
        w(0, "Events:\t<none>\n")
        return
    w.flush()  # the events table is aligned on its own

    def when(e: Obj) -> str:
        return (e.get("lastTimestamp") or (e.get("series") or {}).get("lastObservedTime")
                or e.get("eventTime") or e.get("firstTimestamp") or "")

    w(0, "Events:\n")
    w(1, "Type\tReason\tAge\tFrom\tMessage\n")
    w(1, "----\t------\t----\t----\t-------\n")
    for e in sorted(events, key=lambda e: _parse(when(e)) or datetime.min.replace(tzinfo=UTC)):
        first = (_since(e["eventTime"], now) if e.get("eventTime")
                 else _since(e.get("firstTimestamp"), now))
        series = e.get("series")
        count = int(e.get("count") or 0)
        if series:
            interval = (f"{_since(series.get('lastObservedTime'), now)} "
                        f"(x{series.get('count', 0)} over {first})")
        elif count > 1:
            interval = f"{_since(e.get('lastTimestamp'), now)} (x{count} over {first})"
        else:
            interval = first
        source = (e.get("source") or {}).get("component") or e.get("reportingController") or ""
        w(1, f"{e.get('type', '')}\t{e.get('reason', '')}\t{interval}\t{source}\t"
             f"{(e.get('message') or '').strip()}\n")


# --- per kind -------------------------------------------------------------------------------

def _pod(w: _Writer, pod: Obj, related: dict[str, Any], now: datetime) -> None:
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    w(0, f"Name:\t{meta.get('name', '')}\n")
    w(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    if spec.get("priority") is not None:
        w(0, f"Priority:\t{spec['priority']}\n")
    if spec.get("priorityClassName"):
        w(0, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    w(0, f"Service Account:\t{spec.get('serviceAccountName', '')}\n")
    node = spec.get("nodeName")
    w(0, f"Node:\t{node + '/' + status.get('hostIP', '') if node else '<none>'}\n")
    if status.get("startTime"):
        w(0, f"Start Time:\t{format_time(status['startTime'])}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    if meta.get("deletionTimestamp"):
        w(0, f"Status:\tTerminating (lasts {_since(meta['deletionTimestamp'], now)})\n")
        if meta.get("deletionGracePeriodSeconds") is not None:
            w(0, f"Termination Grace Period:\t{meta['deletionGracePeriodSeconds']}s\n")
    else:
        w(0, f"Status:\t{status.get('phase', '')}\n")
    if status.get("reason"):
        w(0, f"Reason:\t{status['reason']}\n")
    if status.get("message"):
        w(0, f"Message:\t{status['message']}\n")
    w(0, f"IP:\t{status.get('podIP', '')}\n")
    ips = status.get("podIPs") or ([{"ip": status["podIP"]}] if status.get("podIP") else [])
    if ips:
        w(0, "IPs:\n")
        for ip in ips:
            w(1, f"IP:\t{ip.get('ip', '')}\n")
    else:
        w(0, "IPs:\t<none>\n")
    if controller_of(pod):
        w(0, f"Controlled By:\t{controller_of(pod)}\n")
    if status.get("nominatedNodeName"):
        w(0, f"NominatedNodeName:\t{status['nominatedNodeName']}\n")
    if spec.get("initContainers"):
        _containers(w, "Init Containers", spec["initContainers"],
                    status.get("initContainerStatuses") or [])
    _containers(w, "Containers", spec.get("containers") or [],
                status.get("containerStatuses") or [])
    if spec.get("readinessGates"):
        w(0, "Readiness Gates:\n")
        w(1, "Type\tStatus\n")
        for gate in spec["readinessGates"]:
            c = _condition(status.get("conditions"), gate.get("conditionType", ""))
            w(1, f"{gate.get('conditionType', '')} \t{(c or {}).get('status', '<none>')} \n")
    _conditions_table(w, status.get("conditions"), reason=False)
    _volumes(w, spec.get("volumes"))
    w(0, f"QoS Class:\t{status.get('qosClass') or qos_class(spec)}\n")
    _labels(w, "Node-Selectors", spec.get("nodeSelector"))
    _tolerations(w, spec.get("tolerations"))


def qos_class(spec: Obj) -> str:
    """The pod's QoS class from its containers' requests and limits (a fallback for when
    the server has not set status.qosClass; quantities are compared as written)."""
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    requests: dict[str, list[str]] = {}
    limits: dict[str, list[str]] = {}
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        lim, req = res.get("limits") or {}, res.get("requests") or {}
        for k, v in req.items():
            requests.setdefault(k, []).append(str(v))
        for k, v in lim.items():
            limits.setdefault(k, []).append(str(v))
        if not all(k in lim for k in ("cpu", "memory")):
            guaranteed = False
        elif any(str(req.get(k, lim[k])) != str(lim[k]) for k in ("cpu", "memory")):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _deployment(w: _Writer, obj: Obj, related: dict[str, Any], now: datetime) -> None:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    _header(w, obj, created=True)
    from bramble.kube.printers import selector_string

    w(0, f"Selector:\t{selector_string(spec.get('selector'))}\n")
    replicas = spec.get("replicas", 1)
    w(0, f"Replicas:\t{replicas} desired | {status.get('updatedReplicas', 0)} updated | "
         f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
         f"{status.get('unavailableReplicas', 0)} unavailable\n")
    strategy = spec.get("strategy") or {}
    w(0, f"StrategyType:\t{strategy.get('type', 'RollingUpdate')}\n")
    w(0, f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}\n")
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        ru = strategy.get("rollingUpdate") or {}
        w(0, f"RollingUpdateStrategy:\t{ru.get('maxUnavailable', '25%')} max unavailable, "
             f"{ru.get('maxSurge', '25%')} max surge\n")
    _pod_template(w, spec.get("template") or {})
    _conditions_table(w, status.get("conditions"))
    uid = _meta(obj).get("uid", "")
    revision = (_meta(obj).get("annotations") or {}).get("deployment.kubernetes.io/revision")
    owned = [rs for rs in related.get("replicasets") or []
             if any(o.get("uid") == uid for o in _meta(rs).get("ownerReferences") or [])]
    new = [rs for rs in owned if revision and (_meta(rs).get("annotations") or {})
           .get("deployment.kubernetes.io/revision") == revision]
    old = [rs for rs in owned if rs not in new and (rs.get("spec") or {}).get("replicas", 0)]

    def rs_text(rs: Obj) -> str:
        return (f"{_meta(rs).get('name', '')} ({(rs.get('status') or {}).get('replicas', 0)}/"
                f"{(rs.get('spec') or {}).get('replicas', 0)} replicas created)")

    w(0, f"OldReplicaSets:\t{', '.join(rs_text(rs) for rs in old) or '<none>'}\n")
    w(0, f"NewReplicaSet:\t{rs_text(new[0]) if new else '<none>'}\n")


def _replicas_page(w: _Writer, obj: Obj, related: dict[str, Any], selector: str, *,
                   controlled_by: bool) -> None:
    """The page a ReplicaSet and a ReplicationController share; kubectl's RC describer
    names no controller."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = _meta(obj)
    w(0, f"Name:\t{meta.get('name', '')}\n")
    w(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w(0, f"Selector:\t{selector}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    if controlled_by and controller_of(obj):
        w(0, f"Controlled By:\t{controller_of(obj)}\n")
    w(0, f"Replicas:\t{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired\n")
    counts = _pod_counts(related.get("pods") or [], meta.get("uid", ""))
    w(0, f"Pods Status:\t{_pods_status_line(counts)}\n")
    _pod_template(w, spec.get("template") or {})
    _conditions_table(w, status.get("conditions"))


def _replicaset(w: _Writer, obj: Obj, related: dict[str, Any], now: datetime) -> None:
    from bramble.kube.printers import format_label_selector

    selector = format_label_selector((obj.get("spec") or {}).get("selector"))
    _replicas_page(w, obj, related, selector, controlled_by=True)


def _replicationcontroller(w: _Writer, obj: Obj, related: dict[str, Any],
                           now: datetime) -> None:
    """kubectl's describeReplicationController: a ReplicaSet's page with a map selector."""
    from bramble.kube.printers import format_labels

    selector = format_labels((obj.get("spec") or {}).get("selector"))
    _replicas_page(w, obj, related, selector, controlled_by=False)


def _daemonset(w: _Writer, obj: Obj, related: dict[str, Any], now: datetime) -> None:
    from bramble.kube.printers import format_label_selector, format_labels

    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = _meta(obj)
    w(0, f"Name:\t{meta.get('name', '')}\n")
    w(0, f"Selector:\t{format_label_selector(spec.get('selector'))}\n")
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    w(0, f"Node-Selector:\t{format_labels(node_selector)}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    w(0, f"Desired Number of Nodes Scheduled: {status.get('desiredNumberScheduled', 0)}\n")
    w(0, f"Current Number of Nodes Scheduled: {status.get('currentNumberScheduled', 0)}\n")
    w(0, "Number of Nodes Scheduled with Up-to-date Pods: "
         f"{status.get('updatedNumberScheduled', 0)}\n")
    w(0, "Number of Nodes Scheduled with Available Pods: "
         f"{status.get('numberAvailable', 0)}\n")
    w(0, f"Number of Nodes Misscheduled: {status.get('numberMisscheduled', 0)}\n")
    counts = _pod_counts(related.get("pods") or [], meta.get("uid", ""))
    w(0, f"Pods Status:\t{_pods_status_line(counts)}\n")
    _pod_template(w, spec.get("template") or {})


def _job(w: _Writer, obj: Obj, related: dict[str, Any], now: datetime) -> None:
    from bramble.kube.printers import format_label_selector

    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = _meta(obj)
    w(0, f"Name:\t{meta.get('name', '')}\n")
    w(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w(0, f"Selector:\t{format_label_selector(spec.get('selector'))}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    if controller_of(obj):
        w(0, f"Controlled By:\t{controller_of(obj)}\n")
    w(0, f"Parallelism:\t{spec.get('parallelism', 1)}\n")
    w(0, f"Completions:\t{spec.get('completions', '<unset>')}\n")
    w(0, f"Completion Mode:\t{spec.get('completionMode', 'NonIndexed')}\n")
    w(0, f"Suspend:\t{str(bool(spec.get('suspend'))).lower()}\n")
    w(0, f"Backoff Limit:\t{spec.get('backoffLimit', 6)}\n")
    start, end = _parse(status.get("startTime")), _parse(status.get("completionTime"))
    if start:
        w(0, f"Start Time:\t{format_time(status['startTime'])}\n")
    if end:
        w(0, f"Completed At:\t{format_time(status['completionTime'])}\n")
    if start:
        w(0, f"Duration:\t{_human(((end or now) - start).total_seconds())}\n")
    w(0, f"Pods Statuses:\t{status.get('active', 0)} Active ({status.get('ready', 0)} Ready) / "
         f"{status.get('succeeded', 0)} Succeeded / {status.get('failed', 0)} Failed\n")
    _pod_template(w, spec.get("template") or {})


def _node(w: _Writer, node: Obj, related: dict[str, Any], now: datetime) -> None:
    from bramble.kube.printers import node_roles

    meta, spec, status = _meta(node), node.get("spec") or {}, node.get("status") or {}
    w(0, f"Name:\t{meta.get('name', '')}\n")
    w(0, f"Roles:\t{node_roles(node)}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    w(0, f"CreationTimestamp:\t{format_time(meta.get('creationTimestamp'))}\n")
    _taints(w, spec.get("taints"))
    w(0, f"Unschedulable:\t{str(bool(spec.get('unschedulable'))).lower()}\n")
    conditions = status.get("conditions") or []
    if conditions:
        w(0, "Conditions:\n")
        w(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        w(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conditions:
            w(1, f"{c.get('type', '')} \t{c.get('status', '')} \t"
                 f"{format_time(c.get('lastHeartbeatTime'))} \t"
                 f"{format_time(c.get('lastTransitionTime'))} \t{c.get('reason', '')} \t"
                 f"{c.get('message', '')}\n")
    w(0, "Addresses:\n")
    for a in status.get("addresses") or []:
        w(1, f"{a.get('type', '')}:\t{a.get('address', '')}\n")
    for key, label in (("capacity", "Capacity"), ("allocatable", "Allocatable")):
        if status.get(key):
            w(0, f"{label}:\n")
            for name in sorted(status[key]):
                w(1, f"{name}:\t{status[key][name]}\n")
    info = status.get("nodeInfo") or {}
    if info:
        w(0, "System Info:\n")
        for key, label in (("machineID", "Machine ID"), ("systemUUID", "System UUID"),
                           ("bootID", "Boot ID"), ("kernelVersion", "Kernel Version"),
                           ("osImage", "OS Image"), ("operatingSystem", "Operating System"),
                           ("architecture", "Architecture"),
                           ("containerRuntimeVersion", "Container Runtime Version"),
                           ("kubeletVersion", "Kubelet Version")):
            w(1, f"{label}:\t{info.get(key, '')}\n")
    if spec.get("podCIDR"):
        w(0, f"PodCIDR:\t{spec['podCIDR']}\n")
    pods = [p for p in related.get("pods") or []
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    if "pods" in related:
        w(0, f"Non-terminated Pods:\t({len(pods)} in total)\n")
        w(1, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
        w(1, "---------\t----\t------------\t----------\t---------------\t-------------\t---\n")
        for p in sorted(pods, key=lambda p: (_meta(p).get("namespace", ""),
                                             _meta(p).get("name", ""))):
            cells = [_meta(p).get("namespace", ""), _meta(p).get("name", "")]
            for kind, res in (("requests", "cpu"), ("limits", "cpu"), ("requests", "memory"),
                              ("limits", "memory")):
                values = [str(((c.get("resources") or {}).get(kind) or {}).get(res))
                          for c in (p.get("spec") or {}).get("containers") or []
                          if ((c.get("resources") or {}).get(kind) or {}).get(res) is not None]
                cells.append("+".join(values) or "0")
            cells.append(_since(_meta(p).get("creationTimestamp"), now))
            w(1, "\t".join(cells) + "\n")


def _service(w: _Writer, svc: Obj, related: dict[str, Any], now: datetime) -> None:
    from bramble.kube.printers import format_endpoints, format_labels

    spec = svc.get("spec") or {}
    _header(w, svc)
    w(0, f"Selector:\t{format_labels(spec.get('selector'))}\n")
    type_ = spec.get("type") or "ClusterIP"
    w(0, f"Type:\t{type_}\n")
    if spec.get("ipFamilyPolicy"):
        w(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}\n")
    if spec.get("ipFamilies"):
        w(0, f"IP Families:\t{','.join(spec['ipFamilies'])}\n")
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    w(0, f"IP:\t{spec.get('clusterIP') or (ips[0] if ips else '')}\n")
    w(0, f"IPs:\t{','.join(ips) or '<none>'}\n")
    if spec.get("externalIPs"):
        w(0, f"External IPs:\t{','.join(spec['externalIPs'])}\n")
    if type_ == "ExternalName":
        w(0, f"External Name:\t{spec.get('externalName', '')}\n")
    endpoints = related.get("endpoints") or {}  # none yet reads as no endpoints
    for p in spec.get("ports") or []:
        name = p.get("name") or "<unset>"
        proto = p.get("protocol") or "TCP"
        w(0, f"Port:\t{name}\t{p.get('port', 0)}/{proto}\n")
        w(0, f"TargetPort:\t{p.get('targetPort', p.get('port', 0))}/{proto}\n")
        if p.get("nodePort"):
            w(0, f"NodePort:\t{name}\t{p['nodePort']}/{proto}\n")
        w(0, f"Endpoints:\t{_endpoints_for_port(endpoints, p.get('name', ''))}\n")
    if not spec.get("ports"):
        w(0, f"Endpoints:\t{format_endpoints(endpoints)}\n")
    w(0, f"Session Affinity:\t{spec.get('sessionAffinity') or 'None'}\n")
    if spec.get("externalTrafficPolicy"):
        w(0, f"External Traffic Policy:\t{spec['externalTrafficPolicy']}\n")
    if spec.get("internalTrafficPolicy"):
        w(0, f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}\n")


def _endpoints_for_port(endpoints: Obj, port_name: str) -> str:
    shown = []
    for subset in endpoints.get("subsets") or []:
        for port in subset.get("ports") or []:
            if (port.get("name") or "") != port_name:
                continue
            for a in subset.get("addresses") or []:
                ip = a.get("ip", "")
                shown.append(f"[{ip}]:{port.get('port')}" if ":" in ip
                             else f"{ip}:{port.get('port')}")
    return ",".join(shown) or "<none>"


def _configmap(w: _Writer, obj: Obj, related: dict[str, Any], now: datetime) -> None:
    _header(w, obj)
    w(0, "\nData\n====\n")
    for key in sorted(obj.get("data") or {}):
        w(0, f"{key}:\n----\n{obj['data'][key]}\n\n")
    w(0, "\nBinaryData\n====\n")
    for key in sorted(obj.get("binaryData") or {}):
        w(0, f"{key}: {_decoded_len(obj['binaryData'][key])} bytes\n")
    w(0, "\n")


def _decoded_len(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value))


def _secret(w: _Writer, obj: Obj, related: dict[str, Any], now: datetime) -> None:
    _header(w, obj)
    w(0, f"\nType:\t{obj.get('type') or 'Opaque'}\n\nData\n====\n")
    # Values are never printed: describe output ends up in chats and bug reports.
    for key in sorted(obj.get("data") or {}):
        w(0, f"{key}:\t{_decoded_len(obj['data'][key])} bytes\n")


def _namespace(w: _Writer, obj: Obj, related: dict[str, Any], now: datetime) -> None:
    _header(w, obj, namespace=False)
    w(0, f"Status:\t{(obj.get('status') or {}).get('phase') or 'Active'}\n")


def _endpoints(w: _Writer, obj: Obj, related: dict[str, Any], now: datetime) -> None:
    _header(w, obj)
    w(0, "Subsets:\n")
    for subset in obj.get("subsets") or []:
        ready = ",".join(a.get("ip", "") for a in subset.get("addresses") or [])
        not_ready = ",".join(a.get("ip", "") for a in subset.get("notReadyAddresses") or [])
        w(1, f"Addresses:\t{ready or '<none>'}\n")
        w(1, f"NotReadyAddresses:\t{not_ready or '<none>'}\n")
        if subset.get("ports"):
            w(1, "Ports:\n")
            w(2, "Name\tPort\tProtocol\n")
            w(2, "----\t----\t--------\n")
            for p in subset["ports"]:
                w(2, f"{p.get('name') or '<unset>'}\t{p.get('port', '')}\t"
                     f"{p.get('protocol') or 'TCP'}\n")


def smart_label(key: str) -> str:
    """"apiVersion" -> "API Version", "podIP" -> "Pod IP": kubectl's generic labels."""
    words: list[str] = []
    current = ""
    for i, ch in enumerate(key):
        nxt = key[i + 1:i + 2]
        plural_acronym = nxt == "s" and (i + 2 == len(key) or key[i + 2].isupper())  # "IPs"
        boundary = ch.isupper() and current and (
            not current[-1].isupper() or (nxt.islower() and not plural_acronym))
        if boundary or ch in "_-":
            words.append(current)
            current = "" if ch in "_-" else ch
        else:
            current += ch
    words.append(current)
    special = {"api": "API", "ip": "IP", "ips": "IPs", "id": "ID", "uid": "UID", "url": "URL",
               "cidr": "CIDR", "tls": "TLS", "dns": "DNS", "http": "HTTP", "cpu": "CPU"}
    return " ".join(special.get(w.lower(), w[:1].upper() + w[1:]) for w in words if w)


def _generic_value(w: _Writer, key: str, value: Any, level: int) -> None:
    label = smart_label(key)
    if isinstance(value, dict):
        if not value:
            w(level, f"{label}:\n")
            return
        w(level, f"{label}:\n")
        for k, v in value.items():
            _generic_value(w, k, v, level + 1)
    elif isinstance(value, list):
        w(level, f"{label}:\n")
        for item in value:
            if isinstance(item, dict):
                for k, v in item.items():
                    _generic_value(w, k, v, level + 1)
            else:
                w(level + 1, f"{item}\n")
    else:
        text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        if "\n" in text:
            w(level, f"{label}:\n")
            for line in text.split("\n"):
                w(level + 1, f"{line}\n")
        else:
            w(level, f"{label}:\t{text}\n")


def _generic(w: _Writer, obj: Obj, related: dict[str, Any], now: datetime) -> None:
    _header(w, obj)
    w(0, f"API Version:\t{obj.get('apiVersion', '')}\n")
    w(0, f"Kind:\t{obj.get('kind', '')}\n")
    for key, value in obj.items():
        if key not in ("metadata", "apiVersion", "kind"):
            _generic_value(w, key, value, 0)


Describer = Callable[[_Writer, Obj, dict[str, Any], datetime], None]

_DESCRIBERS: dict[str, Describer] = {
    "v1/Pod": _pod,
    "v1/Node": _node,
    "v1/Service": _service,
    "v1/Endpoints": _endpoints,
    "v1/ConfigMap": _configmap,
    "v1/Secret": _secret,
    "v1/Namespace": _namespace,
    "v1/ReplicationController": _replicationcontroller,
    "apps/v1/Deployment": _deployment,
    "apps/v1/ReplicaSet": _replicaset,
    "apps/v1/DaemonSet": _daemonset,
    "batch/v1/Job": _job,
}


# kubectl shows no events for these.
WITHOUT_EVENTS = frozenset({"v1/Namespace", "v1/Secret"})


def related_queries(key: str, obj: Obj) -> dict[str, Query]:
    """What `describe` of this object needs fetched besides the object and its events."""
    from bramble.kube.printers import selector_string

    meta, spec = _meta(obj), obj.get("spec") or {}
    ns = meta.get("namespace")
    if key in ("apps/v1/ReplicaSet", "apps/v1/DaemonSet", "batch/v1/Job"):
        selector = selector_string(spec.get("selector"))
        return {"pods": Query("", "v1", "pods", ns, params={"labelSelector": selector})} \
            if selector else {}
    if key == "v1/ReplicationController":
        from bramble.kube.printers import format_labels

        selector = spec.get("selector")
        return {"pods": Query("", "v1", "pods", ns, params={
            "labelSelector": format_labels(selector)})} if selector else {}
    if key == "apps/v1/Deployment":
        selector = selector_string(spec.get("selector"))
        return {"replicasets": Query("apps", "v1", "replicasets", ns,
                                     params={"labelSelector": selector})} if selector else {}
    if key == "v1/Node":
        return {"pods": Query("", "v1", "pods", None,
                              params={"fieldSelector": f"spec.nodeName={meta.get('name', '')}"})}
    if key == "v1/Service":
        return {"endpoints": Query("", "v1", "endpoints", ns, name=meta.get("name"))}
    return {}


def describe(key: str, obj: Obj, *, events: list[Obj] | None = None,
             related: dict[str, Any] | None = None, now: datetime) -> str:
    """The description of `obj` (type `key`, e.g. "v1/Pod"), then its events."""
    w = _Writer()
    _DESCRIBERS.get(key, _generic)(w, obj, related or {}, now)
    if key not in WITHOUT_EVENTS:
        _events(w, events, now)
    return w.text()
