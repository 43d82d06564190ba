"""The HTTP API against a real master on loopback: verbs, conventions, errors, watches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import MasterHandle, running_master

JSON = "application/json"


class Api:
    """A thin raw-HTTP client, so the tests see exactly what the server sends."""

    def __init__(self, master: MasterHandle, session: aiohttp.ClientSession) -> None:
        self.m = master
        self.s = session

    async def call(self, method: str, path: str, body: Any = None, *, ctype: str = JSON,
                   headers: dict[str, str] | None = None, auth: bool = True,
                   raw: bytes | None = None, params: dict | None = None) -> tuple[int, Any]:
        h = dict(self.m.headers() if auth else {})
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        if data is not None:
            h["Content-Type"] = ctype
        async with self.s.request(method, self.m.url + path, data=data, headers=h,
                                  params=params, ssl=self.m.ssl_context()) as r:
            text = await r.read()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text.decode()


@pytest.fixture
async def master(tmp_path: Path) -> AsyncIterator[MasterHandle]:
    """The API's own semantics: no controllers writing to the objects under test."""
    async with running_master(tmp_path / "master", run_controllers=False) as handle:
        yield handle


@pytest.fixture
async def api(master: MasterHandle) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(master, session)


def pod(name: str, labels: dict | None = None, **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                     "resources": {"requests": {"cpu": "100m",
                                                                "memory": "64Mi"}}}],
                     **spec}}


def deployment(name: str, replicas: int = 2) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web",
                                                           "image": "nginx:1.25"}]}}}}


PODS = "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


async def test_health_and_version_need_no_token(api: Api) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        code, body = await api.call("GET", path, auth=False)
        assert (code, body) == (200, "ok")
    code, body = await api.call("GET", "/version", auth=False)
    assert code == 200 and body["major"] == "1" and body["gitVersion"].startswith("v1.")


async def test_everything_else_needs_a_valid_token(api: Api) -> None:
    code, body = await api.call("GET", PODS, auth=False)
    assert code == 401 and body["kind"] == "Status" and body["reason"] == "Unauthorized"
    code, _ = await api.call("GET", PODS, auth=False,
                             headers={"Authorization": "Bearer not-a-token"})
    assert code == 401
    code, _ = await api.call("GET", "/metrics", auth=False)
    assert code == 401


async def test_builtin_namespaces_exist(api: Api) -> None:
    code, body = await api.call("GET", "/api/v1/namespaces")
    assert code == 200
    names = {i["metadata"]["name"] for i in body["items"]}
    assert {"default", "kube-system"} <= names
    assert all(i["status"]["phase"] == "Active" for i in body["items"])


