"""The status page's backend against a real master: login (token, one-time link), CSRF,
logout, every action and its effect in the API, the live view over SSE, the read-only
public mode, the page's static files and the cluster gauges on /metrics.

The browser side (the page itself) is tested in a real Chromium by the page's own tests.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bramble import joinproof
from bramble.client import Client
from bramble.kube.errors import NotFound
from bramble.master.web.session import COOKIE, CSRF_HEADER
from tests.conftest import MasterHandle, eventually, running_master

TIMEOUT = 30.0  # a guard against hangs, never a speed expectation


@pytest.fixture
async def master(tmp_path: Path) -> AsyncIterator[MasterHandle]:
    # No controllers: the actions' effects are then exactly what the tests see (no
    # scheduler binding pods, no node lifecycle evicting them).
    async with running_master(tmp_path / "master", run_controllers=False) as handle:
        yield handle


@pytest.fixture
async def admin(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


class Browser:
    """A cookie-keeping HTTPS client, as a browser on the phone would be."""

    def __init__(self, master: MasterHandle, http: aiohttp.ClientSession) -> None:
        self.master = master
        self.http = http
        self.csrf = ""

    def url(self, path: str) -> str:
        return f"{self.master.url}{path}"

    async def call(self, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None,
                   csrf: bool = True) -> tuple[int, Any]:
        h = dict(headers or {})
        if csrf and self.csrf and method == "POST":
            h.setdefault(CSRF_HEADER, self.csrf)
        async with self.http.request(method, self.url(path), json=body, headers=h,
                                     ssl=self.master.ssl_context(),
                                     allow_redirects=False) as r:
            raw = await r.read()
            try:
                return r.status, orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                return r.status, raw

    async def login(self, token: str | None = None) -> None:
        code, body = await self.call("POST", "/web/v1/login",
                                     {"token": token or self.master.token})
        assert code == 204, body
        code, body = await self.call("GET", "/web/v1/session")
        assert body["authenticated"] is True
        self.csrf = body["csrf"]

    async def act(self, action: str, body: Any) -> tuple[int, Any]:
        return await self.call("POST", f"/web/v1/actions/{action}", body)

    async def view(self) -> dict[str, Any]:
        code, body = await self.call("GET", "/web/v1/view")
        assert code == 200, body
        return body


@asynccontextmanager
async def browser(master: MasterHandle) -> AsyncIterator[Browser]:
    # unsafe=True: aiohttp's jar otherwise refuses cookies from an IP address (127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Browser(master, http)




def ready_node(name: str, address: str = "192.0.2.10") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": name, "labels": {"kubernetes.io/arch": "arm64"}},
        "status": {"allocatable": {"cpu": "4", "memory": "4Gi"},
                   "addresses": [{"type": "InternalIP", "address": address}]}}


def pod(name: str, node: str = "", **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta},
            "spec": spec}


async def going(admin: Client, name: str) -> bool:
    """Whether the pod `name` in default is deleted or on its way out."""
    try:
        got = await admin.request("GET", f"/api/v1/namespaces/default/pods/{name}")
    except NotFound:
        return True
    return bool(got["metadata"].get("deletionTimestamp"))


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [{"name": "web", "image": "nginx"}]}}}}


# --- the page and its files ------------------------------------------------------------------

async def test_page_and_static_files_are_public_everything_else_is_not(
        master: MasterHandle) -> None:
    async with browser(master) as b, b.http.get(b.url("/"), ssl=master.ssl_context()) as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["Cache-Control"] == "no-cache"
        etag = r.headers["ETag"]
    async with browser(master) as b:
        async with b.http.get(b.url("/"), headers={"If-None-Match": etag},
                              ssl=master.ssl_context()) as r:
            assert r.status == 304
        for path, ctype in (("/static/app.js", "text/javascript"),
                            ("/manifest.webmanifest", "application/manifest+json"),
                            ("/static/icon.svg", "image/svg+xml")):
            async with b.http.get(b.url(path), ssl=master.ssl_context()) as r:
                assert r.status == 200, path
                assert r.content_type == ctype
                assert r.headers["ETag"]
        for path in ("/static/nope.js", "/static/..%2Fsession.py", "/static/.hidden"):
            code, body = await b.call("GET", path)
            assert code == 404, path
            assert body["kind"] == "Status"
        # Without a session: the session says so, the view and actions refuse...
        assert await b.call("GET", "/web/v1/session") == (
            200, {"authenticated": False, "readOnly": False})
        for method, path in (("GET", "/web/v1/view"), ("GET", "/web/v1/events"),
                             ("POST", "/web/v1/actions/cordon"),
                             ("GET", "/web/v1/logs/default/p"), ("POST", "/web/v1/logout")):
            code, body = await b.call(method, path, {"node": "pi1"})
            assert code == 401, path
            assert body["kind"] == "Status"
        # ...and the API keeps its bearer token: a session cookie is no key to it.
        await b.login()
        code, _ = await b.call("GET", "/api/v1/pods")
        assert code == 401
        code, _ = await b.call("POST", "/bramble/v1/dashboard/links", {})
        assert code == 401


# --- logging in --------------------------------------------------------------------------

async def test_login_with_the_admin_token_sets_a_strict_cookie_and_logout_ends_it(
        master: MasterHandle) -> None:
    async with browser(master) as b:
        async with b.http.post(b.url("/web/v1/login"), json={"token": master.token},
                               ssl=master.ssl_context()) as r:
            assert r.status == 204
            cookie = r.cookies[COOKIE]
            assert cookie["httponly"] is True
            assert cookie["secure"] is True
            assert cookie["samesite"] == "Strict"
            assert cookie["path"] == "/"
            assert len(cookie.value) >= 43  # 256 random bits
        code, info = await b.call("GET", "/web/v1/session")
        assert info["authenticated"] is True and info["readOnly"] is False
        b.csrf = info["csrf"]
        view = await b.view()
        assert view["session"] == {"csrf": b.csrf, "readOnly": False}
        assert view["cluster"]["name"] == "bramble"
        assert set(view) >= {"generatedAt", "health", "nodes", "pendingNodes", "workloads",
                             "jobs", "pods", "services", "events"}

        # Logout needs the CSRF token too.
        code, body = await b.call("POST", "/web/v1/logout", {}, csrf=False)
        assert code == 403 and "X-CSRF-Token" in body["message"]
        code, _ = await b.call("POST", "/web/v1/logout", {})
        assert code == 204
        assert (await b.call("GET", "/web/v1/session"))[1]["authenticated"] is False
        assert (await b.call("GET", "/web/v1/view"))[0] == 401


async def test_wrong_tokens_are_refused_and_rate_limited(master: MasterHandle) -> None:
    async with browser(master) as b:
        for _ in range(5):
            code, body = await b.call("POST", "/web/v1/login", {"token": "not-the-token"})
            assert code == 401
            assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
        code, body = await b.call("POST", "/web/v1/login", {"token": master.token})
        assert code == 429, body
        assert body["details"]["retryAfterSeconds"] >= 1
        code, body = await b.call("POST", "/web/v1/login", {"tok": 1})
        assert code == 429  # still limited, whatever the body


async def test_bad_login_bodies_get_a_status_with_causes(master: MasterHandle) -> None:
    async with browser(master) as b:
        code, body = await b.call("POST", "/web/v1/login", {"token": 7})
        assert code == 422
        assert body["details"]["causes"][0]["field"] == "token"
        code, body = await b.call("POST", "/web/v1/login", {"token": master.token},
                                  headers={"Origin": "https://evil.example"})
        assert code == 403


async def test_a_one_time_link_logs_in_once(master: MasterHandle) -> None:
    async with browser(master) as b:
        async with b.http.post(b.url("/bramble/v1/dashboard/links"), json={},
                               headers=master.headers(), ssl=master.ssl_context()) as r:
            assert r.status == 201
            link = await r.json()
        assert link["url"].startswith(f"{master.url}/web/v1/login/")
        assert link["expiresAt"].endswith("Z")
        path = link["url"][len(master.url):]
        async with b.http.get(b.url(path), allow_redirects=False,
                              ssl=master.ssl_context()) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/"
            assert r.cookies[COOKIE]["httponly"] is True
        assert (await b.call("GET", "/web/v1/session"))[1]["authenticated"] is True
    async with browser(master) as other:
        async with other.http.get(other.url(path), allow_redirects=False,
                                  ssl=master.ssl_context()) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/?login=expired"
            assert COOKIE not in r.cookies
        assert (await other.call("GET", "/web/v1/session"))[1]["authenticated"] is False


# --- actions -----------------------------------------------------------------------------

async def test_actions_refuse_without_csrf_or_from_another_origin(
        master: MasterHandle, admin: Client) -> None:
    await admin.request("POST", "/api/v1/nodes", json=ready_node("pi1"))
    async with browser(master) as b:
        await b.login()
        code, body = await b.call("POST", "/web/v1/actions/cordon", {"node": "pi1"},
                                  csrf=False)
        assert code == 403
        code, body = await b.call("POST", "/web/v1/actions/cordon", {"node": "pi1"},
                                  headers={CSRF_HEADER: "forged"})
        assert code == 403
        code, body = await b.call("POST", "/web/v1/actions/cordon", {"node": "pi1"},
                                  headers={"Origin": "https://evil.example"})
        assert code == 403 and "Origin" in body["message"]
        node = await admin.request("GET", "/api/v1/nodes/pi1")
        assert not node.get("spec", {}).get("unschedulable")
        # The page's own origin passes.
        code, body = await b.call("POST", "/web/v1/actions/cordon", {"node": "pi1"},
                                  headers={"Origin": master.url})
        assert code == 200, body


async def test_cordon_uncordon_and_drain(master: MasterHandle, admin: Client) -> None:
    await admin.request("POST", "/api/v1/nodes", json=ready_node("pi1"))
    await admin.request("POST", "/api/v1/namespaces/default/pods", json=pod("bare", "pi1"))
    await admin.request("POST", "/api/v1/namespaces/default/pods", json=pod(
        "static", "pi1", annotations={"kubernetes.io/config.mirror": "abc"}))
    await admin.request("POST", "/api/v1/namespaces/default/pods", json=pod("elsewhere"))
    async with browser(master) as b:
        await b.login()
        code, body = await b.act("cordon", {"node": "pi1"})
        assert (code, body) == (200, {"ok": True, "message": "node/pi1 cordoned"})
        node = await admin.request("GET", "/api/v1/nodes/pi1")
        assert node["spec"]["unschedulable"] is True
        code, body = await b.act("uncordon", {"node": "pi1"})
        assert body["message"] == "node/pi1 uncordoned"
        node = await admin.request("GET", "/api/v1/nodes/pi1")
        assert "unschedulable" not in node.get("spec", {})

        code, body = await b.act("drain", {"node": "pi1"})
        assert (code, body["message"]) == (200, "draining pi1: 1 pod")
        node = await admin.request("GET", "/api/v1/nodes/pi1")
        assert node["spec"]["unschedulable"] is True

        assert await going(admin, "bare")
        for kept in ("static", "elsewhere"):
            got = await admin.request("GET", f"/api/v1/namespaces/default/pods/{kept}")
            assert not got["metadata"].get("deletionTimestamp")


async def test_scale_restart_and_delete_pod(master: MasterHandle, admin: Client) -> None:
    await admin.request("POST", "/apis/apps/v1/namespaces/default/deployments",
                        json=deployment("web"))
    await admin.request("POST", "/api/v1/namespaces/default/pods", json=pod("web-1"))
    async with browser(master) as b:
        await b.login()
        code, body = await b.act("scale", {"namespace": "default", "kind": "Deployment",
                                           "name": "web", "replicas": 3})
        assert (code, body["message"]) == (200, "deployment.apps/web scaled to 3")
        dep = await admin.request("GET", "/apis/apps/v1/namespaces/default/deployments/web")
        assert dep["spec"]["replicas"] == 3

        rc = {"metadata": {"name": "legacy"}, "spec": {"replicas": 1, "template": {
            "metadata": {"labels": {"app": "legacy"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
        await admin.request("POST", "/api/v1/namespaces/default/replicationcontrollers",
                            json=rc)
        code, body = await b.act("scale", {"namespace": "default",
                                           "kind": "ReplicationController",
                                           "name": "legacy", "replicas": 2})
        assert (code, body["message"]) == (200, "replicationcontroller/legacy scaled to 2")
        got = await admin.request(
            "GET", "/api/v1/namespaces/default/replicationcontrollers/legacy")
        assert got["spec"]["replicas"] == 2

        code, body = await b.act("restart", {"namespace": "default", "name": "web"})
        assert (code, body["message"]) == (200, "deployment.apps/web restarted")
        dep = await admin.request("GET", "/apis/apps/v1/namespaces/default/deployments/web")
        stamp = dep["spec"]["template"]["metadata"]["annotations"][
            "kubectl.kubernetes.io/restartedAt"]
        assert stamp.endswith("Z")
        managers = {m["manager"] for m in dep["metadata"].get("managedFields") or []}
        assert "bramble-dashboard" in managers

        code, body = await b.act("delete-pod", {"namespace": "default", "name": "web-1"})
        assert (code, body["message"]) == (200, 'pod "web-1" deleted')
        assert await going(admin, "web-1")


async def test_a_failed_action_answers_the_apis_status_and_changes_nothing(
        master: MasterHandle, admin: Client) -> None:
    await admin.request("POST", "/apis/apps/v1/namespaces/default/deployments",
                        json=deployment("web", 2))
    async with browser(master) as b:
        await b.login()
        code, body = await b.act("scale", {"namespace": "default", "kind": "Deployment",
                                           "name": "nope", "replicas": 1})
        assert code == 404
        assert body["kind"] == "Status" and "nope" in body["message"]

        code, body = await b.act("scale", {"namespace": "Default!", "kind": "StatefulSet",
                                           "replicas": -1})
        assert code == 422
        fields = sorted(c["field"] for c in body["details"]["causes"])
        assert fields == ["kind", "name", "namespace", "replicas"]

        code, body = await b.act("cordon", {"node": "nowhere"})
        assert code == 404 and body["kind"] == "Status"
        code, body = await b.act("teleport", {})
        assert code == 404 and "unknown action" in body["message"]
        code, body = await b.call("POST", "/web/v1/actions/scale", [1, 2])
        assert code == 400 and body["kind"] == "Status"

        dep = await admin.request("GET", "/apis/apps/v1/namespaces/default/deployments/web")
        assert dep["spec"]["replicas"] == 2


async def test_approve_a_pending_node(master: MasterHandle) -> None:
    key = joinproof.key_of(joinproof.new_secret())
    async with aiohttp.ClientSession() as http, http.post(
            f"{master.url}{joinproof.REQUEST_PATH}", json={"node": "pi9", "key": key},
            ssl=master.ssl_context()) as r:
        assert r.status == 202
    async with browser(master) as b:
        await b.login()

        async def pending() -> list[dict[str, Any]]:
            return (await b.view())["pendingNodes"]

        listed = await eventually(pending)
        assert listed[0]["name"] == "pi9" and listed[0]["fingerprint"]
        assert listed[0]["address"] == "127.0.0.1"
        code, body = await b.act("approve", {"node": "pi9"})
        assert code == 200, body
        assert body["message"].startswith("node pi9 approved")
        assert (await b.view())["pendingNodes"] == []
        code, body = await b.act("approve", {"node": "pi8"})
        assert code == 404 and "has not asked to join" in body["message"]


# --- the live view -----------------------------------------------------------------------

async def read_events(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    kind, data = "", b""
    async for raw in resp.content:
        line = raw.rstrip(b"\n")
        if line.startswith(b"event: "):
            kind = line[7:].decode()
        elif line.startswith(b"data: "):
            data = line[6:]
        elif not line and data:
            assert kind == "view"
            yield orjson.loads(data)
            kind, data = "", b""


async def test_sse_delivers_a_change_made_through_the_api(
        master: MasterHandle, admin: Client) -> None:
    async with browser(master) as b:
        await b.login()
        async with b.http.get(b.url("/web/v1/events"), ssl=master.ssl_context()) as r:
            assert r.status == 200
            assert r.content_type == "text/event-stream"
            events = read_events(r)
            first = await anext(events)
            assert first["session"]["csrf"] == b.csrf
            assert all(p["name"] != "live-1" for p in first["pods"])
            await admin.request("POST", "/api/v1/namespaces/default/pods",
                                json=pod("live-1"))
            async with asyncio.timeout(TIMEOUT):
                async for view in events:
                    if any(p["name"] == "live-1" for p in view["pods"]):
                        break
            # Logged out elsewhere: the stream ends after the next change.
            code, _ = await b.call("POST", "/web/v1/logout", {})
            assert code == 204
            await admin.request("POST", "/api/v1/namespaces/default/pods", json=pod("live-2"))
            async with asyncio.timeout(TIMEOUT):
                async for _ in events:
                    pass


async def test_the_view_shows_nodes_usage_and_services(
        master: MasterHandle, admin: Client) -> None:
    await admin.request("POST", "/api/v1/nodes", json=ready_node("pi1"))
    await admin.request("POST", "/bramble/v1/nodes/pi1/usage", json={
        "window": 5, "interval": 5, "usage": {"cpu": "1", "memory": "1Gi"}})
    await admin.request("POST", "/api/v1/namespaces/default/services", json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"port": 80, "nodePort": 30080}]}})
    async with browser(master) as b:
        await b.login()

        async def ready() -> dict[str, Any] | None:
            view = await b.view()
            nodes = view["nodes"]
            if nodes and nodes[0]["cpu"] and view["services"]:
                return view
            return None

        view = await eventually(ready)
        node = view["nodes"][0]
        # 1 core of 4 allocatable = 25 %, 1 GiB of 4 GiB = 25 %.
        assert node["cpu"] == {"usedMilli": 1000, "allocatableMilli": 4000, "percent": 25}
        assert node["memory"]["percent"] == 25
        assert node["arch"] == "arm64" and node["address"] == "192.0.2.10"
        svc = view["services"][0]
        assert svc["type"] == "NodePort"
        # The node has no Ready condition (Unknown), so the links name every node.
        assert svc["ports"][0]["links"] == ["http://192.0.2.10:30080"]


async def test_logs_need_a_session_and_answer_a_status_for_bad_requests(
        master: MasterHandle, admin: Client) -> None:
    await admin.request("POST", "/api/v1/namespaces/default/pods", json=pod("unscheduled"))
    async with browser(master) as b:
        await b.login()
        code, body = await b.call("GET", "/web/v1/logs/default/unscheduled?tailLines=10")
        assert code == 400 and "does not have a host assigned" in body["message"]
        code, body = await b.call("GET", "/web/v1/logs/default/nope")
        assert code == 404
        code, body = await b.call("GET", "/web/v1/logs/Bad_NS/x?tailLines=lots")
        assert code == 422
        assert sorted(c["field"] for c in body["details"]["causes"]) == [
            "namespace", "tailLines"]


# --- read-only public mode and /metrics ----------------------------------------------------

async def test_read_only_public_view_allows_no_actions(tmp_path: Path) -> None:
    async with running_master(tmp_path / "m", run_controllers=False,
                              dashboard_read_only_public=True) as m, browser(m) as b:
        assert await b.call("GET", "/web/v1/session") == (
            200, {"authenticated": False, "readOnly": True})
        view = await b.view()
        assert view["session"] == {"csrf": "", "readOnly": True}
        code, _ = await b.call("POST", "/web/v1/actions/cordon", {"node": "x"})
        assert code == 401
        code, _ = await b.call("GET", "/web/v1/logs/default/x")
        assert code == 401
        # A login still gives actions.
        await b.login()
        assert (await b.view())["session"]["readOnly"] is False


async def test_metrics_have_the_cluster_gauges(master: MasterHandle, admin: Client) -> None:
    await admin.request("POST", "/api/v1/nodes", json=ready_node("pi1"))
    await admin.request("POST", "/api/v1/namespaces/default/pods", json=pod("p1"))
    await admin.request("POST", "/bramble/v1/nodes/pi1/usage", json={
        "window": 5, "interval": 5, "usage": {"cpu": "500m", "memory": "1Gi"}})
    async with aiohttp.ClientSession() as http, http.get(
            f"{master.url}/metrics", headers=master.headers(), ssl=master.ssl_context()) as r:
        text = await r.text()
    assert 'bramble_nodes{condition="Ready",status="Unknown"} 1' in text
    assert 'bramble_nodes{condition="Ready",status="True"} 0' in text
    assert 'bramble_pods{phase="Pending"} 1' in text
    assert 'bramble_node_cpu_usage_cores{node="pi1"} 0.5' in text
    assert 'bramble_node_memory_usage_bytes{node="pi1"} 1073741824' in text
    assert 'bramble_node_cpu_allocatable_cores{node="pi1"} 4' in text
    assert 'bramble_node_memory_allocatable_bytes{node="pi1"} 4294967296' in text


async def test_front_doors_serve_https_and_redirect_plain_http(tmp_path: Path) -> None:
    # 0: ephemeral ports standing in for 443 and 80.
    async with running_master(tmp_path / "m", run_controllers=False, https_port=0,
                              http_redirect_port=0) as master:
        running: Any = master.running
        assert running.https_port and running.http_redirect_port
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{running.http_redirect_port}/?login=x",
                                allow_redirects=False) as resp:
                assert resp.status == 308
                assert resp.headers["Location"] == \
                    f"https://127.0.0.1:{running.https_port}/?login=x"
                assert await resp.text() != ""  # a short note, never cluster data
            # The extra HTTPS port is the same app: the page, and the API's auth.
            https = f"https://127.0.0.1:{running.https_port}"
            async with http.get(f"{https}/", ssl=master.ssl_context()) as resp:
                assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
            async with http.get(f"{https}/api/v1/pods", ssl=master.ssl_context()) as resp:
                assert resp.status == 401
            async with http.get(f"{https}/api/v1/namespaces", ssl=master.ssl_context(),
                                headers=master.headers()) as resp:
                assert resp.status == 200


async def test_a_taken_front_door_port_is_skipped(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with running_master(tmp_path / "m", run_controllers=False, https_port=port,
                                  http_redirect_port=port) as master:
            running: Any = master.running
            assert running.https_port is None and running.http_redirect_port is None
            async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
                assert (await c.request("GET", "/api/v1/namespaces/default"))["metadata"]
