"""OpenAPI v3 documents: one per group-version, plus the index at /openapi/v3.

kubectl reads these to decide whether the server validates fields itself (an operation
for the kind with a `fieldValidation` parameter means "send fieldValidation=Strict") and
for `kubectl explain`. The schemas come from the same type tables that drive strict
validation and strategic merge, so the three cannot disagree. Built lazily on first use
and kept as bytes: most masters never serve them more than a few times.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import Any

import orjson

from bramble import KUBE_MAJOR, KUBE_MINOR

from . import schema
from .resources import GROUPS, Registry, ResourceType

_COMMON_PARAMS = [
    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
     "description": "Ignore, Warn or Strict: how to treat unknown or duplicate fields"},
]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _ref(rt: ResourceType) -> dict[str, Any]:
    struct = schema.struct_for(rt.key)
    name = schema.OPENAPI_NAMES.get(struct) if struct else None
    return {"$ref": f"#/components/schemas/{name}"} if name else {"type": "object"}


def _operations(rt: ResourceType) -> dict[str, dict[str, Any]]:
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    body = {"content": {"application/json": {"schema": _ref(rt)}}}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(rt)}}}}
    base = "/" + _gv_path(rt.group, rt.version)
    collection = base + ("/namespaces/{namespace}/" if rt.namespaced else "/") + rt.plural
    item = collection + "/{name}"

    def op(action: str, with_body: bool = False, **extra: Any) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "operationId": f"{action}{rt.kind}", "responses": ok,
            "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk}
        if with_body:
            operation["requestBody"] = body
            operation["parameters"] = _COMMON_PARAMS
        operation.update(extra)
        return operation

    patch_body = {"content": {t: {"schema": {"type": "object"}} for t in (
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml")}}
    return {
        collection: {"get": op("list"), "post": op("post", True),
                     "delete": op("deletecollection")},
        item: {"get": op("get"), "put": op("put", True), "delete": op("delete"),
               "patch": op("patch", False, requestBody=patch_body,
                           parameters=[*_COMMON_PARAMS,
                                       {"name": "force", "in": "query",
                                        "schema": {"type": "boolean"}}])},
    }


class OpenAPI:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @cached_property
    def documents(self) -> dict[str, bytes]:
        components = schema.openapi_components()
        docs: dict[str, bytes] = {}
        for group, version in [("", "v1"), *GROUPS]:
            paths: dict[str, Any] = {}
            for rt in self.registry.in_group(group, version):
                paths.update(_operations(rt))
            docs[_gv_path(group, version)] = orjson.dumps({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes (bramble)", "version": f"v{KUBE_MAJOR}."
                                                                     f"{KUBE_MINOR}.0"},
                "paths": paths, "components": {"schemas": components}})
        return docs

    @cached_property
    def index(self) -> bytes:
        paths = {}
        for gv, doc in self.documents.items():
            digest = hashlib.sha256(doc).hexdigest()[:32].upper()
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
        return orjson.dumps({"paths": paths})
