"""A cluster of "Pis" on one machine, end to end (tests/e2e/netbed.py): a master and three
node agents in network namespaces on a bridge, each node with its own Podman, and a "lan"
namespace for a client on the LAN. Nobody types an address: the agents get only the join
token and find the master by mDNS.

Covered here:
- the nodes are discovered and join with no address given, all Ready with their LAN
  address and a podCIDR of their own;
- a Pi with the wrong join token refuses the master (it cannot prove the token either),
  writes no credential and is never admitted;
- a node's credential is refused on another node's objects (its Node, the status of a pod
  bound to it, reading or deleting that pod), through the API and the real kubectl;
- host-gw: every node routes the other nodes' podCIDRs via their LAN addresses, and a pod
  on pi1 reaches a pod on pi2 by IP, which sees the client pod's own address (no NAT);
- a client pod reaches a Service by ClusterIP and by `web`, `web.NS` and
  `web.NS.svc.cluster.local`, answered by both backends on the other Pis, and has the
  WEB_SERVICE_HOST/PORT variables;
- a NodePort answers from the "lan" namespace at every Pi's address (also the one without
  a backend);
- a deleted pod that is still running (Terminating) stops receiving Service traffic;
- a Pi cut off from the bridge goes NotReady, its replica is replaced on another Pi, the
  Service (ClusterIP and NodePort) keeps answering from the live replicas, and once
  reconnected the Pi is Ready again and its stale replica stopped.

Covered elsewhere, not repeated: a spoofed (rogue) master ignored by a joining node, and
pending-then-approve - tests/e2e/test_discovery.py
`test_nodes_join_with_no_address_a_rogue_master_is_ignored_pending_is_approved`; the
master's side of a wrong token (401, nothing written) - tests/api/test_join.py
`test_a_node_with_the_wrong_token_is_refused_and_writes_nothing`.

One bed per module; each test works in a namespace of its own (`ns`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
import pytest_asyncio

from bramble.client import MERGE_PATCH
from bramble.kube.errors import Forbidden, NotFound
from bramble.node.runtime.types import LABEL_POD_UID
from tests.conftest import MasterHandle
from tests.e2e.cluster_fixtures import (  # noqa: F401  (the fixture: ns)
    NODES,
    Obj,
    apps_path,
    condition,
    namespace_fixture,
    pods_path,
    serving,
    wait_for,
)
from tests.e2e.netbed import BedCluster, connect_from, running_bed
from tests.e2e.test_rollout_kubectl import Kubectl
from tests.images import BUSYBOX_IMAGE
from tests.node.agent_fixtures import until
from tests.node.conftest import short_dir

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("podman", "nsenter", "ip")),
                       reason="needs podman, nsenter and iproute2"),
]

NODE_NAMES = ("pi1", "pi2", "pi3")
# Short enough that the cut-off test sees the eviction soon, long enough that a busy
# machine does not make a healthy node miss it (leases are renewed every 2 s).
MASTER_TUNING = {"node_monitor_grace": 6, "default_eviction_seconds": 1}


@pytest_asyncio.fixture(scope="module", loop_scope="module", name="cluster")
async def cluster_fixture(tmp_path_factory: pytest.TempPathFactory,
                          ) -> AsyncIterator[BedCluster]:
    async with running_bed(short_dir(tmp_path_factory, "mh"), len(NODE_NAMES),
                           controllers=MASTER_TUNING) as cluster:
        yield cluster


def pod(name: str, script: str, *, node: str = "", labels: dict[str, str] | None = None,
        port: int = 0) -> Obj:
    """A busybox pod running `script`, bound to `node` when given (no scheduler)."""
    container: Obj = {"name": "main", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                      "command": ["sh", "-c", script]}
    if port:
        container["ports"] = [{"containerPort": port, "name": "http"}]
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    spec: Obj = {"containers": [container], "terminationGracePeriodSeconds": 1}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


async def run_pods(c: BedCluster, ns: str, *pods: Obj) -> dict[str, Obj]:
    """Create the pods and wait until all of them are Running and Ready."""
    for p in pods:
        await c.api.request("POST", pods_path(ns), json=p)
    names = {p["metadata"]["name"] for p in pods}
    return await wait_for(c.api, pods_path(ns), f"pods {sorted(names)} serving", lambda got: (
        {n: got[n] for n in names} if names <= set(got) and all(serving(got[n]) for n in names)
        else None))


# --- discovery and join ------------------------------------------------------------------

async def test_nodes_are_discovered_and_join_with_no_address_given(cluster: BedCluster) -> None:
    c = cluster
    master_ip = c.bed.hosts["master"]  # type: ignore[union-attr]
    nodes = (await c.api.request("GET", NODES))["items"]
    by_name = {n["metadata"]["name"]: n for n in nodes}
    assert sorted(by_name) == list(NODE_NAMES)
    cidrs = set()
    for name, agent in c.agents.items():
        node = by_name[name]
        assert condition(node, "Ready").get("status") == "True", node["status"]
        # Its LAN address as InternalIP (the address the master reaches its agent at)...
        addresses = {(a["type"], a["address"]) for a in node["status"]["addresses"]}
        assert ("InternalIP", agent.address) in addresses, addresses
        # ...a /24 of the cluster CIDR of its own, handed out by the master...
        cidr = node["spec"]["podCIDR"]
        assert ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network(
            c.bed.cluster_cidr)) and cidr.endswith("/24"), cidr  # type: ignore[union-attr]
        cidrs.add(cidr)
        # ...and a credential for the master it found on the LAN, pinned to its CA.
        kubeconfig = (agent.data_dir / "node.kubeconfig").read_text()
        assert f"https://{master_ip}:6443" in kubeconfig
    assert len(cidrs) == len(NODE_NAMES)

    # The real kubectl sees the same, through the forwarder to the master's namespace.
    table = (await c.kubectl("get", "nodes", "-o", "wide")).out.splitlines()
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert {name: (row[1], row[5]) for name, row in rows.items()} == {
        name: ("Ready", agent.address) for name, agent in c.agents.items()}, table


async def test_a_pi_with_the_wrong_token_refuses_the_master_and_is_not_admitted(
        cluster: BedCluster) -> None:
    c = cluster
    bed = c.bed
    assert bed is not None
    data_dir = c.base / "wrong"
    data_dir.mkdir(mode=0o700)
    log = c.base / "wrong.log"
    # In the "lan" namespace: a Pi on the LAN with a join token of another cluster.
    proc = bed.spawn("lan", [sys.executable, "-m", "bramble", "node", "--data-dir",
                             str(data_dir), "--name", "intruder", "--network",
                             f"bl-{bed.tag}-x", "--token", "not-this-clusters-token"], log)
    try:
        async def refused() -> bool:
            text = log.read_text(errors="replace")
            return "ignoring a master on the LAN" in text
        await until("the Pi to refuse the master", refused, within=60,
                    describe=lambda: log.read_text(errors="replace")[-2000:])
        text = log.read_text(errors="replace")
        assert "could not prove it holds this cluster's join token" in text, text[-2000:]
        assert not (data_dir / "node.kubeconfig").exists()
        with pytest.raises(NotFound):
            await c.api.request("GET", f"{NODES}/intruder")

        # The master sees it on the LAN (mDNS), and lists it as that only: not a node,
        # not a join request waiting for approval.
        async def listed() -> list[str] | None:
            out = await bramble(c, "nodes")
            rows = [line.split() for line in out.splitlines()]
            return next((row for row in rows if row[0] == "intruder"), None)
        row = await until("`bramble nodes` to list the intruder", listed)
        assert row[1:3] == ["Discovered", bed.hosts["lan"]], row
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
        shutil.rmtree(data_dir, ignore_errors=True)


async def bramble(c: BedCluster, *args: str) -> str:
    """`bramble ARGS` as the admin (through the forwarder); its output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bramble", *args, "--kubeconfig", str(c.handle.kubeconfig),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, (args, err.decode())
    return out.decode()


