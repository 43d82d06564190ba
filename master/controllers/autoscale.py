"""The HorizontalPodAutoscaler's decision: how many replicas, and why.

Role: the functional core of hpa.py, mirroring kube-controller-manager's
pkg/controller/podautoscaler - replica_calculator.go (usage ratio, tolerance, pods that are
unready or miss metrics), horizontal.go (min/max clamping with the ScalingLimited reasons,
the scale-down stabilisation window, `behavior` rate limits and stabilisation, the
conditions and events) - so an HPA here scales when, and as far as, it would in
Kubernetes, and explains itself with the same reasons and messages.

Invariants:
- Pure: `decide()` is a function of the HPA, its target's Scale, the target's pods, their
  usage samples, the autoscaler's history and `now`; it returns what to do (the replicas
  to set, the status, the events, the next history). The controller does the I/O.
- Arithmetic as Kubernetes': integer milli-units (Quantity.MilliValue), utilization as
  int64 division (sum(usage)*100 // sum(requests)), replicas as ceil(ratio * pods) in
  float64, so boundaries round the same way.
- Time is epoch seconds (`now`, sample timestamps, pod start times alike).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from bramble.kube.printers import parse_time
from bramble.kube.quantity import format_quantity, parse_quantity, to_milli

Obj = dict[str, Any]

SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
DEFAULT_MIN_REPLICAS = 1

# Condition types and the messages Kubernetes gives them.
ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED = "AbleToScale", "ScalingActive", "ScalingLimited"
WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
TOO_MANY = ("TooManyReplicas",
            "the desired replica count is more than the maximum replica count")
SCALE_UP_LIMIT = ("ScaleUpLimit",
                  "the desired replica count is increasing faster than the maximum scale rate")
SCALE_DOWN_LIMIT = ("ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate")
READY_FOR_NEW_SCALE = ("ReadyForNewScale", "recommended size matches current size")
SCALE_DOWN_STABILIZED = ("ScaleDownStabilized", "recent recommendations were higher than "
                         "current one, applying the highest recent recommendation")
SCALE_UP_STABILIZED = ("ScaleUpStabilized", "recent recommendations were lower than current "
                       "one, applying the lowest recent recommendation")

# Custom and external metrics need an API bramble does not serve.
NO_CUSTOM_METRICS = ("unable to fetch metrics from custom metrics API: no custom metrics API "
                     "(custom.metrics.k8s.io) registered")
NO_EXTERNAL_METRICS = ("unable to fetch metrics from external metrics API: no external "
                       "metrics API (external.metrics.k8s.io) registered")


class MetricError(Exception):
    """A metric that could not be computed; the message is Kubernetes' wording."""


@dataclass(frozen=True)
class Tunables:
    """kube-controller-manager's HPA flags, with its defaults."""

    tolerance: float = 0.1                     # --horizontal-pod-autoscaler-tolerance
    cpu_initialization_period: float = 300.0   # --...-cpu-initialization-period (5m)
    initial_readiness_delay: float = 30.0      # --...-initial-readiness-delay
    downscale_stabilization: float = 300.0     # --...-downscale-stabilization (5m)
    # An autoscaler's own behavior.scaleDown/scaleUp.tolerance, when it sets one.
    scale_down_tolerance: float | None = None
    scale_up_tolerance: float | None = None

    def within(self, ratio: float) -> bool:
        """Too close to 1 to act on (Tolerances.isWithin)."""
        down = self.tolerance if self.scale_down_tolerance is None \
            else self.scale_down_tolerance
        up = self.tolerance if self.scale_up_tolerance is None else self.scale_up_tolerance
        return 1.0 - down <= ratio <= 1.0 + up


# --- inputs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    """One pod's usage as its node reported it: what `kubectl top pod` shows."""

    timestamp: float
    window: float
    # container name -> resource name -> milli-units (cpu millicores, memory millibytes)
    containers: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class Pod:
    """What the calculator reads of a pod."""

    name: str
    phase: str = "Running"
    deleting: bool = False
    start_time: float | None = None
    # The Ready condition: (status, lastTransitionTime), None when the pod has none.
    ready: tuple[str, float] | None = None
    # Containers whose requests count (containers, then restartable init containers), in
    # order: name -> resource -> milli-units.
    requests: tuple[tuple[str, Mapping[str, int]], ...] = ()


