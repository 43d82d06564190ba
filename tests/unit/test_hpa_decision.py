"""The HorizontalPodAutoscaler's decision (master/controllers/autoscale.py), table-driven.

Cases follow kube-controller-manager's replica_calculator_test.go / horizontal_test.go;
each comment shows the arithmetic: utilization = sum(usage)*100 // sum(requests) (integer),
ratio = utilization / target, replicas = ceil(ratio * pods).
"""

from __future__ import annotations

import pytest

from bramble.master.controllers import autoscale as hpa
from bramble.master.controllers.autoscale import (
    History,
    MetricError,
    Pod,
    Sample,
    ScaleEvent,
    Tunables,
)

NOW = 1_000_000.0
OLD = NOW - 3600  # started long ago: past the cpu initialisation period
T = Tunables()


def pod(name: str, cpu: int = 1000, *, phase: str = "Running", ready: str = "True",
        ready_at: float = OLD, started: float | None = OLD, deleting: bool = False,
        memory: int | None = None) -> Pod:
    requests = {"cpu": cpu} if cpu else {}
    if memory is not None:
        requests["memory"] = memory
    return Pod(name, phase, deleting, started, (ready, ready_at) if ready else None,
               (("c", requests),))


def sample(cpu: int | None = None, memory: int | None = None, at: float = NOW - 1,
           window: float = 5.0) -> Sample:
    usage = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return Sample(at, window, {"c": usage})


def pods_and_samples(usages: list[int | None], request: int = 1000):
    pods = [pod(f"p{i}", request) for i in range(len(usages))]
    samples = {f"p{i}": sample(u) for i, u in enumerate(usages) if u is not None}
    return pods, samples


# --- the replica calculator ------------------------------------------------------------------

@pytest.mark.parametrize(("usages", "target", "current", "expected"), [
    # 1500*100//3000 = 50%; 50/30 = 1.67; ceil(1.67*3) = 5
    ([300, 500, 700], 30, 3, (5, 50, 500)),
    # 1400*100//5000 = 28%; 28/50 = 0.56; ceil(0.56*5) = ceil(2.8) = 3
    ([100, 300, 500, 250, 250], 50, 5, (3, 28, 280)),
    # 3060*100//3000 = 102%; 102/100 = 1.02: within the 10% tolerance, stays 3
    ([1010, 1030, 1020], 100, 3, (3, 102, 1020)),
    # 1100*100//1000 = 110%; 1.1 is exactly on the tolerance edge: stays
    ([1100], 100, 1, (1, 110, 1100)),
    # 1110*100//1000 = 111%; 1.11 > 1.1: ceil(1.11*1) = 2
    ([1110], 100, 1, (2, 111, 1110)),
    # 0 usage: 0%; ratio 0; ceil(0*2) = 0 (the clamp to minReplicas comes later)
    ([0, 0], 50, 2, (0, 0, 0)),
    # Missing sample while scaling up: 2700*100//3000 = 90%, 90/50 = 1.8 > 1, so the
    # missing pod counts 0: 2700*100//4000 = 67%, 67/50 = 1.34, ceil(1.34*4) = 6
    ([900, 900, 900, None], 50, 4, (6, 90, 900)),
    # Missing sample while scaling down: 300*100//3000 = 10%, 0.2 < 1, so the missing pod
    # counts its full request: 1300*100//4000 = 32%, 0.64, ceil(0.64*4) = 3
    ([100, 100, 100, None], 50, 4, (3, 10, 100)),
    # Missing sample flips direction: 600*100//1000 = 60%, 60/50 = 1.2 > 1; missing at 0:
    # 600*100//2000 = 30%, 0.6 < 1: the direction changed, so no change (stays 2)
    ([600, None], 50, 2, (2, 60, 600)),
])
def test_resource_replicas(usages: list[int | None], target: int, current: int,
                           expected: tuple[int, int, int]) -> None:
    pods, samples = pods_and_samples(usages)
    assert hpa.resource_replicas(current, target, "cpu", pods, samples, NOW, T) == expected


def test_unready_pods_count_zero_on_scale_up() -> None:
    # p0, p1 ready at 900m; p2 pending (unready). 1800*100//2000 = 90%, 90/50 = 1.8 > 1 with
    # an unready pod: it counts 0: 1800*100//3000 = 60%, 1.2, ceil(1.2*3) = ceil(3.6) = 4
    pods = [pod("p0"), pod("p1"), pod("p2", phase="Pending")]
    samples = {"p0": sample(900), "p1": sample(900), "p2": sample(900)}
    assert hpa.resource_replicas(3, 50, "cpu", pods, samples, NOW, T) == (4, 90, 900)