# --- node credentials --------------------------------------------------------------------

async def test_a_nodes_credential_is_refused_on_another_nodes_objects(
        cluster: BedCluster, ns: str) -> None:
    c = cluster
    await run_pods(c, ns, pod("on1", "exec sleep 3600", node="pi1"),
                   pod("on2", "exec sleep 3600", node="pi2"))
    status_patch = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    async with c.node_client("pi1") as pi1:
        # Its own: it reads the pod bound to it and labels its own Node.
        assert (await pi1.request("GET", f"{pods_path(ns)}/on1"))["spec"]["nodeName"] == "pi1"
        await pi1.request("PATCH", f"{NODES}/pi1", json={"metadata": {"labels": {
            "mh-test": "own"}}}, content_type=MERGE_PATCH)
        await pi1.request("PATCH", f"{NODES}/pi1", json={"metadata": {"labels": {
            "mh-test": None}}}, content_type=MERGE_PATCH)
        # Another node's: refused, whatever the verb.
        refused: list[tuple[str, str, Any]] = [
            ("PATCH", f"{NODES}/pi2/status", status_patch),
            ("PATCH", f"{NODES}/pi2", {"metadata": {"labels": {"mh-test": "theirs"}}}),
            ("PATCH", f"{pods_path(ns)}/on2/status", status_patch),
            ("GET", f"{pods_path(ns)}/on2", None),
            ("DELETE", f"{pods_path(ns)}/on2", None),
        ]
        for method, path, body in refused:
            with pytest.raises(Forbidden):
                await pi1.request(method, path, json=body,
                                  content_type=MERGE_PATCH if body else None)
    # Nothing of pi2's changed.
    node2 = await c.api.request("GET", f"{NODES}/pi2")
    assert condition(node2, "Ready").get("status") == "True"
    assert "mh-test" not in node2["metadata"].get("labels", {})
    on2 = await c.api.request("GET", f"{pods_path(ns)}/on2")
    assert serving(on2) and not on2["metadata"].get("deletionTimestamp")

    # The real kubectl with pi1's kubeconfig says the same.
    kubectl = Kubectl(MasterHandle(url=c.master.url, data_dir=c.base,
                                   kubeconfig=c.node_kubeconfig("pi1"), token="",
                                   ca_file=c.base / "ca.pem"), c.base / "kubectl-cache-pi1")
    result = await kubectl("label", "node", "pi2", "mh-test=theirs", check=False)
    assert result.code != 0 and "Forbidden" in result.err + result.out, result
    result = await kubectl("delete", "pod", "-n", ns, "on2", "--wait=false", check=False)
    assert result.code != 0 and "forbidden" in (result.err + result.out).lower(), result