def seconds(value: Any) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp; None when unset or unreadable."""
    parsed = parse_time(value)
    return parsed.timestamp() if parsed is not None else None


def _milli(value: Any) -> int | None:
    try:
        return to_milli(value)
    except (ValueError, TypeError):
        return None


def pod_of(obj: Obj) -> Pod:
    """The calculator's view of a stored pod."""
    meta, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    ready = None
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            ready = (condition.get("status", ""),
                     seconds(condition.get("lastTransitionTime")) or 0.0)
            break
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or []
                   if c.get("restartPolicy") == "Always"]
    requests = []
    for c in containers:
        wanted = ((c.get("resources") or {}).get("requests") or {})
        parsed = {name: milli for name, value in wanted.items()
                  if (milli := _milli(value)) is not None}
        requests.append((c.get("name", ""), parsed))
    return Pod(name=meta.get("name", ""), phase=status.get("phase", "Pending"),
               deleting=bool(meta.get("deletionTimestamp")),
               start_time=seconds(status.get("startTime")), ready=ready,
               requests=tuple(requests))


def sample_of(timestamp: float, window: float, containers: Iterable[Obj]) -> Sample:
    """A Sample from a usage report's pod entry ({"name", "usage": {"cpu", "memory"}})."""
    parsed: dict[str, dict[str, int]] = {}
    for c in containers:
        usage = {}
        for name, value in (c.get("usage") or {}).items():
            milli = _milli(value)
            if milli is not None:
                usage[name] = milli
        parsed[c.get("name", "")] = usage
    return Sample(timestamp, window, parsed)


# --- the replica calculator (replica_calculator.go) -----------------------------------------

@dataclass(frozen=True)
class PodMetric:
    value: int
    timestamp: float
    window: float


def pod_metrics(samples: Mapping[str, Sample], resource: str,
                container: str = "") -> dict[str, PodMetric]:
    """Each pod's usage of `resource`, summed over its containers (or the one named). A
    pod with a container that did not report the resource has no metric (getPodMetrics)."""
    out = {}
    for name, sample in samples.items():
        if container:
            usage = sample.containers.get(container)
            if usage is None or resource not in usage:
                continue
            out[name] = PodMetric(usage[resource], sample.timestamp, sample.window)
            continue
        if not sample.containers:
            continue
        total, missing = 0, False
        for usage in sample.containers.values():
            if resource not in usage:
                missing = True
                break
            total += usage[resource]
        if not missing:
            out[name] = PodMetric(total, sample.timestamp, sample.window)
    return out


