"""A small Prometheus registry: counters, gauges and histograms in the text format.

Small on purpose: the master must fit in a few tens of MB on a Pi, and it needs only
labelled counters, gauges (also computed at scrape time) and fixed-bucket histograms.
Not thread-safe: updated from the event loop only.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable

Labels = tuple[str, ...]


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(names: Labels, values: Labels, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Labels = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, labels

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> Iterable[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Labels = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[Labels, float] = {}

    def inc(self, *labels: str, amount: float = 1) -> None:
        self._values[labels] = self._values.get(labels, 0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0)

    def samples(self) -> Iterable[str]:
        for labels, value in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_fmt(value)}"


class Gauge(_Metric):
    """A gauge set by code, or computed by `collect` at scrape time."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: Labels = (),
                 collect: Callable[[], Iterable[tuple[Labels, float]]] | None = None) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[Labels, float] = {}
        self._collect = collect

    def set(self, value: float, *labels: str) -> None:
        self._values[labels] = value

    def samples(self) -> Iterable[str]:
        values = dict(self._collect()) if self._collect else self._values
        for labels, value in sorted(values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_fmt(value)}"


DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Labels = (),
                 buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text, labels)
        self._buckets = buckets
        # Per series: a count per bucket, one for above the last bound, then sum and count.
        self._series: dict[Labels, list[float]] = {}

    def observe(self, value: float, *labels: str) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self._buckets) + 3)
        series[bisect.bisect_left(self._buckets, value)] += 1
        series[-2] += value
        series[-1] += 1

    def samples(self) -> Iterable[str]:
        for labels, series in sorted(self._series.items()):
            cumulative = 0.0
            for bound, count in zip(self._buckets, series, strict=False):
                cumulative += count
                le = _labels(self.label_names, labels, f'le="{_fmt(bound)}"')
                yield f"{self.name}_bucket{le} {_fmt(cumulative)}"
            inf = _labels(self.label_names, labels, 'le="+Inf"')
            yield f"{self.name}_bucket{inf} {_fmt(series[-1])}"
            base = _labels(self.label_names, labels)
            yield f"{self.name}_sum{base} {series[-2]!r}"
            yield f"{self.name}_count{base} {_fmt(series[-1])}"


class Registry:
    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def add(self, metric: _Metric) -> _Metric:
        self._metrics.append(metric)
        return metric

    def counter(self, name: str, help_text: str, labels: Labels = ()) -> Counter:
        return self.add(Counter(name, help_text, labels))  # type: ignore[return-value]

    def gauge(self, name: str, help_text: str, labels: Labels = (),
              collect: Callable[[], Iterable[tuple[Labels, float]]] | None = None) -> Gauge:
        return self.add(Gauge(name, help_text, labels, collect))  # type: ignore[return-value]

    def histogram(self, name: str, help_text: str, labels: Labels = (),
                  buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> Histogram:
        return self.add(Histogram(name, help_text, labels, buckets))  # type: ignore[return-value]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics:
            lines += metric.header()
            lines += metric.samples()
        return "\n".join(lines) + "\n"
