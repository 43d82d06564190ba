"""Node failover and rolling update on a real cluster: prints figures, asserts nothing.

A real `bramble master` process (fresh data dir, TLS, fsync on, the default
ControllerSettings) and two real `bramble node` agent processes on one machine, each with
its own Podman service and storage (tests/e2e/cluster_fixtures.py), the busybox test
image pushed to both.

Failover, `--runs` times: a Deployment of `--replicas` pods (sleep, no probe) spread by the
scheduler over both nodes; at a random moment of the agent's Lease renewal cycle the
second agent is killed with SIGKILL (a Pi losing power: its containers keep running).
Measured from a watch, in seconds after the kill:
  unknown  - the node's Ready condition turned Unknown (and it got tainted),
  evicted  - its pods were marked for deletion,
  created  - their replacements all existed,
  bound    - ... were all bound to the surviving node,
  ready    - all `--replicas` pods Running and Ready on the surviving node (the figure).
Between runs the killed agent is started again on the same data dir (it stops its stale
pods) and the Deployment is deleted.

Rolling update, `--rollout-runs` times: a Deployment of `--rollout-replicas` pods (default
strategy: 25% surge, 25% unavailable) on both nodes changes image; printed is the wall time
from the template change to the rollout complete (as `kubectl rollout status` decides).

    python tests/bench/bench_failover.py [--replicas 4] [--runs 5] [--rollout-replicas 10]
        [--grace S] [--eviction S]

The last two try other tunings than the defaults (ControllerSettings.node_monitor_grace
and default_eviction_seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.client import MERGE_PATCH  # noqa: E402
from bramble.master.controllers import ControllerSettings  # noqa: E402
from bramble.node.status import Intervals  # noqa: E402
from tests.e2e.cluster_fixtures import (  # noqa: E402
    IMAGE_V2,
    NODES,
    Cluster,
    Obj,
    apps_path,
    condition,
    live,
    pods_path,
    rolled_out,
    running_cluster,
    serving,
    serving_pods,
    terminating,
    wait_for,
)
from tests.images import BUSYBOX_IMAGE  # noqa: E402

NS = "default"
LEASE_RENEW = Intervals().lease_renew  # how often an agent renews its Lease

DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {name}
    spec:
      replicas: {replicas}
      selector:
        matchLabels: {{app: {name}}}
      template:
        metadata:
          labels: {{app: {name}}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: {image}
            imagePullPolicy: Never
            command: [sleep, "3600"]
    """)


class Milestones:
    """Seconds after `t0` at which each step of a failover was first seen."""

    def __init__(self, t0: float, lost: set[str], replicas: int, survivor: str) -> None:
        self.t0, self.lost, self.replicas, self.survivor = t0, lost, replicas, survivor
        self.at: dict[str, float] = {}

    def mark(self, step: str) -> None:
        self.at.setdefault(step, time.monotonic() - self.t0)

    def pods(self, pods: dict[str, Obj]) -> bool:
        by_uid = {p["metadata"]["uid"]: p for p in pods.values()}
        if any(terminating(by_uid[u]) for u in self.lost if u in by_uid):
            self.mark("evicted")
        alive = live(pods)
        new = [p for p in alive if p["metadata"]["uid"] not in self.lost]
        if len(new) == self.replicas and "evicted" in self.at:
            self.mark("created")
            if all(p["spec"].get("nodeName") == self.survivor for p in new):
                self.mark("bound")
                if all(serving(p) for p in new):
                    self.mark("ready")
                    return True
        return False

    def node(self, victim: str) -> Any:
        def check(nodes: dict[str, Obj]) -> bool:
            if condition(nodes[victim], "Ready").get("status") != "True":
                self.mark("unknown")
                return True
            return False
        return check


async def deploy(c: Cluster, name: str, replicas: int, image: str = BUSYBOX_IMAGE) -> None:
    await c.kubectl("apply", "-n", NS, "-f", "-", stdin=DEPLOYMENT.format(
        name=name, replicas=replicas, image=image))
    await wait_for(c.api, pods_path(NS), f"{replicas} {name} pods serving",
                   serving_pods(name, replicas))


async def remove(c: Cluster, name: str) -> None:
    await c.api.request("DELETE", f"{apps_path(NS, 'deployments')}/{name}")
    await wait_for(c.api, pods_path(NS), f"no {name} pods left",
                   lambda ps: not any(p["metadata"]["labels"].get("app") == name
                                      for p in ps.values()))