@dataclass(frozen=True)
class Groups:
    ready: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def group_pods(pods: Sequence[Pod], metrics: Mapping[str, PodMetric], resource: str,
               now: float, tunables: Tunables) -> Groups:
    """Which pods count (groupPods): deleted and failed pods are ignored; pending pods and,
    for cpu, pods not ready (or ready too recently for a full sample window, while within
    the cpu initialisation period) are unready; pods without a sample are missing."""
    ready = 0
    unready, missing, ignored = set(), set(), set()
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        metric = metrics.get(pod.name)
        if metric is None:
            missing.add(pod.name)
            continue
        if resource == "cpu":
            if pod.ready is None or pod.start_time is None:
                is_unready = True
            else:
                status, transition = pod.ready
                if pod.start_time + tunables.cpu_initialization_period > now:
                    # Still starting: a sample must cover a whole window since readiness.
                    is_unready = status == "False" or metric.timestamp < transition + \
                        metric.window
                else:
                    # Unready and never ready since it started.
                    is_unready = status == "False" and \
                        pod.start_time + tunables.initial_readiness_delay > transition
            if is_unready:
                unready.add(pod.name)
                continue
        ready += 1
    return Groups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def pod_requests(pods: Sequence[Pod], resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request of `resource` (calculatePodRequestsFromContainers)."""
    out = {}
    for pod in pods:
        total = 0
        found = not container
        for name, requests in pod.requests:
            if container and name != container:
                continue
            if resource not in requests:
                raise MetricError(f"missing request for {resource} in container {name} of "
                                  f"Pod {pod.name}")
            total += requests[resource]
            if container:
                found = True
                break
        if not found:
            raise MetricError(f"container {container} not found in Pod {pod.name}")
        out[pod.name] = total
    return out


def utilization_ratio(metrics: Mapping[str, int], requests: Mapping[str, int],
                      target: int) -> tuple[float, int, int]:
    """(usage ratio, utilization %, average raw value) - GetResourceUtilizationRatio."""
    total = requested = count = 0
    for name, value in metrics.items():
        if name not in requests:
            continue  # metrics of pods we do not know
        total += value
        requested += requests[name]
        count += 1
    if requested == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = total * 100 // requested
    return utilization / target, utilization, total // count


def usage_ratio(metrics: Mapping[str, int], target: int) -> tuple[float, int]:
    """(usage ratio, average value) - GetMetricUsageRatio."""
    average = sum(metrics.values()) // len(metrics)
    return average / target, average


def _sampled_values(resource: str, pods: Sequence[Pod], samples: Mapping[str, Sample],
                    now: float, tunables: Tunables, container: str
                    ) -> tuple[Groups, dict[str, int]]:
    """The pods' groups and the values of the ready pods with a usable sample.
    Raises MetricError."""
    metrics = pod_metrics(samples, resource, container)
    if not metrics:
        raise MetricError(f"unable to get metrics for resource {resource}: no metrics "
                          "returned from resource metrics API")
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now, tunables)
    values = {name: m.value for name, m in metrics.items()
              if name not in groups.ignored and name not in groups.unready}
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    return groups, values


def _replicas_for_ratio(current: int, ratio: float, groups: Groups, values: dict[str, int],
                        tunables: Tunables, ratio_of: Callable[[dict[str, int]], float],
                        missing_when_down: Callable[[str], int]) -> int:
    """The replicas for a usage ratio; where pods lack a sample or are unready, the ratio
    is worked out again with assumptions that never speed the change up (the tail of
    GetResourceReplicas / calcPlainMetricReplicas). Fills `values` in."""
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if tunables.within(ratio):
            return current
        return math.ceil(ratio * groups.ready)

    if groups.missing:
        if ratio < 1.0:
            for name in groups.missing:
                values[name] = missing_when_down(name)
        elif ratio > 1.0:
            # Scaling up: as using nothing, so it never speeds a scale-up up either.
            for name in groups.missing:
                values[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            values[name] = 0

    new_ratio = ratio_of(values)
    if tunables.within(new_ratio) or (ratio < 1.0 < new_ratio) or \
            (ratio > 1.0 > new_ratio):
        # Too small a change, or the assumptions turned the direction around.
        return current
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def resource_replicas(current: int, target_utilization: int, resource: str,
                      pods: Sequence[Pod], samples: Mapping[str, Sample], now: float,
                      tunables: Tunables, container: str = "") -> tuple[int, int, int]:
    """(replicas, utilization %, average raw value) for an averageUtilization target:
    GetResourceReplicas. Raises MetricError."""
    groups, values = _sampled_values(resource, pods, samples, now, tunables, container)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(values, requests, target_utilization)
    # Scaling down: a pod without a sample counts as using its whole request (or the
    # target, for targets above 100%), so it never speeds a scale-down up.
    fallback = max(100, target_utilization)
    replicas = _replicas_for_ratio(
        current, ratio, groups, values, tunables,
        ratio_of=lambda v: utilization_ratio(v, requests, target_utilization)[0],
        missing_when_down=lambda name: requests[name] * fallback // 100)
    return replicas, utilization, raw


def raw_resource_replicas(current: int, target: int, resource: str, pods: Sequence[Pod],
                          samples: Mapping[str, Sample], now: float, tunables: Tunables,
                          container: str = "") -> tuple[int, int]:
    """(replicas, average usage) for an averageValue target (milli-units):
    GetRawResourceReplicas / calcPlainMetricReplicas. Raises MetricError."""
    groups, values = _sampled_values(resource, pods, samples, now, tunables, container)
    ratio, usage = usage_ratio(values, target)
    replicas = _replicas_for_ratio(
        current, ratio, groups, values, tunables,
        ratio_of=lambda v: usage_ratio(v, target)[0],
        # Exactly on target while scaling down.
        missing_when_down=lambda _name: target)
    return replicas, usage


# --- history: recommendations and scale events (horizontal.go) ------------------------------

@dataclass(frozen=True)
class ScaleEvent:
    timestamp: float
    change: int  # always positive: the size of the step
    outdated: bool = False


@dataclass(frozen=True)
class History:
    """What the controller remembers of one autoscaler between syncs (in memory, as
    Kubernetes keeps it: a restarted master starts afresh)."""

    recommendations: tuple[tuple[float, int], ...] = ()
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()


def stabilize(history: History, now: float, window: float,
              desired: int) -> tuple[int, History]:
    """Without `behavior`: the highest recommendation of the last `window` seconds
    (stabilizeRecommendation); this one replaces the oldest expired sample."""
    highest, old = desired, None
    cutoff = now - window
    recs = list(history.recommendations)
    for i, (when, replicas) in enumerate(recs):
        if when < cutoff:
            old = i
        elif replicas > highest:
            highest = replicas
    if old is not None:
        recs[old] = (now, desired)
    else:
        recs.append((now, desired))
    return highest, replace(history, recommendations=tuple(recs))


def convert_with_rules(current: int, desired: int, minimum: int,
                       maximum: int) -> tuple[int, str, str]:
    """Clamp to [minReplicas, maxReplicas] and to Kubernetes' old scale-up limit of
    max(2 x current, 4) (convertDesiredReplicasWithRules): (replicas, reason, message)."""
    scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if maximum > scale_up_limit:
        top, limiting = scale_up_limit, SCALE_UP_LIMIT
    else:
        top, limiting = maximum, TOO_MANY
    if desired < minimum:
        return minimum, *TOO_FEW
    if desired > top:
        return top, *limiting
    return desired, *WITHIN_RANGE


def _changes_in_period(period: float, events: Iterable[ScaleEvent], now: float) -> int:
    cutoff = now - period
    return sum(e.change for e in events if e.timestamp > cutoff)


def _limit_by_policies(current: int, history: History, rules: Obj, now: float, *,
                       up: bool) -> int:
    """The bound the scaling policies of one direction allow now: each policy proposes one
    from the replicas at the start of its period, selectPolicy picks among them."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    # "Max" selects the biggest change: the most replicas up, the fewest down.
    pick = max if (select == "Min") != up else min
    result: int | None = None
    for policy in rules.get("policies") or []:
        period = policy.get("periodSeconds", 0)
        start = (current - _changes_in_period(period, history.scale_up_events, now)
                 + _changes_in_period(period, history.scale_down_events, now))
        value = policy.get("value", 0)
        if policy.get("type") == "Pods":
            proposed = start + value if up else start - value
        elif up:
            # Rounded up, or a small deployment could never grow by a percentage.
            proposed = math.ceil(start * (1 + value / 100))
        else:
            proposed = int(start * (1 - value / 100))  # truncated, as Go
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def scale_up_limit(current: int, history: History, rules: Obj, now: float) -> int:
    """The most replicas the scale-up policies allow now
    (calculateScaleUpLimitWithScalingRules)."""
    return _limit_by_policies(current, history, rules, now, up=True)


def scale_down_limit(current: int, history: History, rules: Obj, now: float) -> int:
    """The fewest replicas the scale-down policies allow now
    (calculateScaleDownLimitWithBehaviors)."""
    return _limit_by_policies(current, history, rules, now, up=False)


def stabilize_with_behaviors(history: History, now: float, current: int, desired: int,
                             up_window: float, down_window: float
                             ) -> tuple[int, str, str, History]:
    """Within the scale-up window take the lowest recent recommendation, within the
    scale-down window the highest (stabilizeRecommendationWithBehaviors)."""
    up_cutoff, down_cutoff = now - up_window, now - down_window
    up, down, old = desired, desired, None
    recs = list(history.recommendations)
    for i, (when, replicas) in enumerate(recs):
        if when > up_cutoff:
            up = min(replicas, up)
        if when > down_cutoff:
            down = max(replicas, down)
        if when < up_cutoff and when < down_cutoff:
            old = i
    recommendation = max(current, up)
    recommendation = min(recommendation, down)
    if old is not None:
        recs[old] = (now, desired)
    else:
        recs.append((now, desired))
    reason, message = SCALE_UP_STABILIZED if desired >= current else SCALE_DOWN_STABILIZED
    return recommendation, reason, message, replace(history, recommendations=tuple(recs))


def convert_with_behavior_rate(current: int, desired: int, minimum: int, maximum: int,
                               behavior: Obj, history: History,
                               now: float) -> tuple[int, str, str]:
    """Clamp to [min, max] and to the rate the behavior policies allow
    (convertDesiredReplicasWithBehaviorRate): (replicas, reason, message)."""
    if desired > current:
        limit = max(scale_up_limit(current, history, behavior.get("scaleUp") or {}, now),
                    current)  # no further up until old scale-ups leave their periods
        if maximum > limit:
            top, limiting = limit, SCALE_UP_LIMIT
        else:
            top, limiting = maximum, TOO_MANY
        if desired > top:
            return top, *limiting
    elif desired < current:
        limit = min(scale_down_limit(current, history, behavior.get("scaleDown") or {}, now),
                    current)
        if minimum < limit:
            bottom, limiting = limit, SCALE_DOWN_LIMIT
        else:
            bottom, limiting = minimum, TOO_FEW
        if desired < bottom:
            return bottom, *limiting
    return desired, *WITHIN_RANGE


def _longest_period(rules: Obj) -> int:
    return max((p.get("periodSeconds", 0) for p in rules.get("policies") or []), default=0)


def _store_event(events: tuple[ScaleEvent, ...], longest: int, change: int,
                 now: float) -> tuple[ScaleEvent, ...]:
    cutoff = now - longest
    marked = [replace(e, outdated=True) if e.timestamp < cutoff else e for e in events]
    new = ScaleEvent(now, change)
    reusable = [i for i, e in enumerate(marked) if e.outdated]
    if reusable:
        marked[reusable[-1]] = new
    else:
        marked.append(new)
    return tuple(marked)


def record_scale(history: History, behavior: Obj | None, previous: int, new: int,
                 now: float) -> History:
    """Remember a rescale for the rate limits of `behavior` (storeScaleEvent); without a
    behavior nothing uses it, so nothing is stored."""
    if behavior is None:
        return history
    if new > previous:
        return replace(history, scale_up_events=_store_event(
            history.scale_up_events, _longest_period(behavior.get("scaleUp") or {}),
            new - previous, now))
    return replace(history, scale_down_events=_store_event(
        history.scale_down_events, _longest_period(behavior.get("scaleDown") or {}),
        previous - new, now))


# --- conditions ------------------------------------------------------------------------------

def rfc3339(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[Obj], type_: str, status: str, reason: str, message: str,
                  now: float) -> list[Obj]:
    """setConditionInList: the transition time moves only when the status changes."""
    out = [dict(c) for c in conditions]
    existing = next((c for c in out if c.get("type") == type_), None)
    if existing is None:
        existing = {"type": type_}
        out.append(existing)
    if existing.get("status") != status:
        existing["lastTransitionTime"] = rfc3339(now)
    existing.update(status=status, reason=reason, message=message)
    return out


# --- one autoscaler, one sync ----------------------------------------------------------------

@dataclass
class Decision:
    """What the controller should do for one autoscaler."""

    current: int                     # the target's replicas now (scale.spec.replicas)
    desired: int                     # the replicas to set (== current: no rescale)
    rescale: bool
    reason: str                      # for the SuccessfulRescale event
    conditions: list[Obj]
    metrics: list[Obj] | None        # status.currentMetrics
    history: History
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, msg)
    # Set when no replica count could be computed (FailedComputeMetricsReplicas): the
    # status keeps its desiredReplicas and nothing is scaled.
    error: str | None = None
    rescaled: bool = False  # the scale was written (see `after_rescale`)


