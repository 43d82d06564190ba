"""The `bramble` console script as a user runs it, against a real master process.

Every test names its objects with a fresh suffix (the master is shared by the module), and
every run checks that bramble printed no Python traceback: a person's mistake gets one
readable line and exit code 1, as kubectl does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import MasterHandle, free_port

# The venv's console script, i.e. what `pip install bramble` puts on the PATH.
BRAMBLE = str(Path(sys.executable).parent / "bramble")

NO_RESOURCES = "No resources found in default namespace.\n"


@pytest.fixture(scope="module")
def bramble(master_proc: MasterHandle):
    def run(*args: str, stdin: str | None = None, check: bool = True,
            kubeconfig: Path | None = master_proc.kubeconfig,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        flags = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
        # A KUBECONFIG from the developer's shell must not leak into the tests.
        base = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        proc = subprocess.run([BRAMBLE, *args, *flags], input=stdin, capture_output=True,
                              text=True, timeout=60, env={**base, **(env or {})})
        assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
        if check and proc.returncode != 0:
            raise AssertionError(f"bramble {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:6]


# --- manifests ------------------------------------------------------------------------------

def configmap(name: str, data: dict[str, str] | None = None,
              labels: dict[str, str] | None = None, namespace: str | None = None) -> dict:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


def deployment(name: str, replicas: int = 2, image: str = "nginx:1.25") -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "web", "image": image,
                      "ports": [{"containerPort": 80, "name": "http"}]}]}}}}


def service(name: str, app: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": app},
                     "ports": [{"port": 80, "targetPort": "http", "name": "http"}]}}


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}


def as_list(*items: dict) -> dict:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def documents(*objs: dict) -> str:
    return yaml.safe_dump_all(objs, sort_keys=False)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def header(out: str) -> list[str]:
    return out.splitlines()[0].split()


def row(out: str, name: str) -> list[str]:
    for line in out.splitlines()[1:]:
        cells = line.split()
        if name in cells:
            return cells
    raise AssertionError(f"no row for {name} in:\n{out}")


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single readable line a failed command must print, and nothing on stdout."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    err = lines(proc.stderr)
    assert len(err) == 1, proc.stderr
    return err[0]


# --- apply ----------------------------------------------------------------------------------

def test_apply_file_prints_created_then_unchanged_then_configured(bramble, tmp_path: Path,
                                                                  uid: str) -> None:
    manifest = tmp_path / "app.yaml"
    objs = [configmap(f"cfg-{uid}", {"greeting": "hello"}), deployment(f"web-{uid}"),
            service(f"web-{uid}", f"web-{uid}"),
            as_list(configmap(f"l1-{uid}"), configmap(f"l2-{uid}", {"a": "b"}))]
    manifest.write_text(documents(*objs))
    created = [f"configmap/cfg-{uid} created", f"deployment.apps/web-{uid} created",
               f"service/web-{uid} created", f"configmap/l1-{uid} created",
               f"configmap/l2-{uid} created"]
    proc = bramble("apply", "-f", str(manifest))
    assert lines(proc.stdout) == created and proc.stderr == ""
    again = bramble("apply", "-f", str(manifest)).stdout
    assert lines(again) == [line.replace("created", "unchanged") for line in created]
    objs[0]["data"]["greeting"] = "hi"
    objs[1]["spec"]["replicas"] = 3
    manifest.write_text(documents(*objs))
    out = lines(bramble("apply", "-f", str(manifest)).stdout)
    assert out == [f"configmap/cfg-{uid} configured", f"deployment.apps/web-{uid} configured",
                   f"service/web-{uid} unchanged", f"configmap/l1-{uid} unchanged",
                   f"configmap/l2-{uid} unchanged"]
    cm = json.loads(bramble("get", "cm", f"cfg-{uid}", "-o", "json").stdout)
    assert cm["data"] == {"greeting": "hi"}


def test_apply_of_an_older_served_version(bramble, tmp_path: Path, uid: str) -> None:
    # autoscaling/v1 is served besides the preferred v2: a manifest may name either, while
    # "hpa" and "all" still name the type once.
    hpa = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": f"hpa-{uid}"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "name": f"web-{uid}"},
                    "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}}
    manifest = tmp_path / "hpa.yaml"
    manifest.write_text(documents(hpa))
    proc = bramble("apply", "-f", str(manifest))
    assert lines(proc.stdout) == [f"horizontalpodautoscaler.autoscaling/hpa-{uid} created"]
    assert lines(bramble("apply", "-f", str(manifest)).stdout) == [
        f"horizontalpodautoscaler.autoscaling/hpa-{uid} unchanged"]
    got = json.loads(bramble("get", "hpa", f"hpa-{uid}", "-o", "json").stdout)
    assert got["apiVersion"] == "autoscaling/v2"
    assert got["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    names = bramble("get", "all", "-o", "name").stdout.split()
    assert names.count(f"horizontalpodautoscaler.autoscaling/hpa-{uid}") == 1
    bramble("delete", "-f", str(manifest))


def test_apply_directory_and_stdin(bramble, tmp_path: Path, uid: str) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    # Files in name order, manifests only: the README is not a manifest.
    (folder / "b.yml").write_text(documents(configmap(f"b-{uid}"), configmap(f"c-{uid}")))
    (folder / "a.json").write_text(json.dumps(configmap(f"a-{uid}")))
    (folder / "README.txt").write_text("not a manifest\n")
    out = bramble("apply", "-f", str(folder)).stdout
    assert lines(out) == [f"configmap/a-{uid} created", f"configmap/b-{uid} created",
                          f"configmap/c-{uid} created"]

    stdin = documents(as_list(configmap(f"s1-{uid}"), deployment(f"s2-{uid}")),
                      configmap(f"s3-{uid}"))
    out = bramble("apply", "-f", "-", stdin=stdin).stdout
    assert lines(out) == [f"configmap/s1-{uid} created", f"deployment.apps/s2-{uid} created",
                          f"configmap/s3-{uid} created"]
    out = bramble("apply", "-f", "-", stdin=stdin).stdout
    assert all(line.endswith(" unchanged") for line in lines(out)) and len(lines(out)) == 3
    names = bramble("get", "cm", "-o", "name").stdout.split()
    assert {f"configmap/{n}-{uid}" for n in ("a", "b", "c", "s1", "s3")} <= set(names)


def test_apply_refuses_a_typo_and_applies_the_rest(bramble, tmp_path: Path, uid: str) -> None:
    typo = configmap(f"typo-{uid}")
    typo["dataa"] = typo.pop("data")
    nested = deployment(f"nested-{uid}")
    container = nested["spec"]["template"]["spec"]["containers"][0]
    container["imagee"] = container.pop("image")
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(documents(configmap(f"ok1-{uid}"), typo, nested, configmap(f"ok2-{uid}")))
    proc = bramble("apply", "-f", str(manifest), check=False)
    assert proc.returncode == 1
    assert lines(proc.stdout) == [f"configmap/ok1-{uid} created", f"configmap/ok2-{uid} created"]
    assert lines(proc.stderr) == [
        f'Error from server (BadRequest): error when applying "{manifest} (document 2)": '
        f'strict decoding error: unknown field "dataa"',
        f'Error from server (BadRequest): error when applying "{manifest} (document 3)": '
        f'strict decoding error: unknown field "spec.template.spec.containers[0].imagee"']
    gone = bramble("get", "cm", f"typo-{uid}", check=False)
    assert gone.returncode == 1 and f'configmaps "typo-{uid}" not found' in gone.stderr


def test_a_yaml_error_spoils_only_its_own_file(bramble, tmp_path: Path, uid: str) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a-broken.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: broken-{uid}
         labels: {{}}
        """))
    (folder / "b-good.yaml").write_text(documents(configmap(f"good-{uid}")))
    proc = bramble("apply", "-f", str(folder), check=False)
    assert proc.returncode == 1
    assert lines(proc.stdout) == [f"configmap/good-{uid} created"]
    assert lines(proc.stderr) == [f'error: error parsing "{folder / "a-broken.yaml"}": '
                                  f"line 5, column 2: did not find expected key"]


