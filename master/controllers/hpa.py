"""The HorizontalPodAutoscaler controller: scale Deployments, ReplicaSets and
ReplicationControllers to the CPU and memory their pods use.

Role: the thin loop around autoscale.decide (pkg/controller/podautoscaler/horizontal.go's
reconcileAutoscaler): every `sync_period` seconds per autoscaler (and at once when one is
created or its spec changes) it reads the target's scale subresource, the pods its selector
selects, their usage from the master's in-memory usage cache - the figures node agents
report and `kubectl top pods` shows - lets the pure decision say what to do, then writes
the scale, the Events and the status.

Invariants:
- Only this loop writes an autoscaler's status; status-only changes do not wake it (a
  status write of its own must not make it sync again at once).
- The history of recommendations and rescales (stabilisation windows, behavior rate
  limits) lives in memory per autoscaler, as in Kubernetes: a restarted master starts
  afresh, which at worst delays a scale-down by one window.
- The target is found by group and kind (any version) among the stored types that have a
  scale subresource, and read and written through ObjectAPI's generic scale path, so every
  such kind works the same.
- Usage is read through a read-only accessor (UsageCache.reports); its per-pod parsed form
  is rebuilt only when a node posted a new report.
- Cost grows with the target's pods, not the namespace's: pods are found through a label
  index kept from a pods watch (an informer index, as kube-controller-manager's listers),
  parsed once per pod version, and two autoscalers claiming the same pods are found by
  the pod names each selected at its last sync (a sync period behind at most).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bramble.kube.errors import BadRequest, StatusError
from bramble.kube.selectors import LabelSelector, parse_label_selector

from ..api.nodeapi import Report
from ..api.resources import ResourceType
from ..api.rest import ObjectAPI, Target, WriteOptions
from ..store import Change, Entry
from . import autoscale
from .base import Controller, EventRecorder, Key, Watch

log = logging.getLogger(__name__)

Obj = dict[str, Any]

HPAS = "horizontalpodautoscalers.autoscaling"
COMPONENT = "horizontal-pod-autoscaler"


def spec_changed(change: Change) -> Iterable[Key]:
    """The autoscaler's key, unless only its status (or metadata) changed."""
    if change.type == "MODIFIED" and change.prev is not None:
        old, new = change.prev.obj(), change.entry.obj()
        if old.get("spec") == new.get("spec"):
            return ()
    return ((change.entry.namespace, change.entry.name),)


class UsageIndex:
    """The usage reports as Samples by namespace and pod name, rebuilt only when a node
    posted a new report (the reports are immutable; a new one has a new `received`)."""

    def __init__(self, reports: Callable[[], Sequence[Report]]) -> None:
        self._reports = reports
        self._key: tuple[tuple[str, float], ...] = ()
        self._index: dict[str, dict[str, autoscale.Sample]] = {}

    def namespace(self, namespace: str) -> dict[str, autoscale.Sample]:
        reports = self._reports()
        key = tuple((r.node, r.received) for r in reports)
        if key != self._key:
            index: dict[str, dict[str, autoscale.Sample]] = {}
            for report in reports:
                stamp = autoscale.seconds(report.timestamp) or time.time()
                for pod in report.pods:
                    index.setdefault(pod["namespace"], {})[pod["name"]] = autoscale.sample_of(
                        stamp, report.window, pod["containers"])
            self._key, self._index = key, index
        return self._index.get(namespace, {})


