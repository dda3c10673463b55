"""A small Prometheus registry for the gateways: counters, gauges and histograms with
labels, rendered in the text exposition format (version 0.0.4) and served over HTTP by
an asyncio server (``GET /metrics``). Single-threaded use from the event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Callable

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{v}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Counter:
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, amount: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + amount

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0)

    def samples(self):
        for labels, value in sorted(self.values.items()):
            yield self.name + ("_total" if self.kind == "counter" else ""), \
                _labels(self.label_names, labels), value


class Gauge(Counter):
    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = (),
                 read: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text, labels)
        self.read = read

    def set(self, *labels: str, value: float) -> None:
        self.values[labels] = value

    def samples(self):
        if self.read is not None:
            yield self.name, "", self.read()
            return
        yield from super().samples()


class Histogram:
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name, self.help, self.label_names, self.buckets = name, help_text, labels, buckets
        self.series: dict[tuple[str, ...], list] = {}  # labels → [bucket counts, sum, count]

    def observe(self, value: float, *labels: str, times: int = 1) -> None:
        """Record ``value`` (``times`` observations of it, e.g. a read's frames answered
        together)."""
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = [[0] * (len(self.buckets) + 1), 0.0, 0]
        series[0][bisect.bisect_left(self.buckets, value)] += times
        series[1] += value * times
        series[2] += times

    def quantile(self, q: float, *labels: str) -> float | None:
        """Upper bound of the bucket holding quantile ``q`` (None without observations)."""
        series = self.series.get(labels)
        if not series or not series[2]:
            return None
        rank, seen = q * series[2], 0
        for bound, count in zip((*self.buckets, float("inf")), series[0], strict=True):
            seen += count
            if seen >= rank:
                return bound
        return float("inf")

    def samples(self):
        for labels, (counts, total, count) in sorted(self.series.items()):
            cumulative = 0
            for bound, n in zip(self.buckets, counts, strict=False):
                cumulative += n
                yield (self.name + "_bucket",
                       _labels(self.label_names, labels, f'le="{bound}"'), cumulative)
            yield (self.name + "_bucket", _labels(self.label_names, labels, 'le="+Inf"'), count)
            yield self.name + "_sum", _labels(self.label_names, labels), total
            yield self.name + "_count", _labels(self.label_names, labels), count


class Registry:
    def __init__(self) -> None:
        self.metrics: list = []

    def add(self, metric):
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        lines = []
        for metric in self.metrics:
            lines.append(f"# HELP {metric.name} {metric.help}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            for name, labels, value in metric.samples():
                text = repr(float(value)) if isinstance(value, float) else str(value)
                lines.append(f"{name}{labels} {text}")
        return "\n".join(lines) + "\n"


async def serve(registry: Registry, host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` (anything else: 404) on ``host:port``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.split()
            if len(parts) >= 2 and parts[0] == b"GET" and parts[1].split(b"?")[0] == b"/metrics":
                body, status = registry.render().encode(), b"200 OK"
                kind = b"text/plain; version=0.0.4; charset=utf-8"
            else:
                body, status, kind = b"not found\n", b"404 Not Found", b"text/plain"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + kind
                         + b"\r\nContent-Length: " + str(len(body)).encode()
                         + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)
