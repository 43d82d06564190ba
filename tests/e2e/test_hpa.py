"""A HorizontalPodAutoscaler on a real cluster: `bramble master` and a `bramble node` agent
as processes, real Podman, real CPU load (tests/e2e/cluster_fixtures.py).

The Deployment's busybox pods (50m requested, at most 100m) burn CPU while /tmp/burn
exists in them and sleep otherwise; the test switches the load with `kubectl exec`. The
agent measures the pods' usage and posts it with its heartbeat, the master's autoscaler
reads it (what `kubectl top pods` shows): one burning pod is 200% of its request against a
50% target, so it scales straight to maxReplicas (3) - and stays there, as the average over
the three is still above target. When the load stops it comes back to minReplicas once
the downscale stabilisation window passed, shortened here by configuration (`bramble
master --hpa-downscale-stabilization 10 --hpa-sync-period 2`), not by faking time.
"""

from __future__ import annotations

import asyncio
import shutil
import textwrap
import time

import pytest

from tests.e2e.cluster_fixtures import (
    Obj,
    apps_path,
    pods_path,
    running_cluster,
    serving_pods,
    wait_for,
)
from tests.images import BUSYBOX_IMAGE
from tests.node.conftest import short_dir

NS = "hpa-e2e"
HPAS = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
SETTINGS = {"hpa_sync_period": 2, "hpa_downscale_stabilization": 10}

MANIFEST = textwrap.dedent(f"""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: burner
    spec:
      selector:
        matchLabels: {{app: burner}}
      template:
        metadata:
          labels: {{app: burner}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: burner
            image: {BUSYBOX_IMAGE}
            imagePullPolicy: Never
            resources:
              requests: {{cpu: 50m}}
              limits: {{cpu: 100m}}
            command: [sh, -c, "while true; do if [ -e /tmp/burn ]; then i=0;
                               while [ $i -lt 20000 ]; do i=$((i+1)); done;
                               else sleep 1; fi; done"]
    ---
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata:
      name: burner
    spec:
      scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: burner}}
      minReplicas: 1
      maxReplicas: 3
      metrics:
      - type: Resource
        resource:
          name: cpu
          target: {{type: Utilization, averageUtilization: 50}}
    """)


def replicas_at(count: int):  # type: ignore[no-untyped-def]
    def check(deploys: dict[str, Obj]) -> Obj | None:
        d = deploys.get("burner")
        return d if d is not None and d["spec"]["replicas"] == count else None
    return check


def utilization(hpas: dict[str, Obj]) -> int | None:
    for metric in (hpas.get("burner", {}).get("status") or {}).get("currentMetrics") or []:
        current = (metric.get("resource") or {}).get("current") or {}
        if current.get("averageUtilization") is not None:
            return current["averageUtilization"] + 1  # truthy even at 0%
    return None


async def test_hpa_scales_on_real_cpu_load(tmp_path_factory: pytest.TempPathFactory) -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    async with running_cluster(short_dir(tmp_path_factory, "hpa"), nodes=1,
                               controllers=SETTINGS) as cluster:
        api, kubectl = cluster.api, cluster.kubectl
        await cluster.namespace(NS)
        await kubectl("apply", "-n", NS, "-f", "-", stdin=MANIFEST)
        pods = await wait_for(api, pods_path(NS), "one burner pod serving",
                              serving_pods("burner", 1))
        first = pods[0]["metadata"]["name"]
        # Idle, the usage pipeline works: the autoscaler sees (about) 0%.
        await wait_for(api, HPAS, "a measured utilization", utilization)
        out = (await kubectl("get", "hpa", "-n", NS)).out
        assert "Deployment/burner" in out and "/50%" in out and "<unknown>" not in out

        await kubectl("exec", "-n", NS, first, "--", "touch", "/tmp/burn")
        loaded = time.monotonic()
        await wait_for(api, apps_path(NS, "deployments"), "scaled to maxReplicas 3",
                       replicas_at(3))
        print(f"\nload start -> scaled up: {time.monotonic() - loaded:.1f} s")
        await wait_for(api, pods_path(NS), "three burner pods serving",
                       serving_pods("burner", 3))
        row = (await kubectl("get", "hpa", "burner", "-n", NS, "--no-headers")).out.split()
        assert row[:2] == ["burner", "Deployment/burner"] and row[2] == "cpu:", row
        assert int(row[3].split("%")[0]) > 50, row  # above the target while loaded

        await kubectl("exec", "-n", NS, first, "--", "rm", "/tmp/burn")
        stopped = time.monotonic()
        await wait_for(api, apps_path(NS, "deployments"), "back to minReplicas 1",
                       replicas_at(1))
        print(f"load stop -> scaled down: {time.monotonic() - stopped:.1f} s "
              f"(window {SETTINGS['hpa_downscale_stabilization']} s)")
        described = (await kubectl("describe", "hpa", "burner", "-n", NS)).out
        assert "New size: 3; reason: cpu resource utilization (percentage of request) " \
               "above target" in described
        assert "New size: 1; reason: All metrics below target" in described
        await asyncio.wait_for(cluster.delete_namespace(NS), 120)