def _milli_quantity(milli: int) -> str:
    """resource.NewMilliQuantity(milli, DecimalSI).String()."""
    return format_quantity(Fraction(milli, 1000))


def _target_message(metric: Obj) -> tuple[str, str, str, Obj]:
    """(source field, resource, container, target) of a resource metric."""
    kind = metric.get("type")
    field_ = "resource" if kind == "Resource" else "containerResource"
    src = metric.get(field_) or {}
    return field_, src.get("name", ""), src.get("container", ""), src.get("target") or {}


def _resource_metric(metric: Obj, current: int, pods: Sequence[Pod],
                     samples: Mapping[str, Sample], now: float,
                     tunables: Tunables) -> tuple[int, str, Obj]:
    """(replicas, metric name, MetricStatus) of a Resource/ContainerResource metric
    (computeStatusForResourceMetricGeneric). Raises MetricError with the message the
    FailedGet...Metric event carries."""
    field_, resource, container, target = _target_message(metric)
    identity = {"name": resource, **({"container": container} if container else {})}
    if target.get("averageValue") is not None:
        try:
            wanted = to_milli(target["averageValue"])
            replicas, usage = raw_resource_replicas(current, wanted, resource, pods,
                                                    samples, now, tunables, container)
        except (MetricError, ValueError) as err:
            raise MetricError(f"failed to get {resource} usage: {err}") from None
        status = {"type": metric["type"], field_: {
            **identity, "current": {"averageValue": _milli_quantity(usage)}}}
        return replicas, f"{resource} resource", status
    if target.get("averageUtilization") is None:
        raise MetricError("invalid resource metric source: neither an average utilization "
                          "target nor an average value (usage) target was set")
    try:
        replicas, utilization, raw = resource_replicas(
            current, target["averageUtilization"], resource, pods, samples, now, tunables,
            container)
    except MetricError as err:
        raise MetricError(f"failed to get {resource} utilization: {err}") from None
    name = (f"{resource} container resource utilization (percentage of request)" if container
            else f"{resource} resource utilization (percentage of request)")
    status = {"type": metric["type"], field_: {**identity, "current": {
        "averageUtilization": utilization,
        "averageValue": _milli_quantity(raw)}}}
    return replicas, name, status


