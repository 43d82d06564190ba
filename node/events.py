"""Kubernetes Events from the node agent: what `kubectl describe pod` shows under Events.

Like kubelet's recorder, repeats of one event (same object, reason and message) are
folded into one Event whose `count` and `lastTimestamp` move. Unlike it, a repeat is
written at most once per `min_interval` (a crash-looping pod would otherwise cost an SD
card write every few seconds); the count still says how many there were. Recording never
blocks a pod's sync: events are queued and written by one background task, and dropped
(with a log line) if the queue is full or the master is away - events are advice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bramble.client import Client, ClientError
from bramble.kube.errors import StatusError

log = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"


@dataclass
class _Folded:
    name: str  # the Event's name once created
    count: int
    first: str
    last: str
    written_count: int
    written_at: float


@dataclass(frozen=True)
class _Pending:
    key: tuple[str, str, str]
    involved: dict[str, Any]
    namespace: str
    type: str
    reason: str
    message: str


def involved(pod: dict[str, Any], field_path: str = "") -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    ref = {"kind": "Pod", "apiVersion": "v1", "namespace": meta.get("namespace", ""),
           "name": meta.get("name", ""), "uid": meta.get("uid", ""),
           "resourceVersion": meta.get("resourceVersion", "")}
    if field_path:
        ref["fieldPath"] = field_path
    return ref


@dataclass
class EventRecorder:
    client: Client
    node_name: str
    min_interval: float = 60.0
    queue_size: int = 1000
    _folded: dict[tuple[str, str, str], _Folded] = field(default_factory=dict)
    _queue: asyncio.Queue[_Pending] | None = None

    def _q(self) -> asyncio.Queue[_Pending]:
        if self._queue is None:
            self._queue = asyncio.Queue(self.queue_size)
        return self._queue

    def record(self, pod: dict[str, Any], type_: str, reason: str, message: str, *,
               field_path: str = "") -> None:
        ref = involved(pod, field_path)
        pending = _Pending((ref["uid"], reason, message), ref, ref["namespace"], type_, reason,
                           message)
        try:
            self._q().put_nowait(pending)
        except asyncio.QueueFull:
            log.warning("event queue full; dropping an event", extra={"reason": reason})

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self._folded if k[0] == pod_uid]:
            del self._folded[key]

    async def run(self) -> None:
        queue = self._q()
        while True:
            pending = await queue.get()
            try:
                await self._write(pending)
            except (ClientError, StatusError, OSError) as err:
                log.info("could not record an event", extra={"reason": pending.reason,
                                                             "error": str(err)})

    async def _write(self, p: _Pending) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        folded = self._folded.get(p.key)
        path = f"/api/v1/namespaces/{p.namespace}/events"
        if folded is None:
            name = f"{p.involved['name']}.{secrets.token_hex(8)}"
            body = {"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name, "namespace": p.namespace},
                    "involvedObject": p.involved, "reason": p.reason, "message": p.message,
                    "type": p.type, "count": 1, "firstTimestamp": now, "lastTimestamp": now,
                    "source": {"component": "kubelet", "host": self.node_name},
                    "reportingComponent": "kubelet", "reportingInstance": self.node_name}
            await self.client.request("POST", path, json=body)
            self._folded[p.key] = _Folded(name, 1, now, now, 1, time.monotonic())
            return
        folded.count += 1
        folded.last = now
        if time.monotonic() - folded.written_at < self.min_interval:
            return  # folded: written with the next repeat after the interval
        try:
            await self.client.request(
                "PATCH", f"{path}/{folded.name}",
                json={"count": folded.count, "lastTimestamp": folded.last},
                content_type="application/merge-patch+json")
        except StatusError as err:
            if err.code != 404:
                raise
            del self._folded[p.key]  # the Event was removed: start a new one
            await self._write(p)
            return
        folded.written_count, folded.written_at = folded.count, time.monotonic()