def test_unready_pods_are_left_out_on_scale_down() -> None:
    # 200*100//2000 = 10%, 0.2 < 1: unready pods are not rebalanced; ceil(0.2*2) = 1
    pods = [pod("p0"), pod("p1"), pod("p2", phase="Pending")]
    samples = {"p0": sample(100), "p1": sample(100)}
    assert hpa.resource_replicas(3, 50, "cpu", pods, samples, NOW, T) == (1, 10, 100)


@pytest.mark.parametrize(("ready", "ready_at", "started", "sampled", "unready"), [
    # Started 10 s ago (in the 300 s initialisation period), ready 5 s ago, sampled 1 s
    # ago over a 5 s window: the window began before readiness -> unready.
    ("True", NOW - 5, NOW - 10, NOW - 1, True),
    # Ready 20 s ago: a whole window since -> counts.
    ("True", NOW - 20, NOW - 30, NOW - 1, False),
    # Not ready while initialising -> unready.
    ("False", NOW - 20, NOW - 30, NOW - 1, True),
    # Started an hour ago, not ready, but it was ready once (transition long after the
    # start + 30 s readiness delay) -> counts.
    ("False", NOW - 60, OLD, NOW - 1, False),
    # Started an hour ago, not ready and never ready (transition within 30 s of start).
    ("False", OLD + 10, OLD, NOW - 1, True),
    # No Ready condition at all -> unready.
    ("", 0.0, OLD, NOW - 1, True),
])
def test_cpu_readiness_window(ready: str, ready_at: float, started: float, sampled: float,
                              unready: bool) -> None:
    p = pod("p", ready=ready, ready_at=ready_at, started=started)
    metrics = {"p": hpa.PodMetric(500, sampled, 5.0)}
    groups = hpa.group_pods([p], metrics, "cpu", NOW, T)
    assert ("p" in groups.unready) is unready
    # Readiness matters only for cpu.
    assert not hpa.group_pods([p], metrics, "memory", NOW, T).unready


def test_deleted_and_failed_pods_are_ignored() -> None:
    pods = [pod("a", deleting=True), pod("b", phase="Failed"), pod("c")]
    metrics = {n: hpa.PodMetric(1, NOW - 1, 5.0) for n in "abc"}
    groups = hpa.group_pods(pods, metrics, "cpu", NOW, T)
    assert groups.ignored == {"a", "b"} and groups.ready == 1


def test_raw_average_value() -> None:
    mib = 1024 * 1024 * 1000  # one MiB in milli-bytes
    pods = [pod("a", memory=64 * mib), pod("b", memory=64 * mib)]
    samples = {"a": sample(memory=150 * mib), "b": sample(memory=150 * mib)}
    # average 150Mi against 100Mi: 1.5, ceil(1.5*2) = 3
    assert hpa.raw_resource_replicas(2, 100 * mib, "memory", pods, samples, NOW, T) == \
        (3, 150 * mib)
    # Missing while scaling down counts exactly the target: (50Mi + 100Mi)/2 = 75Mi,
    # 0.75, ceil(0.75*2) = 2: no change in the end.
    assert hpa.raw_resource_replicas(2, 100 * mib, "memory", pods,
                                     {"a": sample(memory=50 * mib)}, NOW, T) == (2, 50 * mib)


@pytest.mark.parametrize(("pods", "samples", "message"), [
    ([pod("a")], {}, "unable to get metrics for resource cpu: no metrics returned from "
                     "resource metrics API"),
    ([], {"a": sample(1)}, "no pods returned by selector while calculating replica count"),
    ([pod("a", phase="Pending")], {"a": sample(1)},
     "did not receive metrics for targeted pods (pods might be unready)"),
    ([pod("a", cpu=0)], {"a": sample(1)}, "missing request for cpu in container c of Pod a"),
])
def test_calculator_errors(pods: list[Pod], samples: dict, message: str) -> None:
    with pytest.raises(MetricError) as err:
        hpa.resource_replicas(1, 50, "cpu", pods, samples, NOW, T)
    assert str(err.value) == message


