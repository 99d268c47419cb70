"""Hybrid logical clock (Kulkarni et al. 2014) stamping every field write.

A stamp is ``(wall_ms, counter, device)``; encoded as a fixed-width string so
that comparing two encoded stamps as strings compares them as tuples, and ties
between devices break the same way on every device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# A remote stamp this far ahead of our clock does not drag our clock along:
# otherwise one device with a skewed clock would win every later write.
MAX_DRIFT_MS = 60 * 60 * 1000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, order=True)
class Stamp:
    wall: int
    counter: int
    device: str

    def encode(self) -> str:
        return f"{self.wall:015d}.{self.counter:06d}.{self.device}"

    @classmethod
    def decode(cls, text: str) -> Stamp:
        wall, counter, device = text.split(".", 2)
        return cls(int(wall), int(counter), device)


ZERO = Stamp(0, 0, "")


def tick(last: Stamp, device: str, now: int | None = None) -> Stamp:
    """The stamp of a local event after `last`."""
    physical = wall_ms() if now is None else now
    if physical > last.wall:
        return Stamp(physical, 0, device)
    return Stamp(last.wall, last.counter + 1, device)


def receive(last: Stamp, remote: Stamp, device: str, now: int | None = None) -> Stamp:
    """Our clock after seeing `remote`; ignores stamps more than MAX_DRIFT_MS ahead."""
    physical = wall_ms() if now is None else now
    if remote.wall > physical + MAX_DRIFT_MS:
        return tick(last, device, physical)
    wall = max(last.wall, remote.wall, physical)
    if wall == last.wall == remote.wall:
        counter = max(last.counter, remote.counter) + 1
    elif wall == last.wall:
        counter = last.counter + 1
    elif wall == remote.wall:
        counter = remote.counter + 1
    else:
        counter = 0
    return Stamp(wall, counter, device)
