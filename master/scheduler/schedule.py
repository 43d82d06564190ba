"""One scheduling decision, and the words the cluster uses to report it.

`schedule(pod, nodes)` filters every node, scores those that fit and picks the best;
when none fits it explains why, in kube-scheduler's words:

    0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: },
    2 Insufficient memory. preemption: 0/3 nodes are available: 1 Preemption is not helpful
    for scheduling, 2 No preemption victims found for incoming pod.

(FitError.Error(): "<count> <reason>" sorted as strings, then DefaultPreemption's
PostFilter message.) bramble does not preempt, and every pod has priority 0, so a
kube-scheduler would find no victims either: the preemption part says what it would.

Ties between equally good nodes are broken by a hash of the pod's uid over the tied nodes
in name order: deterministic (a retry picks the same node), yet different pods spread.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .filters import Reason, filters_for
from .scores import total_scores
from .snapshot import NodeInfo, PodInfo

SCHEDULER_NAME = "default-scheduler"
NO_NODES_MESSAGE = "no nodes available to schedule pods"
UNSCHEDULABLE = "Unschedulable"
SCHEDULING_GATED = "SchedulingGated"
GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_ELIGIBLE = "not eligible due to preemptionPolicy=Never."


@dataclass(frozen=True)
class Placement:
    node: str
    feasible: int = 1  # how many nodes fitted


@dataclass(frozen=True)
class Unschedulable:
    message: str
    reasons: Mapping[str, tuple[Reason, ...]] = field(default_factory=dict)  # per node


Decision = Placement | Unschedulable


def schedule(pod: PodInfo, nodes: Sequence[NodeInfo]) -> Decision:
    """Filter, score, pick. `nodes` are the schedulable nodes in name order."""
    if not nodes:
        return Unschedulable(NO_NODES_MESSAGE)
    every, fewer = filters_for(pod), filters_for(pod, clean_node=True)
    feasible: list[NodeInfo] = []
    failed: dict[str, tuple[Reason, ...]] = {}
    for node in nodes:
        for f in fewer if node.clean else every:
            reasons = f(pod, node)
            if reasons:
                failed[node.name] = reasons
                break
        else:
            feasible.append(node)
    if not feasible:
        return Unschedulable(fit_error(pod, len(nodes), failed), failed)
    if len(feasible) == 1:
        return Placement(feasible[0].name)
    scores = total_scores(pod, feasible)
    best = max(scores)
    ties = [n for n, s in zip(feasible, scores, strict=True) if s == best]
    return Placement(tie_break(ties, pod.uid).name, len(feasible))


def tie_break(ties: Sequence[NodeInfo], uid: str) -> NodeInfo:
    # crc32, not hash(): str hashes change with every process (PYTHONHASHSEED).
    return ties[zlib.crc32(uid.encode()) % len(ties)]


def histogram(failed: Mapping[str, Sequence[Any]]) -> list[str]:
    """"<nodes> <message>" for each message, sorted as strings (as Go's sort.Strings:
    "10 ..." before "2 ..."). A message counts once per node."""
    counts: Counter[str] = Counter()
    for reasons in failed.values():
        counts.update({r if isinstance(r, str) else r.message for r in reasons})
    return sorted(f"{n} {message}" for message, n in counts.items())


def preemption_message(pod: PodInfo, num_nodes: int,
                       failed: Mapping[str, Sequence[Reason]]) -> str:
    """DefaultPreemption's PostFilter message when it finds nothing to evict."""
    if pod.preemption_never:
        return f"preemption: {NOT_ELIGIBLE}"
    verdicts = {node: (NOT_HELPFUL if any(r.unresolvable for r in reasons) else NO_VICTIMS,)
                for node, reasons in failed.items()}
    return f"preemption: 0/{num_nodes} nodes are available: {', '.join(histogram(verdicts))}."


def fit_error(pod: PodInfo, num_nodes: int, failed: Mapping[str, Sequence[Reason]]) -> str:
    return (f"0/{num_nodes} nodes are available: {', '.join(histogram(failed))}. "
            + preemption_message(pod, num_nodes, failed))


def scheduled_message(namespace: str, name: str, node: str) -> str:
    return f"Successfully assigned {namespace}/{name} to {node}"


def unscheduled_conditions(conditions: Sequence[Any] | None, reason: str, message: str,
                           now: str) -> list[Any] | None:
    """The pod's conditions with PodScheduled=False for `reason` and `message`, or None
    when they already say exactly that (so an unchanged failure writes nothing). The
    transition time moves only when the status does, as podutil.UpdatePodCondition."""
    conditions = list(conditions or [])
    for i, c in enumerate(conditions):
        if isinstance(c, dict) and c.get("type") == "PodScheduled":
            if (c.get("status") == "False" and c.get("reason") == reason
                    and c.get("message") == message):
                return None
            since = c.get("lastTransitionTime") if c.get("status") == "False" else None
            conditions[i] = _condition(reason, message, since or now)
            return conditions
    conditions.append(_condition(reason, message, now))
    return conditions


def _condition(reason: str, message: str, since: str) -> dict[str, Any]:
    return {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
            "lastTransitionTime": since, "reason": reason, "message": message}


def responsible(pod: Mapping[str, Any]) -> bool:
    """A pod this scheduler must place: no node yet, not being deleted, not finished,
    and meant for the default scheduler."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName") or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return spec.get("schedulerName") in (None, "", SCHEDULER_NAME)


def gated(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("spec") or {}).get("schedulingGates"))