def test_pod_metrics_need_every_container() -> None:
    two = Sample(NOW, 5.0, {"a": {"cpu": 100}, "b": {"memory": 5}})
    assert hpa.pod_metrics({"p": two}, "cpu") == {}
    assert hpa.pod_metrics({"p": two}, "cpu", container="a")["p"].value == 100


def test_pod_of_reads_requests_readiness_and_sidecars() -> None:
    p = hpa.pod_of({
        "metadata": {"name": "web-1"},
        "spec": {"containers": [{"name": "web", "resources": {"requests": {"cpu": "50m"}}}],
                 "initContainers": [
                     {"name": "side", "restartPolicy": "Always",
                      "resources": {"requests": {"cpu": "0.1"}}},
                     {"name": "init", "resources": {"requests": {"cpu": "1"}}}]},
        "status": {"phase": "Running", "startTime": "1970-01-12T13:46:40Z",
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "1970-01-12T13:46:50Z"}]}})
    assert p.requests == (("web", {"cpu": 50}), ("side", {"cpu": 100}))
    assert p.start_time == 1_000_000.0 and p.ready == ("True", 1_000_010.0)
    assert hpa.pod_requests([p], "cpu") == {"web-1": 150}


# --- normalisation without behavior ----------------------------------------------------------

@pytest.mark.parametrize(("current", "desired", "minimum", "maximum", "expected"), [
    # scale-up limit max(2*2, 4) = 4 < maxReplicas 20
    (2, 10, 1, 20, (4, "ScaleUpLimit")),
    # limit max(2*3, 4) = 6, maxReplicas 5 is lower
    (3, 10, 1, 5, (5, "TooManyReplicas")),
    (3, 0, 1, 5, (1, "TooFewReplicas")),
    (3, 4, 1, 5, (4, "DesiredWithinRange")),
    # limit max(2*10, 4) = 20 >= 15
    (10, 15, 1, 100, (15, "DesiredWithinRange")),
])
def test_convert_with_rules(current: int, desired: int, minimum: int, maximum: int,
                            expected: tuple[int, str]) -> None:
    replicas, reason, _ = hpa.convert_with_rules(current, desired, minimum, maximum)
    assert (replicas, reason) == expected


def test_stabilize_keeps_highest_recent_and_recycles_the_old_slot() -> None:
    history = History(recommendations=((NOW - 400, 10), (NOW - 100, 8), (NOW - 50, 6)))
    highest, after = hpa.stabilize(history, NOW, 300, 2)
    # 10 is older than the 300 s window; of 8, 6 and the new 2 the highest is 8.
    assert highest == 8
    assert after.recommendations == ((NOW, 2), (NOW - 100, 8), (NOW - 50, 6))
    # Once everything higher has aged out, the new recommendation stands.
    assert hpa.stabilize(after, NOW + 301, 300, 2)[0] == 2


# --- behavior ---------------------------------------------------------------------------------

UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
    {"type": "Pods", "value": 4, "periodSeconds": 15},
    {"type": "Percent", "value": 100, "periodSeconds": 15}]}
DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100,
                                             "periodSeconds": 15}]}