# --- get ------------------------------------------------------------------------------------

def test_get_tables_have_kubectl_headers(bramble, uid: str) -> None:
    name = f"tbl-{uid}"
    bramble("apply", "-f", "-", stdin=documents(deployment(name), service(name, name),
                                                configmap(name, {"k": "v"}), pod(name)))
    out = bramble("get", "deployments").stdout
    assert header(out) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    got = row(out, name)
    # UP-TO-DATE: 0 until the deployment controller has made the (never ready) pods, then 2.
    assert got[:2] == [name, "0/2"] and got[2] in ("0", "2") and got[3] == "0"
    out = bramble("get", "services").stdout
    assert header(out) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert row(out, name)[1] == "ClusterIP" and row(out, name)[4] == "80/TCP"
    out = bramble("get", "configmaps").stdout
    assert header(out) == ["NAME", "DATA", "AGE"] and row(out, name)[1] == "1"
    out = bramble("get", "pods").stdout
    assert header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row(out, name)[:4] == [name, "0/1", "Pending", "0"]
    out = bramble("get", "namespaces").stdout
    assert header(out) == ["NAME", "STATUS", "AGE"] and row(out, "default")[1] == "Active"
    wide = bramble("get", "deploy", name, "-o", "wide").stdout
    assert header(wide) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                            "IMAGES", "SELECTOR"]
    assert row(wide, name)[-3:] == ["web", "nginx:1.25", f"app={name}"]
    wide = bramble("get", "po", name, "-o", "wide").stdout
    assert header(wide)[5:7] == ["IP", "NODE"]


