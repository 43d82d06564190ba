"""The pods bound to this node, as the API says they should be.

List once, then watch from the list's resourceVersion; on a dropped stream or "410
Expired" list again. Every change is handed to `on_change(uid, pod_or_None)`, where None
means the pod object is gone from the API. After a re-list, pods that vanished while the
stream was down are reported gone too, so nothing is missed across reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bramble.client import Client, list_and_watch

Pod = dict[str, Any]
OnChange = Callable[[str, Pod | None], None]


class PodSource:
    def __init__(self, client: Client, node_name: str, on_change: OnChange, *,
                 retry_max: float = 10.0) -> None:
        self.client = client
        self.node_name = node_name
        self.on_change = on_change
        self.pods: dict[str, Pod] = {}
        self.synced = asyncio.Event()  # set once the first list has been delivered
        self._retry_max = retry_max

    @property
    def _params(self) -> dict[str, str]:
        return {"fieldSelector": f"spec.nodeName={self.node_name}"}

    async def _list(self) -> str:
        body = await self.client.request("GET", "/api/v1/pods", params=self._params)
        seen: dict[str, Pod] = {}
        for pod in body.get("items") or []:
            seen[pod["metadata"]["uid"]] = pod
        for uid in [u for u in self.pods if u not in seen]:
            del self.pods[uid]
            self.on_change(uid, None)
        for uid, pod in seen.items():
            if self.pods.get(uid) != pod:
                self.pods[uid] = pod
                self.on_change(uid, pod)
        self.synced.set()
        return str(body.get("metadata", {}).get("resourceVersion", ""))

    def _event(self, kind: str, pod: Pod) -> None:
        uid = pod.get("metadata", {}).get("uid", "")
        if kind == "DELETED":
            if self.pods.pop(uid, None) is not None:
                self.on_change(uid, None)
        else:
            self.pods[uid] = pod
            self.on_change(uid, pod)

    async def run(self) -> None:
        await list_and_watch(self.client, "/api/v1/pods", self._params, self._list,
                             self._event, retry_max=self._retry_max)
