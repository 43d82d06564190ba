"""API discovery documents (/api, /apis, per group-version, aggregated) and /version.

All derived from the registry, computed once: discovery is what every kubectl invocation
reads first, so it must be cheap.
"""

from __future__ import annotations

import platform
from typing import Any

import orjson

from bramble import KUBE_MAJOR, KUBE_MINOR, __version__

from .resources import GROUPS, Registry, ResourceType

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

_SUB_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
              "binding": ["create"], "log": ["get"], "exec": ["create", "get"],
              "portforward": ["create", "get"]}


def _sub_kind(rt: ResourceType, sub: str) -> tuple[str, str, str]:
    if sub == "scale":
        return "autoscaling", "v1", "Scale"
    if sub == "binding":
        return "", "v1", "Binding"
    if sub == "exec":
        return "", "v1", "PodExecOptions"
    if sub == "portforward":
        return "", "v1", "PodPortForwardOptions"
    return rt.group, rt.version, rt.kind


def version_info() -> dict[str, str]:
    return {
        "major": KUBE_MAJOR, "minor": KUBE_MINOR,
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0-bramble.{__version__}",
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
        "goVersion": f"python{platform.python_version()}", "compiler": "cpython",
        "platform": f"linux/{_arch()}",
    }


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


class Discovery:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.core_versions = orjson.dumps({"kind": "APIVersions", "versions": ["v1"],
                                           "serverAddressByClientCIDRs": []})
        # A group's versions in GROUPS order, the preferred (first listed) one first.
        versions: dict[str, list[str]] = {}
        for g, v in GROUPS:
            versions.setdefault(g, []).append(v)
        self.group_list = orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": [self._group(g, vs)
                                                   for g, vs in versions.items()]})
        self.resource_lists: dict[tuple[str, str], bytes] = {
            (g, v): orjson.dumps(self._resource_list(g, v)) for g, v in [("", "v1"), *GROUPS]}
        self.groups: dict[str, bytes] = {g: orjson.dumps({"apiVersion": "v1", **self._group(
            g, vs)}) for g, vs in versions.items()}
        self.aggregated_core = self._aggregated({"": ["v1"]})
        self.aggregated_groups = self._aggregated(versions)
        self.version = orjson.dumps(version_info())

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for rt in self.registry.in_group(group, version):
            resources.append({
                "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                "kind": rt.kind, "verbs": list(rt.verbs), "shortNames": list(rt.short_names),
                **({"categories": list(rt.categories)} if rt.categories else {}),
            })
            for sub in rt.subresources:
                g, v, kind = _sub_kind(rt, sub)
                entry: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "",
                                         "namespaced": rt.namespaced, "kind": kind,
                                         "verbs": _SUB_VERBS[sub]}
                if g != group:
                    entry["group"], entry["version"] = g, v
                resources.append(entry)
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": resources}

    def _aggregated(self, groups: dict[str, list[str]]) -> bytes:
        items = []
        for group, versions in groups.items():
            items.append({"metadata": {"name": group, "creationTimestamp": None},
                          "versions": [self._aggregated_version(group, v) for v in versions]})
        return orjson.dumps({"kind": "APIGroupDiscoveryList",
                             "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
                             "items": items})

    def _aggregated_version(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for rt in self.registry.in_group(group, version):
            subs = []
            for sub in rt.subresources:
                g, v, kind = _sub_kind(rt, sub)
                subs.append({"subresource": sub,
                             "responseKind": {"group": g, "version": v, "kind": kind},
                             "verbs": _SUB_VERBS[sub]})
            resources.append({
                "resource": rt.plural,
                "responseKind": {"group": group, "version": version, "kind": rt.kind},
                "scope": "Namespaced" if rt.namespaced else "Cluster",
                "singularResource": rt.singular, "verbs": list(rt.verbs),
                **({"shortNames": list(rt.short_names)} if rt.short_names else {}),
                **({"categories": list(rt.categories)} if rt.categories else {}),
                **({"subresources": subs} if subs else {}),
            })
        return {"version": version, "resources": resources, "freshness": "Current"}


def wants_aggregated(accept: str | None) -> str | None:
    """The aggregated discovery media type the client asked for, if any (v2 preferred)."""
    if not accept or "apidiscovery.k8s.io" not in accept:
        return None
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                  for p in part.split(";")[1:] if "=" in p}
        if params.get("g") == "apidiscovery.k8s.io" and params.get(
                "as") == "APIGroupDiscoveryList":
            version = params.get("v")
            if version == "v2":
                return AGGREGATED_V2
            if version == "v2beta1":
                return AGGREGATED_V2BETA1
    return None
