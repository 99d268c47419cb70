import pytest

from carnet.protocol.wire import entry_from_json


@pytest.mark.parametrize(
    "obj",
    [
        {"writer": "ab " * 10 + "ab", "seq": 1, "data": "AA=="},
        {"writer": "00" * 16, "seq": True, "data": "AA=="},
        {"writer": "00" * 16, "seq": 0, "data": "AA=="},
        {"writer": "00" * 16, "seq": 1, "data": ""},
        {"writer": "00" * 16, "seq": 1, "data": "not base64!"},
        {"writer": "00" * 16, "seq": 1, "data": "AA==", "extra": 1},
        ["not", "an", "object"],
    ],
)
def test_malformed_entries_are_value_errors(obj: object) -> None:
    with pytest.raises(ValueError):
        entry_from_json(obj)


def test_valid_entry_parses() -> None:
    entry = entry_from_json({"writer": "01" * 16, "seq": 3, "data": "AAEC"})
    assert (entry.writer, entry.seq, entry.data) == (b"\x01" * 16, 3, b"\x00\x01\x02")
