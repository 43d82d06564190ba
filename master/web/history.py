"""Per-node CPU and memory usage over the last hour, for the status page's sparklines.

Memory only (never the SD card): a ring of at most SAMPLES percentages per node and
resource, one per STEP seconds. The web sampler (live.py) records the newest usage report
of each node; several records within one step keep the latest, a node that stops
reporting simply gets no new samples, and nodes that are gone are forgotten.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

STEP = 30.0
SAMPLES = 120  # an hour of 30 s steps


@dataclass
class _Series:
    step: int  # the index (time // STEP) of the newest sample
    cpu: deque[int] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    memory: deque[int] = field(default_factory=lambda: deque(maxlen=SAMPLES))


class UsageHistory:
    def __init__(self, step: float = STEP, samples: int = SAMPLES) -> None:
        self.step = step
        self.samples = samples
        self._nodes: dict[str, _Series] = {}

    def record(self, node: str, cpu_percent: int, memory_percent: int, now: float) -> None:
        index = int(now // self.step)
        series = self._nodes.get(node)
        if series is None:
            series = self._nodes[node] = _Series(index, deque(maxlen=self.samples),
                                                 deque(maxlen=self.samples))
        elif index == series.step and series.cpu:
            # The same step again: keep the newest figure.
            series.cpu[-1], series.memory[-1] = cpu_percent, memory_percent
            return
        series.step = index
        series.cpu.append(cpu_percent)
        series.memory.append(memory_percent)

    def forget_except(self, nodes: Iterable[str]) -> None:
        keep = set(nodes)
        for name in [n for n in self._nodes if n not in keep]:
            del self._nodes[name]

    def of(self, node: str) -> dict[str, object]:
        """The view's `history` of a node: oldest sample first."""
        series = self._nodes.get(node)
        return {"cpu": list(series.cpu) if series else [],
                "memory": list(series.memory) if series else [],
                "stepSeconds": int(self.step)}
