import pytest

from carnet.protocol.snapshot import claims, opening


def test_an_opening_round_trips_its_heads() -> None:
    heads = {b"a" * 16: (3, b"h" * 32), b"b" * 16: (1, b"g" * 32)}
    body = opening(heads)
    assert body["ops"] == []
    assert claims(body) == heads


def test_an_ordinary_body_opens_no_snapshot() -> None:
    assert claims({"ops": [{"t": "rec"}]}) is None


@pytest.mark.parametrize(
    "heads",
    [
        {("a" * 32): [0, "00" * 32]},  # no entry 0
        {("a" * 32): [True, "00" * 32]},  # not a number
        {("a" * 30): [1, "00" * 32]},  # not a writer tag
        {("a" * 32): [1, "00" * 31]},  # not a hash
        {("zz" * 16): [1, "00" * 32]},  # not hex
        {("a" * 32): [1]},  # not a pair
        [],
    ],
)
def test_a_malformed_claim_is_no_snapshot(heads: object) -> None:
    assert claims({"ops": [], "snap": {"heads": heads}}) is None
