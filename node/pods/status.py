"""A pod's API status from what the runtime holds, exactly as the kubelet reports it.

Role: the kubelet's generateAPIPodStatus - convertToAPIContainerStatuses (container states,
lastState from the previous generation, restart counts, waiting reasons), getPhase (the
restartPolicy rules), the conditions of pkg/kubelet/status/generate.go, and the probe
manager's `ready`/`started` - as one pure function of (pod, observed runtime state, probe
states, waiting reasons, now).

Invariants:
- Pure: no I/O; `now` (Unix seconds) is used only for new startTime and transition times.
- The previous status (`pod["status"]`) is an input, as for the kubelet: startTime,
  qosClass, the scheduler's PodScheduled condition, conditions owned by others, transition
  times of unchanged conditions, and terminated states of containers the runtime no longer
  has are all carried over.
- A pod never leaves a terminal phase (Succeeded/Failed).
- Container statuses: init containers in spec order, app containers sorted by name (the
  kubelet's SortedContainerStatuses).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bramble.node.pods import Obj, Waiting, api_time, format_time, generations
from bramble.node.pods.probes import ContainerProbes
from bramble.node.runtime.types import ObservedContainer, ObservedPod

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})

# Waiting reasons (the kubelet's, word for word).
CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
CREATE_CONTAINER_ERROR = "CreateContainerError"
RUN_CONTAINER_ERROR = "RunContainerError"
# Terminated reasons.
COMPLETED = "Completed"
ERROR = "Error"
OOM_KILLED = "OOMKilled"
CONTAINER_STATUS_UNKNOWN = "ContainerStatusUnknown"

# Condition types and reasons.
POD_SCHEDULED = "PodScheduled"
POD_READY_TO_START_CONTAINERS = "PodReadyToStartContainers"
INITIALIZED = "Initialized"
CONTAINERS_READY = "ContainersReady"
READY = "Ready"
KUBELET_CONDITIONS = frozenset({POD_SCHEDULED, POD_READY_TO_START_CONTAINERS, INITIALIZED,
                                CONTAINERS_READY, READY})
CONTAINERS_NOT_READY = "ContainersNotReady"
CONTAINERS_NOT_INITIALIZED = "ContainersNotInitialized"
POD_COMPLETED = "PodCompleted"
POD_FAILED = "PodFailed"
READINESS_GATES_NOT_READY = "ReadinessGatesNotReady"

CONTAINER_ID_PREFIX = "podman://"

_MISSING_WHILE_RUNNING = ("The container could not be located when the pod was deleted.  "
                          "The container used to be Running")
_UNKNOWN_WHILE_RUNNING = "The container could not be located when the pod was terminated"
_INIT_GONE = ("Unable to get init container status from container runtime and pod has been "
              "initialized, treat it as exited normally")


def should_restart(pod: Obj, current: ObservedContainer | None, *, deleting: bool = False
                   ) -> bool:
    """Whether the kubelet would (re)start a container whose newest generation is `current`
    (kubecontainer.ShouldContainerBeRestarted)."""
    if deleting or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if current is None:
        return True
    if current.state == "running":
        return False
    if current.state in ("unknown", "created"):
        return True
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if policy == "Never":
        return False
    if policy == "OnFailure" and current.exit_code == 0:
        return False
    return True


def pod_status(pod: Obj, observed: ObservedPod, *, now: float,
               probe_states: Mapping[str, ContainerProbes] | None = None,
               waiting_reasons: Mapping[str, Waiting | tuple[str, str]] | None = None,
               host_ip: str = "", terminal: bool = False) -> dict[str, Any]:
    """The pod's `status` as the kubelet would write it.

    `waiting_reasons`: per container name, why the agent could not start it (its reason
    cache: CrashLoopBackOff from compute_pod_actions, ErrImagePull, CreateContainerConfigError
    ...); used only for a container that is due to be (re)started.
    `terminal`: the agent has finished with the pod (its containers will not run again), so
    a stopped pod gets Succeeded/Failed whatever its restartPolicy (podIsTerminal).
    """
    probe_states = probe_states or {}
    reasons = {k: Waiting(*v) for k, v in (waiting_reasons or {}).items()}
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    gens = generations(observed.containers)
    init_specs = list(spec.get("initContainers") or [])
    app_specs = list(spec.get("containers") or [])
    has_init = bool(init_specs)
    deleting = bool(meta.get("deletionTimestamp"))
    app_names = {c.get("name") for c in app_specs}
    app_created = any(name in gens for name in app_names)

    common = dict(pod=pod, gens=gens, has_init=has_init, probe_states=probe_states,
                  reasons=reasons, deleting=deleting, app_created=app_created)
    init_statuses = _container_statuses(init_specs, old.get("initContainerStatuses"),
                                        is_init=True, **common)
    app_statuses = _container_statuses(app_specs, old.get("containerStatuses"),
                                       is_init=False, **common)

    phase = get_phase(pod, init_statuses + app_statuses, terminal=terminal)
    old_phase = old.get("phase")
    if phase not in TERMINAL_PHASES and old_phase in TERMINAL_PHASES:
        phase = old_phase

    status: dict[str, Any] = {"phase": phase}
    status["conditions"] = _conditions(pod, observed, old, init_statuses, app_statuses,
                                       phase, now)
    if phase == old_phase:
        for key in ("message", "reason"):
            if old.get(key):
                status[key] = old[key]
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    pod_ip = _pod_ip(spec, observed, old, host_ip)
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = old.get("startTime") or format_time(now)
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = sorted(app_statuses, key=lambda s: s["name"])
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    return status


def _pod_ip(spec: Obj, observed: ObservedPod, old: Obj, host_ip: str) -> str:
    if spec.get("hostNetwork") is True:
        return host_ip or old.get("podIP", "")
    sandbox = observed.sandbox
    if sandbox is not None and sandbox.state == "running" and sandbox.ip:
        return sandbox.ip
    # A stopped pod keeps the address it had (as `kubectl get -o wide` shows for Completed).
    return old.get("podIP", "")


# --- container statuses -----------------------------------------------------------------------


def _container_statuses(specs: list[Obj], previous: list[Obj] | None, *, pod: Obj,
                        gens: Mapping[str, list[ObservedContainer]], has_init: bool,
                        is_init: bool, probe_states: Mapping[str, ContainerProbes],
                        reasons: Mapping[str, Waiting], deleting: bool,
                        app_created: bool) -> list[dict[str, Any]]:
    olds = {s.get("name"): s for s in previous or []}
    default_reason = POD_INITIALIZING if has_init else CONTAINER_CREATING
    statuses: dict[str, dict[str, Any]] = {}

    # Every container starts as waiting, carrying what the previous status knew.
    for c in specs:
        name = c.get("name", "")
        status = _status(name, c.get("image", ""), {"waiting": {"reason": default_reason}})
        old = olds.get(name)
        if old is not None:
            if "terminated" in (old.get("state") or {}):
                status = copy.deepcopy(dict(old))
            else:
                status["restartCount"] = old.get("restartCount", 0)
                status["lastState"] = copy.deepcopy(old.get("lastState") or {})
        statuses[name] = status

    # A container that was running and is gone from the runtime did terminate.
    for c in specs:
        name = c.get("name", "")
        old = olds.get(name)
        if name in gens or old is None:
            continue
        old_state = old.get("state") or {}
        if "terminated" in old_state or "running" not in old_state:
            continue
        status = statuses[name]
        if (status["state"].get("waiting") or {}).get("reason") != default_reason:
            continue
        if "terminated" in (status.get("lastState") or {}):
            continue
        status["lastState"] = {"terminated": {
            "exitCode": 137, "reason": CONTAINER_STATUS_UNKNOWN,
            "message": _MISSING_WHILE_RUNNING, "startedAt": None, "finishedAt": None}}
        if not deleting:
            status["restartCount"] = status.get("restartCount", 0) + 1

    # What the runtime has: the newest generation is the state, the one before the lastState.
    for c in specs:
        name = c.get("name", "")
        found = gens.get(name)
        if not found:
            continue
        old = olds.get(name)
        status = _convert(found[0], c, old)
        if len(found) > 1:
            status["lastState"] = _convert(found[1], c, old)["state"]
        statuses[name] = status

    # Containers due to be (re)started wait, with the reason the agent recorded.
    for c in specs:
        name = c.get("name", "")
        current = gens[name][0] if name in gens else None
        status = statuses[name]
        if is_init:
            if current is not None and current.state == "exited" and current.exit_code == 0:
                continue
            if current is None and app_created and "waiting" in status["state"]:
                status["state"] = {"terminated": {"exitCode": 0, "reason": COMPLETED,
                                                  "message": _INIT_GONE, "startedAt": None,
                                                  "finishedAt": None}}
                continue
        if not should_restart(pod, current, deleting=deleting) or name not in reasons:
            continue
        waiting = reasons[name]
        if "terminated" in status["state"]:
            status["lastState"] = status["state"]
        status["state"] = {"waiting": _waiting(waiting)}

    # started / ready, as the probe manager sets them.
    for c in specs:
        name = c.get("name", "")
        status = statuses[name]
        running = "running" in status["state"]
        if is_init:
            terminated = status["state"].get("terminated")
            status["started"] = running
            status["ready"] = terminated is not None and terminated.get("exitCode") == 0
            continue
        current = gens[name][0] if name in gens else None
        probes = probe_states.get(name)
        if probes is not None and current is not None and probes.container_id == current.id:
            started, ready = probes.started, probes.ready
        else:
            started = not c.get("startupProbe")
            ready = started and not c.get("readinessProbe")
        status["started"] = running and started
        status["ready"] = running and ready

    return [statuses[c.get("name", "")] for c in specs]


def _status(name: str, image: str, state: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "state": state, "lastState": {}, "ready": False, "restartCount": 0,
            "image": image, "imageID": "", "started": False}


def _waiting(waiting: Waiting) -> dict[str, str]:
    result = {"reason": waiting.reason}
    if waiting.message:
        result["message"] = waiting.message
    return result


def _convert(container: ObservedContainer, spec: Obj, old: Obj | None) -> dict[str, Any]:
    """One runtime container as a ContainerStatus (convertContainerStatus)."""
    cid = CONTAINER_ID_PREFIX + container.id
    status = _status(container.name, container.image or spec.get("image", ""), {})
    status["restartCount"] = container.restart_count
    status["imageID"] = container.image_id
    status["containerID"] = cid
    # Keep the Go struct's field order: containerID before started.
    status["started"] = status.pop("started")
    old_state = (old or {}).get("state") or {}
    if container.state == "running":
        status["state"] = {"running": {"startedAt": api_time(container.started_at)}}
    elif container.state == "exited":
        exit_code = container.exit_code or 0
        terminated: dict[str, Any] = {"exitCode": exit_code, "reason": terminated_reason(
            exit_code, container.oom_killed)}
        if container.error:
            terminated["message"] = container.error
        terminated["startedAt"] = api_time(container.started_at)
        terminated["finishedAt"] = api_time(container.finished_at)
        terminated["containerID"] = cid
        status["state"] = {"terminated": terminated}
    elif container.state == "unknown" and "running" in old_state:
        status["state"] = {"terminated": {"exitCode": 137, "reason": CONTAINER_STATUS_UNKNOWN,
                                          "message": _UNKNOWN_WHILE_RUNNING,
                                          "startedAt": None, "finishedAt": None}}
        status["restartCount"] = (old or {}).get("restartCount", 0) + 1
    else:  # created, or unknown without a previous running state
        status["state"] = {"waiting": {}}
    return status


def terminated_reason(exit_code: int, oom_killed: bool) -> str:
    """What the runtime calls an exit: OOMKilled, Completed (0) or Error."""
    if oom_killed:
        return OOM_KILLED
    return COMPLETED if exit_code == 0 else ERROR


# --- phase --------------------------------------------------------------------------------------


def get_phase(pod: Obj, statuses: list[Obj], *, terminal: bool = False) -> str:
    """The pod phase from its container statuses (the kubelet's getPhase, without the
    alpha ContainerRestartRules and with init containers that all run to completion)."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    by_name = {s.get("name"): s for s in statuses}

    pending_init = failed_init = 0
    for c in spec.get("initContainers") or []:
        status = by_name.get(c.get("name"))
        state = (status or {}).get("state") or {}
        if status is None:
            pending_init += 1
        elif "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode") != 0:
                failed_init += 1
        elif "waiting" in state:
            last = (status.get("lastState") or {}).get("terminated")
            if last is not None:
                if last.get("exitCode") != 0:
                    failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1

    unknown = running = waiting = stopped = succeeded = 0
    for c in spec.get("containers") or []:
        status = by_name.get(c.get("name"))
        if status is None:
            unknown += 1
            continue
        state = status.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if "terminated" in (status.get("lastState") or {}):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1

    if failed_init > 0 and policy == "Never":
        return FAILED
    if pending_init > 0 or waiting > 0:
        return PENDING
    if running > 0 and unknown == 0:
        return RUNNING
    if running == 0 and stopped > 0 and unknown == 0:
        if terminal:
            return SUCCEEDED if stopped == succeeded else FAILED
        if policy == "Always":
            return RUNNING  # restarting
        if stopped == succeeded:
            return SUCCEEDED
        if policy == "Never":
            return FAILED
        return RUNNING  # OnFailure: the failed ones restart
    return PENDING