# For each metric type: the condition reason and the prefix of the metric's own error.
def _failure(metric: Obj) -> tuple[str, str]:
    kind = metric.get("type")
    if kind == "Resource":
        name = (metric.get("resource") or {}).get("name", "")
        return "FailedGetResourceMetric", f"failed to get {name} resource metric value"
    if kind == "ContainerResource":
        container = (metric.get("containerResource") or {}).get("container", "")
        return ("FailedGetContainerResourceMetric",
                f"failed to get {container} container metric value")
    if kind == "Pods":
        return "FailedGetPodsMetric", "failed to get pods metric value"
    if kind == "Object":
        return "FailedGetObjectMetric", "failed to get object metric value"
    if kind == "External":
        name = ((metric.get("external") or {}).get("metric") or {}).get("name", "")
        return "FailedGetExternalMetric", f"failed to get {name} external metric value"
    return "InvalidMetricSourceType", "unknown metric source type"


def _metric_replicas(metric: Obj, namespace: str, current: int, pods: Sequence[Pod],
                     samples: Mapping[str, Sample], now: float,
                     tunables: Tunables) -> tuple[int, str, Obj]:
    kind = metric.get("type")
    if kind in ("Resource", "ContainerResource"):
        return _resource_metric(metric, current, pods, samples, now, tunables)
    if kind in ("Pods", "Object"):
        name = ((metric.get(kind.lower()) or {}).get("metric") or {}).get("name", "")
        raise MetricError(f"unable to get metric {name}: {NO_CUSTOM_METRICS}")
    if kind == "External":
        name = ((metric.get("external") or {}).get("metric") or {}).get("name", "")
        raise MetricError(f"unable to get external metric {namespace}/{name}: "
                          f"{NO_EXTERNAL_METRICS}")
    raise MetricError(f'unknown metric source type "{kind}"')


