import random

from carnet.daemon.carnetd.backoff import Backoff


def test_delays_double_within_jitter_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, cap=30.0, rng=random.Random(7))
    delays = [backoff.next() for _ in range(12)]
    ceilings = [min(30.0, 0.5 * 2**n) for n in range(12)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays) <= 30.0


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(initial=1.0, cap=8.0)
    for _ in range(5):
        backoff.next()
    backoff.reset()
    assert 0.5 <= backoff.next() <= 1.0


def test_jitter_spreads_devices_apart() -> None:
    draws = {Backoff(rng=random.Random(seed)).next() for seed in range(20)}
    assert len(draws) == 20