# --- the pod network and Services (host-gw, the agents' service proxy and DNS) -----------

# A tiny HTTP server that says who asked and who answered: busybox httpd with a CGI script
# (busybox wget segfaults for non-loopback targets here, so clients use nc).
# httpd is PID 1 and ignores SIGTERM: a pod outlives its deletion until its grace
# period ends (1 s unless the test asks for more).
WHO = ("mkdir -p /w/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\n"
       "echo peer=$REMOTE_ADDR host=$(hostname)\\n' > /w/cgi-bin/who && "
       "busybox chmod +x /w/cgi-bin/who && exec httpd -f -p 8080 -h /w")
REQUEST = "GET /cgi-bin/who HTTP/1.0\\r\\n\\r\\n"  # for printf in a pod
END = "--end-of-answer--"
HTTP_REQUEST = b"GET /cgi-bin/who HTTP/1.0\r\n\r\n"
# httpd listens on IPv6 too: an IPv4 peer shows as [::ffff:10.42.1.3].
ANSWER = re.compile(r"peer=(?:\[::ffff:)?([^\s\]]*)\]? host=(\S+)")


def who(name: str, node: str = "", app: str = "web") -> Obj:
    return pod(name, WHO, node=node, labels={"app": app}, port=8080)


async def ask(c: BedCluster, ns: str, client: str, target: str, port: int = 8080,
              times: int = 1) -> list[tuple[str, str]]:
    """(peer, host) of each of `times` requests from the pod `client` to target:port (nc
    in the pod: its own resolver, search path and routes); ("", "") for no answer."""
    one = f"printf '{REQUEST}' | nc -w 5 {target} {port}; echo {END}"
    result = await c.kubectl("exec", "-n", ns, client, "--", "sh", "-c",
                             "; ".join([one] * times), check=False)
    answers = [ANSWER.search(chunk) for chunk in result.out.split(f"{END}\n")[:times]]
    return [(m.group(1), m.group(2)) if m else ("", "") for m in answers]


