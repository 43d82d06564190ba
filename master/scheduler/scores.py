"""Scores: which of the nodes that fit is best? Pure functions, kube-scheduler's arithmetic.

Each plugin gives every feasible node a raw score; some are then normalised across the
feasible nodes to 0..100 (MaxNodeScore); the total is the weighted sum, with
kube-scheduler's default weights:

| plugin | raw score | normalised | weight |
| --- | --- | --- | --- |
| TaintToleration | untolerated PreferNoSchedule taints | reversed: fewest = 100 | 3 |
| NodeAffinity | sum of the weights of matching preferred terms | most = 100 | 2 |
| owner spread | pods of the same controller owner on the node | fewest = 100 | 2 |
| NodeResourcesFit (LeastAllocated) | free cpu and memory share, 0..100 | - | 1 |
| NodeResourcesBalancedAllocation | 100 * (1 - std of cpu and memory shares) | - | 1 |

"Owner spread" is SelectorSpread's arithmetic on the pod's controller ownerReference,
weighted as PodTopologySpread (which took over SelectorSpread's job with the default
hostname constraint). All arithmetic is on integers as in Go, truncating.
"""

from __future__ import annotations

from collections.abc import Sequence

from bramble.kube.taints import tolerated

from .snapshot import PREFER_NO_SCHEDULE, NodeInfo, PodInfo

MAX_NODE_SCORE = 100

TAINT_WEIGHT = 3
AFFINITY_WEIGHT = 2
SPREAD_WEIGHT = 2
LEAST_ALLOCATED_WEIGHT = 1
BALANCED_WEIGHT = 1


def _least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """Mean over cpu and memory (weight 1 each) of the share left free once the pod is
    placed, counting requests as non-zero (a pod without requests counts 100m/200Mi).
    A resource the node does not report is left out."""
    total = weights = 0
    if node.allocatable_cpu:
        total += _least_requested(node.nonzero_cpu + pod.nonzero_cpu, node.allocatable_cpu)
        weights += 1
    if node.allocatable_memory:
        total += _least_requested(node.nonzero_memory + pod.nonzero_memory,
                                  node.allocatable_memory)
        weights += 1
    return total // weights if weights else 0


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    """Prefer nodes whose cpu and memory would be used in the same proportion:
    100 * (1 - |cpu share - memory share| / 2), shares of the real requests capped at 1.
    A best-effort pod is not scored (kube-scheduler skips it, or they would pile up)."""
    if pod.best_effort:
        return 0
    fractions = []
    if node.allocatable_cpu:
        fractions.append(min((node.requested_cpu + pod.cpu) / node.allocatable_cpu, 1.0))
    if node.allocatable_memory:
        fractions.append(min((node.requested_memory + pod.memory) / node.allocatable_memory,
                             1.0))
    std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
    return int((1 - std) * MAX_NODE_SCORE)


def preferred_affinity(pod: PodInfo, node: NodeInfo) -> int:
    """Raw NodeAffinity score: the weights of the preferred terms the node matches."""
    return sum(weight for weight, term in pod.preferred_terms
               if term.matches(node.name, node.labels))


def untolerated_prefer_no_schedule(pod: PodInfo, node: NodeInfo) -> int:
    """Raw TaintToleration score: PreferNoSchedule taints the pod does not tolerate
    (only tolerations with that effect or none count)."""
    tolerations = [t for t in pod.tolerations if t.effect in ("", PREFER_NO_SCHEDULE)]
    return sum(1 for t in node.taints
               if t.effect == PREFER_NO_SCHEDULE and not tolerated(tolerations, t))


def same_owner(pod: PodInfo, node: NodeInfo) -> int:
    """Raw spread score: pods of the pod's controller already counted on the node."""
    return node.owners.get(pod.owner, 0) if pod.owner else 0


def default_normalize(scores: Sequence[int], reverse: bool = False) -> list[int]:
    """helper.DefaultNormalizeScore: scale to 0..100 by the highest; `reverse` flips it.
    All zero: unchanged, or all 100 when reversed."""
    top = max(scores, default=0)
    if top == 0:
        return [MAX_NODE_SCORE] * len(scores) if reverse else list(scores)
    scaled = [MAX_NODE_SCORE * s // top for s in scores]
    return [MAX_NODE_SCORE - s for s in scaled] if reverse else scaled


def spread_normalize(counts: Sequence[int]) -> list[int]:
    """SelectorSpread.NormalizeScore: 100 * (most - count) / most; all 100 if none."""
    top = max(counts, default=0)
    if top == 0:
        return [MAX_NODE_SCORE] * len(counts)
    return [int(MAX_NODE_SCORE * ((top - c) / top)) for c in counts]


def resource_scores(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """least_allocated + balanced_allocation (weight 1 each) for every node.

    The same arithmetic as the two functions above, inlined: this loop runs for every
    node of every decision, and Python function calls cost more than the arithmetic
    (a unit test holds the two spellings to the same results)."""
    scores = []
    cpu, memory = pod.cpu, pod.memory
    nz_cpu, nz_memory = pod.nonzero_cpu, pod.nonzero_memory
    balanced = not pod.best_effort
    for n in nodes:
        alloc_cpu, alloc_memory = n.allocatable_cpu, n.allocatable_memory
        if alloc_cpu and alloc_memory:
            used_cpu = n.nonzero_cpu + nz_cpu
            used_memory = n.nonzero_memory + nz_memory
            free_cpu = (0 if used_cpu > alloc_cpu
                        else (alloc_cpu - used_cpu) * MAX_NODE_SCORE // alloc_cpu)
            free_memory = (0 if used_memory > alloc_memory
                           else (alloc_memory - used_memory) * MAX_NODE_SCORE // alloc_memory)
            score = LEAST_ALLOCATED_WEIGHT * ((free_cpu + free_memory) // 2)
            if balanced:
                share_cpu = (n.requested_cpu + cpu) / alloc_cpu
                share_memory = (n.requested_memory + memory) / alloc_memory
                std = abs((share_cpu if share_cpu < 1.0 else 1.0)
                          - (share_memory if share_memory < 1.0 else 1.0)) / 2
                score += BALANCED_WEIGHT * int((1 - std) * MAX_NODE_SCORE)
        else:  # a node that does not report both: the general spelling
            score = (LEAST_ALLOCATED_WEIGHT * least_allocated(pod, n)
                     + BALANCED_WEIGHT * balanced_allocation(pod, n))
        scores.append(score)
    return scores


def total_scores(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """The weighted sum of every plugin's (normalised) score, per node, in order."""
    totals = resource_scores(pod, nodes)
    if pod.owner:
        spread = spread_normalize([n.owners.get(pod.owner, 0) for n in nodes])
    else:
        spread = [MAX_NODE_SCORE] * len(nodes)
    if pod.preferred_terms:
        affinity = default_normalize([preferred_affinity(pod, n) for n in nodes])
    else:
        affinity = [0] * len(nodes)
    if any(n.taints for n in nodes):
        taints = default_normalize([untolerated_prefer_no_schedule(pod, n) for n in nodes],
                                   reverse=True)
    else:
        taints = [MAX_NODE_SCORE] * len(nodes)
    return [t + SPREAD_WEIGHT * s + AFFINITY_WEIGHT * a + TAINT_WEIGHT * x
            for t, s, a, x in zip(totals, spread, affinity, taints, strict=True)]
