"""A stored object as the store holds it: JSON bytes plus what selectors need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Entry:
    """An object at one resourceVersion. Kept as bytes so GET, LIST and watch serve it
    without re-encoding; labels and selectable fields are extracted once, at write time,
    so selectors never parse objects."""

    resource: str
    namespace: str
    name: str
    rv: int
    raw: bytes
    labels: dict[str, str]
    fields: dict[str, str]

    def obj(self) -> dict[str, Any]:
        return orjson.loads(self.raw)
