"""CLI output: the tab writer and table printer, and the commands' output and errors.

The command tests run `bramble.cli.main.run([...])` against a small in-memory API
server on a real loopback TLS socket, with certificates from master.pki, so the client's
CA pinning, token, discovery and Status handling are exercised for real. The lead's
live-server tests cover the same commands against the real API server.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bramble import kubeconfig
from bramble.cli import main as cli
from bramble.cli import manifests, output
from bramble.kube import printers as tables
from bramble.master import pki
from bramble.master.api.resources import GROUPS, RESOURCES, Registry

# --- the tab writer and table printer -------------------------------------------------------


def test_tabwriter_aligns_like_kubectl() -> None:
    w = output.TabWriter()
    w.row(["NAME", "READY", "STATUS", "RESTARTS", "AGE"])
    w.row(["nginx", "1/1", "Running", "0", "5s"])
    w.row(["a-much-longer-name", "0/1", "CrashLoopBackOff", "12 (3m ago)", "2d"])
    assert w.flush() == (
        "NAME                 READY   STATUS             RESTARTS      AGE\n"
        "nginx                1/1     Running            0             5s\n"
        "a-much-longer-name   0/1     CrashLoopBackOff   12 (3m ago)   2d\n")


def test_tabwriter_minimum_width_and_blocks() -> None:
    w = output.TabWriter()
    w.write("A\tB\n")  # short cells still get the minimum width 6
    assert w.flush() == "A     B\n"
    # describe-style: padding 2, no minimum; a line without a tab ends the column block.
    w = output.TabWriter(minwidth=0, padding=2)
    w.write("Name:\tweb\nNamespace:\tdefault\nIPs:\n  IP:\t10.0.0.1\nControlled By:\tRS/x\n")
    assert w.flush() == ("Name:       web\n"
                         "Namespace:  default\n"
                         "IPs:\n"
                         "  IP:           10.0.0.1\n"
                         "Controlled By:  RS/x\n")


def test_tabwriter_remembers_widths_for_watch() -> None:
    w = output.TabWriter(remember_widths=True)
    w.row(["NAME", "AGE"])
    w.row(["a-long-name", "1s"])
    first = w.flush()
    w.row(["b", "2s"])  # a later row keeps the first rows' column width
    assert first.splitlines()[1] == "a-long-name   1s"
    assert w.flush() == "b             2s\n"


TABLE = {
    "kind": "Table", "apiVersion": "meta.k8s.io/v1",
    "columnDefinitions": [
        {"name": "Name", "type": "string", "format": "name", "priority": 0},
        {"name": "Ready", "type": "string", "format": "", "priority": 0},
        {"name": "Age", "type": "string", "format": "", "priority": 0},
        {"name": "Node", "type": "string", "format": "", "priority": 1},
    ],
    "rows": [
        {"cells": ["web-1", "1/1", "5m", "pi1"],
         "object": {"metadata": {"name": "web-1", "namespace": "default"}}},
        {"cells": ["db", "0/1", "10s", None],
         "object": {"metadata": {"name": "db", "namespace": "data"}}},
    ],
}


def test_table_printer_hides_wide_columns_unless_asked() -> None:
    assert output.TablePrinter().render(TABLE) == ("NAME    READY   AGE\n"
                                                   "web-1   1/1     5m\n"
                                                   "db      0/1     10s\n")
    assert output.TablePrinter(wide=True).render(TABLE) == ("NAME    READY   AGE   NODE\n"
                                                            "web-1   1/1     5m    pi1\n"
                                                            "db      0/1     10s   \n")


def test_table_printer_namespace_column_and_kind_prefix() -> None:
    printer = output.TablePrinter(with_namespace=True, kind_prefix="pod/")
    assert printer.render(TABLE) == ("NAMESPACE   NAME        READY   AGE\n"
                                     "default     pod/web-1   1/1     5m\n"
                                     "data        pod/db      0/1     10s\n")
    # Watch events bring one-row tables: no second header, same alignment.
    event = dict(TABLE, rows=[TABLE["rows"][1]])
    assert printer.render(event) == "data        pod/db      0/1     10s\n"


def test_table_printer_no_headers() -> None:
    assert output.TablePrinter(no_headers=True).render(TABLE).splitlines()[0].startswith("web-1")


@pytest.mark.parametrize(("cell", "text"), [
    (None, ""), (True, "true"), (3, "3"), (3.0, "3"), (2.5, "2.5"),
    ("line one\nline two", "line one..."), ("a\rb", "a..."),
])
def test_cell_text(cell: Any, text: str) -> None:
    assert output.cell_text(cell) == text


def test_object_names_and_formats() -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    assert output.object_name(deploy) == "deployment.apps/web"
    assert output.object_name({"metadata": {"name": "p"}}, "Pod", "v1") == "pod/p"
    assert output.to_yaml({"data": {"script": "echo 1\necho 2\n"}}) == (
        "data:\n  script: |\n    echo 1\n    echo 2\n")
    assert output.to_json({"a": 1}) == '{\n    "a": 1\n}\n'


def test_manifests_parse_yaml_json_and_lists(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\ndata: {when: 2024-01-01}\n"
        "---\n---\n"
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n")
    (tmp_path / "b.json").write_text('{"apiVersion": "v1", "kind": "Secret", '
                                     '"metadata": {"name": "s"}}')
    (tmp_path / "notes.txt").write_text("ignored")
    loaded = manifests.load([str(tmp_path)])
    assert [m.obj["metadata"]["name"] for m in loaded if m.obj] == ["one", "p", "s"]
    assert loaded[0].obj["data"]["when"] == "2024-01-01"  # dates stay strings


@pytest.mark.parametrize(("text", "message"), [
    ("a: b\n  c: d\n", 'error parsing "x.yaml": line 2, column 4'),
    ("kind: Pod\nmetadata: {}\n", "apiVersion not set"),
    ("- 1\n", "must be a mapping"),
    ('{"kind": ', "line 1"),
])
def test_manifest_errors_name_file_and_line(tmp_path: Path, monkeypatch: Any, text: str,
                                           message: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("x.yaml").write_text(text)
    [m] = manifests.read("x.yaml")
    assert m.obj is None and message in m.error


def test_missing_manifest_path() -> None:
    with pytest.raises(manifests.ManifestError, match='the path "nope.yaml" does not exist'):
        manifests.load(["nope.yaml"])


# --- commands against an in-memory API server over TLS --------------------------------------

NOW = datetime.now(UTC)
REGISTRY = Registry()


def status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "reason": reason, "message": message, "code": code}, status=code)


class FakeAPI:
    """Just enough of the API for the CLI: discovery, get/list (as Table too), server-side
    apply, delete, scale and a token check."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.rv = 100
        self.requests: list[tuple[str, str, str]] = []
        # What the next watch streams (then it ends, as a server going away would).
        self.watch_events: list[tuple[str, dict[str, Any]]] = []

    def add(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", NOW.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self.objects[(plural, meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def app(self) -> web.Application:
        async def version(request: web.Request) -> web.Response:
            return web.json_response({"major": "1", "minor": "30",
                                      "gitVersion": "v1.30.0-bramble"})

        async def core(request: web.Request) -> web.Response:
            return web.json_response(self.discovery("", "v1"))

        async def groups(request: web.Request) -> web.Response:
            return web.json_response({"kind": "APIGroupList", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for g, v in GROUPS]})

        async def group(request: web.Request) -> web.Response:
            return web.json_response(self.discovery(request.match_info["group"],
                                                    request.match_info["version"]))

        app = web.Application(middlewares=[self.auth])
        app.router.add_get("/version", version)
        app.router.add_get("/api/v1", core)
        app.router.add_get("/apis", groups)
        app.router.add_get("/apis/{group}/{version}", group)
        app.router.add_route("*", "/{prefix:apis?}/{rest:.*}", self.resource)
        return app

    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs,
                              request.headers.get("Content-Type", "")))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        return await handler(request)

    def discovery(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for r in REGISTRY.in_group(group, version):
            resources.append({"name": r.plural, "singularName": r.singular, "kind": r.kind,
                              "namespaced": r.namespaced, "verbs": list(r.verbs),
                              "shortNames": list(r.short_names),
                              "categories": list(r.categories)})
            resources += [{"name": f"{r.plural}/{s}", "kind": r.kind, "namespaced": r.namespaced,
                           "verbs": ["get", "patch"]} for s in r.subresources]
        return {"kind": "APIResourceList", "groupVersion": r.api_version if resources else "",
                "resources": resources}

    async def resource(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        group, version, rest = ("", parts[1], parts[2:]) if parts[0] == "api" else (
            parts[1], parts[2], parts[3:])
        ns = ""
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], (rest[1:2] or [""])[0], (rest[2:3] or [""])[0]
        rtype = REGISTRY.by_path(group, version, plural)
        if rtype is None:
            return status(404, "NotFound", "the server could not find the requested resource")
        key = (plural, ns, name)
        table = "as=Table" in request.headers.get("Accept", "")
        if request.method == "GET" and request.query.get("watch") == "true":
            return await self.watch(request, rtype, table)
        if request.method == "GET" and not name:
            items = [o for (p, n, _), o in sorted(self.objects.items())
                     if p == plural and (not ns or n == ns)]
            selector = request.query.get("fieldSelector", "")
            if selector.startswith("involvedObject.uid="):
                uid = selector.partition("=")[2]
                items = [o for o in items if o.get("involvedObject", {}).get("uid") == uid]
            return web.json_response(self.render(rtype, items, table, list_=True))
        obj = self.objects.get(key)
        if request.method == "GET":
            if obj is None:
                return status(404, "NotFound", f'{rtype.qualified} "{name}" not found')
            return web.json_response(self.render(rtype, [obj], table, list_=False))
        if request.method == "DELETE":
            if obj is None:
                return status(404, "NotFound", f'{rtype.qualified} "{name}" not found')
            del self.objects[key]
            return web.json_response(obj)
        if request.method == "PATCH" and sub == "scale":
            if obj is None:
                return status(404, "NotFound", f'{rtype.qualified} "{name}" not found')
            obj["spec"]["replicas"] = (await request.json())["spec"]["replicas"]
            return web.json_response({"kind": "Scale", "spec": obj["spec"]})
        if request.method == "PATCH":
            assert request.content_type == "application/apply-patch+yaml"
            assert request.query["fieldManager"] == "bramble"
            body = await request.json()
            if body.get("spec", {}).get("replicas", 0) < 0:
                return status(422, "Invalid", f'{rtype.kind}.{group} "{name}" is invalid: '
                              "spec.replicas: Invalid value: -1: must be greater than or "
                              "equal to 0")
            if obj is not None:
                merged = copy.deepcopy(obj)
                merged.update({k: v for k, v in body.items() if k != "metadata"})
                if merged == obj:
                    return web.json_response(obj)
                merged["metadata"] = dict(obj["metadata"])
                return web.json_response(self.add(plural, merged))
            body["metadata"]["namespace"] = ns
            return web.json_response(self.add(plural, body), status=201)
        return status(405, "MethodNotAllowed", "not here")

    async def watch(self, request: web.Request, rtype: Any, table: bool) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for type_, obj in self.watch_events:
            body = obj if type_ == "ERROR" else self.render(rtype, [obj], table, list_=False)
            await resp.write(json.dumps({"type": type_, "object": body}).encode() + b"\n")
        await resp.write_eof()
        return resp

    def render(self, rtype: Any, items: list[dict[str, Any]], table: bool, list_: bool) -> Any:
        if table:
            return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                    "metadata": {"resourceVersion": str(self.rv)},
                    "columnDefinitions": tables.column_definitions(rtype.key),
                    "rows": [{"cells": tables.cells(rtype.key, o, datetime.now(UTC)),
                              "object": {"kind": "PartialObjectMetadata",
                                         "apiVersion": "meta.k8s.io/v1",
                                         "metadata": o["metadata"]}} for o in items]}
        if list_:
            return {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(self.rv)},
                    "items": [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                              for o in items]}
        return items[0]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[FakeAPI, Path]]:
    creds = pki.ensure_credentials(tmp_path / "master", ["localhost"], [], 0)
    api = FakeAPI(creds.admin_token)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(api.app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_ssl_context(creds))
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, name="fake-api", daemon=True)
    thread.start()
    config = tmp_path / "kubeconfig"
    kubeconfig.write(config, kubeconfig.build(f"https://127.0.0.1:{port}", creds.ca_pem,
                                              creds.admin_token))
    try:
        yield api, config
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def bramble(config: Path, *args: str) -> int:
    return cli.run([*args, "--kubeconfig", str(config)])


