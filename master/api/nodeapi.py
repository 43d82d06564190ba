"""The master's node-facing endpoints: joining, usage reports, and metrics.k8s.io.

- Joining and membership (`/bramble/v1/join...`, pending nodes, removal, token rotation)
  live in joinapi.py; `add_routes` registers them with the rest when joining is enabled.
- `POST /bramble/v1/nodes/{name}/usage`: a node's latest usage and its pods' (a node may
  post only its own).
- `/apis/metrics.k8s.io/v1beta1/...`: NodeMetrics and PodMetrics from those reports,
  which is what `kubectl top` reads (as metrics-server serves them).

Invariants: usage is kept in memory only, newest report per node (it is worthless after a
restart: nodes post again within seconds); a node that stopped posting for more than
three of its own reporting intervals disappears from metrics, and its pods with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from bramble.kube import selectors
from bramble.kube.errors import (
    BadRequest,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    invalid,
    required,
)
from bramble.kube.names import is_dns1123_subdomain
from bramble.kube.quantity import parse_quantity

from ..discovery import SeenNodes
from . import auth, joinapi
from .discovery import Discovery
from .encoding import read_json
from .rest import ObjectAPI

log = logging.getLogger(__name__)

USAGE_PATH = "/bramble/v1/nodes/{name}/usage"
# Paths the authenticate middleware lets through without a bearer token.
PUBLIC_PATHS = joinapi.PUBLIC_PATHS

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
PREFIX = f"/apis/{GROUP_VERSION}"
STALE_AFTER = 3  # reporting intervals
MAX_BODY = 1024 * 1024

Obj = dict[str, Any]


@dataclass(frozen=True)
class JoinSettings:
    """What the join endpoints need from the master's PKI (and its mDNS, when it runs)."""

    data_dir: Path
    ca_pem: str
    join_token: str = field(repr=False)
    seen: SeenNodes | None = None  # node agents seen on the LAN (master/discovery.py)


# --- usage, kept in memory ---------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    """One node's latest usage report, as validated."""

    node: str
    timestamp: str
    window: float
    interval: float
    usage: dict[str, str]
    pods: tuple[Obj, ...]
    received: float  # monotonic


def go_duration(seconds: float) -> str:
    """A metav1.Duration as Go prints it: "5s", "1.5s", "1m0s"."""
    ms = round(seconds * 1000)
    minutes, ms = divmod(ms, 60_000)
    secs = f"{ms / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage_errors(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, dict):
        return [required(path, "must be an object with cpu and memory")]
    errs = []
    for key in ("cpu", "memory"):
        if key not in value:
            errs.append(required(f"{path}.{key}"))
            continue
        try:
            if parse_quantity(value[key]) < 0:
                errs.append(invalid(f"{path}.{key}", value[key], "must be non-negative"))
        except ValueError as err:
            errs.append(invalid(f"{path}.{key}", value[key], str(err)))
    return errs