@pytest.mark.parametrize(("current", "rules", "ups", "downs", "expected"), [
    # max(4 + 4, ceil(4 * 2)) = 8
    (4, UP, (), (), 8),
    # Min instead: min(1 + 4, ceil(1 * 2)) = 2
    (1, {**UP, "selectPolicy": "Min"}, (), (), 2),
    # 4 added 10 s ago: the period started at 8 - 4 = 4: max(4 + 4, 8) = 8 (no more now)
    (8, UP, (ScaleEvent(NOW - 10, 4),), (), 8),
    # ... and 20 s ago it is outside the 15 s period: max(8 + 4, 16) = 16
    (8, UP, (ScaleEvent(NOW - 20, 4),), (), 16),
    # 3 removed 5 s ago count back: start 5 + 3 = 8: max(12, 16) = 16
    (5, UP, (), (ScaleEvent(NOW - 5, 3),), 16),
    # ceil(3 * 1.1) = ceil(3.3) = 4: a percentage always adds at least one
    (3, {"policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}, (), (), 4),
    (3, {**UP, "selectPolicy": "Disabled"}, (), (), 3),
])
def test_scale_up_limit(current: int, rules: dict, ups: tuple, downs: tuple,
                        expected: int) -> None:
    history = History(scale_up_events=ups, scale_down_events=downs)
    assert hpa.scale_up_limit(current, history, rules, NOW) == expected


@pytest.mark.parametrize(("current", "rules", "downs", "expected"), [
    # int(10 * (1 - 1.0)) = 0: everything may go at once
    (10, DOWN, (), 0),
    # int(10 * 0.9) = 9 (truncated)
    (10, {"policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}, (), 9),
    # one pod per minute: 5 - 1 = 4 ...
    (5, {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}, (), 4),
    # ... but one went 30 s ago: the period started at 6: 6 - 1 = 5, no further now
    (5, {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
     (ScaleEvent(NOW - 30, 1),), 5),
    # Min picks the smallest change, i.e. the most replicas: max(10-2, int(10*0.5)) = 8
    (10, {"selectPolicy": "Min", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60},
                                              {"type": "Percent", "value": 50,
                                               "periodSeconds": 60}]}, (), 8),
    (10, {**DOWN, "selectPolicy": "Disabled"}, (), 10),
])
def test_scale_down_limit(current: int, rules: dict, downs: tuple, expected: int) -> None:
    assert hpa.scale_down_limit(current, History(scale_down_events=downs), rules, NOW) == \
        expected


@pytest.mark.parametrize(("current", "desired", "behavior", "events", "expected"), [
    (2, 20, {"scaleUp": UP, "scaleDown": DOWN}, (), (6, "ScaleUpLimit")),  # max(2+4, 4)
    (2, 5, {"scaleUp": UP, "scaleDown": DOWN}, (), (5, "DesiredWithinRange")),
    (2, 9, {"scaleUp": {**UP, "policies": [{"type": "Pods", "value": 100,
                                            "periodSeconds": 15}]}, "scaleDown": DOWN}, (),
     (8, "TooManyReplicas")),
    (5, 0, {"scaleUp": UP, "scaleDown": DOWN}, (), (1, "TooFewReplicas")),
    (5, 1, {"scaleUp": UP, "scaleDown": {"policies": [
        {"type": "Pods", "value": 1, "periodSeconds": 60}]}}, (), (4, "ScaleDownLimit")),
])
def test_convert_with_behavior_rate(current: int, desired: int, behavior: dict,
                                    events: tuple, expected: tuple[int, str]) -> None:
    replicas, reason, _ = hpa.convert_with_behavior_rate(current, desired, 1, 8, behavior,
                                                         History(), NOW)
    assert (replicas, reason) == expected


def test_stabilize_with_behaviors() -> None:
    history = History(recommendations=((NOW - 100, 5), (NOW - 20, 3)))
    # Scaling down to 2 within a 300 s window that saw 5: stay at 5.
    rec, reason, _, after = hpa.stabilize_with_behaviors(history, NOW, 5, 2, 0, 300)
    assert (rec, reason) == (5, "ScaleDownStabilized")
    assert after.recommendations[-1] == (NOW, 2)
    # Scaling up to 9 with a 60 s up-window that saw 3: the lowest recent, 3, but never
    # below the current 5.
    rec, reason, _, _ = hpa.stabilize_with_behaviors(history, NOW, 5, 9, 60, 0)
    assert (rec, reason) == (5, "ScaleUpStabilized")


def test_record_scale_reuses_outdated_slots() -> None:
    behavior = {"scaleUp": UP, "scaleDown": DOWN}
    h = hpa.record_scale(History(), behavior, 2, 6, NOW - 100)
    assert h.scale_up_events == (ScaleEvent(NOW - 100, 4),)
    # 100 s later the 15 s policies no longer need it: its slot is reused.
    h = hpa.record_scale(h, behavior, 6, 8, NOW)
    assert h.scale_up_events == (ScaleEvent(NOW, 2),)
    h = hpa.record_scale(h, behavior, 8, 3, NOW)
    assert h.scale_down_events == (ScaleEvent(NOW, 5),)
    assert hpa.record_scale(History(), None, 1, 5, NOW) == History()


# --- one sync: decide() -----------------------------------------------------------------------

def autoscaler(min_replicas: int | None = 1, max_replicas: int = 5, target: int = 50,
               behavior: dict | None = None, status: dict | None = None) -> dict:
    spec: dict = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "web"},
                  "maxReplicas": max_replicas,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                      "type": "Utilization", "averageUtilization": target}}}]}
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    if behavior is not None:
        spec["behavior"] = behavior
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": spec,
            "status": status or {}}


