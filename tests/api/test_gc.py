"""The garbage collector against a real master: background, foreground and orphan deletion
of owners with dependents made by hand (ConfigMaps and pods with ownerReferences, so no
workload controller takes part), kubectl's --cascade, Jobs' default, and namespaces."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bramble.client import Client
from bramble.kube.errors import NotFound
from tests.conftest import MasterHandle, eventually
from tests.e2e.test_kubectl import KUBECTL

Obj = dict[str, Any]


@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c



def cms(ns: str = "default") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def pods(ns: str = "default") -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def ref(owner: Obj, *, block: bool | None = None) -> Obj:
    r = {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
         "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
    if block is not None:
        r["blockOwnerDeletion"] = block
    return r


def configmap(name: str, *owners: Obj) -> Obj:
    m: Obj = {"name": name}
    if owners:
        m["ownerReferences"] = list(owners)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m, "data": {"k": name}}


def pod(name: str, *owners: Obj, node: str | None = None) -> Obj:
    m: Obj = {"name": name}
    if owners:
        m["ownerReferences"] = list(owners)
    spec: Obj = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": spec}


async def get(client: Client, path: str) -> Obj | None:
    try:
        return await client.request("GET", path)
    except NotFound:
        return None


async def is_gone(client: Client, path: str) -> bool:
    return await get(client, path) is None


# -- background ---------------------------------------------------------------------------

async def test_background_deletes_dependents_and_keeps_shared_ones(client: Client) -> None:
    owner = await client.request("POST", cms(), json=configmap("owner"))
    other = await client.request("POST", cms(), json=configmap("other"))
    await client.request("POST", cms(), json=configmap("dep", ref(owner)))
    await client.request("POST", pods(), json=pod("dep-pod", ref(owner, block=True)))
    await client.request("POST", cms(), json=configmap("shared", ref(owner), ref(other)))
    await client.request("DELETE", f"{cms()}/owner",
                         json={"propagationPolicy": "Background"})
    await eventually(lambda: is_gone(client, f"{cms()}/dep"))
    await eventually(lambda: is_gone(client, f"{pods()}/dep-pod"))

    async def shared_refs() -> Any:
        obj = await get(client, f"{cms()}/shared")
        refs = obj["metadata"].get("ownerReferences")
        return refs if refs and len(refs) == 1 else None

    # An object with an owner left stays; the reference to the gone owner is removed.
    assert [r["name"] for r in await eventually(shared_refs)] == ["other"]


async def test_dangling_references_are_verified_by_uid(client: Client) -> None:
    owner = await client.request("POST", cms(), json=configmap("owner"))
    # A reference to an object that never existed, and one to the right name with a wrong
    # uid (the owner was deleted and re-created): both owners are absent.
    ghost = {**ref(owner), "name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"}
    stale = {**ref(owner), "uid": "00000000-0000-0000-0000-000000000002"}
    await client.request("POST", cms(), json=configmap("orphan-a", ghost))
    await client.request("POST", cms(), json=configmap("orphan-b", stale))
    # A reference naming the wrong kind does not find its owner either.
    wrong_kind = {**ref(owner), "kind": "Secret"}
    await client.request("POST", cms(), json=configmap("wrong-kind", wrong_kind))
    # A kind the API does not serve cannot be resolved: the object is kept.
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w",
               "uid": "00000000-0000-0000-0000-000000000003"}
    await client.request("POST", cms(), json=configmap("unknown-kind", unknown))
    await client.request("POST", cms(), json=configmap("owned", ref(owner)))
    for name in ("orphan-a", "orphan-b", "wrong-kind"):
        await eventually(lambda n=name: is_gone(client, f"{cms()}/{n}"))
    assert await get(client, f"{cms()}/unknown-kind") is not None
    assert await get(client, f"{cms()}/owned") is not None


async def test_an_owner_in_another_namespace_does_not_count(client: Client) -> None:
    await client.request("POST", "/api/v1/namespaces", json={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}})
    owner = await client.request("POST", cms(), json=configmap("owner"))
    await client.request("POST", cms("elsewhere"), json=configmap("cross", ref(owner)))
    await eventually(lambda: is_gone(client, f"{cms('elsewhere')}/cross"))

    async def warning() -> Any:
        body = await client.request("GET", "/api/v1/namespaces/elsewhere/events", params={
            "fieldSelector": "reason=OwnerRefInvalidNamespace"})
        return body["items"]

    [event] = await eventually(warning)
    assert event["type"] == "Warning" and event["involvedObject"]["name"] == "cross"
    assert event["message"] == (
        f"ownerRef [v1/ConfigMap, namespace: elsewhere, name: owner, uid: "
        f"{owner['metadata']['uid']}] does not exist in namespace \"elsewhere\"")
    assert await get(client, f"{cms()}/owner") is not None  # the real owner is untouched


# -- foreground ---------------------------------------------------------------------------

async def test_foreground_waits_for_blocking_dependents(client: Client) -> None:
    owner = await client.request("POST", cms(), json=configmap("owner"))
    # A pod on a node stays (terminating) until its node agent confirms: it blocks.
    await client.request("POST", pods(), json=pod("blocker", ref(owner, block=True),
                                                   node="pi-gc"))
    child = await client.request("POST", cms(), json=configmap("child", ref(owner, block=True)))
    # A grandchild: the child is deleted in foreground too, so the owner waits for it.
    await client.request("POST", pods(), json=pod("grandchild", ref(child, block=True),
                                                   node="pi-gc"))
    await client.request("POST", cms(), json=configmap("loose", ref(owner)))
    await client.request("DELETE", f"{cms()}/owner", json={"propagationPolicy": "Foreground"})
    await eventually(lambda: is_gone(client, f"{cms()}/loose"))

    async def marked(path: str) -> Any:
        obj = await get(client, path)
        return obj if obj and obj["metadata"].get("deletionTimestamp") else None

    blocker = await eventually(lambda: marked(f"{pods()}/blocker"))
    grandchild = await eventually(lambda: marked(f"{pods()}/grandchild"))
    child = await eventually(lambda: marked(f"{cms()}/child"))
    assert child["metadata"]["finalizers"] == ["foregroundDeletion"]
    owner_now = await get(client, f"{cms()}/owner")
    assert owner_now is not None and owner_now["metadata"]["finalizers"] == [
        "foregroundDeletion"]
    # The node agent confirms the pods are stopped: then everything goes, bottom up.
    for p in (blocker, grandchild):
        await client.request("DELETE", f"{pods()}/{p['metadata']['name']}", json={
            "gracePeriodSeconds": 0, "preconditions": {"uid": p["metadata"]["uid"]}})
    await eventually(lambda: is_gone(client, f"{cms()}/child"))
    await eventually(lambda: is_gone(client, f"{cms()}/owner"))


async def test_foreground_without_blockers_goes_at_once(client: Client) -> None:
    owner = await client.request("POST", cms(), json=configmap("owner"))
    await client.request("POST", cms(), json=configmap("dep", ref(owner, block=False)))
    await client.request("DELETE", f"{cms()}/owner", json={"propagationPolicy": "Foreground"})
    await eventually(lambda: is_gone(client, f"{cms()}/owner"))
    await eventually(lambda: is_gone(client, f"{cms()}/dep"))


# -- orphan -------------------------------------------------------------------------------

async def test_orphan_removes_references_and_keeps_dependents(client: Client) -> None:
    owner = await client.request("POST", cms(), json=configmap("owner"))
    other = await client.request("POST", cms(), json=configmap("other"))
    await client.request("POST", cms(), json=configmap("dep", ref(owner, block=True)))
    await client.request("POST", pods(), json=pod("dep-pod", ref(owner), ref(other)))
    code = await client.request("DELETE", f"{cms()}/owner", json={"propagationPolicy": "Orphan"})
    assert "orphan" in code["metadata"]["finalizers"]
    await eventually(lambda: is_gone(client, f"{cms()}/owner"))
    dep = await get(client, f"{cms()}/dep")
    assert dep is not None and "ownerReferences" not in dep["metadata"]
    dep_pod = await get(client, f"{pods()}/dep-pod")
    assert dep_pod is not None
    assert [r["name"] for r in dep_pod["metadata"]["ownerReferences"]] == ["other"]


async def test_jobs_orphan_by_default_as_in_batch_v1(client: Client) -> None:
    jobs = "/apis/batch/v1/namespaces/default/jobs"
    template = {"spec": {"restartPolicy": "Never",
                         "containers": [{"name": "c", "image": "busybox:1.36"}]}}
    made = {}
    for name in ("kept", "cleaned"):
        # Suspended: no Job controller makes pods for it; the dependent is made by hand.
        made[name] = await client.request("POST", jobs, json={
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"suspend": True, "template": template}})
        await client.request("POST", cms(), json=configmap(f"of-{name}", ref(made[name])))
    await client.request("DELETE", f"{jobs}/kept")  # no policy: batch/v1 orphans
    await client.request("DELETE", f"{jobs}/cleaned", json={"propagationPolicy": "Background"})
    await eventually(lambda: is_gone(client, f"{jobs}/kept"))
    await eventually(lambda: is_gone(client, f"{cms()}/of-cleaned"))
    kept = await get(client, f"{cms()}/of-kept")
    assert kept is not None and "ownerReferences" not in kept["metadata"]


# -- namespaces ---------------------------------------------------------------------------

async def test_a_namespace_goes_with_owners_waiting_in_foreground(client: Client) -> None:
    await client.request("POST", "/api/v1/namespaces", json={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
    owner = await client.request("POST", cms("doomed"), json=configmap("owner"))
    blocker = await client.request("POST", pods("doomed"), json=pod(
        "blocker", ref(owner, block=True), node="pi-gc"))
    await client.request("POST", cms("doomed"), json=configmap("dep", ref(owner)))
    await client.request("DELETE", f"{cms('doomed')}/owner",
                         json={"propagationPolicy": "Foreground"})
    await client.request("DELETE", "/api/v1/namespaces/doomed")
    await eventually(lambda: is_gone(client, f"{cms('doomed')}/dep"))
    # The namespace waits for the pod (and so for the owner) like everything else ...
    ns = await get(client, "/api/v1/namespaces/doomed")
    assert ns is not None and ns["status"]["phase"] == "Terminating"
    # ... until the node agent confirms the pod stopped.
    await client.request("DELETE", f"{pods('doomed')}/blocker", json={
        "gracePeriodSeconds": 0, "preconditions": {"uid": blocker["metadata"]["uid"]}})
    await eventually(lambda: is_gone(client, "/api/v1/namespaces/doomed"))


# -- kubectl ------------------------------------------------------------------------------

async def kubectl(master: MasterHandle, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(master.kubeconfig), "--cache-dir",
        str(master.data_dir.parent / "kubectl-cache"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {out.decode()}{err.decode()}"
    return out.decode()


async def test_kubectl_cascade(master: MasterHandle, client: Client) -> None:
    for mode in ("orphan", "foreground", "background"):
        owner = await client.request("POST", cms(), json=configmap(f"{mode}-owner"))
        await client.request("POST", cms(), json=configmap(f"{mode}-dep",
                                                           ref(owner, block=True)))
    # kubectl waits until the owner is gone: the GC must finish what the finalizer began.
    out = await kubectl(master, "delete", "configmap", "orphan-owner", "--cascade=orphan")
    assert out.startswith('configmap "orphan-owner" deleted')
    dep = await get(client, f"{cms()}/orphan-dep")
    assert dep is not None and "ownerReferences" not in dep["metadata"]
    await kubectl(master, "delete", "configmap", "foreground-owner", "--cascade=foreground")
    # Foreground: the dependent went before the owner did.
    assert await get(client, f"{cms()}/foreground-dep") is None
    await kubectl(master, "delete", "configmap", "background-owner")  # the default
    await eventually(lambda: is_gone(client, f"{cms()}/background-dep"))
