"""Jittered exponential backoff for retrying an unreachable relay."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays that double from `initial` up to `cap`, each drawn in [d/2, d].

    The jitter keeps the devices of many people, cut off by one relay outage,
    from all coming back in the same instant.
    """

    initial: float = 0.5
    cap: float = 30.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next(self) -> float:
        ceiling = min(self.cap, self.initial * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0
