import pytest

from carnet.protocol.envelope import GENESIS, OpenedEntry
from carnet.protocol.errors import ForkedFeed, MissingEntry, ReplayedEntry
from carnet.protocol.feed import FeedHead


def entry(seq: int, prev: bytes, digest: bytes) -> OpenedEntry:
    return OpenedEntry(b"w" * 16, seq, b"d" * 32, prev, {}, digest)


def test_chain_accepts_in_order_and_refuses_the_rest() -> None:
    head = FeedHead()
    head.accept(entry(1, GENESIS, b"h1" * 16))
    head.accept(entry(2, b"h1" * 16, b"h2" * 16))
    with pytest.raises(ReplayedEntry):
        head.accept(entry(2, b"h1" * 16, b"h2" * 16))
    with pytest.raises(MissingEntry):
        head.accept(entry(4, b"h3" * 16, b"h4" * 16))
    with pytest.raises(ForkedFeed):
        head.accept(entry(3, b"xx" * 16, b"h3" * 16))
    assert (head.seq, head.head) == (2, b"h2" * 16)
