"""The relay subprocess helper for integration tests (it lives in ``carnet.relay.process``
so that benchmarks, which run outside the test tree, can use it too)."""

from carnet.relay.process import RelayProcess, start_relay

__all__ = ["RelayProcess", "start_relay"]