def test_get_one_object_in_every_format(bramble, uid: str) -> None:
    name = f"fmt-{uid}"
    bramble("apply", "-f", "-", stdin=documents(deployment(name, replicas=1),
                                                configmap(name, {"k": "v"}),
                                                configmap(f"{name}-2")))
    doc = yaml.safe_load(bramble("get", "deployment", name, "-o", "yaml").stdout)
    assert (doc["apiVersion"], doc["kind"]) == ("apps/v1", "Deployment")
    assert doc["metadata"]["name"] == name and doc["spec"]["replicas"] == 1
    assert "managedFields" not in doc["metadata"]
    cm = json.loads(bramble("get", "configmap", name, "-o", "json").stdout)
    assert cm["kind"] == "ConfigMap" and cm["data"] == {"k": "v"}
    assert bramble("get", "deploy", name, "-o", "name").stdout == f"deployment.apps/{name}\n"
    out = bramble("get", f"deployment/{name}").stdout
    assert header(out)[0] == "NAME" and row(out, name)[0] == name
    out = bramble("get", f"cm/{name}", f"deploy/{name}", "-o", "name").stdout
    assert lines(out) == [f"configmap/{name}", f"deployment.apps/{name}"]
    several = yaml.safe_load(bramble("get", "cm", name, f"{name}-2", "-o", "yaml").stdout)
    assert several["kind"] == "List"
    assert [i["metadata"]["name"] for i in several["items"]] == [name, f"{name}-2"]


@pytest.mark.parametrize(("short", "long", "prefix", "make"), [
    ("deploy", "deployments", "deployment.apps", deployment),
    ("svc", "services", "service", lambda n: service(n, n)),
    ("cm", "configmaps", "configmap", configmap),
    ("po", "pods", "pod", pod),
    ("ns", "namespaces", "namespace",
     lambda n: {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}),
])
def test_short_names(bramble, uid: str, short: str, long: str, prefix: str, make) -> None:
    name = f"short-{uid}"
    bramble("apply", "-f", "-", stdin=documents(make(name)))
    assert bramble("get", short, name, "-o", "name").stdout == f"{prefix}/{name}\n"
    assert bramble("get", f"{short}/{name}", "-o", "name").stdout == f"{prefix}/{name}\n"
    assert bramble("get", long, "-o", "name").stdout.count(f"{prefix}/{name}\n") == 1


def test_label_selectors(bramble, uid: str) -> None:
    bramble("apply", "-f", "-", stdin=documents(
        configmap(f"front-{uid}", labels={"run": uid, "tier": "front"}),
        configmap(f"back-{uid}", labels={"run": uid, "tier": "back"}),
        configmap(f"other-{uid}")))

    def names(selector: str) -> list[str]:
        return bramble("get", "cm", "-l", selector, "-o", "name").stdout.split()

    assert names(f"run={uid}") == [f"configmap/back-{uid}", f"configmap/front-{uid}"]
    assert names(f"run={uid},tier=front") == [f"configmap/front-{uid}"]
    assert names(f"run={uid},tier!=front") == [f"configmap/back-{uid}"]
    out = bramble("get", "cm", "-l", f"run={uid}").stdout
    assert header(out) == ["NAME", "DATA", "AGE"] and len(lines(out)) == 3
    listed = json.loads(bramble("get", "cm", "-l", f"run={uid},tier=back", "-o", "json").stdout)
    assert listed["kind"] == "List" and len(listed["items"]) == 1
    none = bramble("get", "cm", "-l", f"run={uid},tier=nowhere")
    assert none.stdout == "" and none.stderr == NO_RESOURCES


