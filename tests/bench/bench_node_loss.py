"""Node loss benchmark (control plane): prints figures, asserts nothing.

Starts a real `bramble master` process (durable store, fsync on, TLS, the default
ControllerSettings) on loopback with a fresh data dir, and two simulated node agents in
this process that behave as `bramble node` does towards the API: a Ready Node, a Lease
renewed every `--lease-every` seconds (5 s, as node/status.py), pods bound to them reported
Running and Ready `--start-delay` seconds after they appear (0.31 s: bench_node.py's
measured p50 with real Podman), and pods marked for deletion confirmed with a grace-0
delete. No containers run: the figure is the control plane's - lease grace, eviction,
ReplicaSet, scheduler - plus the simulated start.

Each run: a Deployment of `--replicas` pods runs on node A; node B joins; A loses power at
a random moment of its lease cycle (nothing renewed or posted any more). Printed: seconds
from the power loss until `--replicas` pods of the Deployment run Ready on B, and when A
became Unknown and its pods were marked for deletion.

    python tests/bench/bench_node_loss.py [--runs 5] [--replicas 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.client import MERGE_PATCH, Client  # noqa: E402
from bramble.kube.errors import NotFound, StatusError  # noqa: E402
from tests.conftest import (  # noqa: E402
    free_port,
    start_master_process,
    stop_process,
    wait_healthy,
)

Obj = dict[str, Any]
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
PODS = "/api/v1/namespaces/default/pods"


def now(micro: bool = False) -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else
                                      "%Y-%m-%dT%H:%M:%SZ")


class SimNode:
    """A node agent as the API sees it; `power_off()` stops everything at once."""

    def __init__(self, client: Client, name: str, lease_every: float,
                 start_delay: float) -> None:
        self.client, self.name = client, name
        self.lease_every, self.start_delay = lease_every, start_delay
        self.last_renewal = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        cond = [{"type": t, "status": s, "reason": "", "message": "",
                 "lastHeartbeatTime": now(), "lastTransitionTime": now()}
                for t, s in (("Ready", "True"), ("MemoryPressure", "False"),
                             ("DiskPressure", "False"), ("PIDPressure", "False"))]
        resources = {"cpu": "4", "memory": "8Gi", "pods": "110"}
        await self.client.request("POST", "/api/v1/nodes", json={
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": {
                "kubernetes.io/hostname": self.name, "kubernetes.io/arch": "arm64",
                "kubernetes.io/os": "linux"}},
            "status": {"capacity": resources, "allocatable": resources, "conditions": cond}})
        self._tasks = [asyncio.create_task(self._renew(), name=f"sim-lease-{self.name}"),
                       asyncio.create_task(self._pods(), name=f"sim-pods-{self.name}")]

    async def _renew(self) -> None:
        while True:
            spec = {"holderIdentity": self.name, "leaseDurationSeconds": 40,
                    "renewTime": now(micro=True)}
            try:
                await self.client.request("PATCH", f"{LEASES}/{self.name}", json={
                    "spec": spec}, content_type=MERGE_PATCH)
            except NotFound:
                await self.client.request("POST", LEASES, json={
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name}, "spec": spec})
            self.last_renewal = time.monotonic()
            await asyncio.sleep(self.lease_every)

    async def _pods(self) -> None:
        started: set[str] = set()
        pending: set[asyncio.Task[None]] = set()
        params = {"fieldSelector": f"spec.nodeName={self.name}"}
        body = await self.client.request("GET", "/api/v1/pods", params=params)
        params["resourceVersion"] = body["metadata"]["resourceVersion"]
        async for kind, pod in self.client.watch("/api/v1/pods", params):
            if kind not in ("ADDED", "MODIFIED"):
                continue
            uid = pod["metadata"]["uid"]
            if pod["metadata"].get("deletionTimestamp"):
                task = asyncio.create_task(self._confirm(pod))
            elif uid not in started:
                started.add(uid)
                task = asyncio.create_task(self._run(pod))
            else:
                continue
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def _run(self, pod: Obj) -> None:
        await asyncio.sleep(self.start_delay)
        m = pod["metadata"]
        status = {"phase": "Running", "hostIP": "127.0.0.1", "podIP": "10.99.0.9",
                  "startTime": now(), "conditions": [
                      {"type": t, "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": now()}
                      for t in ("Initialized", "ContainersReady", "Ready")]}
        with contextlib.suppress(StatusError):
            await self.client.request("PATCH", f"/api/v1/namespaces/{m['namespace']}/pods/"
                                      f"{m['name']}/status", json={"status": status},
                                      content_type=MERGE_PATCH)

    async def _confirm(self, pod: Obj) -> None:
        m = pod["metadata"]
        with contextlib.suppress(StatusError):
            await self.client.request("DELETE", f"/api/v1/namespaces/{m['namespace']}/pods/"
                                      f"{m['name']}", json={"gracePeriodSeconds": 0,
                                                            "preconditions": {"uid": m["uid"]}})

    async def power_off(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def wait_for(check: Any, limit: float = 120) -> float:
    """Seconds until `check()` holds (polled: a figure, not a product path)."""
    t0 = time.monotonic()
    async with asyncio.timeout(limit):
        while True:
            if await check():
                return time.monotonic() - t0
            await asyncio.sleep(0.02)


async def one_run(client: Client, run: int, args: argparse.Namespace) -> dict[str, float]:
    a, b = f"pi-a{run}", f"pi-b{run}"
    app = f"web{run}"
    node_a = SimNode(client, a, args.lease_every, args.start_delay)
    await node_a.start()
    await client.request("POST", DEPLOYS, json={
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app},
        "spec": {"replicas": args.replicas, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": {"app": app}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})

    async def running_on(node: str) -> int:
        body = await client.request("GET", PODS, params={"labelSelector": f"app={app}"})
        return sum(1 for p in body["items"]
                   if p["spec"].get("nodeName") == node
                   and not p["metadata"].get("deletionTimestamp")
                   and any(c["type"] == "Ready" and c["status"] == "True"
                           for c in p.get("status", {}).get("conditions") or []))

    await wait_for(lambda: _at_least(running_on(a), args.replicas))
    node_b = SimNode(client, b, args.lease_every, args.start_delay)
    await node_b.start()
    # Power off at a random moment of A's lease cycle.
    await asyncio.sleep(random.uniform(0, args.lease_every))
    await node_a.power_off()
    lost_at = time.monotonic()
    since_renewal = lost_at - node_a.last_renewal

    async def unknown() -> bool:
        n = await client.request("GET", f"/api/v1/nodes/{a}")
        return any(c["type"] == "Ready" and c["status"] == "Unknown"
                   for c in n["status"].get("conditions") or [])

    async def evicted() -> bool:
        body = await client.request("GET", PODS, params={"fieldSelector": f"spec.nodeName={a}"})
        return bool(body["items"]) and all(p["metadata"].get("deletionTimestamp")
                                           for p in body["items"])

    results = await asyncio.gather(
        wait_for(unknown), wait_for(evicted),
        wait_for(lambda: _at_least(running_on(b), args.replicas)))
    await node_b.power_off()
    return {"since_renewal": since_renewal, "unknown": results[0], "evicted": results[1],
            "replaced": results[2]}


async def _at_least(count: Any, n: int) -> bool:
    return await count >= n


async def fresh_master_run(i: int, args: argparse.Namespace) -> dict[str, float]:
    """One run against its own master: the nodes lost in earlier runs stay out of it."""
    base = Path(tempfile.mkdtemp(prefix="bramble-bench-loss-"))
    data = base / "master"
    data.mkdir(mode=0o700)
    port = free_port()
    proc = start_master_process(data, port)
    try:
        await asyncio.to_thread(wait_healthy, f"https://127.0.0.1:{port}", proc)
        async with Client.from_kubeconfig(str(data / "admin.kubeconfig")) as client:
            return await one_run(client, i, args)
    finally:
        stop_process(proc)
        shutil.rmtree(base, ignore_errors=True)


async def run(args: argparse.Namespace) -> None:
    rows = []
    for i in range(args.runs):
        r = await fresh_master_run(i, args)
        rows.append(r)
        print(f"run {i + 1}: power off {r['since_renewal']:.1f} s after a renewal; "
              f"Unknown after {r['unknown']:.1f} s, pods marked after {r['evicted']:.1f} s, "
              f"{args.replicas} replacements Ready after {r['replaced']:.1f} s", flush=True)
    replaced = [r["replaced"] for r in rows]
    print(f"node loss -> replacements Running (control plane + {args.start_delay} s "
          f"simulated start), {args.runs} runs: median {statistics.median(replaced):.1f} s, "
          f"min {min(replaced):.1f} s, max {max(replaced):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--lease-every", type=float, default=5.0)
    parser.add_argument("--start-delay", type=float, default=0.31)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