def pod(name: str, ns: str = "default", **status: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
            "spec": {"nodeName": "pi1", "containers": [{"name": "web", "image": "nginx"}]},
            "status": {"phase": "Running", "podIP": "10.42.0.5",
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0,
                                              "state": {"running": {}}}], **status}}


def test_get_prints_the_servers_table(server: tuple[FakeAPI, Path], capsys: Any) -> None:
    api, config = server
    api.add("pods", pod("web-1"))
    api.add("pods", pod("db", "data"))
    assert bramble(config, "get", "pods") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert out.splitlines()[1].split()[:4] == ["web-1", "1/1", "Running", "0"]
    assert len(out.splitlines()) == 2
    assert ("GET", "/api/v1/namespaces/default/pods", "") in api.requests

    assert bramble(config, "get", "po", "-A", "-o", "wide") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"] and "NODE" in lines[0]
    assert lines[1].split()[:2] == ["data", "db"] and "10.42.0.5" in lines[1]

    assert bramble(config, "get", "pod/web-1", "-o", "name") == 0
    assert capsys.readouterr().out == "pod/web-1\n"


def test_get_yaml_json_and_several_types(server: tuple[FakeAPI, Path], capsys: Any) -> None:
    api, config = server
    api.add("pods", pod("web-1"))
    api.add("services", {"metadata": {"name": "web", "namespace": "default"},
                         "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                                  "ports": [{"port": 80, "protocol": "TCP"}]}})
    assert bramble(config, "get", "pod", "web-1", "-o", "yaml") == 0
    text = capsys.readouterr().out
    assert text.startswith("apiVersion: v1\nkind: Pod\n")
    assert bramble(config, "get", "pods", "-o", "json") == 0
    assert '"kind": "List"' in capsys.readouterr().out
    assert bramble(config, "get", "pods,svc") == 0
    out = capsys.readouterr().out
    assert "pod/web-1" in out and "service/web" in out and "80/TCP" in out
    assert bramble(config, "get", "all") == 0
    assert "service/web" in capsys.readouterr().out


def test_get_nothing_found_goes_to_stderr(server: tuple[FakeAPI, Path], capsys: Any) -> None:
    _, config = server
    assert bramble(config, "get", "deployments") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "No resources found in default namespace.\n"
    assert bramble(config, "get", "nodes") == 0
    assert capsys.readouterr().err == "No resources found\n"


@pytest.mark.parametrize(("args", "message"), [
    (("get", "pods", "nope"), 'Error from server (NotFound): pods "nope" not found'),
    (("get", "frobs"), 'error: the server doesn\'t have a resource type "frobs"'),
    (("get", "pods", "-o", "xml"), 'unable to match a printer suitable for the output format'),
    (("scale", "pod/web-1", "--replicas", "2"), "pods cannot be scaled"),
    (("apply", "-f", "missing.yaml"), 'error: the path "missing.yaml" does not exist'),
])
def test_errors_are_one_line_without_traceback(server: tuple[FakeAPI, Path], capsys: Any,
                                               args: tuple[str, ...], message: str) -> None:
    _, config = server
    assert bramble(config, *args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_wrong_token_shows_the_servers_message(server: tuple[FakeAPI, Path], tmp_path: Path,
                                               capsys: Any) -> None:
    _, config = server
    cfg = kubeconfig.load(config)
    bad = tmp_path / "bad"
    assert cfg.ca_data is not None
    kubeconfig.write(bad, kubeconfig.build(cfg.server, cfg.ca_data, "wrong"))
    assert bramble(bad, "get", "pods") == 1
    assert capsys.readouterr().err == "Error from server (Unauthorized): Unauthorized\n"


def test_unreachable_master(tmp_path: Path, capsys: Any) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "config"
    kubeconfig.write(config, kubeconfig.build(f"https://127.0.0.1:{port}", b"", "t"))
    assert bramble(config, "get", "pods") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the bramble master at https://127.0.0.1:{port}: "
                          "connection refused")
    assert "bramble master` running?" in err


def test_untrusted_certificate(server: tuple[FakeAPI, Path], tmp_path: Path, capsys: Any) -> None:
    _, config = server
    other = pki.ensure_credentials(tmp_path / "other", ["localhost"], [], 0)
    cfg = kubeconfig.load(config)
    bad = tmp_path / "bad"
    kubeconfig.write(bad, kubeconfig.build(cfg.server, other.ca_pem, cfg.token or ""))
    assert bramble(bad, "get", "pods") == 1
    assert "certificate is not trusted" in capsys.readouterr().err


def test_apply_reports_created_unchanged_configured(server: tuple[FakeAPI, Path],
                                                   tmp_path: Path, capsys: Any) -> None:
    api, config = server
    manifest = tmp_path / "web.yaml"
    doc = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
           "  replicas: {n}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n"
           "data:\n  a: '1'\n")
    manifest.write_text(doc.format(n=2))
    assert bramble(config, "apply", "-f", str(manifest)) == 0
    assert capsys.readouterr().out == "deployment.apps/web created\nconfigmap/cfg created\n"
    assert bramble(config, "apply", "-f", str(manifest)) == 0
    assert capsys.readouterr().out == "deployment.apps/web unchanged\nconfigmap/cfg unchanged\n"
    manifest.write_text(doc.format(n=3))
    assert bramble(config, "apply", "-f", str(manifest)) == 0
    assert capsys.readouterr().out == ("deployment.apps/web configured\n"
                                       "configmap/cfg unchanged\n")
    assert ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=bramble"
            "&fieldValidation=Strict&force=false", "application/apply-patch+yaml") in api.requests


