import pytest

from carnet.protocol.padding import FLOOR, pad, padded_length, padme, unpad


@pytest.mark.parametrize("length", [0, 1, 2, 100, 1023, 1024, 1025, 5000, 40_000, 65_535])
def test_pad_roundtrip_and_sizes(length: int) -> None:
    data = bytes(range(256)) * (length // 256) + bytes(length % 256)
    padded = pad(data)
    assert unpad(padded) == data
    assert len(padded) == padded_length(length) >= FLOOR
    assert len(padded) <= max(FLOOR, (length + 1) * 1.12 + 1)


def test_small_records_are_indistinguishable_by_size() -> None:
    assert {len(pad(b"x" * n)) for n in range(0, 1000)} == {FLOOR}


def test_padme_matches_the_paper() -> None:
    assert padme(100) == 104
    assert padme(1000) == 1024
    assert padme(9) == 10
