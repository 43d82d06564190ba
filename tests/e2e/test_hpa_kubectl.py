"""HorizontalPodAutoscalers with the pinned, real kubectl against a real master process:
`kubectl autoscale` (which posts protobuf), get, describe, apply of both API versions,
explain (OpenAPI v3) and `get all`. Scaling on real usage is tests/e2e/test_hpa.py's."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

from tests.e2e.test_kubectl import kc  # noqa: F401  (the kubectl fixture)

DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: busybox:1.36
            resources:
              requests: {cpu: 50m}
    """)

HPA_V1 = textwrap.dedent("""\
    apiVersion: autoscaling/v1
    kind: HorizontalPodAutoscaler
    metadata:
      name: api
    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
      minReplicas: 2
      maxReplicas: 4
      targetCPUUtilizationPercentage: 70
    """)

HPA_V2 = textwrap.dedent("""\
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata:
      name: mem
    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: mem}
      maxReplicas: 3
      metrics:
      - type: Resource
        resource:
          name: memory
          target: {type: AverageValue, averageValue: 100Mi}
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 60
    """)


def _eventually(check, within: float = 30.0):  # type: ignore[no-untyped-def]
    """Poll `check` until it returns something truthy; `within` bounds a hang only."""
    deadline = time.monotonic() + within
    while True:
        if result := check():
            return result
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_kubectl_autoscale_get_and_describe(kc, tmp_path: Path) -> None:  # noqa: F811
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOYMENT)
    kc("apply", "-f", str(manifest))
    # kubectl autoscale sends its object as protobuf only (autoscaling/v2 first).
    out = kc("autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=5").stdout
    assert out.strip() == "horizontalpodautoscaler.autoscaling/web autoscaled"
    lines = kc("get", "hpa").stdout.strip().splitlines()
    assert lines[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS",
                                "REPLICAS", "AGE"]
    assert lines[1].split()[:6] == ["web", "Deployment/web", "cpu:", "<unknown>/50%", "1", "5"]
    # No usage reports in this cluster: describe says why, with the events.
    def explained() -> str | None:
        text = kc("describe", "hpa", "web").stdout
        return text if "FailedComputeMetricsReplicas" in text else None
    described = _eventually(explained)
    for expected in ("Reference:", "Deployment/web",
                     "resource cpu on pods  (as a percentage of request):  <unknown> / 50%",
                     "Min replicas:", "Max replicas:", "AbleToScale", "SucceededGetScale",
                     "ScalingActive", "the HPA was unable to compute the replica count",
                     "horizontal-pod-autoscaler", "FailedComputeMetricsReplicas"):
        assert expected in described, (expected, described)
    hpa = json.loads(kc("get", "hpa", "web", "-o", "json").stdout)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    everything = kc("get", "all").stdout
    assert "horizontalpodautoscaler.autoscaling/web" in everything
    kc("delete", "hpa", "web")


def test_kubectl_apply_both_versions_and_explain(kc, tmp_path: Path) -> None:  # noqa: F811
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(HPA_V1)
    v2.write_text(HPA_V2)
    assert "horizontalpodautoscaler.autoscaling/api created" in kc("apply", "-f", str(v1)).stdout
    assert "horizontalpodautoscaler.autoscaling/mem created" in kc("apply", "-f", str(v2)).stdout
    assert "unchanged" in kc("apply", "-f", str(v1)).stdout
    assert "unchanged" in kc("apply", "-f", str(v2)).stdout
    v1.write_text(HPA_V1.replace("maxReplicas: 4", "maxReplicas: 6"))
    assert "configured" in kc("apply", "-f", str(v1)).stdout
    api = json.loads(kc("get", "hpa", "api", "-o", "json").stdout)
    assert api["spec"]["maxReplicas"] == 6
    assert api["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    mem = json.loads(kc("get", "hpa", "mem", "-o", "json").stdout)
    assert mem["spec"]["minReplicas"] == 1  # defaulted
    assert mem["spec"]["behavior"]["scaleUp"]["policies"][0] == {
        "type": "Pods", "value": 4, "periodSeconds": 15}
    rows = kc("get", "hpa", "mem").stdout
    assert "memory: <unknown>/100Mi" in rows
    # Server-side validation through OpenAPI v3: an unknown field is refused.
    bad = tmp_path / "bad.yaml"
    bad.write_text(HPA_V2.replace("maxReplicas: 3", "maxReplicas: 3\n  maxPods: 3"))
    refused = kc("apply", "-f", str(bad), check=False)
    assert refused.returncode != 0 and "maxPods" in refused.stderr
    explained = kc("explain", "hpa.spec.behavior.scaleDown").stdout
    assert "stabilizationWindowSeconds" in explained and "policies" in explained
    kc("delete", "hpa", "api", "mem")