def _unable(reason: str, err: str) -> tuple[str, str, str, str]:
    return (SCALING_ACTIVE, "False", reason,
            f"the HPA was unable to compute the replica count: {err}")


def decide(hpa: Obj, scale: Obj, pods: Sequence[Pod], samples: Mapping[str, Sample],
           history: History, now: float, tunables: Tunables = Tunables(),
           other_hpas: Sequence[str] = ()) -> Decision:
    """One sync of one autoscaler whose target's Scale was read (reconcileAutoscaler from
    the scale on). `pods` are the pods the scale's selector selects, `samples` their
    usage by pod name, `other_hpas` ("namespace/name") other autoscalers whose selectors
    select some of these pods."""
    spec = hpa.get("spec") or {}
    status = hpa.get("status") or {}
    namespace = (hpa.get("metadata") or {}).get("namespace", "")
    conditions = set_condition(list(status.get("conditions") or []), ABLE_TO_SCALE, "True",
                               "SucceededGetScale", "the HPA controller was able to get the "
                               "target's current scale", now)
    current = int((scale.get("spec") or {}).get("replicas") or 0)
    if not history.recommendations:
        history = replace(history, recommendations=((now, current),))
    minimum = spec.get("minReplicas")
    minimum = DEFAULT_MIN_REPLICAS if minimum is None else minimum
    maximum = spec.get("maxReplicas", 0)
    events: list[tuple[str, str, str]] = []

    if current == 0 and minimum != 0:
        # Someone scaled the target to zero: autoscaling is off until they scale it up.
        conditions = set_condition(conditions, SCALING_ACTIVE, "False", "ScalingDisabled",
                                   "scaling is disabled since the replica count of the "
                                   "target is zero", now)
        return Decision(current, 0, False, "", conditions, None, history, events)
    if current > maximum:
        return Decision(current, maximum, True,
                        "Current number of replicas above Spec.MaxReplicas", conditions, None,
                        history, events)
    if current < minimum:
        return Decision(current, minimum, True,
                        "Current number of replicas below Spec.MinReplicas", conditions, None,
                        history, events)

    # Which pods: the scale's selector, and no other autoscaler's (validateAndParseSelector).
    selector = (scale.get("status") or {}).get("selector") or ""
    if not selector:
        events.append(("Warning", "SelectorRequired", "selector is required"))
        conditions = set_condition(conditions, SCALING_ACTIVE, "False", "InvalidSelector",
                                   "the HPA target's scale is missing a selector", now)
        return _failed(current, conditions, None, history, events, "selector is required",
                       status)
    if other_hpas:
        names = " ".join(sorted({f"{namespace}/{(hpa.get('metadata') or {}).get('name')}",
                                 *other_hpas}))
        message = f"pods by selector {selector} are controlled by multiple HPAs: [{names}]"
        events.append(("Warning", "AmbiguousSelector", message))
        conditions = set_condition(conditions, SCALING_ACTIVE, "False", "AmbiguousSelector",
                                   message, now)
        return _failed(current, conditions, None, history, events, message, status)

    metric_specs = [m for m in spec.get("metrics") or [] if isinstance(m, dict)]
    tunables = _with_tolerances(tunables, spec.get("behavior"))
    statuses: list[Obj] = []
    replicas, metric_name = 0, ""
    invalid, first_error, first_condition = 0, "", None
    for metric in metric_specs:
        try:
            proposal, name, metric_status = _metric_replicas(metric, namespace, current,
                                                             pods, samples, now, tunables)
        except MetricError as err:
            reason, prefix = _failure(metric)
            events.append(("Warning", reason, str(err)))
            statuses.append({"type": ""})
            if invalid == 0:
                first_condition = _unable(reason, str(err))
                first_error = f"{prefix}: {err}"
            invalid += 1
            continue
        statuses.append(metric_status)
        if replicas == 0 or proposal > replicas:
            replicas, metric_name = proposal, name
    if invalid >= len(metric_specs) or (invalid > 0 and replicas < current):
        if first_condition is not None:
            conditions = set_condition(conditions, *first_condition, now)
        message = (f"invalid metrics ({invalid} invalid out of {len(metric_specs)}), first "
                   f"error is: {first_error}")
        return _failed(current, conditions, statuses, history, events, message, status)
    conditions = set_condition(conditions, SCALING_ACTIVE, "True", "ValidMetricFound",
                               "the HPA was able to successfully calculate a replica count "
                               f"from {metric_name}", now)

    desired, reason = replicas, ""
    if desired > current:
        reason = f"{metric_name} above target"
    elif desired < current:
        reason = "All metrics below target"
    behavior = spec.get("behavior")
    if not isinstance(behavior, dict):
        stabilized, history = stabilize(history, now, tunables.downscale_stabilization,
                                        desired)
        able = SCALE_DOWN_STABILIZED if stabilized != desired else READY_FOR_NEW_SCALE
        normalized, *limited = convert_with_rules(current, stabilized, minimum, maximum)
    else:
        up = behavior.get("scaleUp") or {}
        down = behavior.get("scaleDown") or {}
        down_window = down.get("stabilizationWindowSeconds")
        if down_window is None:  # maybeInitScaleDownStabilizationWindow
            down_window = tunables.downscale_stabilization
        stabilized, *able_parts, history = stabilize_with_behaviors(
            history, now, current, desired, up.get("stabilizationWindowSeconds") or 0,
            down_window)
        able = tuple(able_parts) if stabilized != desired else READY_FOR_NEW_SCALE
        normalized, *limited = convert_with_behavior_rate(current, stabilized, minimum,
                                                          maximum, behavior, history, now)
    conditions = set_condition(conditions, ABLE_TO_SCALE, "True", *able, now)
    conditions = set_condition(conditions, SCALING_LIMITED,
                               "False" if normalized == stabilized else "True", *limited, now)
    return Decision(current, normalized, normalized != current, reason, conditions, statuses,
                    history, events)


