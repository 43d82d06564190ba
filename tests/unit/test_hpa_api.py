"""The HorizontalPodAutoscaler's API pieces: defaults, validation, v1 <-> v2 conversion,
the table printer, the protobuf body kubectl autoscale sends, and discovery of two versions.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from bramble.kube import printers
from bramble.master.api import conversion, defaults, protobuf, validation
from bramble.master.api.discovery import Discovery
from bramble.master.api.resources import Registry

V2 = "autoscaling/v2/HorizontalPodAutoscaler"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def hpa(**spec: Any) -> dict[str, Any]:
    body = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5, **spec}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"}, "spec": body}


def cpu(percent: int) -> dict[str, Any]:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": percent}}}


def memory(value: str) -> dict[str, Any]:
    return {"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "AverageValue", "averageValue": value}}}


# --- defaults ---------------------------------------------------------------------------------

def test_defaults_min_replicas_cpu_80_and_behavior_rules() -> None:
    obj = hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}})
    defaults.default(V2, obj)
    spec = obj["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [cpu(80)]
    assert spec["behavior"]["scaleUp"] == {
        "stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    # The set field stays; the window is not defaulted when unset (the controller's own).
    assert spec["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 60, "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    again = copy.deepcopy(obj)
    defaults.default(V2, again)
    assert again == obj  # idempotent


def test_defaults_keep_no_behavior_and_canonicalize_targets() -> None:
    obj = hpa(metrics=[memory("0.5Gi")], minReplicas=3)
    defaults.default(V2, obj)
    assert "behavior" not in obj["spec"] and obj["spec"]["minReplicas"] == 3
    assert obj["spec"]["metrics"][0]["resource"]["target"]["averageValue"] == "512Mi"


# --- validation -------------------------------------------------------------------------------

def causes(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(e.field, e.reason) for e in validation.validate(V2, obj, old)]


@pytest.mark.parametrize(("spec", "expected"), [
    ({"metrics": [cpu(50)]}, []),
    ({"minReplicas": 0}, [("spec.minReplicas", "FieldValueInvalid"),
                          ("spec.metrics", "FieldValueForbidden")]),
    ({"minReplicas": 6}, [("spec.maxReplicas", "FieldValueInvalid")]),
    ({"maxReplicas": 0, "minReplicas": 1}, [("spec.maxReplicas", "FieldValueInvalid"),
                                            ("spec.maxReplicas", "FieldValueInvalid")]),
    ({"scaleTargetRef": {"kind": "Deployment"}}, [("spec.scaleTargetRef.name",
                                                   "FieldValueRequired")]),
    ({"scaleTargetRef": {"kind": "a/b", "name": ".."}},
     [("spec.scaleTargetRef.kind", "FieldValueInvalid"),
      ("spec.scaleTargetRef.name", "FieldValueInvalid")]),
    ({"metrics": [cpu(0)]}, [("spec.metrics[0].resource.target.averageUtilization",
                              "FieldValueInvalid")]),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization"}}}]},
     [("spec.metrics[0].resource.target.averageUtilization", "FieldValueRequired")]),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 50, "averageValue": "100m"}}}]},
     [("spec.metrics[0].resource.target.averageValue", "FieldValueForbidden")]),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Percent", "averageUtilization": 50}}}]},
     [("spec.metrics[0].resource.target.type", "FieldValueInvalid")]),
    ({"metrics": [memory("-1Mi")]}, [("spec.metrics[0].resource.target.averageValue",
                                      "FieldValueInvalid")]),
    ({"metrics": [{"type": "Resource"}]}, [("spec.metrics[0].resource", "FieldValueRequired")]),
    ({"metrics": [{"type": "Bogus"}]}, [("spec.metrics[0].type", "FieldValueNotSupported")]),
    ({"metrics": [{**cpu(50), "type": "Pods"}]},
     [("spec.metrics[0].pods", "FieldValueRequired")]),
    ({"metrics": [{**cpu(50), **memory("1Mi"), "type": "Resource", "pods": {
        "metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1"}}}]},
     [("spec.metrics[0].pods", "FieldValueForbidden")]),
    ({"metrics": [{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]},
     [("spec.metrics[0].containerResource.container", "FieldValueRequired")]),
    ({"behavior": {"scaleUp": {"policies": []}}},
     [("spec.behavior.scaleUp.policies", "FieldValueRequired")]),
    ({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 4000, "selectPolicy": "Most",
                                 "policies": [{"type": "Pods", "value": 0,
                                               "periodSeconds": 1801}]}}},
     [("spec.behavior.scaleDown.stabilizationWindowSeconds", "FieldValueInvalid"),
      ("spec.behavior.scaleDown.selectPolicy", "FieldValueNotSupported"),
      ("spec.behavior.scaleDown.policies[0].value", "FieldValueInvalid"),
      ("spec.behavior.scaleDown.policies[0].periodSeconds", "FieldValueInvalid")]),
])
def test_validation_names_the_field(spec: dict[str, Any], expected: list) -> None:
    assert causes(hpa(**spec)) == expected


def test_status_validation_and_min_zero_kept_on_update() -> None:
    old = hpa(minReplicas=0, metrics=[{"type": "External", "external": {
        "metric": {"name": "queue"}, "target": {"type": "Value", "value": "10"}}}])
    assert validation.validate(V2, old, old) == []
    new = copy.deepcopy(old)
    new["status"] = {"currentReplicas": -1, "desiredReplicas": 2}
    assert [e.field for e in validation.validate_status(V2, new, old)] == \
        ["status.currentReplicas"]


# --- v1 <-> v2 conversion ---------------------------------------------------------------------

STATUS = {"currentReplicas": 2, "desiredReplicas": 3, "lastScaleTime": "2025-06-01T11:00:00Z",
          "currentMetrics": [
              {"type": "Resource", "resource": {"name": "memory", "current": {
                  "averageValue": "80Mi"}}},
              {"type": "Resource", "resource": {"name": "cpu", "current": {
                  "averageUtilization": 42, "averageValue": "21m"}}}],
          "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
                          "message": "recommended size matches current size",
                          "lastTransitionTime": "2025-06-01T11:00:00Z"}]}


def test_v2_to_v1_keeps_the_rest_in_annotations() -> None:
    stored = hpa(minReplicas=2, metrics=[memory("100Mi"), cpu(50)],
                 behavior={"scaleDown": {"stabilizationWindowSeconds": 60}})
    stored["metadata"]["annotations"] = {"team": "a"}
    stored["status"] = STATUS
    v1 = conversion.hpa_v2_to_v1(stored)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {"scaleTargetRef": stored["spec"]["scaleTargetRef"],
                          "minReplicas": 2, "maxReplicas": 5,
                          "targetCPUUtilizationPercentage": 50}
    assert v1["status"] == {"lastScaleTime": "2025-06-01T11:00:00Z", "currentReplicas": 2,
                            "desiredReplicas": 3, "currentCPUUtilizationPercentage": 42}
    notes = v1["metadata"]["annotations"]
    assert notes["team"] == "a"
    assert orjson.loads(notes[conversion.METRIC_SPECS]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}]
    assert orjson.loads(notes[conversion.METRIC_STATUSES])[1] == {
        "type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 42,
                                         "currentAverageValue": "21m"}}
    assert orjson.loads(notes[conversion.BEHAVIOR]) == stored["spec"]["behavior"]
    # And back: nothing lost (the v1 CPU target comes last, as in Kubernetes).
    back = conversion.hpa_v1_to_v2(v1)
    assert back["spec"] == stored["spec"]
    assert back["status"] == STATUS
    assert back["metadata"]["annotations"] == {"team": "a"}


def test_v1_without_target_gets_80_percent_and_clean_metadata() -> None:
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "web", "annotations": {conversion.CONDITIONS: "not json"}},
          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}}
    v2 = conversion.hpa_v1_to_v2(v1)
    assert v2["spec"]["metrics"] == [cpu(80)]
    assert "annotations" not in v2["metadata"]
    assert conversion.hpa_v1_to_v2({**v1, "spec": {
        **v1["spec"], "targetCPUUtilizationPercentage": 65}})["spec"]["metrics"] == [cpu(65)]


def test_other_metric_kinds_round_trip_through_v1() -> None:
    metrics = [
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {
            "type": "AverageValue", "averageValue": "10"}}},
        {"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "web",
                                                          "apiVersion": "v1"},
                                      "metric": {"name": "hits"}, "target": {
                                          "type": "Value", "value": "100"}}},
        {"type": "External", "external": {"metric": {"name": "queue", "selector": {
            "matchLabels": {"q": "jobs"}}}, "target": {"type": "AverageValue",
                                                       "averageValue": "30"}}},
        {"type": "ContainerResource", "containerResource": {
            "name": "cpu", "container": "web", "target": {"type": "Utilization",
                                                          "averageUtilization": 60}}},
    ]
    stored = hpa(minReplicas=1, metrics=metrics)
    back = conversion.hpa_v1_to_v2(conversion.hpa_v2_to_v1(stored))
    assert back["spec"]["metrics"] == metrics


# --- the table ------------------------------------------------------------------------------

@pytest.mark.parametrize(("metrics", "current", "text"), [
    ([cpu(50)], None, "cpu: <unknown>/50%"),
    ([cpu(50)], [STATUS["currentMetrics"][1]], "cpu: 42%/50%"),
    ([memory("100Mi")], [STATUS["currentMetrics"][0]], "memory: 80Mi/100Mi"),
    ([memory("100Mi"), cpu(50), cpu(60)], None,
     "memory: <unknown>/100Mi, cpu: <unknown>/50% + 1 more..."),
    ([], None, "<none>"),
    ([{"type": "External", "external": {"metric": {"name": "q"}, "target": {
        "type": "AverageValue", "averageValue": "30"}}}], None, "<unknown>/30 (avg)"),
])
def test_targets_column(metrics: list, current: list | None, text: str) -> None:
    assert printers.format_hpa_metrics(metrics, current) == text


def test_table_row() -> None:
    obj = hpa(minReplicas=1, metrics=[cpu(50)])
    obj["metadata"]["creationTimestamp"] = "2025-06-01T11:59:00Z"
    obj["status"] = {"currentReplicas": 2, "currentMetrics": [STATUS["currentMetrics"][1]]}
    assert [c["name"] for c in printers.column_definitions(V2)] == [
        "Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    assert printers.cells(V2, obj, NOW) == ["web", "Deployment/web", "cpu: 42%/50%", "1", 5,
                                            2, "60s"]


# --- protobuf (kubectl autoscale) -------------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _len(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _str(number: int, text: str) -> bytes:
    return _len(number, text.encode())


def kubectl_autoscale_body(api_version: str = "autoscaling/v2") -> bytes:
    """What `kubectl autoscale deployment web --cpu-percent=50 --min=1 --max=5` posts (as
    go-to-protobuf writes it: every non-pointer field, zero or not)."""
    meta = _str(1, "web") + _str(2, "") + _str(3, "") + _len(8, b"") + \
        _len(11, _str(1, "app") + _str(2, "web"))
    ref = _str(1, "Deployment") + _str(2, "web") + _str(3, "apps/v1")
    target = _str(1, "Utilization") + _int(4, 50)
    metric = _str(1, "Resource") + _len(4, _str(1, "cpu") + _len(2, target))
    spec = _len(1, ref) + _int(2, 1) + _int(3, 5) + _len(4, metric)
    status = _int(3, 0) + _int(4, 0)
    raw = _len(1, meta) + _len(2, spec) + _len(3, status)
    envelope = _len(1, _str(1, api_version) + _str(2, "HorizontalPodAutoscaler")) + \
        _len(2, raw) + _str(3, "") + _str(4, "")
    return protobuf.MAGIC + envelope


def test_protobuf_hpa_decodes_to_the_json_object() -> None:
    assert protobuf.decode(kubectl_autoscale_body()) == {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web",
                                    "apiVersion": "apps/v1"},
                 "minReplicas": 1, "maxReplicas": 5, "metrics": [cpu(50)]},
        "status": {}}


@pytest.mark.parametrize("body", [
    b"", b"{}", protobuf.MAGIC,
    protobuf.MAGIC + _len(1, _str(1, "v1") + _str(2, "Pod")),  # a kind without a table
    protobuf.MAGIC + b"\xff\xff",  # an unreadable envelope
])
def test_protobuf_bodies_bramble_does_not_read(body: bytes) -> None:
    assert protobuf.decode(body) is None


def test_protobuf_negative_and_malformed() -> None:
    spec = _len(1, _str(1, "Deployment")) + _int(3, -1)
    raw = _len(2, spec)
    body = protobuf.MAGIC + _len(1, _str(1, "autoscaling/v1") + _str(
        2, "HorizontalPodAutoscaler")) + _len(2, raw)
    assert protobuf.decode(body)["spec"]["maxReplicas"] == -1
    from bramble.kube.errors import BadRequest
    truncated = protobuf.MAGIC + _len(1, _str(1, "autoscaling/v2") + _str(
        2, "HorizontalPodAutoscaler")) + _len(2, b"\x12\x05\x0a")
    with pytest.raises(BadRequest):
        protobuf.decode(truncated)


# --- discovery: one group, two versions -------------------------------------------------------

def test_discovery_lists_both_versions_v2_preferred() -> None:
    d = Discovery(Registry())
    groups = {g["name"]: g for g in orjson.loads(d.group_list)["groups"]}
    assert [v["version"] for v in groups["autoscaling"]["versions"]] == ["v2", "v1"]
    assert groups["autoscaling"]["preferredVersion"]["version"] == "v2"
    for version in ("v2", "v1"):
        doc = orjson.loads(d.resource_lists[("autoscaling", version)])
        entry = next(r for r in doc["resources"] if r["name"] == "horizontalpodautoscalers")
        assert entry["shortNames"] == ["hpa"] and entry["categories"] == ["all"]
        assert any(r["name"] == "horizontalpodautoscalers/status" for r in doc["resources"])
    aggregated = orjson.loads(d.aggregated_groups)
    item = next(i for i in aggregated["items"] if i["metadata"]["name"] == "autoscaling")
    assert [v["version"] for v in item["versions"]] == ["v2", "v1"]
    registry = Registry()
    v1 = registry.by_path("autoscaling", "v1", "horizontalpodautoscalers")
    assert v1 is not None and registry.storage_of(v1).version == "v2"
    assert v1 not in registry.all  # one stored resource


# --- the master's flags -----------------------------------------------------------------------

def test_master_flags_shorten_the_autoscaler_timings() -> None:
    from bramble.cli.main import _controller_settings, build_parser

    for command in ("master", "up"):
        args = build_parser().parse_args([command, "--hpa-sync-period", "2",
                                          "--hpa-downscale-stabilization", "10"])
        settings = _controller_settings(args)
        assert (settings.hpa_sync_period, settings.hpa_downscale_stabilization) == (2.0, 10.0)
    defaults_ = _controller_settings(build_parser().parse_args(["master"]))
    assert (defaults_.hpa_sync_period, defaults_.hpa_downscale_stabilization) == (15.0, 300.0)
    with pytest.raises(Exception, match="--hpa-sync-period"):
        _controller_settings(build_parser().parse_args(["master", "--hpa-sync-period", "0"]))
