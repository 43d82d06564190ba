"""The pure pod logic of the node agent: what a pod needs, what to do about it, what to report.

Role: the functional core under the agent's pod workers, mirroring the kubelet's own split.
- spec.py: a Pod (JSON dict) plus resolved inputs -> SandboxSpec / ContainerSpec and the
  volumes the caller must prepare (kubelet's generateContainerConfig, makeEnvironmentVariables).
- actions.py: desired Pod + ObservedPod -> ordered, typed actions (computePodActions).
- status.py: desired Pod + ObservedPod -> the pod's API status (generateAPIPodStatus, getPhase).
- backoff.py: CrashLoopBackOff timing per (pod uid, container name).
- probes.py: liveness/readiness/startup state machines and what each probe checks.

Invariants: no I/O, no clock reads (every `now` is passed in, as Unix seconds), no asyncio.
The runtime types in bramble.node.runtime.types are the only contract with the code that acts.
This module holds the few helpers the others share; it imports none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from bramble.node.runtime.types import ObservedContainer

Obj = Mapping[str, Any]

# Podman (like Go) may report nanoseconds; Python keeps microseconds.
_FRACTION = re.compile(r"(\.\d{6})\d+")


class Waiting(NamedTuple):
    """Why a container is not running yet: a status `waiting` reason and message."""

    reason: str
    message: str = ""


def format_pod(pod: Obj) -> str:
    """The kubelet's way of naming a pod in messages (format.Pod): "name_namespace(uid)"."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def parse_time(text: str | None) -> float | None:
    """Unix seconds of an RFC 3339 time; None for "" and Go's zero time (never happened)."""
    if not text:
        return None
    value = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value.year <= 1:
        return None
    return value.timestamp()


def format_time(seconds: float) -> str:
    """RFC 3339 in UTC at second precision, as metav1.Time is written (truncated, not rounded)."""
    return datetime.fromtimestamp(int(seconds // 1), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_time(text: str | None) -> str | None:
    """A runtime timestamp as the API writes it ("...T10:00:00Z"), or None when unknown."""
    seconds = parse_time(text)
    return None if seconds is None else format_time(seconds)


def generations(containers: Iterable[ObservedContainer]) -> dict[str, list[ObservedContainer]]:
    """Each container name's generations, newest first: the highest restart count, and of
    equal counts the one listed last. The newest is the current container, the next its
    lastState; older ones are only kept until pruned."""
    indexed = sorted(enumerate(containers), key=lambda p: (p[1].restart_count, p[0]),
                     reverse=True)
    result: dict[str, list[ObservedContainer]] = {}
    for _, container in indexed:
        result.setdefault(container.name, []).append(container)
    return result
