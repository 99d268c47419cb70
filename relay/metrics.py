"""Prometheus text exposition of the relay's aggregates: nothing a scrape can tie to a person.

Labels are the request's method, its route *template* and the status, all from
small fixed sets (an unknown method is "other"), never a mailbox id, a client
address or a size of anything in particular. Stored totals come from the
database and are the same on every node; subscriptions and requests are this
process's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from carnet.relay.storage.base import Stats

# Seconds; a sync round trip is a few ms, a commit under load tens of ms.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
METHODS = frozenset({"GET", "POST", "DELETE", "HEAD", "PUT", "PATCH", "OPTIONS"})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[index] += 1
                break
        self.total += seconds
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float | None) -> None:
        """Count a request; `seconds` is None for a websocket (its duration is its life)."""
        method = method if method in METHODS else "other"
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if seconds is not None:
            self.latency.setdefault((method, route), Histogram()).observe(seconds)

    def render(self, stats: Stats, subscriptions: int) -> str:
        lines: list[str] = []
        _family(lines, "carnet_relay_requests_total", "counter", "Requests answered.")
        for (method, route, status), count in sorted(self.requests.items()):
            labels = _labels(method=method, route=route, status=str(status))
            lines.append(f"carnet_relay_requests_total{{{labels}}} {count}")
        name = "carnet_relay_request_duration_seconds"
        _family(lines, name, "histogram", "Time to answer a request (websockets excluded).")
        for (method, route), histogram in sorted(self.latency.items()):
            labels = _labels(method=method, route=route)
            cumulative = 0
            for bound, count in zip(BUCKETS, histogram.counts, strict=True):
                cumulative += count
                lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {cumulative}')
            lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {histogram.count}')
            lines.append(f"{name}_sum{{{labels}}} {histogram.total:.6f}")
            lines.append(f"{name}_count{{{labels}}} {histogram.count}")
        gauges = (
            (
                "carnet_relay_subscriptions",
                "Open websocket subscriptions on this node.",
                subscriptions,
            ),
            ("carnet_relay_mailboxes", "Live mailboxes in the store.", stats.mailboxes),
            ("carnet_relay_entries", "Entries in the store.", stats.entries),
            ("carnet_relay_stored_bytes", "Bytes of entry data in the store.", stats.bytes),
        )
        for gauge, text, value in gauges:
            _family(lines, gauge, "gauge", text)
            lines.append(f"{gauge} {value}")
        return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, kind: str, text: str) -> None:
    lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _labels(**values: str) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in values.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse(text: str) -> Iterable[tuple[str, float]]:
    """(series, value) pairs of an exposition, for tests and the benchmark."""
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            yield series, float(value)