# --- conditions -------------------------------------------------------------------------------------


def _conditions(pod: Obj, observed: ObservedPod, old: Obj, init_statuses: list[Obj],
                app_statuses: list[Obj], phase: str, now: float) -> list[dict[str, Any]]:
    old_conditions = [c for c in old.get("conditions") or [] if isinstance(c, dict)]
    by_type = {c.get("type"): c for c in old_conditions}
    kept = [copy.deepcopy(c) for c in old_conditions if c.get("type") not in KUBELET_CONDITIONS]

    sandbox = observed.sandbox
    sandbox_ready = sandbox is not None and sandbox.state == "running"
    containers_ready = _containers_ready(app_statuses, phase)
    generated = [
        (POD_READY_TO_START_CONTAINERS, "True" if sandbox_ready else "False", "", ""),
        _initialized(pod, init_statuses, app_statuses, phase),
        _ready(pod, kept, containers_ready),
        containers_ready,
    ]
    result = kept
    for type_, status, reason, message in generated:
        result.append(_condition(type_, status, reason, message, by_type.get(type_), now))
    scheduled = by_type.get(POD_SCHEDULED)
    if scheduled is not None and scheduled.get("status") == "True":
        result.append(copy.deepcopy(scheduled))
    else:
        result.append(_condition(POD_SCHEDULED, "True", "", "", scheduled, now))
    return result


