"""Zero-config cluster network benchmark on the multi-host bed: prints figures, asserts nothing.

A master and two node "Pis" as network namespaces (tests/e2e/netbed.py), each agent with
its own Podman, then, in one run:
- agent start -> Node Ready with nothing configured: fresh Pis (new namespaces) started
  with only the join token - the master found by mDNS, the HMAC join, the Node registered,
  the podCIDR assigned, the Podman network made - and an agent restart on an existing
  node (its credential kept);
- the service proxy of a real agent: a client pod on pi1 and a server pod on pi2 (their
  namespaces run tests/bench/bench_proxy.py's client and backend processes: a sink and an
  echo server). Direct = pod to pod across the Pis (host-gw); ClusterIP = pod -> pi1's
  proxy -> pod. Throughput on one connection, round-trip latency, --conns connections
  held at once - interleaved rounds, best of --rounds for throughput;
- pi1's agent with 20 Services (and their Endpoints) served: RSS idle, after the runs,
  peak; its CPU seconds per GiB relayed.

    python tests/bench/bench_cluster_net.py [--joins 3] [--gib 1] [--rounds 3]
                                            [--requests 5000] [--conns 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.node.runtime.podman import PodmanRuntime  # noqa: E402
from bramble.node.runtime.types import LABEL_POD_UID  # noqa: E402
from tests.bench.bench_proxy import cpu_seconds, print_latency, status_kb  # noqa: E402
from tests.e2e.netbed import BedCluster, NetnsAgent, running_bed  # noqa: E402
from tests.images import BUSYBOX_IMAGE  # noqa: E402

PROXY_BENCH = str(Path(__file__).resolve().parent / "bench_proxy.py")
SERVICES = 20
PORT = 8080
NS = "bench"


async def fresh_join(cluster: BedCluster, index: int) -> tuple[float, NetnsAgent]:
    """Seconds from starting an agent on a new Pi (only the token given) to its Node Ready."""
    assert cluster.bed is not None
    host = f"px{index}"
    cluster.bed.add_host(host)
    agent = NetnsAgent(f"px{index}", cluster.base / f"x{index}", f"bl-{cluster.bed.tag}-x{index}",
                       "", bed=cluster.bed, host=host)
    start = time.perf_counter()
    agent.start(cluster.master.url, cluster.token)
    await cluster.wait_nodes_ready([agent.name])
    return time.perf_counter() - start, agent


async def restart(cluster: BedCluster, agent: NetnsAgent) -> float:
    """Seconds from restarting an existing node's agent (credential kept) to its Node
    Ready again."""
    await agent.stop()
    # Mark it Unknown as the lifecycle controller would, so that "Ready" below is news.
    await cluster.api.request("PATCH", f"/api/v1/nodes/{agent.name}/status", json={
        "status": {"conditions": [{"type": "Ready", "status": "Unknown",
                                   "reason": "NodeStatusUnknown"}]}},
        content_type="application/strategic-merge-patch+json")
    start = time.perf_counter()
    agent.start(cluster.master.url, cluster.token)
    await cluster.wait_nodes_ready([agent.name])
    return time.perf_counter() - start


def pod(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"b": name}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [
                {"name": "c", "image": BUSYBOX_IMAGE, "command": ["sleep", "100000"]}]}}


async def pod_netns(agent: NetnsAgent, uid: str) -> str:
    async with agent.podman() as runtime:
        assert isinstance(runtime, PodmanRuntime)
        observed = await runtime.observe({LABEL_POD_UID: uid})
        sandbox = observed[uid].sandbox
        assert sandbox is not None
        return await runtime.sandbox_netns(sandbox.id)


async def running_pod(cluster: BedCluster, name: str, node: str) -> dict[str, Any]:
    path = f"/api/v1/namespaces/{NS}/pods"
    await cluster.api.request("POST", path, json=pod(name, node))
    while True:
        got = await cluster.api.request("GET", f"{path}/{name}")
        if got.get("status", {}).get("phase") == "Running" and got["status"].get("podIP"):
            return got
        await asyncio.sleep(0.2)


async def services(cluster: BedCluster, backend_ip: str, sink: int, echo: int) -> list[str]:
    """20 selector-less Services with hand-made Endpoints (even: sink, odd: echo);
    returns their ClusterIPs."""
    ips = []
    for i in range(SERVICES):
        name = f"svc{i}"
        svc = await cluster.api.request("POST", f"/api/v1/namespaces/{NS}/services", json={
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": PORT, "protocol": "TCP"}]}})
        await cluster.api.request("POST", f"/api/v1/namespaces/{NS}/endpoints", json={
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
            "subsets": [{"addresses": [{"ip": backend_ip}],
                         "ports": [{"port": sink if i % 2 == 0 else echo}]}]})
        ips.append(svc["spec"]["clusterIP"])
    return ips


def measure(netns: str, what: str, host: str, port: int, args: argparse.Namespace) -> Any:
    done = subprocess.run(
        ["nsenter", f"--net={netns}", sys.executable, PROXY_BENCH, "--role", "measure",
         "--what", what, "--host", host, "--port", str(port), "--gib", str(args.gib),
         "--requests", str(args.requests), "--conns", str(args.conns)],
        capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} to {host}:{port} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


async def wait_served(netns: str, host: str, port: int) -> None:
    """Until pi1's proxy answers on the ClusterIP (the Endpoints reached the agent)."""
    while True:
        proc = await asyncio.create_subprocess_exec(
            "nsenter", f"--net={netns}", sys.executable, "-c",
            f"import socket; socket.create_connection(('{host}', {port}), 1)",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if await proc.wait() == 0:
            return
        await asyncio.sleep(0.2)


async def main(args: argparse.Namespace, base: Path) -> None:
    extra: list[NetnsAgent] = []
    async with running_bed(base, nodes=2) as cluster:
        try:
            await bench(cluster, args, extra)
        finally:
            for agent in extra:
                await agent.stop()
                for problem in await agent.release() + await agent.clean():
                    print(f"  (teardown of {agent.name}: {problem})")


async def bench(cluster: BedCluster, args: argparse.Namespace, extra: list[NetnsAgent]) -> None:
    pi1, pi2 = cluster.agents["pi1"], cluster.agents["pi2"]

    async def run(what: str, host: str, port: int) -> Any:
        return await asyncio.to_thread(measure, client_ns, what, host, port, args)
    print(f"cluster network benchmark: master + 2 Pis as network namespaces; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")

    joins = []
    for i in range(args.joins):
        seconds, agent = await fresh_join(cluster, i)
        extra.append(agent)
        joins.append(seconds)
    restarts = [await restart(cluster, pi1) for _ in range(args.joins)]
    print("agent start -> Node Ready, nothing configured (mDNS, HMAC join, podCIDR, network):")
    print(f"  fresh Pi   median {statistics.median(joins):.2f} s "
          f"(all: {', '.join(f'{s:.2f}' for s in joins)})")
    print(f"  restart    median {statistics.median(restarts):.2f} s "
          f"(all: {', '.join(f'{s:.2f}' for s in restarts)})")
    for agent in extra:  # the fresh Pis go before the proxy runs: only pi1, pi2 remain
        await agent.stop()
        await cluster.api.request("DELETE", f"/api/v1/nodes/{agent.name}")

    await cluster.namespace(NS)
    server = await running_pod(cluster, "server", "pi2")
    client = await running_pod(cluster, "client", "pi1")
    server_ns = await pod_netns(pi2, server["metadata"]["uid"])
    client_ns = await pod_netns(pi1, client["metadata"]["uid"])
    backend_ip = server["status"]["podIP"]
    backend = await asyncio.to_thread(
        subprocess.Popen, ["nsenter", f"--net={server_ns}", sys.executable, PROXY_BENCH, "--role", "backend",
         "--host", backend_ip], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert backend.stdout is not None
        sink, echo = map(int, backend.stdout.readline().split())
        ips = await services(cluster, backend_ip, sink, echo)
        await wait_served(client_ns, ips[0], PORT)
        await wait_served(client_ns, ips[1], PORT)
        await asyncio.sleep(2)
        assert pi1.proc is not None
        agent_pid = pi1.proc.pid  # nsenter execs the agent: the same process
        idle_rss = status_kb(agent_pid, "VmRSS") / 1024

        direct, proxied, cpu = [], [], []
        for _ in range(args.rounds):  # interleaved, so that load changes hit both alike
            direct.append(await run("stream", backend_ip, sink))
            before = cpu_seconds(agent_pid)
            proxied.append(await run("stream", ips[0], PORT))
            after = cpu_seconds(agent_pid)
            cpu.append(sum(after) - sum(before))
        d, p = max(direct), max(proxied)
        print(f"throughput, pod on pi1 -> pod on pi2, {args.gib:g} GiB on one connection "
              f"(best of {args.rounds}):")
        print(f"  direct     {d:7.0f} MB/s   (all: {', '.join(f'{x:.0f}' for x in direct)})")
        print(f"  ClusterIP  {p:7.0f} MB/s   (all: {', '.join(f'{x:.0f}' for x in proxied)})"
              f"  = {100 * p / d:.0f}% of direct")
        print(f"  agent CPU per GiB relayed: {min(cpu) / args.gib:.2f} s")

        ld = await run("latency", backend_ip, echo)
        lp = await run("latency", ips[1], PORT)
        print_latency(ld, lp, args.requests)

        print(f"{args.conns} concurrent connections, all open at once, one round trip each:")
        for name, host, port in (("direct", backend_ip, echo), ("ClusterIP", ips[1], PORT)):
            ok, errors, elapsed = await run("hold", host, port)
            print(f"  {name:10} {ok} ok, {errors} errors, {elapsed:.2f} s")

        print(f"pi1's agent memory, proxy serving {SERVICES} services: RSS idle "
              f"{idle_rss:.1f} MiB, after the runs {status_kb(agent_pid, 'VmRSS') / 1024:.1f} "
              f"MiB, peak {status_kb(agent_pid, 'VmHWM') / 1024:.1f} MiB")
    finally:
        assert backend.stdin is not None
        backend.stdin.close()
        backend.wait(timeout=10)
        await cluster.delete_namespace(NS)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--joins", type=int, default=3, help="fresh Pis (and restarts) timed")
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--conns", type=int, default=1000)
    folder = Path(f"/tmp/bcn-{os.getpid()}")  # short: the Podman socket path has a limit
    folder.mkdir()
    asyncio.run(main(parser.parse_args(), folder))
