"""rules.desired_state: Services + Endpoints -> listeners, policies, backends."""

from __future__ import annotations

import pytest

from bramble.node.proxy.rules import (
    DEFAULT_AFFINITY_SECONDS,
    SERVICE_PROXY_NAME_LABEL,
    Backend,
    Listener,
    Policy,
    ServicePortName,
    desired_state,
)


def svc(name: str, ports: list[dict], *, ns: str = "default", cluster_ip: str | None = "10.43.0.10",
        type_: str = "ClusterIP", created: str = "2024-01-01T00:00:00Z", **spec) -> dict:
    body = {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
            "spec": {"type": type_, "ports": ports, **spec}}
    if cluster_ip is not None:
        body["spec"]["clusterIP"] = cluster_ip
    return body


def eps(name: str, subsets: list[dict], ns: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "subsets": subsets}


def addrs(*ips: str) -> list[dict]:
    return [{"ip": ip} for ip in ips]


WEB = ServicePortName("default", "web", "")
HTTP = ServicePortName("default", "web", "http")
DNS_UDP = ServicePortName("default", "dns", "dns", "UDP")
DNS_TCP = ServicePortName("default", "dns", "dns-tcp", "TCP")


LISTENER_CASES = [
    # (id, services, node addresses, expected listeners)
    ("clusterip: one listener at clusterIP:port",
     [svc("web", [{"port": 80, "targetPort": 8080}])], [],
     {Listener("TCP", "10.43.0.10", 80): WEB}),
    ("nodeport: clusterIP:port plus nodePort on each node address",
     [svc("web", [{"port": 80, "nodePort": 30080}], type_="NodePort")],
     ["192.168.1.5", "fd00::5"],
     {Listener("TCP", "10.43.0.10", 80): WEB,
      Listener("TCP", "192.168.1.5", 30080): WEB,
      Listener("TCP", "fd00::5", 30080): WEB}),
    ("loadbalancer serves its nodePort like NodePort",
     [svc("web", [{"port": 80, "nodePort": 30080}], type_="LoadBalancer")], ["192.168.1.5"],
     {Listener("TCP", "10.43.0.10", 80): WEB, Listener("TCP", "192.168.1.5", 30080): WEB}),
    ("a nodePort on a ClusterIP Service is not served on nodes",
     [svc("web", [{"port": 80, "nodePort": 30080}])], ["192.168.1.5"],
     {Listener("TCP", "10.43.0.10", 80): WEB}),
    ("nodeport without an allocated clusterIP still serves the nodePort",
     [svc("web", [{"port": 80, "nodePort": 30080}], type_="NodePort", cluster_ip=None)],
     ["192.168.1.5"], {Listener("TCP", "192.168.1.5", 30080): WEB}),
    ("headless (clusterIP None): nothing", [svc("web", [{"port": 80}], cluster_ip="None")], [], {}),
    ("not yet allocated (no clusterIP): nothing", [svc("web", [{"port": 80}], cluster_ip="")], [],
     {}),
    ("ExternalName: nothing",
     [svc("web", [{"port": 80}], type_="ExternalName", externalName="example.org")], [], {}),
    ("tcp and udp ports; SCTP and bad port numbers skipped",
     [svc("dns", [{"name": "dns", "port": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                  {"name": "sctp", "port": 9, "protocol": "SCTP"},
                  {"name": "zero", "port": 0},
                  {"name": "huge", "port": 70000},
                  {"name": "text", "port": "80"}])], [],
     {Listener("UDP", "10.43.0.10", 53): DNS_UDP, Listener("TCP", "10.43.0.10", 53): DNS_TCP}),
    ("every IP in clusterIPs (dual stack)",
     [svc("web", [{"port": 80}], clusterIPs=["10.43.0.10", "fd43::10"])], [],
     {Listener("TCP", "10.43.0.10", 80): WEB, Listener("TCP", "fd43::10", 80): WEB}),
    ("an invalid clusterIP is skipped", [svc("web", [{"port": 80}], cluster_ip="10.43.0.300")], [],
     {}),
    ("a Service for another proxy is skipped",
     [{**svc("web", [{"port": 80}]),
       "metadata": {"name": "web", "namespace": "default",
                    "labels": {SERVICE_PROXY_NAME_LABEL: "other"}}}], [], {}),
]


@pytest.mark.parametrize("services,nodes,expected", [c[1:] for c in LISTENER_CASES],
                         ids=[c[0] for c in LISTENER_CASES])
def test_listeners(services, nodes, expected):
    desired = desired_state(services, [], nodes)
    assert dict(desired.listeners) == expected
    # Only ClusterIPs must be made local; node addresses exist already.
    assert desired.cluster_ips == {lst.ip for lst in expected if lst.ip not in nodes}


BACKEND_CASES = [
    # (id, service ports, endpoints subsets, port name -> expected backends)
    ("ready addresses only, sorted, at the subset's port",
     [{"port": 80}],
     [{"addresses": addrs("10.42.1.7", "10.42.0.5"), "notReadyAddresses": addrs("10.42.2.9"),
       "ports": [{"port": 8080}]}],
     {WEB: (Backend("10.42.0.5", 8080), Backend("10.42.1.7", 8080))}),
    ("named ports match by name; each subset has its own port number",
     [{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}],
     [{"addresses": addrs("10.42.0.5"), "ports": [{"name": "http", "port": 8080},
                                                   {"name": "metrics", "port": 9100}]},
      {"addresses": addrs("10.42.1.7"), "ports": [{"name": "http", "port": 8081}]}],
     {HTTP: (Backend("10.42.0.5", 8080), Backend("10.42.1.7", 8081)),
      ServicePortName("default", "web", "metrics"): (Backend("10.42.0.5", 9100),)}),
    ("protocol must match too (same name, other protocol is not ours)",
     [{"name": "http", "port": 80}],
     [{"addresses": addrs("10.42.0.5"), "ports": [{"name": "http", "port": 8080,
                                                   "protocol": "UDP"}]}],
     {HTTP: ()}),
    ("duplicates across subsets count once",
     [{"port": 80}],
     [{"addresses": addrs("10.42.0.5"), "ports": [{"port": 8080}]},
      {"addresses": addrs("10.42.0.5"), "ports": [{"port": 8080}]}],
     {WEB: (Backend("10.42.0.5", 8080),)}),
    ("only not-ready addresses: no backends", [{"port": 80}],
     [{"notReadyAddresses": addrs("10.42.0.5"), "ports": [{"port": 8080}]}], {WEB: ()}),
    ("bad IPs and ports skipped", [{"port": 80}],
     [{"addresses": [{"ip": "nope"}, {"ip": "10.42.0.5"}, {}],
       "ports": [{"port": 0}, {"port": 8080}]}],
     {WEB: (Backend("10.42.0.5", 8080),)}),
]


@pytest.mark.parametrize("ports,subsets,expected", [c[1:] for c in BACKEND_CASES],
                         ids=[c[0] for c in BACKEND_CASES])
def test_backends(ports, subsets, expected):
    desired = desired_state([svc("web", ports)], [eps("web", subsets)])
    assert dict(desired.backends) == expected


def test_endpoints_of_another_namespace_or_missing_are_no_backends():
    desired = desired_state([svc("web", [{"port": 80}])],
                            [eps("web", [{"addresses": addrs("10.42.0.5"),
                                          "ports": [{"port": 8080}]}], ns="other")])
    assert desired.backends == {WEB: ()}
    assert desired_state([svc("web", [{"port": 80}])], []).backends == {WEB: ()}


POLICY_CASES = [
    # (id, spec fields, expected policy)
    ("default: round robin only", {}, Policy()),
    ("ClientIP with its timeout",
     {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
     Policy(affinity_seconds=60.0)),
    ("ClientIP without config: the API default, 10800 s (3 h)",
     {"sessionAffinity": "ClientIP"}, Policy(affinity_seconds=DEFAULT_AFFINITY_SECONDS)),
    ("ClientIP with a nonsense timeout: the default",
     {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": -1}}},
     Policy(affinity_seconds=DEFAULT_AFFINITY_SECONDS)),
    ("None ignores a leftover config",
     {"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
     Policy()),
]


@pytest.mark.parametrize("spec,expected", [c[1:] for c in POLICY_CASES],
                         ids=[c[0] for c in POLICY_CASES])
def test_policy(spec, expected):
    assert desired_state([svc("web", [{"port": 80}], **spec)], []).policies == {WEB: expected}


def test_conflict_older_service_keeps_the_listener():
    # Both want nodePort 30080 on 192.168.1.5; "old" was created first and keeps it, and
    # "new" still gets its own ClusterIP listener.
    old = svc("old", [{"port": 80, "nodePort": 30080}], type_="NodePort",
              created="2024-01-01T00:00:00Z", cluster_ip="10.43.0.1")
    new = svc("new", [{"port": 80, "nodePort": 30080}], type_="NodePort",
              created="2024-02-01T00:00:00Z", cluster_ip="10.43.0.2")
    for order in ([old, new], [new, old]):
        desired = desired_state(order, [], ["192.168.1.5"])
        node_port = Listener("TCP", "192.168.1.5", 30080)
        assert desired.listeners[node_port] == ServicePortName("default", "old", "")
        assert desired.listeners[Listener("TCP", "10.43.0.2", 80)] == \
            ServicePortName("default", "new", "")
        assert [(c.listener, c.kept.name, c.refused.name) for c in desired.conflicts] == \
            [(node_port, "old", "new")]


def test_order_of_input_does_not_matter():
    services = [svc(f"s{i}", [{"port": 80 + i}], cluster_ip=f"10.43.0.{i + 1}") for i in range(5)]
    endpoints = [eps(f"s{i}", [{"addresses": addrs(f"10.42.0.{i + 1}"), "ports": [{"port": 8080}]}])
                 for i in range(5)]
    a = desired_state(services, endpoints)
    b = desired_state(list(reversed(services)), list(reversed(endpoints)))
    assert (a.listeners, a.backends, a.policies) == (b.listeners, b.backends, b.policies)


def test_garbage_is_skipped_not_raised():
    odd = [{}, {"metadata": None, "spec": None}, {"spec": {"ports": "80"}},
           {"spec": {"clusterIP": "10.43.0.9", "ports": [None, 5, {"port": 80}]}}]
    desired = desired_state(odd, [{"subsets": "x"}, {}], ["not-an-ip"])
    # The last one is served (as default/"" - a nameless Service) and nothing raised.
    assert list(desired.listeners) == [Listener("TCP", "10.43.0.9", 80)]