def _condition(type_: str, status: str, reason: str, message: str, old: Obj | None,
               now: float) -> dict[str, Any]:
    # The status manager keeps the transition time while the status stays the same.
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        transition = old["lastTransitionTime"]
    else:
        transition = format_time(now)
    condition: dict[str, Any] = {"type": type_, "status": status, "lastProbeTime": None,
                                 "lastTransitionTime": transition}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _names(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"  # Go's %s of a []string


def _containers_ready(app_statuses: list[Obj], phase: str) -> tuple[str, str, str, str]:
    if phase == SUCCEEDED:
        return CONTAINERS_READY, "False", POD_COMPLETED, ""
    if phase == FAILED:
        return CONTAINERS_READY, "False", POD_FAILED, ""
    unready = [s["name"] for s in app_statuses if not s.get("ready")]
    if unready:
        return (CONTAINERS_READY, "False", CONTAINERS_NOT_READY,
                f"containers with unready status: {_names(unready)}")
    return CONTAINERS_READY, "True", "", ""


def _ready(pod: Obj, conditions: list[Obj], containers_ready: tuple[str, str, str, str]
           ) -> tuple[str, str, str, str]:
    _, status, reason, message = containers_ready
    if status != "True":
        return READY, status, reason, message
    by_type = {c.get("type"): c for c in conditions}
    messages = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        type_ = gate.get("conditionType", "")
        condition = by_type.get(type_)
        if condition is None:
            messages.append(f'corresponding condition of pod readiness gate "{type_}" '
                            "does not exist.")
        elif condition.get("status") != "True":
            messages.append(f'the status of pod readiness gate "{type_}" is not "True", '
                            f"but {condition.get('status')}")
    if messages:
        return READY, "False", READINESS_GATES_NOT_READY, ", ".join(messages)
    return READY, "True", "", ""


def _initialized(pod: Obj, init_statuses: list[Obj], app_statuses: list[Obj], phase: str
                 ) -> tuple[str, str, str, str]:
    if phase == SUCCEEDED:
        return INITIALIZED, "True", POD_COMPLETED, ""
    if any("running" in s["state"] or "terminated" in s["state"] for s in app_statuses):
        return INITIALIZED, "True", "", ""  # initialized before, whatever init shows now
    incomplete = [s["name"] for s in init_statuses if not s.get("ready")]
    if incomplete:
        return (INITIALIZED, "False", CONTAINERS_NOT_INITIALIZED,
                f"containers with incomplete status: {_names(incomplete)}")
    return INITIALIZED, "True", "", ""