def test_apply_continues_past_failures(server: tuple[FakeAPI, Path], tmp_path: Path,
                                       capsys: Any) -> None:
    _, config = server
    (tmp_path / "a.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec: {replicas: -1}\n"
        "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\n")
    (tmp_path / "b.yaml").write_text("a: b\n  c: d\n")
    assert bramble(config, "apply", "-f", str(tmp_path)) == 1
    captured = capsys.readouterr()
    assert captured.out == "configmap/good created\n"
    assert "Error from server (Invalid): error when applying" in captured.err
    assert "spec.replicas: Invalid value: -1" in captured.err
    assert 'no matches for kind "Widget" in version "example.com/v1"' in captured.err
    assert "b.yaml\": line 2, column 4" in captured.err
    assert "Traceback" not in captured.err


def test_describe_pod_with_events(server: tuple[FakeAPI, Path], capsys: Any) -> None:
    api, config = server
    p = api.add("pods", pod("web-1"))
    api.add("events", {"metadata": {"name": "web-1.1", "namespace": "default"},
                       "involvedObject": {"kind": "Pod", "name": "web-1",
                                          "uid": p["metadata"]["uid"]},
                       "type": "Normal", "reason": "Scheduled", "source": {"component":
                                                                           "bramble-scheduler"},
                       "message": "Successfully assigned default/web-1 to pi1",
                       "firstTimestamp": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "lastTimestamp": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "count": 1})
    assert bramble(config, "describe", "pod", "web-1") == 0
    out = capsys.readouterr().out
    assert out.startswith("Name:             web-1\nNamespace:        default\n")
    assert "Labels:           app=web\n" in out
    assert "Node:             pi1/" in out and "Containers:\n  web:\n" in out
    assert "Events:\n  Type    Reason     Age" in out
    assert "Scheduled  " in out and "Successfully assigned default/web-1 to pi1" in out