class PodIndex:
    """Pods by namespace and label (key, value), kept from the pods watch, and each pod's
    calculator view parsed once per resourceVersion."""

    def __init__(self) -> None:
        self._by_label: dict[str, dict[tuple[str, str], set[str]]] = {}
        self._views: dict[tuple[str, str], tuple[int, autoscale.Pod]] = {}

    def reset(self, entries: Iterable[Entry]) -> None:
        self._by_label = {}
        listed: set[tuple[str, str]] = set()
        for entry in entries:
            self._add(entry.namespace, entry.name, entry.labels)
            listed.add((entry.namespace, entry.name))
        # Views of pods deleted while the watch was behind would otherwise stay forever.
        self._views = {k: v for k, v in self._views.items() if k in listed}

    def _add(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        index = self._by_label.setdefault(namespace, {})
        for pair in labels.items():
            index.setdefault(pair, set()).add(name)

    def _remove(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        index = self._by_label.get(namespace, {})
        for pair in labels.items():
            names = index.get(pair)
            if names is not None:
                names.discard(name)
                if not names:
                    del index[pair]

    def changed(self, change: Change) -> Iterable[Key]:
        """A pods watch mapper: keeps the index, wakes no autoscaler."""
        if change.prev is not None:
            self._remove(change.prev.namespace, change.prev.name, change.prev.labels)
        if change.type == "DELETED":
            self._views.pop((change.entry.namespace, change.entry.name), None)
        else:
            self._add(change.entry.namespace, change.entry.name, change.entry.labels)
        return ()

    def candidates(self, namespace: str, selector: LabelSelector) -> set[str] | None:
        """Names of the pods that may match (a superset), None when the selector pins no
        label to one value (then every pod of the namespace is a candidate)."""
        index = self._by_label.get(namespace, {})
        best: set[str] | None = None
        for r in selector.requirements:
            value = selector.requires_exact_match(r.key)
            if value is not None:
                names = index.get((r.key, value), set())
                if best is None or len(names) < len(best):
                    best = names
        return best

    def view(self, entry: Entry) -> autoscale.Pod:
        key = (entry.namespace, entry.name)
        cached = self._views.get(key)
        if cached is None or cached[0] != entry.rv:
            cached = (entry.rv, autoscale.pod_of(entry.obj()))
            self._views[key] = cached
        return cached[1]


class HorizontalPodAutoscalerController(Controller):
    name = COMPONENT

    def __init__(self, api: ObjectAPI, usage: Callable[[], Sequence[Report]],
                 tunables: autoscale.Tunables | None = None,
                 sync_period: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(api)
        self.tunables = tunables or autoscale.Tunables()
        self.sync_period = sync_period
        self.clock = clock
        self.usage = UsageIndex(usage)
        self.events = EventRecorder(api, COMPONENT)
        self.pods = PodIndex()
        self.watches = [Watch(HPAS, spec_changed), Watch("pods", self.pods.changed)]
        self._hpa_type = self.target("autoscaling", "v2", "horizontalpodautoscalers").rt
        self._histories: dict[Key, autoscale.History] = {}
        # The pods each autoscaler selected at its last sync, to find two claiming the same.
        self._claimed: dict[Key, frozenset[str]] = {}

    def initial_keys(self) -> Iterable[Key]:
        # Called once the watches are subscribed (and again after one fell behind): the
        # pods listed now plus the changes from the watch are the whole truth.
        self.pods.reset(self.store.list("pods"))
        return [(e.namespace, e.name) for e in self.store.list(HPAS)]

    def _selected(self, namespace: str, selector: LabelSelector) -> list[Entry]:
        names = self.pods.candidates(namespace, selector)
        if names is None:
            entries = self.store.list("pods", namespace)
        else:
            found = (self.store.get("pods", namespace, n) for n in sorted(names))
            entries = [e for e in found if e is not None]
        return [e for e in entries if selector.matches(e.labels)]

    async def reconcile(self, key: Key) -> float | None:
        namespace, name = key  # type: ignore[misc]
        entry = self.store.get(HPAS, namespace, name)
        if entry is None:
            self._histories.pop(key, None)
            self._claimed.pop(key, None)
            return None
        hpa = entry.obj()
        now = self.clock()
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        try:
            target, scale = self._scale(namespace, ref)
        except _TargetError as err:
            await self.events.record(hpa, "Warning", "FailedGetScale", str(err))
            conditions = autoscale.set_condition(
                list((hpa.get("status") or {}).get("conditions") or []),
                autoscale.ABLE_TO_SCALE, "False", "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: {err}",
                now)
            await self._write_status(hpa, {**(hpa.get("status") or {}),
                                           "conditions": conditions})
            return self.sync_period

        selector_text = (scale.get("status") or {}).get("selector") or ""
        pods: list[autoscale.Pod] = []
        others: list[str] = []
        self._claimed.pop(key, None)
        if selector_text:
            try:
                selector = parse_label_selector(selector_text)
            except BadRequest:
                selector = None
            if selector is not None:
                matched = self._selected(namespace, selector)
                pods = [self.pods.view(e) for e in matched]
                mine = frozenset(e.name for e in matched)
                self._claimed[key] = mine
                others = [f"{ns}/{n}" for (ns, n), theirs in self._claimed.items()
                          if ns == namespace and n != name and not mine.isdisjoint(theirs)]
        samples = self.usage.namespace(namespace)
        samples = {p.name: samples[p.name] for p in pods if p.name in samples}
        decision = autoscale.decide(hpa, scale, pods, samples,
                                    self._histories.get(key, autoscale.History()), now,
                                    self.tunables, others)
        for type_, reason, message in decision.events:
            await self.events.record(hpa, type_, reason, message)
        if decision.error is not None:
            await self.events.record(hpa, "Warning", "FailedComputeMetricsReplicas",
                                     decision.error)
        elif decision.rescale:
            error = None
            try:
                await self.api.update_scale(
                    target, {"metadata": {"resourceVersion": (scale.get("metadata") or {})
                                          .get("resourceVersion")},
                             "spec": {"replicas": decision.desired}},
                    self.identity, WriteOptions())
            except StatusError as err:
                if err.code == 409:
                    raise  # the target changed under us: look again at once
                error = err.message
            else:
                log.info("rescaled", extra={"hpa": f"{namespace}/{name}",
                                            "from": decision.current,
                                            "to": decision.desired, "reason": decision.reason})
            decision, event = autoscale.after_rescale(hpa, decision, now, error)
            await self.events.record(hpa, *event)
        self._histories[key] = decision.history
        await self._write_status(hpa, autoscale.status_after(hpa, decision, now))
        return self.sync_period

    def _scale(self, namespace: str, ref: Obj) -> tuple[Target, Obj]:
        """The target's scale subresource (scaleForResourceMappings), or _TargetError with
        the message Kubernetes gives."""
        api_version = ref.get("apiVersion") or ""
        kind, target_name = ref.get("kind") or "", ref.get("name") or ""
        parts = api_version.split("/")
        if len(parts) > 2:
            raise _TargetError(f"unexpected GroupVersion string: {api_version}")
        group = parts[0] if len(parts) == 2 else ""
        rt = self._scalable(group, kind)
        if rt is None:
            raise _TargetError(f'no matches for kind "{kind}" in group "{group}"')
        target = Target(rt, namespace, target_name, "scale")
        entry = self.store.get(rt.qualified, namespace, target_name)
        if entry is None:
            raise _TargetError(f'{rt.qualified} "{target_name}" not found')
        return target, self.api.scale_of(target, entry)

    def _scalable(self, group: str, kind: str) -> ResourceType | None:
        for rt in self.api.registry.all:
            if rt.group == group and rt.kind == kind and "scale" in rt.subresources:
                return rt
        return None

    async def _write_status(self, hpa: Obj, status: Obj) -> None:
        if status == (hpa.get("status") or {}):
            return  # updateStatusIfNeeded
        meta = hpa.get("metadata") or {}
        await self.api.update(Target(self._hpa_type, meta.get("namespace", ""),
                                     meta.get("name", ""), "status"),
                              {**hpa, "status": status}, WriteOptions(), self.identity)


class _TargetError(Exception):
    """The scale target could not be read."""
