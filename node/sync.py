"""Syncing one pod: observe the runtime, decide (pure), act, report status.

This is the I/O shell around `node.pods`: the decisions - what to start or kill, what
the status is, when to come back - are made there; here they are carried out against
Podman and the API. A sync is idempotent: run it again and it converges. The worker
calls it on every change of the pod, on runtime events, and when the last sync asked
to be called back (back-off expiring, a probe due, the periodic refresh that picks up
ConfigMap and Secret changes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bramble.client import Client
from bramble.kube.errors import NotFound, StatusError

from .events import NORMAL, WARNING, EventRecorder
from .pods import Waiting
from .pods import actions as act
from .pods import probes as prb
from .pods import spec as podspec
from .pods.backoff import Backoff
from .pods.servicenv import service_env
from .pods.status import pod_status
from .runtime.podman import ContainerRuntimeError, ImagePullError, PodmanRuntime
from .runtime.types import LABEL_POD_UID, ObservedPod
from .volumes import PodVolumes, VolumeError
from .workers import SyncResult

log = logging.getLogger(__name__)

Pod = dict[str, Any]

# The kubelet's floor for a grace period (an explicit 0 still gets SIGTERM first).
MIN_GRACE_SECONDS = 2

# Without other reasons to come back, a running pod is re-synced this often: it picks up
# ConfigMap/Secret changes for volumes and repairs anything changed behind our back.
REFRESH_SECONDS = 30.0


@dataclass
class _PodState:
    pod: Pod | None = None
    probes: dict[str, prb.ContainerProbes] = field(default_factory=dict)
    reported: dict[str, Any] | None = None
    sandbox_error: Waiting | None = None


class PodSyncer:
    def __init__(self, runtime: PodmanRuntime, client: Client, volumes: PodVolumes, *,
                 node_name: str, host_ip: str, allow_privileged: bool = False,
                 events: EventRecorder | None = None,
                 services: Callable[[], Iterable[dict[str, Any]]] = lambda: (),
                 cluster_dns: Sequence[str] = (), cluster_domain: str = "cluster.local",
                 host_search: Sequence[str] = ()) -> None:
        self.runtime = runtime
        # The Services known when a container starts (its {NAME}_SERVICE_HOST variables)
        # and the cluster DNS its pod gets (none: ClusterFirst falls back to the host's).
        self.services = services
        self.cluster_dns = tuple(cluster_dns)
        self.cluster_domain = cluster_domain
        self.host_search = tuple(host_search)
        self.events = events
        self.client = client
        self.volumes = volumes
        self.node_name = node_name
        self.host_ip = host_ip
        self.allow_privileged = allow_privileged
        self.backoff = Backoff()
        self._state: dict[str, _PodState] = {}
        # Containers being stopped with a grace period, by pod uid: a force delete
        # arriving meanwhile kills them at once (see `hurry`).
        self._stopping: dict[str, set[str]] = {}
        self._kills: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        for task in self._kills:
            task.cancel()
        await asyncio.gather(*self._kills, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    def hurry(self, uid: str, pod: Pod | None) -> None:
        """A newer state of the pod arrived (None: gone from the API). If it was force
        deleted (gone, or a grace period of 0) while its containers are still being
        stopped with the longer grace, kill them now - as the kubelet honours a shorter
        grace period given later. Never blocks: the worker is busy in that stop."""
        stopping = self._stopping.get(uid)
        if not stopping:
            return
        grace = None if pod is None else (pod.get("metadata") or {}).get(
            "deletionGracePeriodSeconds")
        if pod is not None and grace != 0:
            return
        for container_id in list(stopping):
            task = asyncio.create_task(self._kill_now(uid, container_id),
                                       name=f"force-kill-{container_id[:12]}")
            self._kills.add(task)
            task.add_done_callback(self._kills.discard)

    async def _stop(self, uid: str, container_id: str, grace: int) -> None:
        """Stop with a grace period, known to `hurry` while it lasts."""
        self._stopping.setdefault(uid, set()).add(container_id)
        try:
            await self.runtime.stop(container_id, timeout=grace)
        finally:
            stopping = self._stopping.get(uid, set())
            stopping.discard(container_id)
            if not stopping:
                self._stopping.pop(uid, None)

    async def _kill_now(self, uid: str, container_id: str) -> None:
        try:
            await self.runtime.kill(container_id)
        except ContainerRuntimeError as err:  # exited meanwhile: nothing to kill
            log.debug("force kill found nothing to kill", extra={
                "pod_uid": uid, "container": container_id, "error": str(err)})

    def _event(self, pod: Pod, type_: str, reason: str, message: str,
               container: str = "") -> None:
        if self.events is not None:
            field_path = f"spec.containers{{{container}}}" if container else ""
            self.events.record(pod, type_, reason, message, field_path=field_path)

    # -- the sync ---------------------------------------------------------------------

    async def sync(self, uid: str, pod: Pod | None) -> SyncResult:
        state = self._state.setdefault(uid, _PodState())
        if pod is not None:
            state.pod = pod
        observed = (await self.runtime.observe({LABEL_POD_UID: uid})).get(uid) or ObservedPod(uid)
        if pod is None:
            return await self._remove(uid, state, observed, delete_from_api=False)
        deleting = bool(pod.get("metadata", {}).get("deletionTimestamp"))
        now = time.time()
        self.backoff.record_pod(observed)
        state.probes = prb.sync_probes(pod, observed, state.probes, now=now)
        await self._run_probes(pod, observed, state, now)
        plan = act.compute_pod_actions(pod, observed, now=now, backoff=self.backoff,
                                       probe_states=state.probes, deleting=deleting)
        waiting: dict[str, Waiting] = dict(plan.waiting)
        context: dict[str, Any] | None = None
        if not deleting and observed.sandbox is not None and observed.sandbox.state == "running":
            # ConfigMap and Secret volumes follow their objects (written atomically, and
            # only when they changed): every sync refreshes them, and containers started
            # below use the same context rather than fetching it again.
            try:
                context = await self._pod_context(pod)
            except _ContextError as err:
                self._event(pod, WARNING, "FailedMount", err.waiting.message)
        for name, why in plan.waiting.items():
            if why.reason == "CrashLoopBackOff":
                self._event(pod, WARNING, "BackOff",
                            f"Back-off restarting failed container {name} in pod "
                            f"{_name(pod).replace('/', '_')}", name)
        await self._execute(pod, observed, plan, waiting, context)
        observed = (await self.runtime.observe({LABEL_POD_UID: uid})).get(uid) or ObservedPod(uid)
        if deleting and observed.sandbox is None and not observed.containers:
            return await self._remove(uid, state, observed, delete_from_api=True)
        await self._report(pod, observed, state, waiting, now)
        return SyncResult(resync=self._next(plan, state, now))

    def _next(self, plan: act.PodActions, state: _PodState, now: float) -> float:
        times = [now + REFRESH_SECONDS]
        if plan.requeue_at is not None:
            times.append(plan.requeue_at)
        for probes in state.probes.values():
            due = probes.next_due()
            if due is not None:
                times.append(due)
        return max(0.05, min(times) - time.time())

    async def _execute(self, pod: Pod, observed: ObservedPod, plan: act.PodActions,
                       waiting: dict[str, Waiting], context: dict[str, Any] | None) -> None:
        sandbox_id = observed.sandbox.id if observed.sandbox else ""
        sandbox_ip = observed.sandbox.ip if observed.sandbox else ""
        for step in plan.steps:
            try:
                if isinstance(step, act.KillContainer):
                    self._event(pod, NORMAL, "Killing",
                                step.message or f"Stopping container {step.name}", step.name)
                    await self._stop(pod["metadata"].get("uid", ""), step.container_id,
                                     max(step.grace_period, 0))
                elif isinstance(step, act.StopSandbox):
                    # A finished pod: stop, but keep its exited containers - their status
                    # and logs - until the pod is deleted.
                    await self.runtime.stop_sandbox(step.sandbox_id)
                elif isinstance(step, act.RemoveSandbox):
                    await self.runtime.remove_sandbox(step.sandbox_id)
                    sandbox_id, sandbox_ip = "", ""
                elif isinstance(step, act.RemoveContainer):
                    await self.runtime.remove_container(step.container_id)
                elif isinstance(step, act.CreateSandbox):
                    context = await self._pod_context(pod)
                    sandbox_id = await self.runtime.create_sandbox(podspec.sandbox_spec(
                        pod, self.node_name, cluster_dns=self.cluster_dns,
                        cluster_domain=self.cluster_domain, host_search=self.host_search))
                    sandbox_ip = await self.runtime.sandbox_ip(sandbox_id)
                elif isinstance(step, act.StartContainer):
                    if not sandbox_id:
                        break
                    if context is None:
                        context = await self._pod_context(pod)
                    ok = await self._start(pod, step, sandbox_id, sandbox_ip, context, waiting)
                    if not ok and step.init:
                        break  # later init containers wait for this one
            except _ContextError as err:
                self._event(pod, WARNING, "FailedMount", err.waiting.message)
                for c in _containers(pod):
                    waiting.setdefault(c, err.waiting)
                break
            except ContainerRuntimeError as err:
                log.warning("runtime step failed", extra={
                    "pod": _name(pod), "step": type(step).__name__, "error": str(err)})

    async def _pod_context(self, pod: Pod) -> dict[str, Any]:
        """What container specs need from outside the pod: volumes prepared on the host,
        the ConfigMaps and Secrets its env reads."""
        ns = pod["metadata"].get("namespace", "default")
        needs = podspec.volume_plan(pod)
        objects: dict[tuple[str, str], Any] = {}
        for need in needs:
            if need.kind in ("configMap", "secret"):
                objects[(need.kind, need.source_name)] = await self._get(
                    "configmaps" if need.kind == "configMap" else "secrets", ns,
                    need.source_name)
        try:
            paths = await self.volumes.prepare(pod["metadata"]["uid"], needs, objects)
        except VolumeError as err:
            raise _ContextError(Waiting("ContainerCreating", f"MountVolume.SetUp failed: {err}")
                                ) from err
        refs = podspec.env_references(pod)
        cms = [o for n in sorted(refs.config_maps) if (o := await self._get("configmaps", ns, n))]
        secrets = [o for n in sorted(refs.secrets) if (o := await self._get("secrets", ns, n))]
        return {"paths": paths, "env": podspec.EnvSources.from_objects(cms, secrets)}

    async def _get(self, plural: str, ns: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.client.request("GET", f"/api/v1/namespaces/{ns}/{plural}/{name}")
        except NotFound:
            return None

    async def _start(self, pod: Pod, step: act.StartContainer, sandbox_id: str, pod_ip: str,
                     context: dict[str, Any], waiting: dict[str, Waiting]) -> bool:
        container = next(c for c in _containers_of(pod, step.init) if c["name"] == step.name)
        try:
            spec = podspec.container_spec(
                pod, container, init=step.init, restart_count=step.restart_count,
                env_sources=context["env"], volume_paths=context["paths"],
                node_name=self.node_name, pod_ip=pod_ip, host_ip=self.host_ip,
                service_env=service_env(pod, self.services()),
                allow_privileged=self.allow_privileged)
        except podspec.ConfigError as err:
            waiting[step.name] = Waiting(err.reason, str(err))
            self._event(pod, WARNING, "Failed", f"Error: {err}", step.name)
            return False
        problem = await self._ensure_image(pod, container)
        if problem is not None:
            waiting[step.name] = problem
            self._event(pod, WARNING, "Failed", f"Error: {problem.reason}", step.name)
            return False
        container_id = await self.runtime.create_container(sandbox_id, spec)
        self._event(pod, NORMAL, "Created", f"Created container {step.name}", step.name)
        await self.runtime.start(container_id)
        self._event(pod, NORMAL, "Started", f"Started container {step.name}", step.name)
        return True

    async def _ensure_image(self, pod: Pod, container: dict[str, Any]) -> Waiting | None:
        image = container.get("image", "")
        name = container.get("name", "")
        policy = container.get("imagePullPolicy", "IfNotPresent")
        present = await self.runtime.image_present(image)
        if policy == "Never" and not present:
            message = f'Container image "{image}" is not present with pull policy of Never'
            self._event(pod, WARNING, "ErrImageNeverPull", message, name)
            return Waiting("ErrImageNeverPull", message)
        if present and policy != "Always":
            self._event(pod, NORMAL, "Pulled",
                        f'Container image "{image}" already present on machine', name)
            return None
        self._event(pod, NORMAL, "Pulling", f'Pulling image "{image}"', name)
        try:
            await self.runtime.pull(image)
        except ImagePullError as err:
            self._event(pod, WARNING, "Failed", f'Failed to pull image "{image}": {err}', name)
            return Waiting("ErrImagePull", str(err))
        self._event(pod, NORMAL, "Pulled", f'Successfully pulled image "{image}"', name)
        return None

    # -- probes -------------------------------------------------------------------------

    async def _run_probes(self, pod: Pod, observed: ObservedPod, state: _PodState,
                          now: float) -> None:
        ip = observed.sandbox.ip if observed.sandbox else ""
        runs = []
        for name, probes in state.probes.items():
            container = next((c for c in _containers_of(pod, False) if c["name"] == name), None)
            if container is None:
                continue
            for kind in probes.due(now):
                runs.append((probes, kind, container))
        if not runs:
            return
        results = await asyncio.gather(*(self._probe(p, kind, c, ip) for p, kind, c in runs))
        for (probes, kind, container), result in zip(runs, results, strict=True):
            if result is not None:
                probes.record(kind, result, time.time())
            if result == prb.FAILURE:
                self._event(pod, WARNING, "Unhealthy", f"{kind.capitalize()} probe failed",
                            container["name"])

    async def _probe(self, probes: prb.ContainerProbes, kind: str, container: dict[str, Any],
                     ip: str) -> str | None:
        field_name = prb.FIELDS[kind]
        try:
            target = prb.probe_target(container[field_name], ip, container=container)
        except prb.ProbeError:
            return None
        try:
            async with asyncio.timeout(target.timeout):
                if target.kind == "tcp":
                    _, writer = await asyncio.open_connection(target.host, target.port)
                    writer.close()
                    return prb.SUCCESS
                if target.kind == "http":
                    if self._http is None:
                        self._http = aiohttp.ClientSession()
                    url = f"{target.scheme}://{target.host}:{target.port}{target.path}"
                    async with self._http.get(url, headers=dict(target.headers), ssl=False,
                                              allow_redirects=False) as resp:
                        return prb.SUCCESS if 200 <= resp.status < 400 else prb.FAILURE
                if target.kind == "exec":
                    session = await self.runtime.exec(probes.container_id, list(target.command))
                    async with session:
                        await session.output()
                        return prb.SUCCESS if await session.wait() == 0 else prb.FAILURE
        except (TimeoutError, OSError, aiohttp.ClientError, ContainerRuntimeError):
            return prb.FAILURE
        return None  # grpc: not supported yet; no result rather than a false failure

    # -- status and removal ---------------------------------------------------------------

    async def _report(self, pod: Pod, observed: ObservedPod, state: _PodState,
                      waiting: dict[str, Waiting], now: float) -> None:
        status = pod_status(pod, observed, now=now, probe_states=state.probes,
                            waiting_reasons=waiting, host_ip=self.host_ip)
        if status == state.reported or status == pod.get("status"):
            state.reported = status
            return
        meta = pod["metadata"]
        try:
            await self.client.request(
                "PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                json={"status": status}, content_type="application/merge-patch+json")
            state.reported = status
        except NotFound:
            pass  # deleted meanwhile: the next sync sees it
        except StatusError as err:
            log.warning("pod status update failed", extra={"pod": _name(pod),
                                                             "error": err.message})

    async def _remove(self, uid: str, state: _PodState, observed: ObservedPod, *,
                      delete_from_api: bool) -> SyncResult:
        """Stop and remove everything of the pod; confirm its deletion to the API."""
        pod = state.pod or {}
        if delete_from_api:
            grace = _grace(pod)
        else:
            # Gone from the API (force-deleted, or deleted while this agent was away):
            # nobody waits for a graceful end any more; the kubelet's minimum applies.
            grace = MIN_GRACE_SECONDS
        running = [c for c in observed.containers if c.state == "running"]
        await asyncio.gather(*(self._stop(uid, c.id, grace) for c in running),
                             return_exceptions=True)
        if observed.sandbox is not None:
            await self.runtime.remove_sandbox(observed.sandbox.id)
        for c in observed.containers:
            try:
                await self.runtime.remove_container(c.id)
            except ContainerRuntimeError:
                pass  # removed with the sandbox
        await self.volumes.remove(uid)
        if delete_from_api and pod:
            meta = pod["metadata"]
            try:
                await self.client.request(
                    "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                    json={"gracePeriodSeconds": 0,
                          "preconditions": {"uid": meta["uid"]}})
            except (NotFound, StatusError) as err:
                if not isinstance(err, NotFound) and err.code != 409:
                    raise
        self.backoff.forget_pod(uid)
        if self.events is not None:
            self.events.forget(uid)
        self._state.pop(uid, None)
        return SyncResult(done=True)


class _ContextError(Exception):
    def __init__(self, waiting: Waiting) -> None:
        super().__init__(waiting.message)
        self.waiting = waiting


def _grace(pod: Pod) -> int:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    for value in (meta.get("deletionGracePeriodSeconds"),
                  spec.get("terminationGracePeriodSeconds")):
        if isinstance(value, int):
            return max(value, MIN_GRACE_SECONDS)
    return 30


def _containers_of(pod: Pod, init: bool) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers" if init else "containers") or [])


def _containers(pod: Pod) -> list[str]:
    return [c["name"] for c in _containers_of(pod, True) + _containers_of(pod, False)]


def _name(pod: Pod) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"
