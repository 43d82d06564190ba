"""ClusterIP and NodePort allocation through the API of a real master: what is allocated,
what is refused (422 with Kubernetes' field causes), what an update keeps or releases, and
that a restarted master knows every allocation (it derives them from the stored Services)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api.test_api import Api
from tests.conftest import MasterHandle, running_master
from tests.e2e.test_rollout_kubectl import Kubectl

SERVICES = "/api/v1/namespaces/default/services"
MERGE = "application/merge-patch+json"
CIDR = ipaddress.ip_network("10.43.0.0/16")
TAKEN_IP = "failed to allocate IP {ip}: provided IP is already allocated"
TAKEN_PORT = "provided port is already allocated"


@pytest.fixture
async def master(tmp_path: Path) -> AsyncIterator[MasterHandle]:
    async with running_master(tmp_path / "master", run_controllers=False) as handle:
        yield handle


@pytest.fixture
async def api(master: MasterHandle) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(master, session)


def service(name: str, type_: str = "ClusterIP", cluster_ip: str | None = None,
            ports: list[dict] | None = None) -> dict:
    spec: dict[str, Any] = {"type": type_, "selector": {"app": name},
                            "ports": ports or [{"port": 80}]}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def causes(body: dict) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in body["details"]["causes"]]


async def create(api: Api, body: dict) -> dict:
    code, created = await api.call("POST", SERVICES, body)
    assert code == 201, created
    return created


async def test_allocates_a_cluster_ip(api: Api) -> None:
    spec = (await create(api, service("web")))["spec"]
    ip = ipaddress.ip_address(spec["clusterIP"])
    assert ip in CIDR and ip not in (CIDR.network_address, CIDR.broadcast_address)
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert not any("nodePort" in p for p in spec["ports"])
    code, got = await api.call("GET", f"{SERVICES}/web")
    assert code == 200 and got["spec"]["clusterIP"] == spec["clusterIP"]


async def test_explicit_ip_headless_and_conflict(api: Api) -> None:
    assert (await create(api, service("a", cluster_ip="10.43.7.7")))["spec"][
        "clusterIPs"] == ["10.43.7.7"]
    headless = (await create(api, service("h", cluster_ip="None")))["spec"]
    assert headless["clusterIP"] == "None" and headless["clusterIPs"] == ["None"]
    code, body = await api.call("POST", SERVICES, service("b", cluster_ip="10.43.7.7"))
    assert code == 422, body
    assert body["reason"] == "Invalid"
    assert causes(body) == [("spec.clusterIPs", 'spec.clusterIPs: Invalid value: '
                             '["10.43.7.7"]: ' + TAKEN_IP.format(ip="10.43.7.7"))]
    for bad in ("10.43.0.0", "10.43.255.255", "192.168.1.1"):
        code, body = await api.call("POST", SERVICES, service("c", cluster_ip=bad))
        assert code == 422, body
        assert "The range of valid IPs is 10.43.0.0/16" in causes(body)[0][1]
    # Nothing was stored by the refused requests.
    code, _ = await api.call("GET", f"{SERVICES}/b")
    assert code == 404


async def test_node_ports(api: Api) -> None:
    two = [{"name": "http", "port": 80}, {"name": "https", "port": 443}]
    spec = (await create(api, service("np", "NodePort", ports=two)))["spec"]
    allocated = [p["nodePort"] for p in spec["ports"]]
    assert all(30000 <= p <= 32767 for p in allocated) and len(set(allocated)) == 2
    explicit = (await create(api, service("fixed", "NodePort",
                                          ports=[{"port": 80, "nodePort": 31000}])))["spec"]
    assert explicit["ports"][0]["nodePort"] == 31000
    code, body = await api.call("POST", SERVICES, service(
        "clash", "NodePort", ports=[{"port": 80, "nodePort": 31000}]))
    assert code == 422, body
    assert causes(body) == [("spec.ports[0].nodePort",
                             f"spec.ports[0].nodePort: Invalid value: 31000: {TAKEN_PORT}")]
    code, body = await api.call("POST", SERVICES, service(
        "low", "NodePort", ports=[{"port": 80, "nodePort": 8080}]))
    assert code == 422, body
    assert causes(body)[0][0] == "spec.ports[0].nodePort"
    assert "The range of valid ports is 30000-32767" in causes(body)[0][1]
    code, body = await api.call("POST", SERVICES, service(
        "cip", ports=[{"port": 80, "nodePort": 31001}]))
    assert code == 422, body
    assert causes(body)[0][0] == "spec.ports[0].nodePort"


async def test_update_keeps_ip_and_ports_and_type_change_releases(api: Api) -> None:
    created = (await create(api, service("np", "NodePort")))["spec"]
    ip, port = created["clusterIP"], created["ports"][0]["nodePort"]
    # A re-sent manifest without the allocated values keeps them.
    code, updated = await api.call("PUT", f"{SERVICES}/np", service("np", "NodePort"))
    assert code == 200, updated
    assert updated["spec"]["clusterIP"] == ip
    assert updated["spec"]["ports"][0]["nodePort"] == port
    # The cluster IP is immutable.
    code, body = await api.call("PATCH", f"{SERVICES}/np", {"spec": {
        "clusterIP": "10.43.9.9", "clusterIPs": ["10.43.9.9"]}}, ctype=MERGE)
    assert code == 422, body
    assert causes(body)[0][0] == "spec.clusterIPs[0]"
    assert causes(body)[0][1].endswith("may not change once set")
    # The port is taken while the NodePort Service holds it ...
    clash = service("other", "NodePort", ports=[{"port": 80, "nodePort": port}])
    code, _ = await api.call("POST", SERVICES, clash)
    assert code == 422
    # ... and free once the type changes to ClusterIP (as `kubectl patch` sends it).
    code, patched = await api.call("PATCH", f"{SERVICES}/np", {"spec": {"type": "ClusterIP"}},
                                   ctype=MERGE)
    assert code == 200, patched
    assert patched["spec"]["clusterIP"] == ip
    assert "nodePort" not in patched["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in patched["spec"]
    await create(api, clash)


async def test_delete_releases(api: Api) -> None:
    await create(api, service("gone", "NodePort", "10.43.3.3",
                              [{"port": 80, "nodePort": 30303}]))
    code, _ = await api.call("DELETE", f"{SERVICES}/gone")
    assert code == 200
    again = await create(api, service("again", "NodePort", "10.43.3.3",
                                      [{"port": 80, "nodePort": 30303}]))
    assert again["spec"]["clusterIP"] == "10.43.3.3"


async def test_concurrent_creates_never_share(api: Api) -> None:
    results = await asyncio.gather(*(api.call("POST", SERVICES, service(
        f"s{i}", "NodePort")) for i in range(40)))
    assert all(code == 201 for code, _ in results), results
    ips = [body["spec"]["clusterIP"] for _, body in results]
    ports = [body["spec"]["ports"][0]["nodePort"] for _, body in results]
    assert len(set(ips)) == 40 and len(set(ports)) == 40
    # The same explicit IP asked for by many at once: exactly one wins.
    results = await asyncio.gather(*(api.call("POST", SERVICES, service(
        f"x{i}", cluster_ip="10.43.200.1")) for i in range(10)))
    assert sorted(code for code, _ in results) == [201] + [422] * 9


async def test_restart_keeps_allocations(tmp_path: Path) -> None:
    data = tmp_path / "master"
    first: dict[str, tuple[str, int]] = {}
    async with running_master(data, run_controllers=False) as m, \
            aiohttp.ClientSession() as session:
        api = Api(m, session)
        for i in range(10):
            spec = (await create(api, service(f"s{i}", "NodePort")))["spec"]
            first[f"s{i}"] = (spec["clusterIP"], spec["ports"][0]["nodePort"])
        await api.call("DELETE", f"{SERVICES}/s0")
    async with running_master(data, run_controllers=False) as m, \
            aiohttp.ClientSession() as session:
        api = Api(m, session)
        ip, port = first["s1"]
        code, body = await api.call("POST", SERVICES, service(
            "dup", "NodePort", ip, [{"port": 80, "nodePort": port}]))
        assert code == 422
        assert [f for f, _ in causes(body)] == ["spec.clusterIPs", "spec.ports[0].nodePort"]
        code, body = await api.call("POST", SERVICES, service(
            "dup", "NodePort", ports=[{"port": 80, "nodePort": port}]))
        assert code == 422 and [f for f, _ in causes(body)] == ["spec.ports[0].nodePort"]
        held = {v for k, v in first.items() if k != "s0"}
        for i in range(30):
            spec = (await create(api, service(f"n{i}", "NodePort")))["spec"]
            assert spec["clusterIP"] not in {ip for ip, _ in held}
            assert spec["ports"][0]["nodePort"] not in {p for _, p in held}
        # s0's values were released by its deletion before the restart.
        s0_ip, s0_port = first["s0"]
        await create(api, service("s0again", "NodePort", s0_ip,
                                  [{"port": 80, "nodePort": s0_port}]))


async def test_configured_cidr(tmp_path: Path) -> None:
    async with running_master(tmp_path / "master", run_controllers=False,
                              service_cidr="10.96.0.0/24") as m, \
            aiohttp.ClientSession() as session:
        spec = (await create(Api(m, session), service("web")))["spec"]
        assert ipaddress.ip_address(spec["clusterIP"]) in ipaddress.ip_network("10.96.0.0/24")


async def test_kubectl_create_and_expose(master: MasterHandle, tmp_path: Path) -> None:
    kubectl = Kubectl(master, tmp_path / "kubectl-cache")
    # kubectl's generators send protobuf, which bramble does not speak: the objects they
    # make are rendered client-side and created from YAML.
    for args in (("service", "nodeport", "np", "--tcp=80:8080"),
                 ("service", "clusterip", "cip", "--tcp=80"),
                 ("service", "clusterip", "hl", "--clusterip=None", "--tcp=80"),
                 ("deployment", "web", "--image=busybox:1.36", "--port=8080")):
        made = await kubectl("create", *args, "--dry-run=client", "-o", "yaml")
        await kubectl("create", "-f", "-", stdin=made.out)
    exposed = await kubectl("expose", "deployment", "web", "--port=80", "--target-port=8080",
                            "--dry-run=client", "-o", "yaml")
    await kubectl("create", "-f", "-", stdin=exposed.out)
    table = (await kubectl("get", "services", "np", "cip", "hl", "web")).out.splitlines()
    # NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["np"][1] == "NodePort" and rows["hl"][2] == "None"
    for name in ("np", "cip", "web"):
        assert ipaddress.ip_address(rows[name][2]) in CIDR
    assert rows["np"][4].startswith("80:3") and rows["np"][4].endswith("/TCP")
    assert rows["cip"][4] == "80/TCP" and rows["web"][4] == "80/TCP"
    out = (await kubectl("get", "service", "np", "-o",
                         "jsonpath={.spec.ports[0].nodePort}")).out
    assert rows["np"][4] == f"80:{out}/TCP"