async def test_discovery(api: Api) -> None:
    code, body = await api.call("GET", "/api/v1")
    assert code == 200 and body["kind"] == "APIResourceList"
    pods = next(r for r in body["resources"] if r["name"] == "pods")
    assert pods["namespaced"] and "po" in pods["shortNames"] and "all" in pods["categories"]
    assert any(r["name"] == "pods/status" for r in body["resources"])
    code, body = await api.call("GET", "/apis")
    assert {g["name"] for g in body["groups"]} >= {"apps", "batch"}
    code, body = await api.call("GET", "/apis/apps/v1")
    scale = next(r for r in body["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    agg = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    code, body = await api.call("GET", "/apis", headers={"Accept": agg})
    assert body["kind"] == "APIGroupDiscoveryList"
    code, body = await api.call("GET", "/openapi/v3")
    assert "apis/apps/v1" in body["paths"]
    code, doc = await api.call("GET", body["paths"]["apis/apps/v1"]["serverRelativeURL"])
    assert code == 200 and doc["openapi"].startswith("3.")


async def test_create_get_defaults_and_server_fields(api: Api) -> None:
    code, created = await api.call("POST", PODS, pod("web-1"))
    assert code == 201, created
    m = created["metadata"]
    assert m["uid"] and m["creationTimestamp"].endswith("Z") and int(m["resourceVersion"]) > 0
    assert m["namespace"] == "default"
    assert created["spec"]["restartPolicy"] == "Always"
    assert created["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert created["status"] == {"phase": "Pending", "qosClass": "Burstable"}
    code, got = await api.call("GET", f"{PODS}/web-1")
    assert code == 200 and got == created
    code, body = await api.call("POST", PODS, pod("web-1"))
    assert code == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'pods "web-1" already exists'


async def test_generate_name(api: Api) -> None:
    body = pod("")
    body["metadata"] = {"generateName": "worker-", "labels": {"a": "b"}}
    code, created = await api.call("POST", PODS, body)
    assert code == 201
    assert created["metadata"]["name"].startswith("worker-")
    assert len(created["metadata"]["name"]) == len("worker-") + 5


async def test_update_conflict_and_generation(api: Api) -> None:
    code, d = await api.call("POST", DEPLOYS, deployment("web"))
    assert code == 201 and d["metadata"]["generation"] == 1
    stale = json.loads(json.dumps(d))
    d["spec"]["replicas"] = 5
    code, updated = await api.call("PUT", f"{DEPLOYS}/web", d)
    assert code == 200 and updated["metadata"]["generation"] == 2
    stale["spec"]["replicas"] = 7
    code, body = await api.call("PUT", f"{DEPLOYS}/web", stale)
    assert code == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    # A label change is not a spec change.
    updated["metadata"]["labels"] = {"tier": "front"}
    code, relabeled = await api.call("PUT", f"{DEPLOYS}/web", updated)
    assert relabeled["metadata"]["generation"] == 2
    # Status cannot be changed through the main resource...
    relabeled["status"] = {"replicas": 9}
    code, same = await api.call("PUT", f"{DEPLOYS}/web", relabeled)
    assert same.get("status", {}).get("replicas") is None
    # ...only through /status, which changes nothing else.
    same["status"] = {"replicas": 3, "observedGeneration": 2}
    same["spec"]["replicas"] = 1
    code, st = await api.call("PUT", f"{DEPLOYS}/web/status", same)
    assert code == 200, st
    assert st["status"]["replicas"] == 3 and st["spec"]["replicas"] == 5


async def test_unchanged_update_writes_nothing(api: Api) -> None:
    code, d = await api.call("POST", DEPLOYS, deployment("calm"))
    code, again = await api.call("PUT", f"{DEPLOYS}/calm", d)
    assert code == 200 and again["metadata"]["resourceVersion"] == d["metadata"][
        "resourceVersion"]


async def test_patches_of_every_kind(api: Api) -> None:
    await api.call("POST", DEPLOYS, deployment("p"))
    code, body = await api.call("PATCH", f"{DEPLOYS}/p", {"metadata": {"labels": {"x": "1"}}},
                                ctype="application/merge-patch+json")
    assert code == 200 and body["metadata"]["labels"] == {"x": "1"}
    code, body = await api.call("PATCH", f"{DEPLOYS}/p",
                                [{"op": "replace", "path": "/spec/replicas", "value": 4}],
                                ctype="application/json-patch+json")
    assert code == 200 and body["spec"]["replicas"] == 4
    smp = {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "busybox"}]}}}}
    code, body = await api.call("PATCH", f"{DEPLOYS}/p", smp,
                                ctype="application/strategic-merge-patch+json")
    assert code == 200
    names = [c["name"] for c in body["spec"]["template"]["spec"]["containers"]]
    assert names == ["sidecar", "web"] or names == ["web", "sidecar"]
    applied = deployment("p", replicas=3)
    code, body = await api.call("PATCH", f"{DEPLOYS}/p", applied,
                                ctype="application/apply-patch+yaml",
                                params={"fieldManager": "tester", "force": "true"})
    assert code == 200, body
    assert body["spec"]["replicas"] == 3
    code, body = await api.call("PATCH", f"{DEPLOYS}/fresh", deployment("fresh"),
                                ctype="application/apply-patch+yaml",
                                params={"fieldManager": "tester"})
    assert code == 201, body
    code, body = await api.call("PATCH", f"{DEPLOYS}/p", {"x": 1}, ctype="text/csv")
    assert code == 415 and body["reason"] == "UnsupportedMediaType"


async def test_stale_patch_conflicts(api: Api) -> None:
    code, d = await api.call("POST", DEPLOYS, deployment("s"))
    await api.call("PATCH", f"{DEPLOYS}/s", {"spec": {"replicas": 3}},
                   ctype="application/merge-patch+json")
    code, body = await api.call(
        "PATCH", f"{DEPLOYS}/s",
        {"metadata": {"resourceVersion": d["metadata"]["resourceVersion"]},
         "spec": {"replicas": 4}}, ctype="application/merge-patch+json")
    assert code == 409


