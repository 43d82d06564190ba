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

    # Node lifecycle: a node silent this long is NotReady/Unknown and tainted; its pods are
    # evicted after the toleration (default) of the unreachable/not-ready taints.
    node_monitor_period: float = 1.0
    node_monitor_grace: float = 8.0
    default_eviction_seconds: int = 5
    # Deployments: how many old ReplicaSets to keep when the object does not say.
    # Jobs: nothing yet.


def build(api: ObjectAPI, settings: ControllerSettings) -> list[Controller]:
    """Every control loop the master runs, in start order. Each is a root task."""
    controllers: list[Controller] = []
    # -- scheduler --
    # -- replicaset, deployment --
    # -- daemonset, job, endpoints --
    # -- garbage collector, node lifecycle --
    return controllers
