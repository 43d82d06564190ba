"""The scheduler: places pods that have no node, as kube-scheduler does.

Layout (functional core, imperative shell):
- `snapshot`: what a decision reads - typed views of pods (`PodInfo`) and nodes
  (`NodeInfo`), and the incremental per-node sums (requests, pod count, host ports,
  owners) that the loop keeps in step with pod and node watch changes.
- `filters`: pure filters `(pod, node) -> reasons`, each returning every reason it has as
  typed records that carry kube-scheduler's wording.
- `scores`: pure score plugins and their normalisation and weights.
- `schedule`: one decision (`schedule(pod, nodes)`), the "0/3 nodes are available: ..."
  message, and the PodScheduled condition it writes.
- `retry`: when an unschedulable pod is tried again (back-off after cluster changes).
- `loop`: the `Scheduler` controller - watches, binding, events, the retry timers.

Only `loop` does I/O; everything else is pure and tested table-driven.
"""
