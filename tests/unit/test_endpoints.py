"""The Endpoints controller's decisions: which pods, which ports, how subsets are packed."""

from __future__ import annotations

from typing import Any

import pytest

from bramble.master.controllers.endpoints import (
    HEADLESS_LABEL,
    desired_endpoints,
    desired_subsets,
    find_port,
    service_selector,
    written_here,
)

Obj = dict[str, Any]


def service(ports: list[Obj] | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid",
                         "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                     "ipFamilies": ["IPv4"],
                     "ports": [{"name": "http", "port": 80, "targetPort": "http",
                                "protocol": "TCP"}] if ports is None else ports, **spec}}


def pod(name: str, ip: str | None = "10.0.0.1", *, ready: bool = True, phase: str = "Running",
        ports: list[Obj] | None = None, deleting: bool = False, node: str = "pi1",
        **spec: Any) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2027-01-01T00:00:00Z"
    status: Obj = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"metadata": meta, "status": status,
            "spec": {"nodeName": node, "containers": [
                {"name": "c", "ports": [{"name": "http", "containerPort": 8080,
                                         "protocol": "TCP"}] if ports is None else ports}],
                     **spec}}


def summary(subsets: list[Obj]) -> list[tuple]:
    """(ready names, not-ready names, ports) per subset, in a stable order."""
    return sorted((tuple(a["targetRef"]["name"] for a in s.get("addresses") or []),
             tuple(a["targetRef"]["name"] for a in s.get("notReadyAddresses") or []),
             tuple((p.get("name", ""), p["port"]) for p in s.get("ports") or []))
            for s in subsets)


HTTP = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


@pytest.mark.parametrize(("case", "svc", "pods", "want"), [
    ("ready and not ready share the subset", service(),
     [pod("a"), pod("b", "10.0.0.2", ready=False)], [(("a",), ("b",), (("http", 8080),))]),
    ("no IP, finished and terminating pods are left out", service(),
     [pod("a"), pod("b", None), pod("c", "10.0.0.3", phase="Succeeded"),
      pod("d", "10.0.0.4", phase="Failed"), pod("e", "10.0.0.5", deleting=True)],
     [(("a",), (), (("http", 8080),))]),
    # A pod without the named port is left out of that port only; pods listening on
    # different numbers for the same name get subsets of their own.
    ("named ports resolved per pod", service([
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        {"name": "admin", "port": 9000, "targetPort": 9000, "protocol": "TCP"}]),
     [pod("a"), pod("b", "10.0.0.2", ports=[{"name": "http", "containerPort": 8081,
                                            "protocol": "TCP"}]),
      pod("c", "10.0.0.3", ports=[])],
     [(("a",), (), (("http", 8080),)),
      (("a", "b", "c"), (), (("admin", 9000),)),
      (("b",), (), (("http", 8081),))]),
    # Addresses offering the same ports are packed into one subset with both ports.
    ("same ports, one subset", service([
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        {"name": "admin", "port": 9000, "targetPort": 9000, "protocol": "TCP"}]),
     [pod("a"), pod("b", "10.0.0.2")],
     [(("a", "b"), (), (("admin", 9000), ("http", 8080)))]),
    ("protocol must match", service([
        {"name": "dns", "port": 53, "targetPort": "http", "protocol": "UDP"}]), [pod("a")], []),
    ("publishNotReadyAddresses", service(publishNotReadyAddresses=True),
     [pod("a", ready=False), pod("b", "10.0.0.2", deleting=True)],
     [(("a", "b"), (), (("http", 8080),))]),
    ("headless without ports", service([], clusterIP="None"), [pod("a")],
     [(("a",), (), ())]),
    ("ports are required otherwise", service([]), [pod("a")], []),
    ("IPv6 service, IPv4 pod", service(ipFamilies=["IPv6"]), [pod("a")], []),
])
def test_subsets(case: str, svc: Obj, pods: list[Obj], want: list[tuple]) -> None:
    assert summary(desired_subsets(svc, pods)) == want, case


def test_address_fields() -> None:
    [subset] = desired_subsets(service(), [pod("a", hostname="a", subdomain="web")])
    assert subset["addresses"] == [{"ip": "10.0.0.1", "hostname": "a", "nodeName": "pi1",
                                    "targetRef": {"kind": "Pod", "namespace": "ns",
                                                  "name": "a", "uid": "uid-a"}}]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


@pytest.mark.parametrize(("case", "target", "containers", "init", "want"), [
    ("number", 8443, [], [], 8443),
    ("numeric string", "8443", [], [], 8443),
    ("name in the second container", "metrics",
     [{"name": "a", "ports": []}, {"name": "b", "ports": [
         {"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]}], [], 9100),
    ("name in a sidecar", "metrics", [], [{"name": "s", "restartPolicy": "Always", "ports": [
        {"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]}], 9100),
    ("not in a plain init container", "metrics", [], [{"name": "s", "ports": [
        {"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]}], None),
    ("missing", "metrics", [{"name": "a", "ports": []}], [], None),
])
def test_find_port(case: str, target: Any, containers: list, init: list, want: Any) -> None:
    p = {"spec": {"containers": containers, "initContainers": init}}
    assert find_port(p, {"port": 80, "targetPort": target, "protocol": "TCP"}) == want, case


def test_desired_object_and_no_op() -> None:
    svc = service()
    pods = [pod("a")]
    ep = desired_endpoints(svc, pods, None)
    assert ep is not None
    assert ep["metadata"] == {"name": "web", "namespace": "ns", "labels": {"tier": "front"},
                              "ownerReferences": [{
                                  "apiVersion": "v1", "kind": "Service", "name": "web",
                                  "uid": "svc-uid", "controller": True,
                                  "blockOwnerDeletion": True}]}
    assert written_here(ep)
    stored = {**ep, "metadata": {**ep["metadata"], "uid": "ep-uid", "resourceVersion": "7",
                                 "annotations": {"note": "kept"}}}
    # Nothing to change: no write.
    assert desired_endpoints(svc, pods, stored) is None
    # A change keeps what else is on the stored object.
    again = desired_endpoints(svc, [pod("a"), pod("b", "10.0.0.2")], stored)
    assert again is not None and again["metadata"]["resourceVersion"] == "7"
    assert again["metadata"]["annotations"] == {"note": "kept"}
    # Headless: the label Kubernetes puts on.
    headless = desired_endpoints(service(clusterIP="None"), pods, None)
    assert headless["metadata"]["labels"] == {"tier": "front", HEADLESS_LABEL: ""}
    # No pods: no subsets at all (omitempty).
    assert "subsets" not in desired_endpoints(svc, [], None)


def test_selector() -> None:
    assert service_selector(service()).matches({"app": "web", "x": "y"})
    assert service_selector(service(selector=None)) is None
    assert service_selector(service(selector={})) is None  # stored as nil by Kubernetes
    assert not written_here({"metadata": {}})
