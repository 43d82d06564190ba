"""Node agent benchmarks: prints figures, asserts nothing.

Starts a real master and a real `bramble node` (its own Podman service, isolated storage)
as separate processes on this machine, loads the busybox test image into the node, and
measures:
- pod startup, create (spec.nodeName set) -> Ready, one pod at a time (p50, p99);
- 20 pods created at once -> all Ready;
- the agent's RSS with 20 pods running, and its idle CPU (heartbeats, status, probes).
Everything it starts is removed at the end.

    python tests/bench/bench_node.py [--pods 50] [--idle-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.client import Client  # noqa: E402
from bramble.node.runtime.podman import PodmanRuntime, PodmanService  # noqa: E402
from tests.conftest import (  # noqa: E402
    free_port,
    start_master_process,
    stop_process,
    wait_healthy,
)
from tests.images import BUSYBOX_IMAGE, build_busybox_image  # noqa: E402
from tests.node.conftest import teardown_node  # noqa: E402

NODE = "benchpi"
NETWORK = "bramble-bench"
SUBNET = "10.97.0.0/24"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": [{
                "name": "c", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


async def wait_ready(client: Client, names: set[str], rv: str) -> dict[str, float]:
    """Time at which each pod was first seen Ready (from a watch)."""
    ready: dict[str, float] = {}
    async for _kind, obj in client.watch("/api/v1/namespaces/default/pods",
                                        {"resourceVersion": rv}):
        name = obj.get("metadata", {}).get("name")
        conditions = (obj.get("status") or {}).get("conditions") or []
        if name in names and name not in ready and any(
                c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            ready[name] = time.perf_counter()
            if len(ready) == len(names):
                return ready
    return ready


async def bench(kubeconfig: Path, node_pid: int, n_pods: int, idle: float) -> None:
    async with Client.from_kubeconfig(kubeconfig) as client:
        pods = "/api/v1/namespaces/default/pods"
        # -- one at a time -------------------------------------------------------------
        latencies = []
        for i in range(n_pods):
            name = f"seq-{i}"
            rv = (await client.request("GET", pods))["metadata"]["resourceVersion"]
            waiter = asyncio.create_task(wait_ready(client, {name}, rv))
            t0 = time.perf_counter()
            await client.request("POST", pods, json=pod(name))
            ready = await asyncio.wait_for(waiter, 60)
            latencies.append(ready[name] - t0)
            await client.request("DELETE", f"{pods}/{name}", json={"gracePeriodSeconds": 0})
        print(f"pod startup, create -> Ready, {n_pods} pods one at a time: p50 "
              f"{pct(latencies, 0.5):.2f} s, p99 {pct(latencies, 0.99):.2f} s, max "
              f"{max(latencies):.2f} s (mean {statistics.mean(latencies):.2f} s)")
        await asyncio.sleep(3)  # let the deletions finish
        # -- 20 at once ------------------------------------------------------------------
        names = {f"burst-{i}" for i in range(20)}
        rv = (await client.request("GET", pods))["metadata"]["resourceVersion"]
        waiter = asyncio.create_task(wait_ready(client, names, rv))
        t0 = time.perf_counter()
        await asyncio.gather(*(client.request("POST", pods, json=pod(n)) for n in names))
        ready = await asyncio.wait_for(waiter, 120)
        print(f"20 pods created at once: all Ready in {max(ready.values()) - t0:.2f} s")
        # -- steady state with 20 pods ----------------------------------------------------
        await asyncio.sleep(5)
        print(f"agent RSS with 20 pods running: {rss_mb(node_pid):.1f} MB")
        if idle > 0:
            c0 = cpu_seconds(node_pid)
            await asyncio.sleep(idle)
            used = cpu_seconds(node_pid) - c0
            print(f"agent CPU with 20 pods, idle for {idle:.0f} s: {100 * used / idle:.2f}% "
                  "of one core")
        await client.request("DELETE", pods, json={"gracePeriodSeconds": 0})
        await asyncio.sleep(5)


async def load_image(data_dir: Path) -> None:
    sock = next((data_dir / "podman").rglob("podman.sock"))
    runtime = PodmanRuntime(sock, NETWORK, SUBNET)
    try:
        await runtime.load_image(build_busybox_image(data_dir.parent))
    finally:
        await runtime.close()


async def cleanup(data_dir: Path) -> None:
    service = PodmanService(data_dir / "podman")
    await service.start()
    runtime = PodmanRuntime(service.socket_path, NETWORK, SUBNET)
    left = await teardown_node(service, runtime, data_dir, "")
    if left:
        print("left behind:", left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=30)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bramble-nbench-"))
    master_dir, node_dir = base / "master", base / "node"
    master_dir.mkdir(mode=0o700)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    master = start_master_process(master_dir, port)
    node = None
    try:
        wait_healthy(url, master)
        token = (master_dir / "join-token").read_text().strip()
        node = subprocess.Popen(
            [sys.executable, "-m", "bramble", "node", "--master", url, "--token", token,
             "--name", NODE, "--data-dir", str(node_dir), "--network", NETWORK,
             "--pod-subnet", SUBNET, "--no-pod-routes", "--no-service-proxy"],
            stdout=subprocess.DEVNULL,
            stderr=open(base / "node.log", "ab"))
        kubeconfig = master_dir / "admin.kubeconfig"
        deadline = time.monotonic() + 60
        while not list((node_dir / "podman").rglob("podman.sock")):
            if time.monotonic() > deadline or node.poll() is not None:
                raise RuntimeError(f"the node did not start; see {base / 'node.log'}")
            time.sleep(0.2)
        asyncio.run(load_image(node_dir))
        print(f"master pid {master.pid}, node agent pid {node.pid} ({os.cpu_count()} CPUs)")
        print(f"agent RSS before any pod: {rss_mb(node.pid):.1f} MB")
        asyncio.run(bench(kubeconfig, node.pid, args.pods, args.idle_seconds))
    finally:
        if node is not None:
            stop_process(node)
        stop_process(master)
        asyncio.run(cleanup(node_dir))
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
