"""Scheduler benchmark: prints figures, asserts nothing.

Starts a real `bramble master` process (TLS, durable store with fsync, every controller)
on loopback with a fresh data dir, registers hollow nodes - Node objects with a Ready
condition and allocatable, their Leases renewed as a kubelet would, nothing running - and
creates pods without a node through the API. Two runs, each on a fresh master:

1. end to end: the pods are created (16 concurrent clients) while the scheduler binds
   them; wall time from the first create to the last binding seen in a watch, and the
   master's RSS at the end (nodes, pods, their Scheduled Events);
2. binding alone: the pods are created while every node is cordoned (each gets
   PodScheduled=False), then all nodes are uncordoned at once; time from the uncordon to
   the last binding.

    python tests/bench/bench_scheduler.py [--nodes 100] [--pods 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.client import Client  # noqa: E402
from tests.api.workload_sim import renew_lease  # noqa: E402
from tests.conftest import scratch_master  # noqa: E402

PODS = "/api/v1/namespaces/default/pods"
CLIENTS = 16


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used: a figure that holds when the machine is
    busy with other work, where wall-clock rates do not."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hollow_node(name: str, cordoned: bool) -> dict:
    # A Raspberry Pi 4 as the node agent reports it.
    resources = {"cpu": "4", "memory": "7812Mi", "pods": "110", "ephemeral-storage": "29Gi"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name}},
            "spec": {"unschedulable": cordoned},
            "status": {"capacity": resources, "allocatable": resources,
                       "conditions": [{"type": "Ready", "status": "True",
                                       "reason": "KubeletReady",
                                       "message": "hollow node for the benchmark"}]}}


OWNERS = 30


async def make_owners(client: Client) -> list[str]:
    """Controller owners for half of the pods, so the owner-spreading score has work to do.
    They are ConfigMaps: an owner must exist (the garbage collector deletes pods whose
    owner is gone), and no controller manages pods a ConfigMap owns (a ReplicaSet would
    create its own)."""
    uids = []
    for n in range(OWNERS):
        cm = await client.request("POST", "/api/v1/namespaces/default/configmaps", json={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"owner{n}"}})
        uids.append(cm["metadata"]["uid"])
    return uids


def pod(i: int, owners: list[str]) -> dict:
    # Requests as a small web app would set them; every other pod has a controller owner.
    metadata: dict = {"name": f"p{i:05d}", "labels": {"app": "bench"}}
    if i % 2:
        n = i % len(owners)
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap",
                                        "name": f"owner{n}", "uid": owners[n],
                                        "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{
                "name": "web", "image": "nginx:1.25",
                "ports": [{"containerPort": 80, "name": "http"}],
                "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                              "limits": {"memory": "64Mi"}}}]}}


async def renew_leases(kubeconfig: Path, names: list[str]) -> None:
    """What each node's kubelet does: renew its Lease every few seconds, or the node
    lifecycle controller marks the hollow node unreachable (and evicts its pods). Its own
    connections, so that the creates do not starve it."""
    async with Client.from_kubeconfig(str(kubeconfig)) as client:
        while True:
            await in_parallel(names, lambda name: renew_lease(client, name), clients=8)
            await asyncio.sleep(2)


async def in_parallel(items: list, action, clients: int = CLIENTS) -> None:
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await action(item)

    await asyncio.gather(*(worker() for _ in range(clients)))


class Bindings:
    """Follows the pods through a watch: when each got its node, and which node."""

    def __init__(self, client: Client, rv: str, expected: int) -> None:
        self.client, self.rv, self.expected = client, rv, expected
        self.bound: dict[str, str] = {}
        self.unschedulable: set[str] = set()
        self.last_bound = 0.0
        self.first_bound = 0.0
        self.all_bound = asyncio.Event()
        self.all_unschedulable = asyncio.Event()

    async def follow(self) -> None:
        async for _kind, obj in self.client.watch(PODS, {"resourceVersion": self.rv,
                                                         "timeoutSeconds": "600"}):
            name = obj["metadata"]["name"]
            node = obj["spec"].get("nodeName")
            if node and name not in self.bound:
                self.bound[name] = node
                self.last_bound = time.perf_counter()
                self.first_bound = self.first_bound or self.last_bound
                if len(self.bound) == self.expected:
                    self.all_bound.set()
                    return
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c["type"] == "PodScheduled" and c["status"] == "False"
                   for c in conditions):
                self.unschedulable.add(name)
                if len(self.unschedulable) == self.expected:
                    self.all_unschedulable.set()


async def run(url: str, kubeconfig: Path, pid: int, n_nodes: int, n_pods: int,
              cordoned: bool) -> None:
    async with Client.from_kubeconfig(str(kubeconfig)) as client:
        names = [f"hollow{i:03d}" for i in range(n_nodes)]
        await in_parallel(names, lambda n: client.request(
            "POST", "/api/v1/nodes", json=hollow_node(n, cordoned)))
        heartbeats = asyncio.create_task(renew_leases(kubeconfig, names), name="bench-leases")
        try:
            owners = await make_owners(client)
            rv = (await client.request("GET", PODS))["metadata"]["resourceVersion"]
            watch = Bindings(client, rv, n_pods)
            follower = asyncio.create_task(watch.follow(), name="bench-watch")
            await asyncio.sleep(0.2)
            t0, cpu0 = time.perf_counter(), cpu_seconds(pid)
            await in_parallel(list(range(n_pods)),
                              lambda i: client.request("POST", PODS, json=pod(i, owners)))
            created = time.perf_counter()
            print(f"  created {n_pods} pods in {created - t0:.2f} s "
                  f"({n_pods / (created - t0):.0f}/s, {CLIENTS} clients)")
            if cordoned:
                await asyncio.wait_for(watch.all_unschedulable.wait(), 300)
                print(f"  all {n_pods} pods Unschedulable "
                      f"({time.perf_counter() - t0:.2f} s after the first create)")
                await asyncio.sleep(1.5)  # let the first back-off (1 s) pass
                t0, cpu0 = time.perf_counter(), cpu_seconds(pid)
                await in_parallel(names, lambda n: client.request(
                    "PATCH", f"/api/v1/nodes/{n}", data=b'{"spec":{"unschedulable":false}}',
                    content_type="application/merge-patch+json"))
                print(f"  uncordoned {n_nodes} nodes in {time.perf_counter() - t0:.2f} s")
            await asyncio.wait_for(watch.all_bound.wait(), 600)
            cpu = cpu_seconds(pid) - cpu0
            wall = watch.last_bound - t0
            what = "uncordon -> last bound" if cordoned else "first create -> last bound"
            print(f"  scheduled+bound {n_pods} pods: {wall:.2f} s ({what}) = "
                  f"{n_pods / wall:.0f} pods/s")
            spent = "binding only" if cordoned else "creates included"
            print(f"  master CPU meanwhile: {cpu:.2f} s ({spent}) = {n_pods / cpu:.0f} pods "
                  f"per CPU-second; load average {os.getloadavg()[0]:.1f}")
            if not cordoned:
                span = watch.last_bound - watch.first_bound
                print(f"  first -> last binding: {span:.2f} s = {n_pods / span:.0f} pods/s "
                      "(overlaps the creates)")
            per_node = Counter(watch.bound.values())
            print(f"  pods per node: min {min(per_node.values())}, max "
                  f"{max(per_node.values())} over {len(per_node)} nodes")
            await asyncio.sleep(1)
            print(f"  master RSS with {n_nodes} nodes and {n_pods} pods: {rss_mb(pid):.1f} MB")
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=3000)
    args = parser.parse_args()
    for title, cordoned in (("end to end (create while scheduling)", False),
                            ("binding alone (pods waiting, nodes uncordoned)", True)):
        with scratch_master("bramble-bench-sched-") as (url, data_dir, proc):
            print(f"{title}: master pid {proc.pid}, {args.nodes} hollow nodes, "
                  f"{args.pods} pods ({os.cpu_count()} CPUs)")
            asyncio.run(run(url, data_dir / "admin.kubeconfig", proc.pid, args.nodes,
                            args.pods, cordoned))


if __name__ == "__main__":
    main()
