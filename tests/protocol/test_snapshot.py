import pytest

from carnet.protocol.snapshot import OPS_VERSION, Opening, opening, parse, version


def test_an_opening_round_trips_its_heads_and_size() -> None:
    heads = {b"a" * 16: (3, b"h" * 32), b"b" * 16: (1, b"g" * 32)}
    body = opening(heads, 5)
    assert body["ops"] == [] and version(body) == OPS_VERSION
    assert parse(body) == Opening(heads, 5)


def test_an_ordinary_body_opens_no_snapshot() -> None:
    assert parse({"ops": [{"t": "rec"}]}) is None


def test_a_body_without_a_version_is_from_the_first() -> None:
    assert version({"ops": []}) == 1
    assert version({"ops": [], "v": 7}) == 7
    assert version({"ops": [], "v": "7"}) == 1


@pytest.mark.parametrize(
    "snap",
    [
        {"heads": {("a" * 32): [0, "00" * 32]}, "entries": 1},  # no entry 0
        {"heads": {("a" * 32): [True, "00" * 32]}, "entries": 1},  # not a number
        {"heads": {("a" * 30): [1, "00" * 32]}, "entries": 1},  # not a writer tag
        {"heads": {("a" * 32): [1, "00" * 31]}, "entries": 1},  # not a hash
        {"heads": {("zz" * 16): [1, "00" * 32]}, "entries": 1},  # not hex
        {"heads": {("a" * 32): [1]}, "entries": 1},  # not a pair
        {"heads": [], "entries": 1},
        {"heads": {}},  # how much state follows is unsaid
        {"heads": {}, "entries": -1},
    ],
)
def test_a_malformed_opening_is_none(snap: object) -> None:
    assert parse({"ops": [], "snap": snap}) is None