def routes(c: BedCluster, host: str) -> set[tuple[str, str]]:
    """(destination, via) of the agent's host-gw routes in `host`'s namespace."""
    out = subprocess.run(["ip", "-n", c.bed.ns(host), "route", "show", "proto", "77"],  # type: ignore[union-attr]
                         capture_output=True, text=True, check=True).stdout
    return {(line.split()[0], line.split()[2]) for line in out.splitlines() if " via " in line}


async def test_a_pod_reaches_a_pod_on_another_pi_by_ip_with_its_real_source_address(
        cluster: BedCluster, ns: str) -> None:
    c = cluster
    nodes = {n["metadata"]["name"]: n for n in (await c.api.request("GET", NODES))["items"]}
    # host-gw: every node routes each other node's podCIDR via that node's LAN address.
    for name in c.agents:
        want = {(nodes[o]["spec"]["podCIDR"], c.agents[o].address) for o in c.agents
                if o != name}

        async def routed(name: str = name, want: set[tuple[str, str]] = want) -> bool:
            return routes(c, name) == want
        await until(f"{name}'s routes {sorted(want)}", routed,
                    describe=lambda name=name: routes(c, name))
    pods = await run_pods(c, ns, who("server", node="pi2"),
                          pod("client", "exec sleep 3600", node="pi1"))
    server_ip, client_ip = (pods[n]["status"]["podIP"] for n in ("server", "client"))
    assert ipaddress.ip_address(server_ip) in ipaddress.ip_network(nodes["pi2"]["spec"]["podCIDR"])
    assert ipaddress.ip_address(client_ip) in ipaddress.ip_network(nodes["pi1"]["spec"]["podCIDR"])
    # No NAT between the Pis: the server sees the client pod's own address.
    answer = await until("an answer from the server pod", lambda: _answered(
        ask(c, ns, "client", server_ip)))
    assert answer == [(client_ip, "server")]


async def _answered(answers: Awaitable[list[tuple[str, str]]]) -> list[tuple[str, str]] | None:
    got = await answers
    return got if all(host for _, host in got) else None


