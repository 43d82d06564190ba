"""What to do to bring one pod's containers to its spec: the kubelet's computePodActions.

Role: given the desired Pod, what the runtime holds for it (ObservedPod), crash-loop
back-off and probe results, decide the next steps - typed, ordered and with reasons - for the
agent's pod worker to carry out. The worker runs `steps` in order, stops at the first failure
and syncs again; nothing here waits for anything.

The decision follows the kubelet:
- terminating (deleting=True): kill every live container with the pod's grace period, then
  remove the sandbox (and with it the containers).
- a pod in a final phase (Succeeded/Failed) never starts anything again; what still runs is
  stopped.
- no running sandbox: kill what is left, replace the sandbox, and start over - the first
  init container, or every app container (with OnFailure, not those that succeeded). With
  restartPolicy Never a sandbox that died after containers ran is not replaced.
- init containers run one at a time, in order; a failed one is restarted (after back-off),
  or with restartPolicy Never the pod is killed (its phase becomes Failed).
- then app containers: a container that is not running is started if the restartPolicy
  allows (Always; OnFailure after a failure; Never only if it never ran), after its
  CrashLoopBackOff; a running one whose spec hash changed is killed and recreated, one whose
  liveness or startup probe failed is killed (and restarted unless Never).
- when nothing runs and nothing is to start, the sandbox is stopped (the pod is done).

Invariants: pure (no I/O, no clock, `backoff` and `probe_states` are only read); the same
inputs give the same steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bramble.node.pods import Obj, Waiting, format_pod, generations
from bramble.node.pods.backoff import Backoff, go_duration
from bramble.node.pods.probes import LIVENESS, STARTUP, ContainerProbes
from bramble.node.pods.spec import container_hash
from bramble.node.pods.status import CRASH_LOOP_BACK_OFF, TERMINAL_PHASES, should_restart
from bramble.node.runtime.types import ObservedContainer, ObservedPod

# Why a step is taken.
DELETED = "PodDeleted"  # the pod is terminating
TERMINAL = "PodTerminal"  # the pod reached Succeeded/Failed
SANDBOX_CHANGED = "SandboxChanged"  # no running sandbox: replace it
NEW_SANDBOX = "NewSandbox"  # the pod's first sandbox
INIT_FAILED = "InitContainerFailed"  # restartPolicy Never: the pod fails
COMPLETED = "PodCompleted"  # nothing runs, nothing to start
SPEC_CHANGED = "SpecChanged"
LIVENESS_FAILED = "LivenessProbe"
STARTUP_FAILED = "StartupProbe"
UNKNOWN_STATE = "UnknownState"
NOT_IN_SPEC = "NotInSpec"
PRUNED = "Pruned"  # older than the generation kept as lastState
FIRST_START = "FirstStart"
RESTART = "Restart"

MINIMUM_GRACE_PERIOD = 2  # the kubelet's minimumGracePeriodInSeconds for container kills
DEFAULT_GRACE_PERIOD = 30
KEPT_GENERATIONS = 2  # the current container and its predecessor (lastState)

_LIVE = ("running", "unknown")


@dataclass(frozen=True)
class KillContainer:
    container_id: str
    name: str
    grace_period: int  # seconds between SIGTERM (the stop signal) and SIGKILL
    reason: str
    message: str


@dataclass(frozen=True)
class StopSandbox:
    sandbox_id: str
    reason: str


@dataclass(frozen=True)
class RemoveSandbox:
    """Remove the sandbox and every container in it (Podman removes a pod's containers)."""

    sandbox_id: str
    reason: str


@dataclass(frozen=True)
class RemoveContainer:
    container_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class CreateSandbox:
    """Create and start the pod's sandbox (build it with spec.sandbox_spec)."""

    reason: str


@dataclass(frozen=True)
class StartContainer:
    """Create and start one generation of a container (build it with spec.container_spec,
    passing this restart_count; a ConfigError becomes the waiting reason)."""

    name: str
    init: bool
    restart_count: int
    reason: str


Action = KillContainer | StopSandbox | RemoveSandbox | RemoveContainer | CreateSandbox | \
    StartContainer


@dataclass(frozen=True)
class PodActions:
    """The steps for one sync, in the order to run them, and what is being held back."""

    steps: tuple[Action, ...] = ()
    # Containers that should start but wait (CrashLoopBackOff), for pod_status's waiting_reasons.
    waiting: Mapping[str, Waiting] = field(default_factory=dict)
    # When a held container may start: sync again then. None: nothing held.
    requeue_at: float | None = None

    def of(self, kind: type) -> list[Action]:
        return [s for s in self.steps if isinstance(s, kind)]


def compute_pod_actions(pod: Obj, observed: ObservedPod, *, now: float, backoff: Backoff,
                        probe_states: Mapping[str, ContainerProbes] | None = None,
                        deleting: bool = False, grace_period_override: int | None = None
                        ) -> PodActions:
    """The next steps for `pod`. Record exits in `backoff` (Backoff.record_pod) before
    calling, so a container that just died is held back as the kubelet would hold it."""
    plan = _Plan(pod, observed, now=now, backoff=backoff, probe_states=probe_states or {})
    if deleting:
        plan.terminate(grace_period_override)
    elif ((pod.get("status") or {}).get("phase")) in TERMINAL_PHASES:
        plan.kill_pod(TERMINAL)
    elif observed.sandbox is None or observed.sandbox.state != "running":
        plan.replace_sandbox()
    elif plan.init_containers():
        plan.app_containers()
    return plan.result()


class _Plan:
    """The working state of one decision (discarded afterwards)."""

    def __init__(self, pod: Obj, observed: ObservedPod, *, now: float, backoff: Backoff,
                 probe_states: Mapping[str, ContainerProbes]) -> None:
        self.pod = pod
        self.observed = observed
        self.now = now
        self.backoff = backoff
        self.probe_states = probe_states
        spec = pod.get("spec") or {}
        self.policy = spec.get("restartPolicy") or "Always"
        self.init_specs: list[Obj] = list(spec.get("initContainers") or [])
        self.app_specs: list[Obj] = list(spec.get("containers") or [])
        self.specs = {c.get("name", ""): c for c in self.init_specs + self.app_specs}
        self.gens = generations(observed.containers)
        self.kills: dict[str, KillContainer] = {}
        self.sandbox_steps: list[Action] = []
        self.removes: list[RemoveContainer] = []
        self.create: CreateSandbox | None = None
        self.starts: list[StartContainer] = []
        self.waiting: dict[str, Waiting] = {}
        self.requeue_at: float | None = None
        self.prune = True
        self.starting = False  # some app container is meant to (re)start, held or not

    def current(self, name: str) -> ObservedContainer | None:
        found = self.gens.get(name)
        return found[0] if found else None

    def result(self) -> PodActions:
        if self.prune:
            self._prune()
        steps: list[Action] = [*self.kills.values(), *self.sandbox_steps, *self.removes]
        if self.create is not None:
            steps.append(self.create)
        steps.extend(self.starts)
        return PodActions(tuple(steps), dict(self.waiting), self.requeue_at)

    # --- kills ---------------------------------------------------------------------------------

    def kill(self, container: ObservedContainer, reason: str, message: str, *,
             grace_period: int | None = None) -> None:
        if container.id in self.kills:
            return  # the first, more specific reason stands
        if grace_period is None:
            grace_period = self._kill_grace(container.name, reason)
        self.kills[container.id] = KillContainer(container.id, container.name, grace_period,
                                                 reason, message)

    def _kill_grace(self, name: str, reason: str) -> int:
        """setTerminationGracePeriod: the deletion's, a failed probe's own, or the pod's."""
        meta = self.pod.get("metadata") or {}
        spec = self.pod.get("spec") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds")
            field_name = {LIVENESS_FAILED: "livenessProbe",
                          STARTUP_FAILED: "startupProbe"}.get(reason)
            probe = (self.specs.get(name) or {}).get(field_name or "") or {}
            if grace is not None and probe.get("terminationGracePeriodSeconds") is not None:
                grace = probe["terminationGracePeriodSeconds"]
        return max(int(grace or 0), MINIMUM_GRACE_PERIOD)

    def kill_live(self, reason: str, *, grace_period: int | None = None) -> None:
        for container in self.observed.containers:
            if container.state in _LIVE:
                self.kill(container, reason, f"Stopping container {container.name}",
                          grace_period=grace_period)

    def kill_pod(self, reason: str) -> None:
        """Stop every live container, then the sandbox (KillPod)."""
        self.kill_live(reason)
        sandbox = self.observed.sandbox
        if sandbox is not None and sandbox.state == "running":
            self.sandbox_steps.append(StopSandbox(sandbox.id, reason))

    def terminate(self, override: int | None) -> None:
        """Kill everything with the pod's grace period, then remove it all."""
        self.prune = False
        meta = self.pod.get("metadata") or {}
        spec = self.pod.get("spec") or {}
        if override is not None:
            grace = override
        else:
            # calculateEffectiveGracePeriod: a zero deletion grace falls back to the spec's.
            grace = meta.get("deletionGracePeriodSeconds") or spec.get(
                "terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD)
        self.kill_live(DELETED, grace_period=max(int(grace or 0), 1))
        sandbox = self.observed.sandbox
        if sandbox is not None:
            self.sandbox_steps.append(RemoveSandbox(sandbox.id, DELETED))
        else:
            self.removes.extend(RemoveContainer(c.id, c.name, DELETED)
                                for c in self.observed.containers)

    # --- starts --------------------------------------------------------------------------------

    def start(self, spec: Obj, *, init: bool, reason: str, held: bool = True) -> None:
        """Start `spec` unless its CrashLoopBackOff holds it (`held=False`: never held)."""
        name = spec.get("name", "")
        key = (self.observed.uid, name)
        allowed = self.backoff.next_allowed(key, self.now)
        if held and allowed > self.now:
            self.waiting[name] = Waiting(
                CRASH_LOOP_BACK_OFF,
                f"back-off {go_duration(self.backoff.delay(key))} restarting failed "
                f"container={name} pod={format_pod(self.pod)}")
            self.requeue_at = allowed if self.requeue_at is None else min(self.requeue_at,
                                                                          allowed)
            return
        self.starts.append(StartContainer(name, init, self._next_restart_count(name, init),
                                          reason))

    def _next_restart_count(self, name: str, init: bool) -> int:
        current = self.current(name)
        if current is not None:
            return current.restart_count + 1
        # The runtime lost it (e.g. with a replaced sandbox): continue the API's count.
        status = self.pod.get("status") or {}
        key = "initContainerStatuses" if init else "containerStatuses"
        for old in status.get(key) or []:
            if old.get("name") == name:
                ran = any(part in (old.get("state") or {}) for part in ("running", "terminated"))
                ran = ran or "terminated" in (old.get("lastState") or {})
                return int(old.get("restartCount") or 0) + (1 if ran else 0)
        return 0

    # --- the phases of a sync ------------------------------------------------------------------

    def replace_sandbox(self) -> None:
        sandbox = self.observed.sandbox
        first = sandbox is None and not self.observed.containers
        if not first and self.policy == "Never" and self.observed.containers:
            self.kill_pod(SANDBOX_CHANGED)  # nothing may run again: the pod is finished
            return
        to_start = [c for c in self.app_specs
                    if not (self.policy == "OnFailure" and self._succeeded(c.get("name", "")))]
        if not to_start and self._next_init()[2]:
            self.kill_pod(COMPLETED)
            return
        reason = NEW_SANDBOX if first else SANDBOX_CHANGED
        self.kill_live(reason)
        if sandbox is not None:
            self.sandbox_steps.append(RemoveSandbox(sandbox.id, reason))
            self.prune = False
        self.create = CreateSandbox(reason)
        start_reason = FIRST_START if first else reason
        if self.init_specs:
            self.start(self.init_specs[0], init=True, reason=start_reason)
            return
        for spec in to_start:
            self.start(spec, init=False, reason=start_reason)

    def init_containers(self) -> bool:
        """Drive initialization; True when it is done and app containers may be handled."""
        last, nxt, done = self._next_init()
        if done:
            return True
        if nxt is None:
            return False  # one is running
        if last is not None and _init_failed(last) and self.policy == "Never":
            self.kill_pod(INIT_FAILED)
            return False
        if last is not None and last.state == "unknown":
            self.kill(last, UNKNOWN_STATE,
                      'Init container is in "unknown" state, try killing it before restart')
        name = nxt.get("name", "")
        self.start(nxt, init=True, reason=FIRST_START if self.current(name) is None else RESTART)
        return False

    def _next_init(self) -> tuple[ObservedContainer | None, Obj | None, bool]:
        """findNextInitContainerToRun: (status of a failed one, the next to run, done)."""
        if not self.init_specs:
            return None, None, True
        for spec in self.app_specs:
            current = self.current(spec.get("name", ""))
            if current is not None and current.state == "running":
                return None, None, True  # initialized before (init containers may be pruned)
        for spec in reversed(self.init_specs):
            current = self.current(spec.get("name", ""))
            if current is not None and _init_failed(current):
                return current, spec, False
        for index in range(len(self.init_specs) - 1, -1, -1):
            current = self.current(self.init_specs[index].get("name", ""))
            if current is None:
                continue
            if current.state == "running":
                return None, None, False
            if current.state == "exited":
                if index == len(self.init_specs) - 1:
                    return None, None, True
                return None, self.init_specs[index + 1], False
        return None, self.init_specs[0], False

    def app_containers(self) -> None:
        keep = 0
        for spec in self.app_specs:
            name = spec.get("name", "")
            current = self.current(name)
            if current is None or current.state != "running":
                if should_restart(self.pod, current):
                    if current is not None and current.state == "unknown":
                        self.kill(current, UNKNOWN_STATE,
                                  'Container is in "unknown" state, try killing it before '
                                  "restart")
                    self.start(spec, init=False,
                               reason=FIRST_START if current is None else RESTART)
                    self.starting = True
                continue
            restart = self.policy != "Never"
            probes = self.probe_states.get(name)
            failed = probes.failed if probes is not None and probes.container_id == current.id \
                else None
            if current.spec_hash and current.spec_hash != container_hash(spec):
                reason, message, restart = SPEC_CHANGED, f"Container {name} definition changed", True
            elif failed == LIVENESS:
                reason, message = LIVENESS_FAILED, f"Container {name} failed liveness probe"
            elif failed == STARTUP:
                reason, message = STARTUP_FAILED, f"Container {name} failed startup probe"
            else:
                keep += 1
                continue
            if restart:
                message += ", will be restarted"
            self.kill(current, reason, message)
            if restart:
                # A new image is a new container to the kubelet's back-off: never held.
                self.start(spec, init=False, reason=reason, held=reason != SPEC_CHANGED)
                self.starting = True
        if keep == 0 and not self.starting:
            self.kill_pod(COMPLETED)

    def _succeeded(self, name: str) -> bool:
        current = self.current(name)
        return current is not None and current.state == "exited" and current.exit_code == 0

    def _prune(self) -> None:
        """Remove generations older than the kept ones, and containers no spec names."""
        for name, found in self.gens.items():
            if name not in self.specs:
                for container in found:
                    if container.state in _LIVE:
                        self.kill(container, NOT_IN_SPEC, f"Stopping container {name}")
                    self.removes.append(RemoveContainer(container.id, name, NOT_IN_SPEC))
                continue
            for container in found[KEPT_GENERATIONS:]:
                if container.state not in _LIVE:
                    self.removes.append(RemoveContainer(container.id, name, PRUNED))


def _init_failed(container: ObservedContainer) -> bool:
    """isInitContainerFailed: OOM-killed, exited non-zero, or in an unknown state."""
    if container.oom_killed:
        return True
    if container.state == "exited" and container.exit_code not in (0, None):
        return True
    return container.state == "unknown"
