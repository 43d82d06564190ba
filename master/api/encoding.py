"""Content negotiation and response shapes: plain JSON, Table, PartialObjectMetadata.

Objects stay as the JSON bytes the store holds for as long as possible: a GET or a plain
LIST is a concatenation of stored bytes, never a parse and re-encode. Only the Table and
metadata-only views parse objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import yaml
from aiohttp import web

from bramble.kube import printers as tables
from bramble.kube.errors import BadRequest, NotAcceptable, UnsupportedMediaType

from . import protobuf
from .resources import ResourceType

JSON = "application/json"
YAML = "application/yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

AS_OBJECT, AS_TABLE, AS_METADATA = "object", "table", "metadata"


@dataclass(frozen=True)
class Output:
    view: str  # AS_OBJECT | AS_TABLE | AS_METADATA
    yaml: bool = False


def negotiate(accept: str | None) -> Output:
    """Pick the first representation in Accept that bramble serves (JSON flavours only).

    kubectl asks for protobuf first and falls back to JSON; Table and metadata views are
    JSON with `as=` parameters, as in the apiserver.
    """
    if not accept:
        return Output(AS_OBJECT)
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if media in (JSON, "*/*", "application/*"):
            as_ = params.get("as")
            if as_ == "Table":
                return Output(AS_TABLE)
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return Output(AS_METADATA)
            if as_ is None:
                return Output(AS_OBJECT)
        elif media == YAML and "as" not in params:
            return Output(AS_OBJECT, yaml=True)
    raise NotAcceptable(f"only the following media types are accepted: {JSON}, {YAML}")


def decode_body(body: bytes, content_type: str | None) -> Any:
    """Parse a request body: JSON, or YAML for the YAML media types."""
    media = (content_type or JSON).split(";")[0].strip().lower()
    if "protobuf" in media:
        # The few kinds kubectl sends only as protobuf (kubectl autoscale) are read.
        decoded = protobuf.decode(body)
        if decoded is not None:
            return decoded
        raise UnsupportedMediaType(
            f'the body of the request was in an unknown format - accepted media types '
            f'include: {JSON}, {YAML}, {", ".join(PATCH_TYPES)} (bramble does not speak '
            'protobuf; kubectl create <generator> sends it: use kubectl apply or create -f)')
    if media not in (JSON, YAML, "application/*", "*/*", "text/plain", *PATCH_TYPES):
        raise UnsupportedMediaType(f'the body of the request was in an unknown format '
                                   f'({media}) - accepted media types include: {JSON}, '
                                   f'{YAML}')
    if not body.strip():
        raise BadRequest("the request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        if media not in (YAML, APPLY_PATCH):
            raise BadRequest(f"the request body is not valid JSON: {err}") from None
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as err:
        raise BadRequest(f"the request body is not valid YAML: {err}") from None


def encode(value: Any, out: Output = Output(AS_OBJECT)) -> tuple[bytes, str]:
    if out.yaml:
        if isinstance(value, bytes):
            value = orjson.loads(value)
        return yaml.safe_dump(value, sort_keys=False).encode(), YAML
    if isinstance(value, bytes):
        return value, JSON
    return orjson.dumps(value), JSON


def list_body(rt: ResourceType, raws: list[bytes], rv: int, continue_token: str = "",
              remaining: int | None = None) -> bytes:
    """A <Kind>List from stored object bytes, without parsing them."""
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if continue_token:
        meta["continue"] = continue_token
    if remaining:
        meta["remainingItemCount"] = remaining
    head = orjson.dumps({"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                         "metadata": meta})
    # One join, one allocation: a 1000-pod list is ~1 MB and copies of it add up on a Pi.
    parts = [head[:-1], b',"items":[']
    for raw in raws:
        parts += (raw, b",")
    if raws:
        parts.pop()
    parts.append(b"]}")
    return b"".join(parts)


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def table(rt: ResourceType, objs: list[dict[str, Any]], rv: int, *, include: str = "Metadata",
          continue_token: str = "", now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": tables.cells(rt.key, obj, now)}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = _partial(obj)
        rows.append(row)
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if continue_token:
        meta["continue"] = continue_token
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": tables.column_definitions(rt.key), "rows": rows}


def metadata_list(objs: list[dict[str, Any]], rv: int, continue_token: str = "") -> dict:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if continue_token:
        meta["continue"] = continue_token
    return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": meta, "items": [_partial(o) for o in objs]}


def view_one(rt: ResourceType, raw: bytes, out: Output, include: str = "Metadata") -> Any:
    """One object in the negotiated view (bytes when it is the plain object)."""
    if out.view == AS_OBJECT:
        return raw
    obj = orjson.loads(raw)
    if out.view == AS_TABLE:
        rv = int(obj.get("metadata", {}).get("resourceVersion") or 0)
        return table(rt, [obj], rv, include=include)
    return _partial(obj)


def watch_line(kind: str, rt: ResourceType, raw: bytes, out: Output,
               include: str = "Metadata") -> bytes:
    if out.view == AS_OBJECT:
        return b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n"
    return orjson.dumps({"type": kind, "object": view_one(rt, raw, out, include)}) + b"\n"


def bookmark_line(rt: ResourceType, rv: int, initial_events_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_events_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return orjson.dumps({"type": "BOOKMARK", "object": {
        "kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}}) + b"\n"


async def read_json(request: web.Request, limit: int, too_large: str) -> Any:
    """A small JSON body of one of bramble's own endpoints (join, node endpoints, usage):
    refused with BadRequest(`too_large`) beyond `limit` bytes - never read past it - or
    when it is not JSON."""
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(too_large)
    try:
        raw = await request.content.read(limit + 1)
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(too_large) from None
    if len(raw) > limit:
        raise BadRequest(too_large)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise BadRequest(f"the request body is not JSON: {err}") from None