def scale(replicas: int, selector: str = "app=web") -> dict:
    return {"spec": {"replicas": replicas}, "status": {"replicas": replicas,
                                                       "selector": selector}}


def conditions(decision: hpa.Decision) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in decision.conditions}


def test_decide_scales_up_and_explains() -> None:
    # 2 pods at 90% of 1000m against 50%: 1.8 -> ceil(3.6) = 4, within the limit max(4, 4)
    pods, samples = pods_and_samples([900, 900])
    d = hpa.decide(autoscaler(), scale(2), pods, samples, History(), NOW)
    assert (d.current, d.desired, d.rescale) == (2, 4, True)
    assert d.reason == "cpu resource utilization (percentage of request) above target"
    assert conditions(d) == {"AbleToScale": ("True", "ReadyForNewScale"),
                             "ScalingActive": ("True", "ValidMetricFound"),
                             "ScalingLimited": ("False", "DesiredWithinRange")}
    assert d.metrics == [{"type": "Resource", "resource": {"name": "cpu", "current": {
        "averageUtilization": 90, "averageValue": "900m"}}}]
    done, event = hpa.after_rescale(autoscaler(), d, NOW, None)
    assert event == ("Normal", "SuccessfulRescale", "New size: 4; reason: cpu resource "
                     "utilization (percentage of request) above target")
    assert conditions(done)["AbleToScale"] == ("True", "SucceededRescale")
    status = hpa.status_after(autoscaler(), done, NOW)
    assert status["currentReplicas"] == 2 and status["desiredReplicas"] == 4
    assert status["lastScaleTime"] == hpa.rfc3339(NOW)
    # A refused write: FailedUpdateScale, and the status keeps its last desired count.
    failed, event = hpa.after_rescale(autoscaler(status={"desiredReplicas": 2}), d, NOW,
                                      "forbidden")
    assert event == ("Warning", "FailedRescale", "New size: 4; reason: cpu resource "
                     "utilization (percentage of request) above target; error: forbidden")
    assert conditions(failed)["AbleToScale"] == ("False", "FailedUpdateScale")
    assert "lastScaleTime" not in hpa.status_after(autoscaler(), failed, NOW)
    assert failed.desired == 2


def test_decide_clamps_to_max_with_scaling_limited() -> None:
    # 3 pods at 100% against 50%: ceil(2*3) = 6 > maxReplicas 5
    pods, samples = pods_and_samples([1000, 1000, 1000])
    d = hpa.decide(autoscaler(), scale(3), pods, samples, History(), NOW)
    assert d.desired == 5
    assert conditions(d)["ScalingLimited"] == ("True", "TooManyReplicas")


def test_decide_scale_down_waits_for_the_stabilisation_window() -> None:
    pods, samples = pods_and_samples([900, 900, 900, 900])
    d = hpa.decide(autoscaler(), scale(4), pods, samples, History(), NOW)
    assert d.desired == 5  # ceil(1.8*4) = 8, clamped to 5
    idle = {n: sample(0) for n in samples}
    later = hpa.decide(autoscaler(), scale(5), pods + [pod("p4")], {**idle, "p4": sample(0)},
                       d.history, NOW + 60, Tunables(downscale_stabilization=300))
    # The metric says 0 (-> minReplicas 1), but 5 was recommended 60 s ago: stay.
    assert (later.desired, later.rescale) == (5, False)
    assert conditions(later)["AbleToScale"] == ("True", "ScaleDownStabilized")
    # With a 10 s window the same sync scales down to minReplicas.
    short = hpa.decide(autoscaler(), scale(5), pods + [pod("p4")], {**idle, "p4": sample(0)},
                       d.history, NOW + 60, Tunables(downscale_stabilization=10))
    assert (short.desired, short.reason) == (1, "All metrics below target")
    assert conditions(short)["ScalingLimited"] == ("True", "TooFewReplicas")