async def service_with_backends(c: BedCluster, ns: str, *, node_port: bool = False,
                                ) -> tuple[Obj, dict[str, Obj]]:
    """Service `web` (port 80 -> the pods' 8080) over `web-a` on pi2 and `web-b` on pi3,
    and a `client` pod on pi1 started after the Service; all serving, Endpoints ready."""
    service = await c.api.request("POST", f"/api/v1/namespaces/{ns}/services", json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort" if node_port else "ClusterIP", "selector": {"app": "web"},
                 "ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}]}})
    pods = await run_pods(c, ns, who("web-a", node="pi2"), who("web-b", node="pi3"),
                          pod("client", "exec sleep 3600", node="pi1"))
    await endpoints_are(c, ns, {pods["web-a"]["status"]["podIP"], pods["web-b"]["status"]["podIP"]})
    return service, pods


async def endpoints_are(c: BedCluster, ns: str, ips: set[str]) -> None:
    def check(objs: dict[str, Obj]) -> bool:
        subsets = (objs.get("web") or {}).get("subsets") or []
        return {a["ip"] for s in subsets for a in s.get("addresses") or []} == ips
    await wait_for(c.api, f"/api/v1/namespaces/{ns}/endpoints", f"web's endpoints {ips}", check)


async def answered_by(c: BedCluster, ns: str, target: str, port: int, hosts: set[str]) -> None:
    """Poll until requests to target:port from the client pod have been answered by each
    of `hosts` (round-robin over the ready endpoints), and by nothing else."""
    seen: set[str] = set()

    async def check() -> bool:
        for _peer, host in await ask(c, ns, "client", target, port, times=4):
            if not host:
                continue  # no answer (yet): a Service is served within a second or so
            assert host in hosts, f"{target}:{port} answered by {host!r}, not one of {hosts}"
            seen.add(host)
        return seen == hosts
    await until(f"{target}:{port} answered by {sorted(hosts)}", check,
                describe=lambda: sorted(seen))


async def test_a_service_answers_by_cluster_ip_and_dns_name_with_backends_on_other_pis(
        cluster: BedCluster, ns: str) -> None:
    c = cluster
    service, _ = await service_with_backends(c, ns)
    cluster_ip = service["spec"]["clusterIP"]
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network("10.43.0.0/16")
    backends = {"web-a", "web-b"}
    # The client (on pi1, neither backend's node) through its node's proxy, by ClusterIP...
    await answered_by(c, ns, cluster_ip, 80, backends)
    # ...and by every DNS name of the Service (the agent's DNS at the pod gateway, the
    # Kubernetes search path in the pod's resolv.conf).
    for name in ("web", f"web.{ns}", f"web.{ns}.svc.cluster.local"):
        await answered_by(c, ns, name, 80, backends)
    # The Kubernetes 1.0 variables of a Service that existed when the pod started.
    env = (await c.kubectl("exec", "-n", ns, "client", "--", "env")).out
    assert f"WEB_SERVICE_HOST={cluster_ip}\n" in env and "WEB_SERVICE_PORT=80\n" in env, env


async def test_a_node_port_answers_from_the_lan_at_every_pis_address(
        cluster: BedCluster, ns: str) -> None:
    c = cluster
    service, _ = await service_with_backends(c, ns, node_port=True)
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    for agent in c.agents.values():  # pi1 runs no backend: its proxy forwards
        await lan_answered_by(c, agent.address, node_port, {"web-a", "web-b"})


async def lan_answered_by(c: BedCluster, address: str, port: int, hosts: set[str]) -> None:
    """Poll until requests from the "lan" namespace to address:port have been answered
    by each of `hosts`, and by nothing else."""
    assert c.bed is not None
    lan = c.bed.netns("lan")
    seen: set[str] = set()

    async def check() -> bool:
        answer = await connect_from(lan, address, port, HTTP_REQUEST)
        m = ANSWER.search(answer.decode(errors="replace"))
        assert m is not None and m.group(2) in hosts, answer
        seen.add(m.group(2))
        return seen == hosts
    await until(f"{address}:{port} from the LAN answered by {sorted(hosts)}", check,
                describe=lambda: sorted(seen))


async def test_a_deleted_pod_stops_receiving_traffic(cluster: BedCluster, ns: str) -> None:
    c = cluster
    service, pods = await service_with_backends(c, ns)
    cluster_ip = service["spec"]["clusterIP"]
    await answered_by(c, ns, cluster_ip, 80, {"web-a", "web-b"})
    # Deleted with a long grace period: web-a keeps running, Terminating (httpd ignores
    # SIGTERM) - only its removal from the Endpoints can stop its traffic.
    await c.api.request("DELETE", f"{pods_path(ns)}/web-a",
                        json={"kind": "DeleteOptions", "apiVersion": "v1",
                              "gracePeriodSeconds": 120})
    await endpoints_are(c, ns, {pods["web-b"]["status"]["podIP"]})

    async def only_b() -> bool:
        return {host for _, host in await ask(c, ns, "client", cluster_ip, 80, times=6)} \
            == {"web-b"}
    await until("only web-b to answer", only_b)
    web_a = await c.api.request("GET", f"{pods_path(ns)}/web-a")
    assert web_a["metadata"].get("deletionTimestamp"), "web-a is still Terminating"
    # Still running, as the node's Podman shows: the traffic stopped, not the process.
    uid = web_a["metadata"]["uid"]
    assert uid in await c.agents["pi2"].running_pod_uids()
    # Its process ends before the grace period does (Podman refuses an exec into a
    # stopping container, so from the host): the agent completes the termination early.
    await kill_pod_processes(c, "pi2", uid)
    await wait_for(c.api, pods_path(ns), "web-a gone", lambda got: "web-a" not in got)


async def kill_pod_processes(c: BedCluster, node: str, uid: str) -> None:
    """SIGKILL the main process of each container of a pod, from the host."""
    async with c.agents[node].podman() as runtime:
        for ctr in (await runtime.observe({LABEL_POD_UID: uid}))[uid].containers:
            if pid := (await runtime.inspect(ctr.id))["State"]["Pid"]:
                os.kill(pid, signal.SIGKILL)


async def test_a_pi_cut_off_is_replaced_and_the_service_keeps_answering(
        cluster: BedCluster, ns: str) -> None:
    c = cluster
    bed = c.bed
    assert bed is not None
    await c.api.request("POST", f"/api/v1/namespaces/{ns}/services", json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"port": 80, "targetPort": "http"}]}})
    # Two replicas kept off pi1 (the client's Pi): one on pi2, one on pi3 (spreading).
    template = who("", app="web")
    template["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
            "matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn",
                                  "values": ["pi1"]}]}]}}}
    await c.api.request("POST", apps_path(ns, "deployments"), json={
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": template["spec"]}}})
    await run_pods(c, ns, pod("client", "exec sleep 3600", node="pi1"))
    first = await wait_for(c.api, pods_path(ns), "a web replica on pi2 and one on pi3",
                           lambda got: (web := [p for p in got.values() if p["metadata"][
                               "labels"].get("app") == "web" and serving(p)]) and sorted(
                               p["spec"]["nodeName"] for p in web) == ["pi2", "pi3"] and web)
    lost = next(p["metadata"]["name"] for p in first if p["spec"]["nodeName"] == "pi3")
    kept = next(p["metadata"]["name"] for p in first if p["spec"]["nodeName"] == "pi2")
    service = await c.api.request("GET", f"/api/v1/namespaces/{ns}/services/web")
    cluster_ip, node_port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["nodePort"]
    await answered_by(c, ns, cluster_ip, 80, {lost, kept})

    bed.set_link("pi3", up=False)  # pi3's cable pulled: its heartbeats stop
    try:
        await wait_for(c.api, NODES, "pi3 NotReady", lambda nodes: condition(
            nodes["pi3"], "Ready").get("status") in ("Unknown", "False"))
        # Its replica is replaced on pi2 (pi1 is excluded), and the Service answers from
        # the replacement and the pod it kept - never the cut-off one.
        fresh = await wait_for(c.api, pods_path(ns), "a replacement serving on pi2", lambda got: [
            p for p in got.values() if p["metadata"]["labels"].get("app") == "web"
            and serving(p) and p["metadata"]["name"] not in (lost, kept)
            and p["spec"]["nodeName"] == "pi2"])
        replacement = fresh[0]["metadata"]["name"]
        await answered_by(c, ns, cluster_ip, 80, {kept, replacement})
        await lan_answered_by(c, c.agents["pi1"].address, node_port, {kept, replacement})
    finally:
        bed.set_link("pi3", up=True)
    # Back on the LAN: Ready again, and the stale replica stopped there.
    await c.wait_nodes_ready(["pi3"])
    await wait_for(c.api, pods_path(ns), f"{lost} gone", lambda got: lost not in got)
    await until("nothing of web left on pi3", lambda: _none_running(c, "pi3", {lost}))


async def _none_running(c: BedCluster, node: str, names: set[str]) -> bool:
    pods = (await c.api.request("GET", "/api/v1/pods", params={
        "fieldSelector": f"spec.nodeName={node}"}))["items"]
    uids = {p["metadata"]["uid"] for p in pods if p["metadata"]["name"] in names}
    return not (uids & await c.agents[node].running_pod_uids())
