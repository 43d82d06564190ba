"""Controllers: loops that drive the cluster's actual state towards the declared one.

Each controller is a pure decision ("given what is stored, what must change?") with a
thin loop around it fed by store watches, run as a named root task of the master.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api.rest import ObjectAPI
from .base import Controller


@dataclass
class ControllerSettings:
    """Tunables of the control loops, defaulted for a home lab (see each controller)."""

    # Scheduler: pods decided and bound concurrently (their bindings share the store's
    # group commit); an unschedulable pod is retried after a cluster change once its
    # back-off (initial, doubling, max) has passed, and every `flush` seconds regardless
    # (kube-scheduler's 1 s, 10 s and 5 min).
    scheduler_workers: int = 32
    scheduler_backoff_initial: float = 1.0
    scheduler_backoff_max: float = 10.0
    scheduler_unschedulable_flush: float = 300.0


def build(api: ObjectAPI, settings: ControllerSettings) -> list[Controller]:
    """Every control loop the master runs, in start order. Each is a root task."""
    # Imported here: the controllers import .base, so a module-level import would loop.
    from ..scheduler.loop import Scheduler
    from .deployment import DeploymentController
    from .replicaset import ReplicaSetController

    return [
        Scheduler(api, workers=settings.scheduler_workers,
                  backoff_initial=settings.scheduler_backoff_initial,
                  backoff_max=settings.scheduler_backoff_max,
                  flush=settings.scheduler_unschedulable_flush),
        ReplicaSetController(api),
        DeploymentController(api),
    ]
