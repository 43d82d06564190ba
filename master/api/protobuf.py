"""Kubernetes protobuf request bodies, decoded to the JSON objects the API works on.

Role: some kubectl commands send their object only as protobuf (`application/vnd.
kubernetes.protobuf`) - `kubectl autoscale` posts its HorizontalPodAutoscaler that way
and does not fall back to JSON. This module reads that encoding for the kinds it has tables
for (`KINDS`); every other protobuf body is refused with 415, as before. Responses stay
JSON: kubectl accepts them.

The wire format: the 4 bytes "k8s\\0", then a runtime.Unknown message whose typeMeta names
apiVersion and kind and whose `raw` holds the object's own message. Field numbers come from
k8s.io/api's generated.proto files (go-to-protobuf, proto2).

Invariants:
- Pure and total: a body of a known kind that does not match its message raises
  BadRequest; any other body is "not readable" (None), which the caller answers with 415.
- The JSON produced is what the Go types would marshal: go-to-protobuf writes every
  non-pointer field, zero or not, so zero strings, times and (where Go's JSON tag has
  omitempty) zero numbers are dropped again; pointer fields appear only when set.
- Unknown field numbers are skipped, as Go's decoder skips them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from bramble.kube.errors import BadRequest

MAGIC = b"k8s\x00"

Obj = dict[str, Any]

# A field: (json name, kind, message or None, keep zero). Kinds: "str", "int", "bool",
# "msg", "time", "quantity", "map" (map<string,string>), "bytes-json" (FieldsV1), and
# "[str]" / "[msg]" for repeated fields.
Field = tuple[str, str, str | None, bool]


def _f(name: str, kind: str = "str", ref: str | None = None, keep: bool = False) -> Field:
    return (name, kind, ref, keep)


MESSAGES: Mapping[str, Mapping[int, Field]] = MappingProxyType({
    # k8s.io/apimachinery/pkg/runtime
    "Unknown": {1: _f("typeMeta", "msg", "TypeMeta"), 2: _f("raw", "bytes"),
                3: _f("contentEncoding"), 4: _f("contentType")},
    "TypeMeta": {1: _f("apiVersion"), 2: _f("kind")},
    # k8s.io/apimachinery/pkg/apis/meta/v1
    "ObjectMeta": {
        1: _f("name"), 2: _f("generateName"), 3: _f("namespace"), 4: _f("selfLink"),
        5: _f("uid"), 6: _f("resourceVersion"), 7: _f("generation", "int"),
        8: _f("creationTimestamp", "time"), 9: _f("deletionTimestamp", "time"),
        10: _f("deletionGracePeriodSeconds", "int", keep=True),
        11: _f("labels", "map"), 12: _f("annotations", "map"),
        13: _f("ownerReferences", "[msg]", "OwnerReference"), 14: _f("finalizers", "[str]"),
        17: _f("managedFields", "[msg]", "ManagedFieldsEntry"),
    },
    "OwnerReference": {1: _f("kind"), 3: _f("name"), 4: _f("uid"), 5: _f("apiVersion"),
                       6: _f("controller", "bool", keep=True),
                       7: _f("blockOwnerDeletion", "bool", keep=True)},
    "ManagedFieldsEntry": {1: _f("manager"), 2: _f("operation"), 3: _f("apiVersion"),
                           4: _f("time", "time"), 6: _f("fieldsType"),
                           7: _f("fieldsV1", "msg", "FieldsV1"), 8: _f("subresource")},
    "FieldsV1": {1: _f("Raw", "bytes-json")},
    "LabelSelector": {1: _f("matchLabels", "map"),
                      2: _f("matchExpressions", "[msg]", "LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: _f("key"), 2: _f("operator"), 3: _f("values", "[str]")},
    # k8s.io/api/autoscaling/v2
    "v2.HorizontalPodAutoscaler": {1: _f("metadata", "msg", "ObjectMeta"),
                                   2: _f("spec", "msg", "v2.HorizontalPodAutoscalerSpec"),
                                   3: _f("status", "msg", "v2.HorizontalPodAutoscalerStatus")},
    "v2.HorizontalPodAutoscalerSpec": {
        1: _f("scaleTargetRef", "msg", "CrossVersionObjectReference"),
        2: _f("minReplicas", "int", keep=True), 3: _f("maxReplicas", "int", keep=True),
        4: _f("metrics", "[msg]", "v2.MetricSpec"),
        5: _f("behavior", "msg", "v2.HorizontalPodAutoscalerBehavior")},
    "CrossVersionObjectReference": {1: _f("kind"), 2: _f("name"), 3: _f("apiVersion")},
    "v2.MetricSpec": {1: _f("type", keep=True), 2: _f("object", "msg", "v2.ObjectMetricSource"),
                      3: _f("pods", "msg", "v2.PodsMetricSource"),
                      4: _f("resource", "msg", "v2.ResourceMetricSource"),
                      5: _f("external", "msg", "v2.ExternalMetricSource"),
                      7: _f("containerResource", "msg", "v2.ContainerResourceMetricSource")},
    "v2.ResourceMetricSource": {1: _f("name", keep=True), 2: _f("target", "msg",
                                                                 "v2.MetricTarget")},
    "v2.ContainerResourceMetricSource": {1: _f("name", keep=True),
                                         2: _f("target", "msg", "v2.MetricTarget"),
                                         3: _f("container", keep=True)},
    "v2.PodsMetricSource": {1: _f("metric", "msg", "v2.MetricIdentifier"),
                            2: _f("target", "msg", "v2.MetricTarget")},
    "v2.ObjectMetricSource": {1: _f("describedObject", "msg", "CrossVersionObjectReference"),
                              2: _f("target", "msg", "v2.MetricTarget"),
                              3: _f("metric", "msg", "v2.MetricIdentifier")},
    "v2.ExternalMetricSource": {1: _f("metric", "msg", "v2.MetricIdentifier"),
                                2: _f("target", "msg", "v2.MetricTarget")},
    "v2.MetricIdentifier": {1: _f("name", keep=True),
                            2: _f("selector", "msg", "LabelSelector")},
    "v2.MetricTarget": {1: _f("type", keep=True), 2: _f("value", "quantity"),
                        3: _f("averageValue", "quantity"),
                        4: _f("averageUtilization", "int", keep=True)},
    "v2.HorizontalPodAutoscalerBehavior": {1: _f("scaleUp", "msg", "v2.HPAScalingRules"),
                                           2: _f("scaleDown", "msg", "v2.HPAScalingRules")},
    "v2.HPAScalingRules": {1: _f("selectPolicy"),
                           2: _f("policies", "[msg]", "v2.HPAScalingPolicy"),
                           3: _f("stabilizationWindowSeconds", "int", keep=True),
                           4: _f("tolerance", "quantity")},
    "v2.HPAScalingPolicy": {1: _f("type", keep=True), 2: _f("value", "int", keep=True),
                            3: _f("periodSeconds", "int", keep=True)},
    # Status is not read on create and not writable by kubectl's generators: its zero
    # values (the Go struct is not a pointer) are dropped.
    "v2.HorizontalPodAutoscalerStatus": {1: _f("observedGeneration", "int"),
                                         2: _f("lastScaleTime", "time"),
                                         3: _f("currentReplicas", "int"),
                                         4: _f("desiredReplicas", "int")},
    # k8s.io/api/autoscaling/v1
    "v1.HorizontalPodAutoscaler": {1: _f("metadata", "msg", "ObjectMeta"),
                                   2: _f("spec", "msg", "v1.HorizontalPodAutoscalerSpec"),
                                   3: _f("status", "msg", "v1.HorizontalPodAutoscalerStatus")},
    "v1.HorizontalPodAutoscalerSpec": {
        1: _f("scaleTargetRef", "msg", "CrossVersionObjectReference"),
        2: _f("minReplicas", "int", keep=True), 3: _f("maxReplicas", "int", keep=True),
        4: _f("targetCPUUtilizationPercentage", "int", keep=True)},
    "v1.HorizontalPodAutoscalerStatus": {1: _f("observedGeneration", "int"),
                                         2: _f("lastScaleTime", "time"),
                                         3: _f("currentReplicas", "int"),
                                         4: _f("desiredReplicas", "int"),
                                         5: _f("currentCPUUtilizationPercentage", "int")},
    # Generic containers of the wire format.
    "Time": {1: _f("seconds", "int"), 2: _f("nanos", "int")},
    "Quantity": {1: _f("string")},
    "MapEntry": {1: _f("key", keep=True), 2: _f("value", keep=True)},
})

# (apiVersion, kind) -> top-level message.
KINDS: Mapping[tuple[str, str], str] = MappingProxyType({
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "v2.HorizontalPodAutoscaler",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "v1.HorizontalPodAutoscaler",
})


def decode(body: bytes) -> Obj | None:
    """The JSON object of a protobuf-encoded body, or None when it is not one bramble
    reads (no Kubernetes prefix, an unreadable envelope, a kind without a table). A body
    of a known kind that does not match its message raises BadRequest."""
    if not body.startswith(MAGIC):
        return None
    try:
        envelope = _message("Unknown", body[len(MAGIC):])
    except BadRequest:
        return None
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    message = KINDS.get((api_version, kind))
    if message is None:
        return None
    obj = _message(message, envelope.get("raw") or b"")
    return {"apiVersion": api_version, "kind": kind, **obj}


# --- the wire format -------------------------------------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise BadRequest("the protobuf body is truncated or malformed")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise BadRequest("the protobuf body is truncated or malformed")
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise BadRequest(f"the protobuf body has an unsupported wire type {wire}")
        if pos > len(buf):
            raise BadRequest("the protobuf body is truncated or malformed")
        yield number, wire, value


def _signed(value: int) -> int:
    # int32/int64 are plain varints: negative numbers are 64-bit two's complement.
    return value - (1 << 64) if value >= 1 << 63 else value


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise BadRequest("the protobuf body does not match the expected message")
    return value


def _time(buf: bytes) -> str | None:
    parts = _message("Time", buf)
    seconds = parts.get("seconds", 0)
    if not seconds and not parts.get("nanos"):
        return None  # metav1.Time{}: null in JSON
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(name: str, buf: bytes) -> Obj:
    table = MESSAGES[name]
    out: Obj = {}
    for number, _wire, raw in _fields(buf):
        spec = table.get(number)
        if spec is None:
            continue
        key, kind, ref, keep = spec
        if kind == "str":
            text = _bytes(raw).decode("utf-8", errors="replace")
            if text or keep:
                out[key] = text
        elif kind in ("int", "bool"):
            if isinstance(raw, bytes):
                raise BadRequest("the protobuf body does not match the expected message")
            number_value = _signed(raw)
            if number_value or keep:
                out[key] = bool(number_value) if kind == "bool" else number_value
        elif kind == "bytes":
            out[key] = _bytes(raw)
        elif kind == "bytes-json":
            try:
                out[key] = orjson.loads(_bytes(raw))
            except orjson.JSONDecodeError:
                out[key] = base64.b64encode(_bytes(raw)).decode()
        elif kind == "msg":
            out[key] = _message(ref or "", _bytes(raw))
        elif kind == "time":
            stamp = _time(_bytes(raw))
            if stamp is not None:
                out[key] = stamp
        elif kind == "quantity":
            out[key] = _message("Quantity", _bytes(raw)).get("string", "0")
        elif kind == "map":
            entry = _message("MapEntry", _bytes(raw))
            out.setdefault(key, {})[entry.get("key", "")] = entry.get("value", "")
        elif kind == "[str]":
            out.setdefault(key, []).append(_bytes(raw).decode("utf-8", errors="replace"))
        elif kind == "[msg]":
            out.setdefault(key, []).append(_message(ref or "", _bytes(raw)))
    return out