async def test_scale_subresource(api: Api) -> None:
    await api.call("POST", DEPLOYS, deployment("sc"))
    code, scale = await api.call("GET", f"{DEPLOYS}/sc/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=sc"
    code, scale = await api.call("PATCH", f"{DEPLOYS}/sc/scale", {"spec": {"replicas": 6}},
                                 ctype="application/merge-patch+json")
    assert code == 200 and scale["spec"]["replicas"] == 6
    code, d = await api.call("GET", f"{DEPLOYS}/sc")
    assert d["spec"]["replicas"] == 6 and d["metadata"]["generation"] == 2
    code, body = await api.call("PATCH", f"{DEPLOYS}/sc/scale", {"spec": {"replicas": -1}},
                                ctype="application/merge-patch+json")
    assert code == 422


async def test_binding(api: Api) -> None:
    await api.call("POST", PODS, pod("b"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "pi1"}}
    code, body = await api.call("POST", f"{PODS}/b/binding", binding)
    assert code == 201, body
    code, p = await api.call("GET", f"{PODS}/b")
    assert p["spec"]["nodeName"] == "pi1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True"
               for c in p["status"]["conditions"])
    code, body = await api.call("POST", f"{PODS}/b/binding", binding)
    assert code == 409


async def test_list_selectors_and_paging(api: Api) -> None:
    for i in range(7):
        await api.call("POST", PODS, pod(f"l{i}", {"app": "web" if i % 2 else "db",
                                                   "idx": str(i)}))
    code, body = await api.call("GET", PODS, params={"labelSelector": "app=web"})
    assert sorted(p["metadata"]["name"] for p in body["items"]) == ["l1", "l3", "l5"]
    code, body = await api.call("GET", PODS, params={"labelSelector": "idx in (1,2),app!=web"})
    assert [p["metadata"]["name"] for p in body["items"]] == ["l2"]
    code, body = await api.call("GET", PODS, params={"fieldSelector": "metadata.name=l4"})
    assert [p["metadata"]["name"] for p in body["items"]] == ["l4"]
    code, body = await api.call("GET", PODS, params={"fieldSelector": "status.phase=Pending"})
    assert len(body["items"]) == 7
    code, body = await api.call("GET", PODS, params={"fieldSelector": "spec.bogus=1"})
    assert code == 400
    code, body = await api.call("GET", PODS, params={"labelSelector": "app in (web"})
    assert code == 400
    seen, token = [], None
    while True:
        params = {"limit": "3", **({"continue": token} if token else {})}
        code, page = await api.call("GET", PODS, params=params)
        seen += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert seen == [f"l{i}" for i in range(7)]
    code, all_ns = await api.call("GET", "/api/v1/pods")
    assert len(all_ns["items"]) == 7


