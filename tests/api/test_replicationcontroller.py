"""ReplicationControllers against a real in-process master with all controllers, pods made
Ready by a simulated kubelet (tests/api/workload_sim.py): defaulting and validation through
the API, replicas kept, the scale subresource, adoption, garbage collection, the table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bramble.client import Client
from bramble.kube.errors import Invalid
from tests.api.workload_sim import sim_kubelet
from tests.conftest import MasterHandle, eventually

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
RCS = f"/api/v1/namespaces/{NS}/replicationcontrollers"
RSS = f"/apis/apps/v1/namespaces/{NS}/replicasets"
EVENTS = f"/api/v1/namespaces/{NS}/events"
MERGE = "application/merge-patch+json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
LIMIT = 60  # a bound against hangs, not a speed expectation

Obj = dict[str, Any]


@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


def rc(name: str, replicas: int | None = None) -> Obj:
    """A ReplicationController as one is usually written: no selector (it defaults to the
    template's labels)."""
    spec: Obj = {"template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
            "spec": spec}


async def pods_of(client: Client, app: str) -> list[Obj]:
    body = await client.request("GET", PODS, params={"labelSelector": f"app={app}"})
    return [p for p in body["items"] if not p["metadata"].get("deletionTimestamp")]


async def status_is(client: Client, name: str, **expected: int) -> Obj | None:
    current = await client.request("GET", f"{RCS}/{name}")
    s = current.get("status") or {}
    return current if all(s.get(k) == v for k, v in expected.items()) else None


async def test_keeps_its_replicas_and_scales(client: Client) -> None:
    async with sim_kubelet(client):
        created = await client.request("POST", RCS, json=rc("web", 3))
        # Defaulted as the apiserver does: the template's labels select, and label the RC.
        assert created["spec"]["selector"] == {"app": "web"}
        assert created["metadata"]["labels"] == {"app": "web"}
        current = await eventually(lambda: status_is(
            client, "web", replicas=3, readyReplicas=3, availableReplicas=3,
            fullyLabeledReplicas=3, observedGeneration=1), LIMIT)
        pods = await pods_of(client, "web")
        assert len(pods) == 3
        for pod in pods:
            assert pod["metadata"]["generateName"] == "web-"
            assert pod["metadata"]["ownerReferences"] == [
                {"apiVersion": "v1", "kind": "ReplicationController", "name": "web",
                 "uid": current["metadata"]["uid"], "controller": True,
                 "blockOwnerDeletion": True}]
        events = (await client.request("GET", EVENTS, params={
            "fieldSelector": f"involvedObject.uid={created['metadata']['uid']}"}))["items"]
        assert sorted(e["message"] for e in events if e["reason"] == "SuccessfulCreate") == \
            sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
        assert {e["source"]["component"] for e in events} == {"replication-controller"}

        # A pod that goes is replaced.
        victim = pods[0]["metadata"]["name"]
        await client.request("DELETE", f"{PODS}/{victim}")

        async def replaced() -> bool:
            names = {p["metadata"]["name"] for p in await pods_of(client, "web")}
            return len(names) == 3 and victim not in names

        await eventually(replaced, LIMIT)

        # The scale subresource: an autoscaling/v1 Scale whose selector is the map as a
        # label-selector string (what `kubectl scale` and an HPA read).
        scale = await client.request("GET", f"{RCS}/web/scale")
        assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
        assert scale["spec"] == {"replicas": 3}
        assert scale["status"]["selector"] == "app=web"
        scale = await client.request("PATCH", f"{RCS}/web/scale",
                                     json={"spec": {"replicas": 1}}, content_type=MERGE)
        assert scale["spec"] == {"replicas": 1}

        async def one_left() -> bool:
            return len(await pods_of(client, "web")) == 1

        await eventually(one_left, LIMIT)
        await eventually(lambda: status_is(client, "web", replicas=1, observedGeneration=2),
                         LIMIT)


async def test_refused_with_field_causes(client: Client) -> None:
    bad = rc("bad", -1)
    bad["spec"]["selector"] = {"app": "other"}
    bad["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    with pytest.raises(Invalid) as caught:
        await client.request("POST", RCS, json=bad)
    causes = {(c["field"], c["reason"]) for c in caught.value.causes}
    assert causes == {("spec.replicas", "FieldValueInvalid"),
                      ("spec.template.metadata.labels", "FieldValueInvalid"),
                      ("spec.template.spec.restartPolicy", "FieldValueNotSupported")}


async def test_adopts_orphans_and_releases_on_a_selector_change(client: Client) -> None:
    async with sim_kubelet(client):
        await client.request("POST", PODS, json={
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "orphan", "labels": {"app": "adopt", "tier": "a"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}})
        created = await client.request("POST", RCS, json=rc("adopt", 2))
        uid = created["metadata"]["uid"]

        async def orphan_controller() -> str | None:
            pod = await client.request("GET", f"{PODS}/orphan")
            return ((pod["metadata"].get("ownerReferences") or [{}])[0]).get("uid")

        async def adopted() -> bool:
            return await orphan_controller() == uid and len(await pods_of(client, "adopt")) == 2

        await eventually(adopted, LIMIT)
        # Unlike apps/v1, the selector may change: the orphan no longer matches and is let
        # go; two pods of the new template are made.
        await client.request("PATCH", f"{RCS}/adopt", json={"spec": {
            "selector": {"app": "adopt", "tier": "b"},
            "template": {"metadata": {"labels": {"app": "adopt", "tier": "b"}}}}},
            content_type=MERGE)

        async def released() -> bool:
            pods = await pods_of(client, "adopt")
            return await orphan_controller() is None and len(
                [p for p in pods if p["metadata"]["labels"].get("tier") == "b"]) == 2

        await eventually(released, LIMIT)


async def test_deleting_it_deletes_its_pods_unless_orphaned(client: Client) -> None:
    async with sim_kubelet(client):
        await client.request("POST", RCS, json=rc("gone", 2))
        await client.request("POST", RCS, json=rc("kept", 1))

        async def counts(gone: int, kept: int) -> bool:
            return (len(await pods_of(client, "gone")), len(await pods_of(client, "kept"))) == \
                (gone, kept)

        await eventually(lambda: counts(2, 1), LIMIT)
        await client.request("DELETE", f"{RCS}/gone")
        await client.request("DELETE", f"{RCS}/kept", json={"propagationPolicy": "Orphan"})
        await eventually(lambda: counts(0, 1), LIMIT)  # the garbage collector's work

        async def orphaned() -> bool:
            [pod] = await pods_of(client, "kept")
            return not pod["metadata"].get("ownerReferences")

        await eventually(orphaned, LIMIT)


async def test_a_replicaset_and_a_replication_controller_share_no_pod(client: Client) -> None:
    # Both select app=both; each pod ends up with exactly one controller, and each owner
    # keeps its own replicas.
    async with sim_kubelet(client):
        await client.request("POST", RCS, json=rc("both", 2))
        await client.request("POST", RSS, json={
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "both-rs"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "both"}},
                     "template": rc("both")["spec"]["template"]}})

        async def settled() -> list[Obj] | None:
            pods = await pods_of(client, "both")
            kinds = sorted(ref["kind"] for p in pods
                           for ref in p["metadata"].get("ownerReferences") or []
                           if ref.get("controller"))
            return pods if kinds == ["ReplicaSet", "ReplicaSet", "ReplicationController",
                                     "ReplicationController"] else None

        pods = await eventually(settled, LIMIT)
        assert all(len(p["metadata"]["ownerReferences"]) == 1 for p in pods)


async def test_listed_as_a_table_and_in_discovery(client: Client) -> None:
    await client.request("POST", RCS, json=rc("tab", 0))
    table = await client.request("GET", RCS, accept=TABLE)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]
    [row] = table["rows"]
    assert row["cells"][:4] == ["tab", 0, 0, 0]
    assert row["cells"][5:] == ["c", "busybox:1.36", "app=tab"]
    resources = (await client.request("GET", "/api/v1"))["resources"]
    found = {r["name"]: r for r in resources if r["name"].startswith("replicationcontrollers")}
    assert set(found) == {"replicationcontrollers", "replicationcontrollers/status",
                          "replicationcontrollers/scale"}
    main = found["replicationcontrollers"]
    assert (main["kind"], main["shortNames"], main["categories"]) == (
        "ReplicationController", ["rc"], ["all"])
    # The status.replicas field selector, as the apiserver offers it (once the controller
    # wrote a status).
    async def selected() -> bool:
        listed = await client.request("GET", RCS, params={"fieldSelector": "status.replicas=0"})
        return [o["metadata"]["name"] for o in listed["items"]] == ["tab"]

    await eventually(selected, LIMIT)
