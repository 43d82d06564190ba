"""Bad input gets the right Status, with field causes, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.api.test_api import PODS, Api, deployment, pod
from tests.conftest import MasterHandle, running_master

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


@pytest.fixture
async def master(tmp_path: Path) -> AsyncIterator[MasterHandle]:
    """Only the API at work: no controller changes the objects these tests compare."""
    async with running_master(tmp_path / "master", run_controllers=False) as handle:
        yield handle


@pytest.fixture
async def api(master: MasterHandle) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(master, session)


def _bad_pod(**changes) -> dict:
    p = pod("ok")
    for path, value in changes.items():
        target = p
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        target[keys[-1]] = value
    return p


CASES = [
    # (name, method, path, raw body, content type, params, code, reason, field in causes)
    ("malformed json", "POST", PODS, b'{"apiVersion": "v1", "kind": ', "application/json",
     None, 400, "BadRequest", None),
    ("malformed yaml", "POST", PODS, b"kind: Pod\nmetadata: [unclosed", "application/yaml",
     None, 400, "BadRequest", None),
    ("not an object", "POST", PODS, b"[1, 2]", "application/json", None, 400,
     "BadRequest", None),
    ("wrong kind", "POST", PODS, json.dumps({**pod("x"), "kind": "Service"}).encode(),
     "application/json", None, 400, "BadRequest", None),
    ("wrong api version", "POST", DEPLOYS,
     json.dumps({**deployment("x"), "apiVersion": "apps/v1beta1"}).encode(),
     "application/json", None, 400, "BadRequest", None),
    ("invalid name", "POST", PODS, json.dumps(pod("Not_Valid")).encode(), "application/json",
     None, 422, "Invalid", "metadata.name"),
    ("missing name", "POST", PODS, json.dumps(_bad_pod(metadata={})).encode(),
     "application/json", None, 422, "Invalid", "metadata.name"),
    ("bad quantity", "POST", PODS, json.dumps(_bad_pod(
        spec__containers__0__resources={"requests": {"cpu": "lots"}})).encode(),
     "application/json", None, 422, "Invalid", "spec.containers[0].resources.requests[cpu]"),
    ("no containers", "POST", PODS, json.dumps(_bad_pod(spec__containers=[])).encode(),
     "application/json", None, 422, "Invalid", "spec.containers"),
    ("bad port", "POST", PODS, json.dumps(_bad_pod(
        spec__containers__0__ports=[{"containerPort": 70000}])).encode(), "application/json",
     None, 422, "Invalid", "spec.containers[0].ports[0].containerPort"),
    ("selector does not match template", "POST", DEPLOYS, json.dumps({
        **deployment("x"), "spec": {**deployment("x")["spec"],
                                    "selector": {"matchLabels": {"app": "other"}}}}).encode(),
     "application/json", None, 422, "Invalid", "spec.template.metadata.labels"),
    ("unknown field, strict", "POST", PODS, json.dumps(_bad_pod(
        spec__containers__0__imagePullPolicyy="Always")).encode(), "application/json",
     {"fieldValidation": "Strict"}, 400, "BadRequest", None),
    ("namespace mismatch", "POST", PODS, json.dumps(_bad_pod(
        metadata={"name": "x", "namespace": "kube-system"})).encode(), "application/json",
     None, 400, "BadRequest", None),
    ("missing namespace", "POST", "/api/v1/namespaces/nowhere/pods",
     json.dumps(pod("x")).encode(), "application/json", None, 404, "NotFound", None),
    ("protobuf body", "POST", PODS, b"\x6b\x38\x73\x00", "application/vnd.kubernetes.protobuf",
     None, 415, "UnsupportedMediaType", None),
    ("huge body", "POST", "/api/v1/namespaces/default/configmaps", json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
        "data": {"x": "y" * (3 * 1024 * 1024 + 10)}}).encode(), "application/json", None,
     413, "RequestEntityTooLarge", None),
    ("unknown resource", "GET", "/api/v1/namespaces/default/widgets", None, None, None, 404,
     "NotFound", None),
    ("bad dry run", "POST", PODS, json.dumps(pod("x")).encode(), "application/json",
     {"dryRun": "Some"}, 400, "BadRequest", None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_refused_and_stores_nothing(api: Api, case) -> None:
    _, method, path, raw, ctype, params, code, reason, field = case
    before = await api.call("GET", "/api/v1/pods")
    before_deploys = await api.call("GET", "/apis/apps/v1/deployments")
    headers = {"Content-Type": ctype} if ctype else None
    status, body = await api.call(method, path, raw=raw, headers=headers, params=params,
                                  ctype=ctype or "application/json")
    assert status == code, body
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["reason"] == reason and body["code"] == code
    assert body["message"]
    if field:
        fields = [c.get("field") for c in body["details"]["causes"]]
        assert field in fields, fields
    after = await api.call("GET", "/api/v1/pods")
    after_deploys = await api.call("GET", "/apis/apps/v1/deployments")
    assert after[1]["items"] == before[1]["items"]
    assert after_deploys[1]["items"] == before_deploys[1]["items"]
    assert after[1]["metadata"]["resourceVersion"] == before[1]["metadata"]["resourceVersion"]


async def test_invalid_update_changes_nothing(api: Api) -> None:
    code, d = await api.call("POST", DEPLOYS, deployment("keep"))
    bad = json.loads(json.dumps(d))
    bad["spec"]["selector"] = {"matchLabels": {"app": "changed"}}
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "changed"}
    code, body = await api.call("PUT", f"{DEPLOYS}/keep", bad)
    assert code == 422 and "field is immutable" in body["message"]
    code, now = await api.call("GET", f"{DEPLOYS}/keep")
    assert now == d


async def test_bad_patch_changes_nothing(api: Api) -> None:
    code, d = await api.call("POST", DEPLOYS, deployment("keep2"))
    code, body = await api.call("PATCH", f"{DEPLOYS}/keep2",
                                [{"op": "remove", "path": "/spec/nope"}],
                                ctype="application/json-patch+json")
    assert code in (400, 422) and body["kind"] == "Status"
    code, body = await api.call("PATCH", f"{DEPLOYS}/keep2", {"spec": {"replicas": -3}},
                                ctype="application/merge-patch+json")
    assert code == 422
    code, now = await api.call("GET", f"{DEPLOYS}/keep2")
    assert now == d
