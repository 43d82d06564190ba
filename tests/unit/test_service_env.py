"""The service environment variables a pod's containers get (kubelet's FromServices)."""

from __future__ import annotations

from typing import Any

import pytest

from bramble.node.pods.servicenv import service_env

Obj = dict[str, Any]


def svc(name: str, ns: str = "default", ip: str | None = "10.43.0.12",
        ports: list[Obj] | None = None) -> Obj:
    spec: Obj = {"ports": ports if ports is not None else [{"port": 80, "protocol": "TCP"}]}
    if ip is not None:
        spec["clusterIP"] = ip
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def pod(ns: str = "default", links: bool | None = None) -> Obj:
    spec: Obj = {} if links is None else {"enableServiceLinks": links}
    return {"metadata": {"namespace": ns, "name": "p"}, "spec": spec}


WEB = {
    "WEB_SERVICE_HOST": "10.43.0.12", "WEB_SERVICE_PORT": "80",
    "WEB_PORT": "tcp://10.43.0.12:80", "WEB_PORT_80_TCP": "tcp://10.43.0.12:80",
    "WEB_PORT_80_TCP_PROTO": "tcp", "WEB_PORT_80_TCP_PORT": "80",
    "WEB_PORT_80_TCP_ADDR": "10.43.0.12",
}
MASTER = {
    "KUBERNETES_SERVICE_HOST": "10.43.0.1", "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.43.0.1:443", "KUBERNETES_PORT_443_TCP": "tcp://10.43.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp", "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.43.0.1",
}
KUBERNETES = svc("kubernetes", ip="10.43.0.1", ports=[{"name": "https", "port": 443}])


@pytest.mark.parametrize(("the_pod", "services", "expected"), [
    # One plain Service of the pod's namespace: host, port and the Docker-link set.
    (pod(), [svc("web")], WEB),
    # Other namespaces' Services are not the pod's business...
    (pod("shop"), [svc("web")], {}),
    # ...except the master's "kubernetes" of default, always there.
    (pod("shop"), [svc("web"), KUBERNETES], MASTER),
    # enableServiceLinks: false keeps only the master's.
    (pod(links=False), [svc("web"), KUBERNETES], MASTER),
    # A "kubernetes" Service of the pod's own namespace wins over the master's.
    (pod("shop"), [KUBERNETES, svc("kubernetes", "shop", ports=[{"port": 80}])],
     {k.replace("WEB", "KUBERNETES"): v for k, v in WEB.items()}),
    # Headless and ExternalName Services (no ClusterIP) get nothing.
    (pod(), [svc("web", ip="None"), svc("ext", ip=None)], {}),
    # Dashes become underscores; named ports get their own SERVICE_PORT_ variable; the
    # first port is the plain SERVICE_PORT and the Docker "_PORT"; UDP is lower-cased in
    # values and upper-cased in names.
    (pod(), [svc("my-db", ip="10.43.0.7", ports=[
        {"name": "sql", "port": 5432, "protocol": "TCP"},
        {"name": "stats-udp", "port": 8125, "protocol": "UDP"}])], {
        "MY_DB_SERVICE_HOST": "10.43.0.7", "MY_DB_SERVICE_PORT": "5432",
        "MY_DB_SERVICE_PORT_SQL": "5432", "MY_DB_SERVICE_PORT_STATS_UDP": "8125",
        "MY_DB_PORT": "tcp://10.43.0.7:5432",
        "MY_DB_PORT_5432_TCP": "tcp://10.43.0.7:5432", "MY_DB_PORT_5432_TCP_PROTO": "tcp",
        "MY_DB_PORT_5432_TCP_PORT": "5432", "MY_DB_PORT_5432_TCP_ADDR": "10.43.0.7",
        "MY_DB_PORT_8125_UDP": "udp://10.43.0.7:8125", "MY_DB_PORT_8125_UDP_PROTO": "udp",
        "MY_DB_PORT_8125_UDP_PORT": "8125", "MY_DB_PORT_8125_UDP_ADDR": "10.43.0.7"}),
    # An IPv6 ClusterIP is bracketed in the URLs.
    (pod(), [svc("web", ip="fd43::c")], {
        "WEB_SERVICE_HOST": "fd43::c", "WEB_SERVICE_PORT": "80",
        "WEB_PORT": "tcp://[fd43::c]:80", "WEB_PORT_80_TCP": "tcp://[fd43::c]:80",
        "WEB_PORT_80_TCP_PROTO": "tcp", "WEB_PORT_80_TCP_PORT": "80",
        "WEB_PORT_80_TCP_ADDR": "fd43::c"}),
    # A Service without ports still tells its host.
    (pod(), [svc("bare", ports=[])], {"BARE_SERVICE_HOST": "10.43.0.12"}),
])
def test_service_env(the_pod: Obj, services: list[Obj], expected: dict[str, str]) -> None:
    assert service_env(the_pod, services) == expected
