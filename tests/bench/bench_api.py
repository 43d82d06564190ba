"""API and store benchmarks: prints figures, asserts nothing.

Starts a real `bramble master` process (durable TinyDB store, fsync on, TLS) on loopback
with a fresh data dir, drives it from this process with aiohttp, and prints:
creates/s with 16 concurrent clients, GETs/s, LIST latency for 1000 pods, watch delivery
latency with 50 watchers, the master's RSS holding the pods, and bytes written to disk
(per 1000 creates, and while idle).

    python tests/bench/bench_api.py [--pods 1000] [--idle-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.kubeconfig import load as load_kubeconfig  # noqa: E402
from tests.conftest import (  # noqa: E402
    free_port,
    start_master_process,
    stop_process,
    wait_healthy,
)

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str) -> dict:
    # A realistic pod as kubectl/controllers send it: labels, requests, a probe, env.
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "shard": name[-1]}},
            "spec": {"containers": [{
                "name": "web", "image": "nginx:1.25",
                "ports": [{"containerPort": 80, "name": "http"}],
                "env": [{"name": "MODE", "value": "bench"}],
                "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                              "limits": {"memory": "64Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}]}}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


async def metric(session, url, headers, ctx, name: str) -> float:
    async with session.get(url + "/metrics", headers=headers, ssl=ctx) as r:
        for line in (await r.text()).splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{}"):
                return float(line.split()[-1])
    return 0.0


async def bench(url: str, kubeconfig: Path, pid: int, n_pods: int, idle: float) -> None:
    cfg = load_kubeconfig(kubeconfig)
    ctx = ssl.create_default_context(cadata=cfg.ca_data.decode())
    headers = {"Authorization": f"Bearer {cfg.token}"}
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=conn) as s:
        rss_empty = rss_mb(pid)
        # -- creates, 16 concurrent clients -------------------------------------------
        disk0 = write_bytes(pid)
        store0 = await metric(s, url, headers, ctx, "bramble_store_bytes_written_total")
        names = iter(range(n_pods))

        async def creator() -> None:
            for i in names:
                async with s.post(url + PODS, json=pod(f"p{i:05d}"), headers=headers,
                                  ssl=ctx) as r:
                    assert r.status == 201, await r.text()
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(creator() for _ in range(16)))
        create_s = time.perf_counter() - t0
        disk1 = write_bytes(pid)
        store1 = await metric(s, url, headers, ctx, "bramble_store_bytes_written_total")
        rss_created = rss_mb(pid)
        print(f"creates: {n_pods} pods in {create_s:.2f} s = {n_pods / create_s:.0f} "
              "objects/s (16 concurrent clients)")
        print(f"bytes written per 1000 pod creates: store {(store1 - store0) * 1000 / n_pods / 1024:.0f} KiB, "
              f"disk (/proc io) {(disk1 - disk0) * 1000 / n_pods / 1024:.0f} KiB")
        commits = await metric(s, url, headers, ctx, "bramble_store_commits_total")
        print(f"durable commits so far: {commits:.0f} (group commit: "
              f"{n_pods / max(commits, 1):.1f} writes per fsync)")
        print(f"master RSS: {rss_empty:.1f} MB empty, {rss_created:.1f} MB after creating "
              f"{n_pods} pods (first start: includes the certificate library)")


async def bench_loaded(url: str, kubeconfig: Path, pid: int, n_pods: int, idle: float) -> None:
    """The phases that run against a restarted master holding the pods."""
    cfg = load_kubeconfig(kubeconfig)
    ctx = ssl.create_default_context(cadata=cfg.ca_data.decode())
    headers = {"Authorization": f"Bearer {cfg.token}"}
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=conn) as s:
        print(f"master RSS after a restart, holding {n_pods} pods: {rss_mb(pid):.1f} MB")

        # -- GETs -----------------------------------------------------------------------
        n_get = 5000
        it = iter(range(n_get))

        async def getter() -> None:
            for i in it:
                async with s.get(f"{url}{PODS}/p{i % n_pods:05d}", headers=headers,
                                 ssl=ctx) as r:
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(getter() for _ in range(16)))
        get_s = time.perf_counter() - t0
        print(f"GET: {n_get / get_s:.0f} requests/s (16 concurrent clients); master RSS "
              f"{rss_mb(pid):.1f} MB")

        # -- LIST ------------------------------------------------------------------------
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            async with s.get(url + PODS, headers=headers, ssl=ctx) as r:
                body = await r.read()
            times.append(time.perf_counter() - t0)
        count = len(json.loads(body)["items"])
        print(f"LIST of {count} pods: median {statistics.median(times) * 1000:.1f} ms, "
              f"p90 {pct(times, 0.9) * 1000:.1f} ms ({len(body) / 1024:.0f} KiB)")
        accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            async with s.get(url + PODS, headers={**headers, **accept}, ssl=ctx) as r:
                await r.read()
            times.append(time.perf_counter() - t0)
        print(f"LIST of {count} pods as a kubectl Table: median "
              f"{statistics.median(times) * 1000:.1f} ms")

        # -- memory -----------------------------------------------------------------------
        print(f"master RSS after the GET and LIST load: {rss_mb(pid):.1f} MB")

        # -- watch delivery, 50 watchers -------------------------------------------------
        async with s.get(url + "/api/v1/namespaces/default/configmaps",
                         headers=headers, ssl=ctx) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        sent: dict[str, float] = {}
        latencies: list[float] = []
        n_events = 100
        ready = asyncio.Event()
        opened = 0

        async def watcher() -> None:
            nonlocal opened
            got = 0
            async with s.get(url + "/api/v1/namespaces/default/configmaps",
                             params={"watch": "true", "resourceVersion": rv,
                                     "timeoutSeconds": "120"},
                             headers=headers, ssl=ctx, timeout=aiohttp.ClientTimeout(
                                 total=None)) as r:
                opened += 1
                if opened == 50:
                    ready.set()
                async for line in r.content:
                    arrived = time.perf_counter()
                    name = json.loads(line)["object"]["metadata"]["name"]
                    latencies.append(arrived - sent[name])
                    got += 1
                    if got == n_events:
                        return

        watchers = [asyncio.create_task(watcher()) for _ in range(50)]
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.2)
        for i in range(n_events):
            name = f"w{i}"
            sent[name] = time.perf_counter()
            async with s.post(url + "/api/v1/namespaces/default/configmaps",
                              json={"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": name}, "data": {"i": str(i)}},
                              headers=headers, ssl=ctx) as r:
                assert r.status == 201
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*watchers), 60)
        print(f"watch delivery, create -> event at each of 50 watchers ({len(latencies)} "
              f"deliveries): p50 {pct(latencies, 0.5) * 1000:.1f} ms, p99 "
              f"{pct(latencies, 0.99) * 1000:.1f} ms")

        # -- idle ---------------------------------------------------------------------------
        if idle > 0:
            # Let the kernel finish writing back the previous phase, which /proc/PID/io
            # would otherwise charge to the idle window.
            await asyncio.sleep(5)
            store_a = await metric(s, url, headers, ctx, "bramble_store_bytes_written_total")
            disk_a = write_bytes(pid)
            await asyncio.sleep(idle)
            store_b = await metric(s, url, headers, ctx, "bramble_store_bytes_written_total")
            disk_b = write_bytes(pid)
            per_hour = (disk_b - disk_a) * 3600 / idle
            print(f"idle for {idle:.0f} s: store wrote {store_b - store_a:.0f} bytes, disk "
                  f"{disk_b - disk_a} bytes (= {per_hour / 1024:.1f} KiB per idle hour)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bramble-bench-"))
    data_dir = base / "master"
    data_dir.mkdir(mode=0o700)
    port = free_port()
    proc = start_master_process(data_dir, port)
    url = f"https://127.0.0.1:{port}"
    kubeconfig = data_dir / "admin.kubeconfig"
    try:
        wait_healthy(url, proc)
        print(f"bramble master pid {proc.pid} at {url}, data dir {data_dir} "
              f"({os.cpu_count()} CPUs)")
        asyncio.run(bench(url, kubeconfig, proc.pid, args.pods, args.idle_seconds))
        stop_process(proc)
        t0 = time.perf_counter()
        proc = start_master_process(data_dir, port)
        wait_healthy(url, proc)
        print(f"restart (process start to ready, loading {args.pods} pods): "
              f"{time.perf_counter() - t0:.2f} s")
        asyncio.run(bench_loaded(url, kubeconfig, proc.pid, args.pods, args.idle_seconds))
        print(f"store file: {(data_dir / 'store.db').stat().st_size / 1024:.0f} KiB")
    finally:
        stop_process(proc)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