async def failover_run(c: Cluster, run: int, replicas: int) -> dict[str, float]:
    survivor, victim = c.nodes
    name = f"fo-{run}"
    await deploy(c, name, replicas)
    pods = (await c.api.request("GET", pods_path(NS), params={"labelSelector": f"app={name}"}))
    lost = {p["metadata"]["uid"] for p in pods["items"]
            if p["spec"]["nodeName"] == victim.name}
    if not lost:
        raise RuntimeError(f"run {run}: the scheduler put no pod on {victim.name}")
    # Power goes at a random moment of the agent's Lease renewal cycle.
    await asyncio.sleep(random.uniform(0, LEASE_RENEW))
    t0 = time.monotonic()
    victim.kill()
    steps = Milestones(t0, lost, replicas, survivor.name)
    node_seen = asyncio.create_task(wait_for(c.api, NODES, "the node Unknown",
                                             steps.node(victim.name)), name="watch-node")
    try:
        await wait_for(c.api, pods_path(NS), "replacements serving", steps.pods,
                       params={"labelSelector": f"app={name}"})
        await node_seen
    finally:
        node_seen.cancel()
        await asyncio.gather(node_seen, return_exceptions=True)
    # The Pi comes back: its agent stops the stale pods; then the next run starts clean.
    await c.start_node(victim)
    await remove(c, name)
    return {**steps.at, "lost": float(len(lost))}


async def rollout_run(c: Cluster, name: str, replicas: int, image: str) -> float:
    t0 = time.monotonic()
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}
    # A merge patch replaces the containers list: give the whole container.
    patch["spec"]["template"]["spec"]["containers"][0].update(
        {"imagePullPolicy": "Never", "command": ["sleep", "3600"]})
    await c.api.request("PATCH", f"{apps_path(NS, 'deployments')}/{name}", json=patch,
                        content_type=MERGE_PATCH)
    # Listed after the patch: the new generation must be observed before it counts.
    await wait_for(c.api, apps_path(NS, "deployments"), f"{name} rolled out to {image}",
                   rolled_out(name, replicas))
    return time.monotonic() - t0


async def main(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="bf-"))
    defaults = ControllerSettings()
    controllers = {k: v for k, v in (("node_monitor_grace", args.grace),
                                     ("default_eviction_seconds", args.eviction))
                   if v is not None}
    async with running_cluster(base, controllers=controllers) as c:
        print(f"master + 2 agents (processes, real Podman); Lease renewed every "
              f"{LEASE_RENEW:g} s, node_monitor_grace "
              f"{controllers.get('node_monitor_grace', defaults.node_monitor_grace):g} s, "
              f"default_eviction_seconds "
              f"{controllers.get('default_eviction_seconds', defaults.default_eviction_seconds)}",
              flush=True)
        print(f"failover: {args.replicas} replicas, kill -9 of one agent "
              f"(seconds after the kill)", flush=True)
        steps = ("unknown", "evicted", "created", "bound", "ready")
        print("run  " + "  ".join(f"{s:>7}" for s in steps) + "  lost", flush=True)
        results = []
        for run in range(1, args.runs + 1):
            r = await failover_run(c, run, args.replicas)
            results.append(r)
            print(f"{run:>3}  " + "  ".join(f"{r.get(s, float('nan')):7.2f}" for s in steps)
                  + f"  {int(r['lost']):>4}", flush=True)
        for s in steps:
            print(f"median {s:>7}: {statistics.median(r[s] for r in results):6.2f} s")
        ready = [r["ready"] for r in results]
        print(f"node loss -> replacements Running and Ready: median "
              f"{statistics.median(ready):.2f} s (min {min(ready):.2f}, max {max(ready):.2f}; "
              f"target <= 15 s, stretch 10 s)", flush=True)

        n = args.rollout_replicas
        await deploy(c, "roll", n)
        times = []
        for i in range(args.rollout_runs):
            image = IMAGE_V2 if i % 2 == 0 else BUSYBOX_IMAGE
            times.append(await rollout_run(c, "roll", n, image))
            print(f"rolling update of {n} replicas to {image}: {times[-1]:.2f} s", flush=True)
        print(f"rolling update of {n} replicas: median {statistics.median(times):.2f} s "
              f"(template change -> rollout complete)", flush=True)
        await remove(c, "roll")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rollout-replicas", type=int, default=10)
    parser.add_argument("--rollout-runs", type=int, default=3)
    parser.add_argument("--grace", type=float, help="node_monitor_grace (s)")
    parser.add_argument("--eviction", type=int, help="default_eviction_seconds")
    asyncio.run(main(parser.parse_args()))
