"""Deployment rollout benchmark: prints figures, asserts nothing.

Starts a real `bramble master` process (durable store, fsync on, TLS) on loopback with a
fresh data dir; a simulated kubelet in this process (tests/api/workload_sim.py) binds the
pods to one node and reports them Running and Ready as soon as it sees them (after
`--ready-delay`), so the figures are the control plane's alone: the Deployment and
ReplicaSet controllers, the API and the store. For each size it prints the wall time of

- the first rollout (create -> all replicas available, as `kubectl rollout status` waits),
- a rolling update to a new image (default strategy: 25% surge, 25% unavailable),
- a rollback to the first template (what `kubectl rollout undo` patches),

and the writes the update cost (resourceVersions used).

    python tests/bench/bench_rollout.py [--replicas 10 100] [--ready-delay 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.client import Client  # noqa: E402
from tests.api.workload_sim import sim_kubelet  # noqa: E402
from tests.conftest import scratch_master  # noqa: E402

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web",
                                                           "image": "nginx:1.25"}]}}}}


async def rolled_out(client: Client, name: str, replicas: int) -> float:
    """Seconds until the deployment is rolled out, watched (no polling)."""
    t0 = time.perf_counter()
    while True:
        d = await client.request("GET", f"{DEPLOYS}/{name}")
        if done(d, replicas):
            return time.perf_counter() - t0
        async for _, obj in client.watch(DEPLOYS, {
                "fieldSelector": f"metadata.name={name}",
                "resourceVersion": d["metadata"]["resourceVersion"]}):
            if done(obj, replicas):
                return time.perf_counter() - t0


def done(d: dict[str, Any], replicas: int) -> bool:
    s = d.get("status") or {}
    return (s.get("observedGeneration", 0) >= d["metadata"].get("generation", 1)
            and s.get("updatedReplicas", 0) == replicas and s.get("replicas", 0) == replicas
            and s.get("availableReplicas", 0) == replicas)


async def set_image(client: Client, name: str, image: str) -> None:
    await client.request("PATCH", f"{DEPLOYS}/{name}", json={"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": image}]}}}},
        content_type="application/strategic-merge-patch+json")


async def rv(client: Client) -> int:
    body = await client.request("GET", "/api/v1/namespaces", params={"limit": 1})
    return int(body["metadata"]["resourceVersion"])


async def bench(kubeconfig: Path, sizes: list[int], ready_delay: float) -> None:
    async with Client.from_kubeconfig(str(kubeconfig)) as client, \
            sim_kubelet(client, ready_delay=ready_delay):
        for n in sizes:
            name = f"bench-{n}"
            t0 = time.perf_counter()
            await client.request("POST", DEPLOYS, json=deployment(name, n))
            await rolled_out(client, name, n)
            first = time.perf_counter() - t0
            before = await rv(client)
            t0 = time.perf_counter()
            await set_image(client, name, "nginx:1.27")
            await rolled_out(client, name, n)
            update = time.perf_counter() - t0
            writes = await rv(client) - before
            t0 = time.perf_counter()
            await set_image(client, name, "nginx:1.25")
            await rolled_out(client, name, n)
            rollback = time.perf_counter() - t0
            print(f"{n:5d} replicas: first rollout {first:6.2f} s, rolling update "
                  f"{update:6.2f} s ({writes} writes, {writes / n:.1f} per replica), "
                  f"rollback {rollback:6.2f} s")
            await client.request("DELETE", f"{DEPLOYS}/{name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--ready-delay", type=float, default=0.0,
                        help="seconds from a pod bound to it reported Ready")
    args = parser.parse_args()
    with scratch_master("bramble-bench-") as (url, data_dir, proc):
        print(f"bramble master pid {proc.pid} at {url}, data dir {data_dir} "
              f"({os.cpu_count()} CPUs), pods Ready {args.ready_delay:g} s after binding")
        asyncio.run(bench(data_dir / "admin.kubeconfig", args.replicas, args.ready_delay))


if __name__ == "__main__":
    main()
