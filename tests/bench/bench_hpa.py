"""HorizontalPodAutoscaler benchmark: prints figures, asserts nothing.

1. The controller's CPU per sync of many autoscalers, with hollow nodes. A master runs in
   this process (TLS, store, API; its own controllers off) holding `--hpas` Deployments
   of `--nodes x --pods-per-node / --hpas` Running, Ready pods each, and one autoscaler
   per Deployment; `--nodes` hollow nodes' usage reports (each `--pods-per-node` pods)
   sit in its usage cache, as node agents post them. The HPA controller is built on that
   master and every autoscaler reconciled once per round; the process CPU time of a round
   is the figure (the controller's work and the API/store work it causes, in the same
   process). Rounds: the first (every status written), steady ones (nothing changed: no
   writes), and ones after fresh usage reports (usage index rebuilt, every status's
   metrics rewritten). The usage keeps every autoscaler within its tolerance: no scaling.

2. Load start to first scale-up on a real cluster (`bramble master` and one `bramble
   node` with Podman, as tests/e2e/test_hpa.py): a busybox pod starts burning CPU; the
   time until the autoscaler raised the Deployment's replicas, at the given sync period
   (Kubernetes' 15 s by default) and the agent's 5 s usage reports.

    python tests/bench/bench_hpa.py [--hpas 100] [--nodes 20] [--pods-per-node 300]
                                    [--rounds 5] [--sync-period 15] [--no-cluster]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.master.api.nodeapi import parse_report  # noqa: E402
from bramble.master.api.rest import Target, WriteOptions  # noqa: E402
from bramble.master.controllers.hpa import HorizontalPodAutoscalerController  # noqa: E402
from bramble.master.daemon import ADMIN  # noqa: E402
from tests.conftest import running_master  # noqa: E402

NS = "default"
NOW = "2030-01-01T00:00:00Z"


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "containers": [{"name": "c", "image": "busybox:1.36", "resources": {
                             "requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}


def pod(name: str, app: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"nodeName": node, "containers": [{
                "name": "c", "image": "busybox:1.36",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}


def autoscaler(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": name},
                     "minReplicas": 1, "maxReplicas": replicas * 2,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 50}}}]}}


def running_status(pod_obj: dict[str, Any]) -> dict[str, Any]:
    status = {**pod_obj.get("status", {}),
              "phase": "Running", "startTime": "2029-12-31T00:00:00Z", "podIP": "10.42.0.2",
              "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                              "lastTransitionTime": "2029-12-31T00:00:01Z"}
                             for t in ("Initialized", "ContainersReady", "Ready")]}
    return {**pod_obj, "status": status}


async def gather_in_batches(calls: list, size: int = 200) -> None:
    for start in range(0, len(calls), size):
        await asyncio.gather(*(c() for c in calls[start:start + size]))


async def controller_cpu(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="bramble-bench-hpa-"))
    try:
        async with running_master(base / "master", run_controllers=False,
                                  fsync=False) as handle:
            running = handle.running
            api = running.api  # type: ignore[union-attr]
            registry = api.registry
            deploys = registry.by_path("apps", "v1", "deployments")
            pods_rt = registry.by_path("", "v1", "pods")
            hpas = registry.by_path("autoscaling", "v2", "horizontalpodautoscalers")
            assert deploys and pods_rt and hpas
            total = args.nodes * args.pods_per_node
            per_hpa = total // args.hpas
            nodes = [f"hollow-{n}" for n in range(args.nodes)]
            t0 = time.perf_counter()
            placed: dict[str, list[tuple[str, str]]] = {n: [] for n in nodes}
            calls = []
            for h in range(args.hpas):
                app = f"app{h}"
                await api.create(Target(deploys, NS), deployment(app, per_hpa),
                                 WriteOptions(), ADMIN)
                for i in range(per_hpa):
                    name, node = f"{app}-{i}", nodes[(h * per_hpa + i) % args.nodes]
                    placed[node].append((name, app))

                    async def make(name: str = name, app: str = app, node: str = node) -> None:
                        created, _ = await api.create(Target(pods_rt, NS), pod(name, app, node),
                                                      WriteOptions(), ADMIN)
                        await api.update(Target(pods_rt, NS, name, "status"),
                                         running_status(created), WriteOptions(), ADMIN)
                    calls.append(make)
            await gather_in_batches(calls)
            for h in range(args.hpas):
                await api.create(Target(hpas, NS), autoscaler(f"app{h}", per_hpa),
                                 WriteOptions(), ADMIN)
            print(f"setup: {args.hpas} Deployments of {per_hpa} pods, {total} pods on "
                  f"{args.nodes} hollow nodes, {args.hpas} autoscalers "
                  f"({time.perf_counter() - t0:.1f} s)")

            usage = running.usage  # type: ignore[union-attr]
            assert usage is not None

            def report(millicores: int) -> None:
                # 48-52m of 100m requested: 48-52% of a 50% target, within the tolerance.
                for node, hosted in placed.items():
                    usage.record(parse_report(node, {
                        "timestamp": NOW, "window": 5.0, "interval": 3600.0,
                        "usage": {"cpu": "2", "memory": "4Gi"},
                        "pods": [{"namespace": NS, "name": name, "containers": [
                            {"name": "c", "usage": {"cpu": f"{millicores}m",
                                                    "memory": "20Mi"}}]}
                                 for name, _ in hosted]}, usage.clock()))

            controller = HorizontalPodAutoscalerController(api, usage.reports)
            keys = list(controller.initial_keys())

            async def round_cpu() -> tuple[float, float]:
                cpu, wall = time.process_time(), time.perf_counter()
                for key in keys:
                    await controller.reconcile(key)
                return time.process_time() - cpu, time.perf_counter() - wall

            report(50)
            first = await round_cpu()
            steady = [await round_cpu() for _ in range(args.rounds)]
            fresh = []
            for r in range(args.rounds):
                report(48 + 4 * (r % 2))
                fresh.append(await round_cpu())
            replicas = {api.store.get("deployments.apps", NS, f"app{h}").obj()["spec"][
                "replicas"] for h in range(args.hpas)}  # type: ignore[union-attr]
            print(f"controller CPU per sync of {args.hpas} autoscalers ({total} pods):")
            print(f"  first sync (statuses written):    {first[0]:.3f} s CPU "
                  f"({first[1]:.3f} s wall)")
            print(f"  steady sync (nothing changed):    {avg(steady, 0):.3f} s CPU "
                  f"({avg(steady, 1):.3f} s wall), mean of {args.rounds}")
            print(f"  after new usage reports (writes): {avg(fresh, 0):.3f} s CPU "
                  f"({avg(fresh, 1):.3f} s wall), mean of {args.rounds}")
            print(f"  = {avg(fresh, 0) / args.hpas * 1000:.2f} ms CPU per autoscaler per sync;"
                  f" at the 15 s sync period: {avg(fresh, 0) / 15 * 100:.1f}% of a core")
            print(f"  (replicas after: {sorted(replicas)} - no scaling, as intended)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def avg(samples: list[tuple[float, float]], i: int) -> float:
    return sum(s[i] for s in samples) / len(samples)


async def load_to_scale_up(sync_period: float) -> None:
    from tests.e2e.cluster_fixtures import (
        apps_path,
        pods_path,
        running_cluster,
        serving_pods,
        wait_for,
    )
    from tests.e2e.test_hpa import HPAS, MANIFEST, NS, replicas_at, utilization

    if shutil.which("podman") is None:
        print("load start -> first scale-up: skipped (no podman)")
        return
    base = Path(tempfile.mkdtemp(prefix="bhpa-", dir="/tmp"))
    async with running_cluster(base, nodes=1, controllers={
            "hpa_sync_period": sync_period}) as cluster:
        await cluster.namespace(NS)
        await cluster.kubectl("apply", "-n", NS, "-f", "-", stdin=MANIFEST)
        pods = await wait_for(cluster.api, pods_path(NS), "a burner pod serving",
                              serving_pods("burner", 1))
        await wait_for(cluster.api, HPAS, "a measured utilization", utilization)
        name = pods[0]["metadata"]["name"]
        await cluster.kubectl("exec", "-n", NS, name, "--", "touch", "/tmp/burn")
        started = time.perf_counter()
        await wait_for(cluster.api, apps_path(NS, "deployments"), "scaled up", replicas_at(3),
                       within=300)
        print(f"load start -> first scale-up (real agent, Podman): "
              f"{time.perf_counter() - started:.1f} s (HPA sync period {sync_period:g} s, "
              f"agent usage reports every 5 s)")
        await cluster.delete_namespace(NS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hpas", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--pods-per-node", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sync-period", type=float, default=15.0)
    parser.add_argument("--no-cluster", action="store_true",
                        help="skip the real-cluster figure (needs Podman)")
    args = parser.parse_args()
    asyncio.run(controller_cpu(args))
    if not args.no_cluster:
        asyncio.run(load_to_scale_up(args.sync_period))


if __name__ == "__main__":
    main()