def test_delete_and_scale(server: tuple[FakeAPI, Path], capsys: Any) -> None:
    api, config = server
    api.add("deployments", {"metadata": {"name": "web", "namespace": "default"},
                            "spec": {"replicas": 1}})
    assert bramble(config, "scale", "deploy/web", "--replicas", "4") == 0
    assert capsys.readouterr().out == "deployment.apps/web scaled\n"
    assert api.objects[("deployments", "default", "web")]["spec"]["replicas"] == 4
    assert bramble(config, "delete", "deployment", "web", "--cascade", "foreground") == 0
    assert capsys.readouterr().out == 'deployment.apps "web" deleted\n'
    assert bramble(config, "delete", "deployment", "web") == 1
    assert 'deployments.apps "web" not found' in capsys.readouterr().err
    assert bramble(config, "delete", "deployment", "web", "--ignore-not-found") == 0


def test_version(server: tuple[FakeAPI, Path], capsys: Any) -> None:
    _, config = server
    assert bramble(config, "version") == 0
    assert capsys.readouterr().out == "Client Version: v0.1.0\nServer Version: v1.30.0-bramble\n"


def test_main_exits_with_the_code(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["version", "--client"])
    assert exit_.value.code == 0
    with pytest.raises(SystemExit) as exit_:
        cli.main(["get"])  # usage errors exit 1, as kubectl's do
    assert exit_.value.code == 1


