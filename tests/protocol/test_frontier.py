import pytest

from carnet.protocol.errors import ForkedFeed
from carnet.protocol.frontier import check, decode, encode, seen

A, B = b"a" * 16, b"b" * 16


def test_heads_round_trip() -> None:
    heads = {A: (3, b"h" * 32), B: (1, b"g" * 32)}
    assert decode(encode(heads)) == heads
    assert seen({"ops": [], "seen": encode(heads)}) == heads


@pytest.mark.parametrize(
    "value",
    [
        {("a" * 32): [0, "00" * 32]},
        {("a" * 32): [True, "00" * 32]},
        {("a" * 30): [1, "00" * 32]},
        {("a" * 32): [1, "00" * 31]},
        {("zz" * 16): [1, "00" * 32]},
        {("a" * 32): [1]},
        [],
        None,
    ],
)
def test_anything_else_is_no_heads(value: object) -> None:
    assert decode(value) is None
    assert seen({"seen": value}) == {}


def test_a_claim_contradicting_a_known_hash_is_a_fork() -> None:
    known = {(A, 2): b"x" * 32}.get

    def lookup(writer: bytes, seq: int) -> bytes | None:
        return known((writer, seq))

    check({A: (2, b"x" * 32), B: (9, b"y" * 32)}, lookup, B)  # agrees, or unknown
    check({A: (3, b"z" * 32)}, lookup, B)  # beyond what this reader knows
    with pytest.raises(ForkedFeed, match="as seen by writer 62626262"):
        check({A: (2, b"z" * 32)}, lookup, B)
