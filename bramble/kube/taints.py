"""Taints and tolerations (core/v1), as the scheduler, the DaemonSet controller and the
node lifecycle controller all read them: one ToleratesTaint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    @classmethod
    def from_obj(cls, t: dict[str, Any]) -> Taint:
        return cls(str(t.get("key") or ""), str(t.get("value") or ""),
                   str(t.get("effect") or ""))


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    @classmethod
    def from_obj(cls, t: dict[str, Any]) -> Toleration:
        return cls(str(t.get("key") or ""), str(t.get("operator") or "Equal"),
                   str(t.get("value") or ""), str(t.get("effect") or ""))

    def tolerates(self, taint: Taint) -> bool:
        """v1helper Toleration.ToleratesTaint: an empty effect or key matches any; Exists
        ignores the value."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        if self.operator in ("", "Equal"):
            return self.value == taint.value
        return False


def tolerated(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(t.tolerates(taint) for t in tolerations)
