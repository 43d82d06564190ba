"""The store's backend interface: what a durable backend must do for the store.

The store keeps the live state and the watch history in memory and asks a backend only
to load everything once and to make batches of changes durable, in order. That is a small
surface on purpose: TinyDB implements it for one Pi, and a distributed backend (etcd, for
people who outgrow a single master) can implement the same three coroutines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Op:
    """One change: `raw` is the object's JSON, or None for a deletion."""

    resource: str  # "pods", "deployments.apps"
    key: str  # "namespace/name", or "name" for cluster-scoped objects
    rv: int
    raw: bytes | None


@dataclass
class Loaded:
    objects: list[tuple[str, str, int, bytes]]  # (resource, key, rv, raw)
    meta: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class Backend(Protocol):
    @property
    def bytes_written(self) -> int: ...

    async def open(self) -> Loaded: ...

    async def commit(self, ops: list[Op], meta: dict[str, Any]) -> int:
        """Make `ops` durable, in order, as one unit; return the bytes written."""
        ...

    async def close(self) -> None: ...