def test_version_stays_light() -> None:
    code = ("import sys; from bramble.cli.main import run; run(['version', '--client']); "
            "heavy = [m for m in sys.modules if m.startswith(('bramble.master', 'cryptography', "
            "'aiohttp', 'yaml'))]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines()[-1] == "[]"


def test_served_resources_resolve(server: tuple[FakeAPI, Path]) -> None:
    # Every type the server serves is reachable by its plural, singular and short names.
    from bramble.cli.discovery import Discovery
    from bramble.client import Client

    _, config = server

    async def fetch() -> Discovery:
        async with Client(kubeconfig.load(config)) as api:
            return await Discovery.fetch(api)

    discovery = asyncio.run(fetch())
    for r in RESOURCES:
        for name in (r.plural, r.singular, *r.short_names):
            assert discovery.resolve(name)[0].kind == r.kind, name
    assert discovery.resolve("deployments.apps")[0].group == "apps"


def test_get_watch_prints_changes_aligned(server: tuple[FakeAPI, Path], capsys: Any) -> None:
    api, config = server
    api.add("pods", pod("web-1"))
    api.watch_events = [("MODIFIED", pod("web-1", phase="Succeeded")),
                        ("ADDED", pod("a-much-longer-pod-name"))]
    assert bramble(config, "get", "pods", "-w") == 0  # the server ended the stream
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("NAME ")
    assert lines[2].split()[:3] == ["web-1", "1/1", "Succeeded"]
    assert lines[3].startswith("a-much-longer-pod-name   1/1")
    assert any("resourceVersion=" in path and "watch=true" in path for _, path, _ in api.requests)


def test_get_watch_expired(server: tuple[FakeAPI, Path], capsys: Any) -> None:
    api, config = server
    api.watch_events = [("ERROR", {"kind": "Status", "status": "Failure", "code": 410,
                                   "reason": "Expired", "message": "too old resource version"})]
    assert bramble(config, "get", "pods", "-w", "-o", "name") == 1
    assert capsys.readouterr().err.endswith(
        "Error from server (Expired): too old resource version\n")


def test_describe_generic_and_secret() -> None:
    from bramble.cli.describe import describe, smart_label

    assert [smart_label(k) for k in ("apiVersion", "podIP", "hostIPs", "containerID",
                                     "nodeName")] == [
        "API Version", "Pod IP", "Host IPs", "Container ID", "Node Name"]
    text = describe("x.example.com/v1/Widget", {
        "apiVersion": "x.example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"sizeLimit": 3, "enabled": True, "ports": [{"containerPort": 80}],
                 "tags": ["a", "b"]}}, events=[], now=datetime.now(UTC))
    assert text.splitlines() == [
        "Name:         w", "Namespace:    default", "Labels:       <none>",
        "Annotations:  <none>", "API Version:  x.example.com/v1", "Kind:         Widget",
        "Spec:", "  Size Limit:  3", "  Enabled:     true", "  Ports:",
        "    Container Port:  80", "  Tags:", "    a", "    b", "Events:  <none>"]
    secret = describe("v1/Secret", {"metadata": {"name": "s", "namespace": "default"},
                                    "type": "Opaque", "data": {"password": "aHVudGVyMg=="}},
                      now=datetime.now(UTC))
    assert "password:  7 bytes" in secret and "aHVudGVyMg" not in secret
