"""The pods bound to this node, as the API says they should be.

List once, then watch from the list's resourceVersion; on a dropped stream or "410
Expired" list again. Every change is handed to `on_change(uid, pod_or_None)`, where None
means the pod object is gone from the API. After a re-list, pods that vanished while the
stream was down are reported gone too, so nothing is missed across reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bramble.client import Client, ClientError
from bramble.kube.errors import Expired, StatusError

log = logging.getLogger(__name__)

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

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                rv = await self._list()
                delay = 0.5
                params = {**self._params, "resourceVersion": rv, "allowWatchBookmarks": "true"}
                async for kind, pod in self.client.watch("/api/v1/pods", params):
                    if kind == "BOOKMARK":
                        continue
                    uid = pod.get("metadata", {}).get("uid", "")
                    if kind == "DELETED":
                        if self.pods.pop(uid, None) is not None:
                            self.on_change(uid, None)
                    else:
                        self.pods[uid] = pod
                        self.on_change(uid, pod)
            except Expired:
                continue  # list again at once
            except (ClientError, StatusError, OSError) as err:
                log.warning("pod watch interrupted; listing again",
                            extra={"error": str(err), "retry_in": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