def test_all_namespaces_adds_a_namespace_column(bramble, uid: str) -> None:
    ns = f"team-{uid}"
    bramble("apply", "-f", "-", stdin=documents(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        configmap(f"here-{uid}", labels={"run": uid}),
        configmap(f"there-{uid}", labels={"run": uid}, namespace=ns)))
    out = bramble("get", "cm", "-A", "-l", f"run={uid}").stdout
    assert header(out) == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert row(out, f"here-{uid}")[0] == "default" and row(out, f"there-{uid}")[0] == ns
    out = bramble("get", "cm", "-n", ns).stdout
    assert header(out) == ["NAME", "DATA", "AGE"] and lines(out)[1].split()[0] == f"there-{uid}"
    # Namespaces themselves are not namespaced: no column for them.
    assert header(bramble("get", "ns", "-A").stdout)[0] == "NAME"


def test_get_of_an_empty_type(bramble) -> None:
    proc = bramble("get", "daemonsets")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == NO_RESOURCES


def test_get_of_an_empty_type_as_json_is_an_empty_list(bramble) -> None:
    proc = bramble("get", "daemonsets", "-o", "json")
    assert json.loads(proc.stdout) == {"apiVersion": "v1", "items": [], "kind": "List",
                                       "metadata": {"resourceVersion": ""}}
    assert proc.stderr == ""


# --- describe, scale, delete, version -------------------------------------------------------