def parse_report(node: str, body: Any, received: float) -> Report:
    """Validate a usage report (pure); Invalid names every bad field."""
    if not isinstance(body, dict):
        raise BadRequest("the usage report must be a JSON object")
    errs: list[FieldError] = []
    window, interval = body.get("window"), body.get("interval")
    for name, value, top in (("window", window, 3600), ("interval", interval, 3600)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= top:
            errs.append(invalid(name, value, f"must be a number of seconds in (0, {top}]"))
    errs += _usage_errors(body.get("usage"), "usage")
    pods = body.get("pods") or []
    if not isinstance(pods, list):
        errs.append(invalid("pods", pods, "must be a list"))
        pods = []
    clean: list[Obj] = []
    for i, pod in enumerate(pods):
        p = f"pods[{i}]"
        if not isinstance(pod, dict) or not isinstance(pod.get("name"), str) \
                or not isinstance(pod.get("namespace"), str):
            errs.append(required(f"{p}.name", "pods need a namespace and a name"))
            continue
        containers = pod.get("containers") or []
        if not isinstance(containers, list):
            errs.append(invalid(f"{p}.containers", containers, "must be a list"))
            continue
        for j, c in enumerate(containers):
            if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                errs.append(required(f"{p}.containers[{j}].name"))
                continue
            errs += _usage_errors(c.get("usage"), f"{p}.containers[{j}].usage")
        clean.append({"namespace": pod["namespace"], "name": pod["name"],
                      "containers": [{"name": c["name"], "usage": {
                          "cpu": str(c["usage"]["cpu"]), "memory": str(c["usage"]["memory"])}}
                          for c in containers if isinstance(c, dict)]})
    if errs:
        raise Invalid("UsageReport", node, errs)
    usage = body["usage"]
    stamp = body.get("timestamp")
    return Report(node=node, timestamp=stamp if isinstance(stamp, str) and stamp else
                  _rfc3339(datetime.now(UTC)), window=float(window), interval=float(interval),
                  usage={"cpu": str(usage["cpu"]), "memory": str(usage["memory"])},
                  pods=tuple(clean), received=received)


class UsageCache:
    """The newest report per node; stale ones are dropped when read or written."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._reports: dict[str, Report] = {}

    def record(self, report: Report) -> None:
        self._expire()
        self._reports[report.node] = report

    def reports(self) -> list[Report]:
        self._expire()
        return sorted(self._reports.values(), key=lambda r: r.node)

    def _expire(self) -> None:
        now = self.clock()
        for name in [n for n, r in self._reports.items()
                     if now - r.received > STALE_AFTER * r.interval]:
            del self._reports[name]


def node_metrics(report: Report, labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": report.node, "creationTimestamp": _rfc3339(datetime.now(UTC))}
    if labels:
        meta["labels"] = labels
    return {"kind": "NodeMetrics", "apiVersion": GROUP_VERSION, "metadata": meta,
            "timestamp": report.timestamp, "window": go_duration(report.window),
            "usage": dict(report.usage)}


def pod_metrics(report: Report, pod: Obj, labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": pod["name"], "namespace": pod["namespace"],
                 "creationTimestamp": _rfc3339(datetime.now(UTC))}
    if labels:
        meta["labels"] = labels
    return {"kind": "PodMetrics", "apiVersion": GROUP_VERSION, "metadata": meta,
            "timestamp": report.timestamp, "window": go_duration(report.window),
            "containers": pod["containers"]}


# --- discovery ---------------------------------------------------------------------------

_RESOURCES = (("nodes", "NodeMetrics", False), ("pods", "PodMetrics", True))


def extend_discovery(discovery: Discovery) -> None:
    """Add metrics.k8s.io/v1beta1 to the discovery documents. They are computed once from
    the registry of stored types; metrics are not stored, so they are appended here, once,
    when the app is built."""
    gv = {"groupVersion": GROUP_VERSION, "version": VERSION}
    group = {"name": GROUP, "versions": [gv], "preferredVersion": gv}
    plain = orjson.loads(discovery.group_list)
    plain["groups"].append({"kind": "APIGroup", **group})
    discovery.group_list = orjson.dumps(plain)
    discovery.groups[GROUP] = orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **group})
    discovery.resource_lists[(GROUP, VERSION)] = orjson.dumps({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
        "resources": [{"name": plural, "singularName": "", "namespaced": namespaced,
                       "kind": kind, "verbs": ["get", "list"]}
                      for plural, kind, namespaced in _RESOURCES]})
    aggregated = orjson.loads(discovery.aggregated_groups)
    aggregated["items"].append({
        "metadata": {"name": GROUP, "creationTimestamp": None},
        "versions": [{"version": VERSION, "freshness": "Current", "resources": [
            {"resource": plural, "responseKind": {"group": GROUP, "version": VERSION,
                                                  "kind": kind},
             "scope": "Namespaced" if namespaced else "Cluster", "singularResource": "",
             "verbs": ["get", "list"]}
            for plural, kind, namespaced in _RESOURCES]}]})
    discovery.aggregated_groups = orjson.dumps(aggregated)


# --- handlers ----------------------------------------------------------------------------

def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status,
                        content_type="application/json")


class NodeAPI:
    def __init__(self, api: ObjectAPI, identity_key: web.RequestKey[auth.Identity],
                 cache: UsageCache) -> None:
        self.api = api
        self.identity_key = identity_key
        self.cache = cache

    async def post_usage(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        identity = request[self.identity_key]
        if not identity.is_admin and identity.node_name != name:
            raise Forbidden(f'User "{identity.user}" cannot report usage for node "{name}": '
                            f"a node may report only its own usage", kind="nodes", name=name)
        if is_dns1123_subdomain(name):
            raise BadRequest(f"invalid node name {name!r}")
        body = await read_json(request, MAX_BODY, "the request body is larger than 1 MiB")
        self.cache.record(parse_report(name, body, self.cache.clock()))
        return web.Response(status=204)

    def _authorize(self, request: web.Request, verb: str, resource: str, namespace: str = "",
                   name: str = "") -> None:
        auth.authorize(request[self.identity_key],
                       auth.Attributes(verb, GROUP, resource, "", namespace, name))

    def lookup_labels(self, resource: str, namespace: str, name: str) -> dict[str, str]:
        """The labels of the stored object metrics are about (metrics-server copies them,
        and labelSelector filters by them); {} when it is not stored."""
        entry = self.api.store.get(resource, namespace, name)
        return dict(entry.labels) if entry is not None else {}

    async def nodes(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "")
        self._authorize(request, "get" if name else "list", "nodes", name=name)
        selector = selectors.parse_label_selector(request.query.get("labelSelector", ""))
        items = []
        for report in self.cache.reports():
            if name and report.node != name:
                continue
            labels = self.lookup_labels("nodes", "", report.node)
            if selector.matches(labels):
                items.append(node_metrics(report, labels))
        if name:
            if not items:
                raise NotFound(f'nodemetrics.metrics.k8s.io "{name}" not found',
                               kind="nodes", group=GROUP, name=name)
            return _json(items[0])
        return _json({"kind": "NodeMetricsList", "apiVersion": GROUP_VERSION,
                      "metadata": {}, "items": items})

    async def pods(self, request: web.Request) -> web.Response:
        namespace = request.match_info.get("namespace", "")
        name = request.match_info.get("name", "")
        self._authorize(request, "get" if name else "list", "pods", namespace, name)
        selector = selectors.parse_label_selector(request.query.get("labelSelector", ""))
        items = []
        for report in self.cache.reports():
            for pod in report.pods:
                if (namespace and pod["namespace"] != namespace) or (
                        name and pod["name"] != name):
                    continue
                labels = self.lookup_labels("pods", pod["namespace"], pod["name"])
                if selector.matches(labels):
                    items.append(pod_metrics(report, pod, labels))
        items.sort(key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))
        if name:
            if not items:
                raise NotFound(f'podmetrics.metrics.k8s.io "{namespace}/{name}" not found',
                               kind="pods", group=GROUP, name=name)
            return _json(items[0])
        return _json({"kind": "PodMetricsList", "apiVersion": GROUP_VERSION,
                      "metadata": {}, "items": items})


USAGE_KEY = web.AppKey("node-usage", UsageCache)


def add_routes(app: web.Application, api: ObjectAPI, authn: auth.Authenticator,
               identity_key: web.RequestKey[auth.Identity], discovery: Discovery,
               join: JoinSettings | None, cache: UsageCache | None = None) -> None:
    """Register the join (joinapi.py), usage and metrics.k8s.io routes (before the
    catch-all /apis route) and add metrics.k8s.io to `discovery`. `identity_key` is where
    the authenticate middleware puts the caller's identity. Without `join`, joining is
    off."""
    cache = cache or UsageCache()
    app[USAGE_KEY] = cache
    handlers = NodeAPI(api, identity_key, cache)
    extend_discovery(discovery)
    if join is not None:
        joinapi.add_routes(app, joinapi.Membership(
            api, authn, identity_key, join.data_dir, join.ca_pem, join.join_token,
            seen=join.seen))
    app.router.add_post(USAGE_PATH, handlers.post_usage)
    app.router.add_get(f"{PREFIX}/nodes", handlers.nodes)
    app.router.add_get(f"{PREFIX}/nodes/{{name}}", handlers.nodes)
    app.router.add_get(f"{PREFIX}/pods", handlers.pods)
    app.router.add_get(f"{PREFIX}/namespaces/{{namespace}}/pods", handlers.pods)
    app.router.add_get(f"{PREFIX}/namespaces/{{namespace}}/pods/{{name}}", handlers.pods)