@pytest.mark.parametrize(("current", "minimum", "desired", "rescale", "reason"), [
    (0, 1, 0, False, ""),  # scaled to zero by hand: autoscaling disabled
    (9, 1, 5, True, "Current number of replicas above Spec.MaxReplicas"),
    (1, 2, 2, True, "Current number of replicas below Spec.MinReplicas"),
])
def test_decide_outside_the_range(current: int, minimum: int, desired: int, rescale: bool,
                                  reason: str) -> None:
    d = hpa.decide(autoscaler(min_replicas=minimum), scale(current), [], {}, History(), NOW)
    assert (d.desired, d.rescale, d.reason) == (desired, rescale, reason)
    if current == 0:
        assert conditions(d)["ScalingActive"] == ("False", "ScalingDisabled")


def test_decide_without_metrics_reports_why() -> None:
    d = hpa.decide(autoscaler(status={"desiredReplicas": 3}), scale(2), [pod("p0")], {},
                   History(), NOW)
    assert not d.rescale and d.desired == 3  # the last desired count stays
    assert d.error == ("invalid metrics (1 invalid out of 1), first error is: failed to get "
                       "cpu resource metric value: failed to get cpu utilization: unable to "
                       "get metrics for resource cpu: no metrics returned from resource "
                       "metrics API")
    assert d.events == [("Warning", "FailedGetResourceMetric", "failed to get cpu "
                         "utilization: unable to get metrics for resource cpu: no metrics "
                         "returned from resource metrics API")]
    assert conditions(d)["ScalingActive"] == ("False", "FailedGetResourceMetric")
    assert d.metrics == [{"type": ""}]


def test_decide_selector_problems() -> None:
    d = hpa.decide(autoscaler(), scale(2, selector=""), [], {}, History(), NOW)
    assert d.error == "selector is required"
    assert conditions(d)["ScalingActive"] == ("False", "InvalidSelector")
    d = hpa.decide(autoscaler(), scale(2), [], {}, History(), NOW, other_hpas=["default/b"])
    assert conditions(d)["ScalingActive"] == ("False", "AmbiguousSelector")
    assert d.error == ("pods by selector app=web are controlled by multiple HPAs: "
                       "[default/b default/web]")


def test_decide_custom_metrics_are_not_served() -> None:
    a = autoscaler()
    a["spec"]["metrics"].append({"type": "Pods", "pods": {"metric": {"name": "qps"},
                                                          "target": {"type": "AverageValue",
                                                                     "averageValue": "10"}}})
    pods, samples = pods_and_samples([900, 900])
    d = hpa.decide(a, scale(2), pods, samples, History(), NOW)
    # One metric works and says scale up: Kubernetes scales on it, and says the other failed.
    assert d.rescale and d.desired == 4 and d.error is None
    assert [e[1] for e in d.events] == ["FailedGetPodsMetric"]
    assert "no custom metrics API (custom.metrics.k8s.io) registered" in d.events[0][2]


def test_decide_with_behavior_limits_the_rate() -> None:
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                "scaleDown": DOWN}
    pods, samples = pods_and_samples([1000, 1000])
    d = hpa.decide(autoscaler(behavior=behavior), scale(2), pods, samples, History(), NOW)
    # 2 pods at 200% of target want 4; one pod per minute allows 3.
    assert d.desired == 3
    assert conditions(d)["ScalingLimited"] == ("True", "ScaleUpLimit")


def test_set_condition_moves_the_transition_time_only_on_change() -> None:
    first = hpa.set_condition([], "AbleToScale", "True", "A", "a", NOW)
    same = hpa.set_condition(first, "AbleToScale", "True", "B", "b", NOW + 10)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert same[0]["reason"] == "B"
    flipped = hpa.set_condition(same, "AbleToScale", "False", "C", "c", NOW + 20)
    assert flipped[0]["lastTransitionTime"] == hpa.rfc3339(NOW + 20)


def test_behavior_tolerance_per_direction() -> None:
    # 3 x 1000m at 530m against 50%: 1590*100//3000 = 53%, ratio 1.06: within the default
    # 10%, but not within a 5% scale-up tolerance: ceil(1.06*3) = ceil(3.18) = 4.
    pods, samples = pods_and_samples([530, 530, 530])
    assert hpa.decide(autoscaler(), scale(3), pods, samples, History(), NOW).desired == 3
    tight = autoscaler(behavior={"scaleUp": {**UP, "tolerance": "0.05"}, "scaleDown": DOWN})
    assert hpa.decide(tight, scale(3), pods, samples, History(), NOW).desired == 4
    assert Tunables(scale_down_tolerance=0.0).within(0.999) is False