def fields(text: str) -> dict[str, str]:
    """Top-level "Key:   value" lines of a description."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z][\w -]*):\s+(.*?)\s*$", line)
        if m:
            out.setdefault(m[1], m[2])
    return out


def test_describe_deployment_service_configmap(bramble, uid: str) -> None:
    name = f"desc-{uid}"
    bramble("apply", "-f", "-", stdin=documents(
        deployment(name), service(name, name), configmap(name, {"motd": "hello there"})))
    out = bramble("describe", "deployment", name).stdout
    f = fields(out)
    assert (f["Name"], f["Namespace"], f["Selector"]) == (name, "default", f"app={name}")
    assert f["Replicas"].startswith("2 desired |") and f["StrategyType"] == "RollingUpdate"
    assert re.search(r"^\s+Image:\s+nginx:1\.25$", out, re.M)
    out = bramble("describe", "svc", name).stdout
    f = fields(out)
    assert (f["Name"], f["Selector"], f["Type"]) == (name, f"app={name}", "ClusterIP")
    assert re.search(r"^Port:\s+http\s+80/TCP$", out, re.M)
    assert re.search(r"^TargetPort:\s+http/TCP$", out, re.M)
    out = bramble("describe", "configmap", name).stdout
    assert fields(out)["Name"] == name
    assert "\nData\n====\nmotd:\n----\nhello there\n" in out
    missing = bramble("describe", "cm", f"nothere-{uid}", check=False)
    assert one_error_line(missing) == (
        f'Error from server (NotFound): configmaps "nothere-{uid}" not found')


def test_scale_then_the_new_count_is_visible(bramble, uid: str) -> None:
    name = f"scaled-{uid}"
    bramble("apply", "-f", "-", stdin=documents(deployment(name, replicas=1)))
    out = bramble("scale", f"deploy/{name}", "--replicas", "3").stdout
    assert out == f"deployment.apps/{name} scaled\n"
    deploy = json.loads(bramble("get", "deploy", name, "-o", "json").stdout)
    assert deploy["spec"]["replicas"] == 3
    assert row(bramble("get", "deploy", name).stdout, name)[1] == "0/3"
    assert fields(bramble("describe", "deploy", name).stdout)["Replicas"].startswith("3 desired")
    bramble("scale", "deployment", name, "--replicas", "0")
    assert yaml.safe_load(bramble("get", "deploy", name, "-o", "yaml").stdout)[
        "spec"]["replicas"] == 0
    missing = bramble("scale", f"deploy/gone-{uid}", "--replicas", "1", check=False)
    assert one_error_line(missing) == (
        f'Error from server (NotFound): deployments.apps "gone-{uid}" not found')


def test_delete_by_name_and_by_file(bramble, tmp_path: Path, uid: str) -> None:
    manifest = tmp_path / "gone.yaml"
    manifest.write_text(documents(configmap(f"d1-{uid}"), deployment(f"d2-{uid}"),
                                  service(f"d3-{uid}", "x")))
    bramble("apply", "-f", str(manifest))
    bramble("apply", "-f", "-", stdin=documents(configmap(f"single-{uid}")))
    assert bramble("delete", "cm", f"single-{uid}").stdout == f'configmap "single-{uid}" deleted\n'
    gone = bramble("get", "cm", f"single-{uid}", check=False)
    assert one_error_line(gone) == f'Error from server (NotFound): configmaps "single-{uid}" not found'
    out = bramble("delete", "-f", str(manifest)).stdout
    assert lines(out) == [f'configmap "d1-{uid}" deleted', f'deployment.apps "d2-{uid}" deleted',
                          f'service "d3-{uid}" deleted']
    again = bramble("delete", "-f", str(manifest), check=False)
    assert again.returncode == 1 and again.stdout == ""
    assert lines(again.stderr)[0] == f'Error from server (NotFound): configmaps "d1-{uid}" not found'
    missing = bramble("delete", "configmap", "x", check=False)
    assert one_error_line(missing) == 'Error from server (NotFound): configmaps "x" not found'
    quiet = bramble("delete", "configmap", "x", "--ignore-not-found")
    assert quiet.stdout == quiet.stderr == ""


def test_version_with_kubeconfig_from_the_environment(bramble, master_proc: MasterHandle) -> None:
    proc = bramble("version", kubeconfig=None, env={"KUBECONFIG": str(master_proc.kubeconfig)})
    client, server = lines(proc.stdout)
    assert re.fullmatch(r"Client Version: v\d+\.\d+\.\d+\S*", client)
    assert re.fullmatch(r"Server Version: v1\.\d+\.\d+\S*", server)
    assert bramble("version", "--client").stdout == client + "\n"


# --- mistakes -------------------------------------------------------------------------------

def test_unknown_resource_type(bramble) -> None:
    proc = bramble("get", "foos", check=False)
    assert one_error_line(proc) == 'error: the server doesn\'t have a resource type "foos"'


def test_missing_manifest_file(bramble, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    proc = bramble("apply", "-f", str(missing), check=False)
    assert one_error_line(proc) == f'error: the path "{missing}" does not exist'


def test_yaml_syntax_error_names_the_line(bramble, tmp_path: Path) -> None:
    manifest = tmp_path / "broken.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\ndata: {}\n")
    proc = bramble("apply", "-f", str(manifest), check=False)
    message = one_error_line(proc)
    assert message.startswith(f'error: error parsing "{manifest}": line ')
    assert re.search(r"line [45], column \d+: ", message), message


def test_unreachable_master(bramble, master_proc: MasterHandle, tmp_path: Path) -> None:
    config = yaml.safe_load(master_proc.kubeconfig.read_text())
    closed = f"https://127.0.0.1:{free_port()}"
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = closed
    copy = tmp_path / "closed.kubeconfig"
    copy.write_text(yaml.safe_dump(config))
    proc = bramble("get", "pods", kubeconfig=copy, check=False)
    message = one_error_line(proc)
    assert message.startswith(f"error: cannot reach the bramble master at {closed}"), message


def test_missing_kubeconfig(bramble, tmp_path: Path) -> None:
    proc = bramble("get", "pods", kubeconfig=tmp_path / "absent", check=False)
    assert one_error_line(proc).startswith("error: ")


@pytest.mark.parametrize("args", [
    ["get"],
    ["get", "cm/"],
    ["get", "cm", "-o", "custom-columns=NAME:.metadata.name"],
    ["get", "cm", "-l", "(("],
    ["get", "pods", "--field-selector", "nonsense"],
    ["get", "deployments.v9.apps"],
    ["get", "cm", "--context", "nope"],
], ids=lambda a: " ".join(a))
def test_get_mistakes_never_print_a_traceback(bramble, args: list[str]) -> None:
    proc = bramble(*args, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    # Usage mistakes add argparse's usage text; the reason is still one "error:" line.
    assert re.search(r"^(error: |Error from server \(BadRequest\): )", proc.stderr, re.M), \
        proc.stderr


@pytest.mark.parametrize("text", [
    "apiVersion: v1\nkind: ConfigMap\nmetadata: just-a-name\n",
    "apiVersion: v1\nkind: List\nitems: 3\n",
], ids=["metadata-not-a-mapping", "list-items-not-a-list"])
def test_malformed_manifest_is_a_readable_error(bramble, text: str) -> None:
    proc = bramble("apply", "-f", "-", stdin=text, check=False)
    assert one_error_line(proc).startswith('error: error validating "STDIN"')
