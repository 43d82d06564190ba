"""A node's credential against a real master: its own objects and its pods' secrets work,
other nodes' objects and secrets its pods do not use are refused (the node authorizer and
NodeRestriction, as master/api/auth.py implements them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bramble import kubeconfig
from bramble.client import Client
from bramble.kube.errors import Forbidden
from bramble.node.join import join
from tests.conftest import MasterHandle

NS = "/api/v1/namespaces/default"
MERGE = "application/merge-patch+json"


def pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, **spec}}


def container(**extra: Any) -> dict[str, Any]:
    return {"name": "c", "image": "localhost/busybox:test", **extra}


async def node_client(master: MasterHandle, name: str, tmp_path: Path) -> Client:
    token = master.running.credentials.join_token  # type: ignore[union-attr]
    return Client(kubeconfig.load(await join(master.url, token, name, tmp_path / name)))


async def test_a_node_reads_and_writes_only_what_its_pods_need(
        master: MasterHandle, tmp_path: Path) -> None:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as admin:
        for kind, name in (("secrets", "s1"), ("secrets", "s2"), ("secrets", "unused"),
                           ("configmaps", "cm1"), ("configmaps", "cm2")):
            await admin.request("POST", f"{NS}/{kind}", json={
                "metadata": {"name": name}, "data": {"k": "dg==" if kind == "secrets" else "v"}})
        # p1 on pi1 uses s1 (a volume) and cm1 (envFrom); p2 on pi2 uses s2 and cm2.
        await admin.request("POST", f"{NS}/pods", json=pod(
            "p1", "pi1", volumes=[{"name": "v", "secret": {"secretName": "s1"}}],
            containers=[container(envFrom=[{"configMapRef": {"name": "cm1"}}])]))
        await admin.request("POST", f"{NS}/pods", json=pod(
            "p2", "pi2", volumes=[{"name": "v", "configMap": {"name": "cm2"}}],
            containers=[container(env=[{"name": "X", "valueFrom": {"secretKeyRef": {
                "name": "s2", "key": "k"}}}])]))
        await admin.request("POST", "/api/v1/nodes", json={"metadata": {"name": "pi2"}})

        async with await node_client(master, "pi1", tmp_path) as pi1:
            # What its pods use, and its pods.
            assert (await pi1.request("GET", f"{NS}/secrets/s1"))["data"] == {"k": "dg=="}
            await pi1.request("GET", f"{NS}/configmaps/cm1")
            await pi1.request("GET", f"{NS}/pods/p1")
            listed = await pi1.request("GET", "/api/v1/pods",
                                       params={"fieldSelector": "spec.nodeName=pi1"})
            assert [p["metadata"]["name"] for p in listed["items"]] == ["p1"]
            await pi1.request("PATCH", f"{NS}/pods/p1/status", content_type=MERGE,
                              json={"status": {"phase": "Running"}})
            # Services and endpoints (the proxy), and every Node (the routes).
            await pi1.request("GET", "/api/v1/services")
            await pi1.request("GET", "/api/v1/endpoints")
            await pi1.request("GET", "/api/v1/nodes/pi2")

            refused = [
                ("GET", f"{NS}/secrets/s2", None),  # another node's pod's secret
                ("GET", f"{NS}/secrets/unused", None),  # no pod's secret
                ("GET", f"{NS}/secrets/missing", None),
                ("GET", f"{NS}/configmaps/cm2", None),
                ("GET", f"{NS}/secrets", None),  # listing secrets
                ("GET", "/api/v1/pods", None),  # every pod
                ("GET", f"{NS}/pods/p2", None),  # another node's pod
                ("PATCH", f"{NS}/pods/p2/status", {"status": {"phase": "Failed"}}),
                ("DELETE", f"{NS}/pods/p2", None),
                ("PATCH", "/api/v1/nodes/pi2", {"metadata": {"labels": {"x": "y"}}}),
                ("PATCH", "/api/v1/nodes/pi2/status", {"status": {"capacity": {"cpu": "1"}}}),
                ("GET", "/api/v1/namespaces", None),
                ("POST", f"{NS}/secrets", {"metadata": {"name": "mine"}}),
            ]
            for method, path, body in refused:
                with pytest.raises(Forbidden):
                    await pi1.request(method, path, json=body,
                                      content_type=MERGE if method == "PATCH" else None)
            with pytest.raises(Forbidden, match="no relationship found"):
                await pi1.request("GET", f"{NS}/secrets/s2")
            with pytest.raises(Forbidden, match="spec.nodeName field selector"):
                await pi1.request("GET", "/api/v1/pods",
                                  params={"fieldSelector": "spec.nodeName=pi2"})

        # Once p1 is gone, its secret is no longer pi1's to read.
        await admin.request("DELETE", f"{NS}/pods/p1", json={"gracePeriodSeconds": 0})
        async with Client(kubeconfig.load(tmp_path / "pi1" / "node.kubeconfig")) as pi1:
            with pytest.raises(Forbidden):
                await pi1.request("GET", f"{NS}/secrets/s1")
