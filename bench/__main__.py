"""carnet benchmarks: `python -m bench NAME [ARGS]` (or `python3 dev.py bench NAME`).

Each benchmark is a module of this package exposing ``main(argv) -> int``.
They measure; they never fail a build (the test suite has no timing asserts).
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "sync": "bench.sync",
    "propagation": "bench.propagation",
    "idle": "bench.idle",
    "import": "bench.importing",
    "relay": "bench.relay_load",
    "compaction": "bench.compaction",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m bench {{{'|'.join(BENCHMARKS)}}} [ARGS]", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return int(module.main(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