async def test_table_output(api: Api) -> None:
    await api.call("POST", PODS, pod("t1"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    code, body = await api.call("GET", PODS, headers={"Accept": accept})
    assert body["kind"] == "Table"
    cols = [c["name"] for c in body["columnDefinitions"]]
    assert cols[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    row = body["rows"][0]
    assert row["cells"][0] == "t1" and row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["namespace"] == "default"


async def test_watch_from_resource_version(api: Api, master: MasterHandle) -> None:
    code, listed = await api.call("GET", PODS)
    rv = listed["metadata"]["resourceVersion"]
    events: list[dict] = []

    async def watch() -> None:
        async with api.s.get(master.url + PODS, params={
                "watch": "true", "resourceVersion": rv, "timeoutSeconds": "5",
                "allowWatchBookmarks": "true", "labelSelector": "app=web"},
                headers=master.headers(), ssl=master.ssl_context()) as r:
            assert r.status == 200
            async for line in r.content:
                event = json.loads(line)
                if event["type"] != "BOOKMARK":
                    events.append(event)
                if len(events) == 4:
                    return

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    await api.call("POST", PODS, pod("w1"))
    await api.call("POST", PODS, pod("other", {"app": "db"}))
    await api.call("PATCH", f"{PODS}/w1", {"metadata": {"labels": {"app": "web", "v": "2"}}},
                   ctype="application/merge-patch+json")
    await api.call("PATCH", f"{PODS}/w1", {"metadata": {"labels": {"app": "gone"}}},
                   ctype="application/merge-patch+json")
    await api.call("PATCH", f"{PODS}/other", {"metadata": {"labels": {"app": "web"}}},
                   ctype="application/merge-patch+json")
    await asyncio.wait_for(task, 10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1"), ("ADDED", "other")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)


async def test_watch_bookmarks_and_timeout(api: Api, master: MasterHandle) -> None:
    code, listed = await api.call("GET", PODS)
    types = []
    async with api.s.get(master.url + PODS, params={
            "watch": "1", "resourceVersion": listed["metadata"]["resourceVersion"],
            "timeoutSeconds": "2", "allowWatchBookmarks": "true"},
            headers=master.headers(), ssl=master.ssl_context()) as r:
        async for line in r.content:
            types.append(json.loads(line)["type"])
    assert "BOOKMARK" in types  # the fixture's bookmark interval is 0.5 s


async def test_watch_too_old_is_expired(api: Api, master: MasterHandle) -> None:
    # The fixture keeps 200 changes of history; push the first ones out of it.
    await asyncio.gather(*(api.call("POST", "/api/v1/namespaces/default/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"h{i}"}})
        for i in range(210)))
    code, body = await api.call("GET", PODS, params={"watch": "true", "resourceVersion": "1"})
    assert code == 410 and body["reason"] == "Expired"
    assert body["message"].startswith("too old resource version: 1")


async def test_delete_with_finalizers_and_propagation(api: Api) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "f", "finalizers": ["example.com/hold"]}, "data": {"a": "1"}}
    path = "/api/v1/namespaces/default/configmaps"
    await api.call("POST", path, cm)
    code, body = await api.call("DELETE", f"{path}/f")
    assert code == 202 and body["metadata"]["deletionTimestamp"]
    code, body = await api.call("GET", f"{path}/f")
    assert code == 200
    code, body = await api.call("PATCH", f"{path}/f", {"metadata": {"finalizers": None}},
                                ctype="application/merge-patch+json")
    assert code == 200
    code, body = await api.call("GET", f"{path}/f")
    assert code == 404 and body["reason"] == "NotFound"
    await api.call("POST", DEPLOYS, deployment("o"))
    code, body = await api.call("DELETE", f"{DEPLOYS}/o", {"kind": "DeleteOptions",
                                                          "apiVersion": "v1",
                                                          "propagationPolicy": "Orphan"})
    assert code == 202 and "orphan" in body["metadata"]["finalizers"]
    code, body = await api.call("DELETE", f"{DEPLOYS}/o", {"propagationPolicy": "Sideways"})
    assert code == 400


async def test_delete_collection(api: Api) -> None:
    for i in range(3):
        await api.call("POST", PODS, pod(f"dc{i}", {"batch": "x" if i < 2 else "y"}))
    code, body = await api.call("DELETE", PODS, params={"labelSelector": "batch=x"})
    assert code == 200 and len(body["items"]) == 2
    code, body = await api.call("GET", PODS)
    assert [p["metadata"]["name"] for p in body["items"]] == ["dc2"]


async def test_protected_namespaces(api: Api) -> None:
    code, body = await api.call("DELETE", "/api/v1/namespaces/default")
    assert code == 403


async def test_metrics(api: Api) -> None:
    await api.call("GET", PODS)
    code, text = await api.call("GET", "/metrics")
    assert code == 200
    assert 'apiserver_request_total{verb="list",resource="pods",code="200"}' in text
    assert "bramble_store_bytes_written_total" in text
    assert "apiserver_registered_watchers" in text


async def test_deleting_a_namespace_removes_its_contents(api: Api) -> None:
    code, ns = await api.call("POST", "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
    assert code == 201 and ns["spec"]["finalizers"] == ["kubernetes"]
    base = "/api/v1/namespaces/doomed"
    await api.call("POST", f"{base}/pods", pod("p"))
    await api.call("POST", f"{base}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                 "metadata": {"name": "c"}})
    await api.call("POST", "/apis/apps/v1/namespaces/doomed/deployments", deployment("d"))
    code, body = await api.call("DELETE", "/api/v1/namespaces/doomed")
    assert code == 202 and body["status"]["phase"] == "Terminating"
    for _ in range(100):
        code, _ = await api.call("GET", "/api/v1/namespaces/doomed")
        if code == 404:
            break
        await asyncio.sleep(0.05)
    assert code == 404
    for path in (f"{base}/pods", f"{base}/configmaps",
                 "/apis/apps/v1/namespaces/doomed/deployments"):
        code, body = await api.call("GET", path)
        assert body["items"] == [], path
    # The name is free again, and the old contents do not come back.
    code, _ = await api.call("POST", "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
    assert code == 201
    code, body = await api.call("GET", f"{base}/configmaps")
    assert body["items"] == []


async def test_creating_in_a_terminating_namespace_is_forbidden(api: Api) -> None:
    await api.call("POST", "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "closing"}})
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    await api.call("POST", "/api/v1/namespaces/closing/configmaps", cm)
    await api.call("DELETE", "/api/v1/namespaces/closing")
    code, body = await api.call("POST", "/api/v1/namespaces/closing/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})
    assert code == 403 and "being terminated" in body["message"]
    # The finalizer holds the ConfigMap, and so the namespace, until it is released.
    code, ns = await api.call("GET", "/api/v1/namespaces/closing")
    assert code == 200 and ns["status"]["phase"] == "Terminating"
    await api.call("PATCH", "/api/v1/namespaces/closing/configmaps/held",
                   {"metadata": {"finalizers": None}}, ctype="application/merge-patch+json")
    for _ in range(100):
        code, _ = await api.call("GET", "/api/v1/namespaces/closing")
        if code == 404:
            break
        await asyncio.sleep(0.05)
    assert code == 404


async def test_service_update_keeps_allocated_ip_and_node_port(api: Api) -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
           "spec": {"type": "NodePort", "clusterIP": "10.43.0.20", "selector": {"app": "w"},
                    "ports": [{"port": 80, "nodePort": 30080}]}}
    path = "/api/v1/namespaces/default/services"
    code, created = await api.call("POST", path, svc)
    assert code == 201, created
    resent = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
              "spec": {"type": "NodePort", "selector": {"app": "w2"}, "ports": [{"port": 80}]}}
    code, updated = await api.call("PUT", f"{path}/np", resent)
    assert code == 200, updated
    assert updated["spec"]["clusterIP"] == "10.43.0.20"
    assert updated["spec"]["ports"][0]["nodePort"] == 30080
    assert updated["spec"]["selector"] == {"app": "w2"}


async def test_unknown_fields_warn_by_default(api: Api, master: MasterHandle) -> None:
    body = pod("warned")
    body["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    async with api.s.post(master.url + PODS, json=body, headers=master.headers(),
                          ssl=master.ssl_context()) as r:
        assert r.status == 201
        assert r.headers.getall("Warning") == [
            '299 - "unknown field \\"spec.containers[0].imagePullPolicyy\\""'] or any(
            "spec.containers[0].imagePullPolicyy" in w for w in r.headers.getall("Warning"))
        created = await r.json()
    assert "imagePullPolicyy" not in json.dumps(created)
    created["spec"]["bogus"] = 1
    async with api.s.put(f"{master.url}{PODS}/warned", json=created,
                         headers=master.headers(), ssl=master.ssl_context()) as r:
        assert r.status == 200
        assert any("spec.bogus" in w for w in r.headers.getall("Warning"))


async def test_leases_are_kept_in_memory_only(api: Api, master: MasterHandle) -> None:
    """Heartbeats (Leases) cost no disk writes, yet keep resourceVersions in order."""
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    store = master.running.store  # type: ignore[union-attr]
    db = master.data_dir / "store.db"
    size_before = db.stat().st_size
    code, lease = await api.call("POST", leases, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "pi1"}, "spec": {"holderIdentity": "pi1",
                                              "leaseDurationSeconds": 40}})
    assert code == 201, lease
    # The first volatile write reserves a block of resourceVersions: one small record.
    assert db.stat().st_size - size_before < 100
    size_before = db.stat().st_size
    for i in range(20):
        code, lease = await api.call("PATCH", f"{leases}/pi1", {"spec": {
            "renewTime": f"2026-01-01T00:00:{i:02d}.000000Z"}},
            ctype="application/merge-patch+json")
        assert code == 200
    assert db.stat().st_size == size_before
    code, cm = await api.call("POST", "/api/v1/namespaces/default/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-leases"}})
    assert int(cm["metadata"]["resourceVersion"]) > int(lease["metadata"]["resourceVersion"])
    assert store.rv >= int(cm["metadata"]["resourceVersion"])


async def test_watch_list_sends_initial_events_then_a_bookmark(api: Api,
                                                              master: MasterHandle) -> None:
    """kubectl >= 1.35 waits (e.g. in delete) with sendInitialEvents and needs the
    initial-events-end bookmark before it trusts the stream."""
    await api.call("POST", PODS, pod("wl"))
    lines = []
    async with api.s.get(master.url + PODS, params={
            "watch": "1", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
            "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "1",
            "fieldSelector": "metadata.name=wl"},
            headers=master.headers(), ssl=master.ssl_context()) as r:
        async for line in r.content:
            lines.append(json.loads(line))
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in lines[:2]] == [
        ("ADDED", "wl"), ("BOOKMARK", None)]
    assert lines[1]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}