def _with_tolerances(tunables: Tunables, behavior: Any) -> Tunables:
    """The autoscaler's own tolerances (behavior.scaleDown/scaleUp.tolerance), if set."""
    if not isinstance(behavior, dict):
        return tunables
    found = {}
    for direction, name in (("scaleDown", "scale_down_tolerance"),
                            ("scaleUp", "scale_up_tolerance")):
        value = (behavior.get(direction) or {}).get("tolerance")
        if value is not None:
            try:
                found[name] = float(parse_quantity(value))
            except ValueError:
                continue
    return replace(tunables, **found) if found else tunables


def _failed(current: int, conditions: list[Obj], metrics: list[Obj] | None,
            history: History, events: list[tuple[str, str, str]], error: str,
            status: Obj) -> Decision:
    # setCurrentReplicasAndMetricsInStatus: the desired count stays what it was.
    return Decision(current, int(status.get("desiredReplicas") or 0), False, "", conditions,
                    metrics, history, events, error)


def after_rescale(hpa: Obj, decision: Decision, now: float,
                  error: str | None) -> tuple[Decision, tuple[str, str, str]]:
    """The decision once its scale was written (`error` None) or refused, and the event
    to record: on success the SucceededRescale condition and the step remembered for the
    behavior's rate limits; on failure FailedUpdateScale, and the desired count the status
    had (setCurrentReplicasAndMetricsInStatus)."""
    if error is None:
        conditions = set_condition(decision.conditions, ABLE_TO_SCALE, "True",
                                   "SucceededRescale", "the HPA controller was able to update "
                                   f"the target scale to {decision.desired}", now)
        history = record_scale(decision.history, (hpa.get("spec") or {}).get("behavior"),
                               decision.current, decision.desired, now)
        return (replace(decision, conditions=conditions, history=history, rescaled=True),
                ("Normal", "SuccessfulRescale",
                 f"New size: {decision.desired}; reason: {decision.reason}"))
    conditions = set_condition(decision.conditions, ABLE_TO_SCALE, "False",
                               "FailedUpdateScale", "the HPA controller was unable to update "
                               f"the target scale: {error}", now)
    desired = int((hpa.get("status") or {}).get("desiredReplicas") or 0)
    return (replace(decision, conditions=conditions, desired=desired, rescale=False),
            ("Warning", "FailedRescale", f"New size: {decision.desired}; reason: "
                                         f"{decision.reason}; error: {error}"))


def status_after(hpa: Obj, decision: Decision, now: float) -> Obj:
    """The autoscaler's new status (setStatus): replicas as seen and decided, the metrics,
    the conditions, and lastScaleTime moved when it rescaled."""
    old = hpa.get("status") or {}
    status: Obj = {}
    if decision.current:
        status["currentReplicas"] = decision.current
    status["desiredReplicas"] = decision.desired
    last = rfc3339(now) if decision.rescaled else old.get("lastScaleTime")
    if last:
        status["lastScaleTime"] = last
    if decision.metrics:
        status["currentMetrics"] = decision.metrics
    if decision.conditions:
        status["conditions"] = decision.conditions
    return status
