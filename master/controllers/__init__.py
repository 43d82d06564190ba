"""Controllers: loops that drive the cluster's actual state towards the declared one.

Each controller is a pure decision ("given what is stored, what must change?") with a
thin loop around it fed by store watches, run as a named root task of the master.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..api.rest import ObjectAPI
from .base import Controller

if TYPE_CHECKING:
    from ..api.nodeapi import Report


@dataclass
class ControllerSettings:
    """Tunables of the control loops, defaulted for a home lab (see each controller)."""

    # Node lifecycle (nodelifecycle.py): a node whose Lease (renewed every 2 s by its agent)
    # and status stay unchanged this long gets Ready=Unknown and the unreachable taints
    # (Kubernetes: 40-50 s, with 10 s renewals); one that never posted a Ready condition
    # gets the startup grace (Kubernetes: 60 s). Pods without a toleration of their own for
    # not-ready/unreachable are evicted this long after the taint (Kubernetes' admission
    # adds 300 s). A Pi losing power: Unknown 6 s after its last renewal (4-6 s after the
    # loss; three renewals missed), its pods marked for deletion 3 s later, replacements
    # start elsewhere at once.
    node_monitor_grace: float = 6.0
    node_startup_grace: float = 60.0
    default_eviction_seconds: int = 3
    # Pod GC (podgc.py): terminated pods kept before the oldest go (0: keep all;
    # Kubernetes: 12500), and how long a node must be gone before its pods are deleted
    # (Kubernetes' quarantine: 40 s).
    pod_gc_terminated_threshold: int = 1000
    pod_gc_orphan_quarantine: float = 40.0
    # Scheduler: pods decided and bound concurrently (their bindings share the store's
    # group commit); an unschedulable pod is retried after a cluster change once its
    # back-off (initial, doubling, max) has passed, and every `flush` seconds regardless
    # (kube-scheduler's 1 s, 10 s and 5 min).
    scheduler_workers: int = 32
    scheduler_backoff_initial: float = 1.0
    scheduler_backoff_max: float = 10.0
    scheduler_unschedulable_flush: float = 300.0
    # Jobs: a failed pod is replaced after job_pod_backoff seconds, doubled per failure
    # since the last success, at most job_pod_backoff_max (Kubernetes: 10 s, 6 min).
    job_pod_backoff: float = 10.0
    job_pod_backoff_max: float = 360.0
    # Node IPAM (nodeipam.py): each node's spec.podCIDR is a /node_cidr_mask_size subnet
    # of cluster_cidr (k3s' defaults: 10.42.0.0/16 and /24, 256 nodes of 254 pods).
    cluster_cidr: str = "10.42.0.0/16"
    node_cidr_mask_size: int = 24
    # Events go this long after they last happened (the apiserver's --event-ttl).
    event_ttl: float = 3600.0
    # HorizontalPodAutoscaler (hpa.py, autoscale.py): each autoscaler syncs this often
    # (Kubernetes' --horizontal-pod-autoscaler-sync-period, 15 s) and scales down to the
    # highest recommendation of the last hpa_downscale_stabilization seconds (its
    # --...-downscale-stabilization, 5 min; `bramble master --hpa-downscale-stabilization`
    # shortens it); a usage ratio within hpa_tolerance of 1 changes nothing; cpu samples
    # of pods started less than hpa_cpu_initialization_period ago count only once ready
    # for a whole sample window (5 min), and unready pods that never were ready are
    # skipped for hpa_initial_readiness_delay (30 s) - all Kubernetes' defaults.
    hpa_sync_period: float = 15.0
    hpa_downscale_stabilization: float = 300.0
    hpa_tolerance: float = 0.1
    hpa_cpu_initialization_period: float = 300.0
    hpa_initial_readiness_delay: float = 30.0


def build(api: ObjectAPI, settings: ControllerSettings, *,
          usage: Callable[[], Sequence[Report]] | None = None) -> list[Controller]:
    """Every control loop the master runs, in start order. Each is a root task. `usage`
    reads the node agents' latest usage reports (nodeapi.UsageCache.reports)."""
    # Imported here: the controllers import .base, so a module-level import would loop.
    from ..scheduler.loop import Scheduler
    from .autoscale import Tunables
    from .daemonset import DaemonSetController
    from .deployment import DeploymentController
    from .endpoints import EndpointsController
    from .eventttl import EventTTLController
    from .gc import GarbageCollector
    from .hpa import HorizontalPodAutoscalerController
    from .job import Backoff, JobController
    from .nodeipam import NodeIPAMController
    from .nodelifecycle import NodeLifecycleController
    from .podgc import PodGarbageCollector
    from .replicaset import ReplicaSetController, ReplicationManager

    return [
        Scheduler(api, workers=settings.scheduler_workers,
                  backoff_initial=settings.scheduler_backoff_initial,
                  backoff_max=settings.scheduler_backoff_max,
                  flush=settings.scheduler_unschedulable_flush),
        ReplicaSetController(api),
        # ReplicationController (issue 8): the ReplicaSet controller over the core/v1 kind.
        ReplicationManager(api),
        DeploymentController(api),
        DaemonSetController(api),
        JobController(api, Backoff(settings.job_pod_backoff, settings.job_pod_backoff_max)),
        EndpointsController(api),
        GarbageCollector(api),
        NodeLifecycleController(api, grace=settings.node_monitor_grace,
                                startup_grace=settings.node_startup_grace,
                                eviction_seconds=settings.default_eviction_seconds),
        PodGarbageCollector(api, terminated_threshold=settings.pod_gc_terminated_threshold,
                            quarantine=settings.pod_gc_orphan_quarantine),
        NodeIPAMController(api, cluster_cidr=settings.cluster_cidr,
                           node_mask=settings.node_cidr_mask_size),
        EventTTLController(api, ttl=settings.event_ttl),
        HorizontalPodAutoscalerController(
            api, usage or (lambda: ()), Tunables(
                tolerance=settings.hpa_tolerance,
                cpu_initialization_period=settings.hpa_cpu_initialization_period,
                initial_readiness_delay=settings.hpa_initial_readiness_delay,
                downscale_stabilization=settings.hpa_downscale_stabilization),
            sync_period=settings.hpa_sync_period),
    ]
