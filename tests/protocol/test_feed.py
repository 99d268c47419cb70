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


def test_a_snapshot_may_follow_compacted_history_of_its_own_writer() -> None:
    head = FeedHead()
    with pytest.raises(MissingEntry):
        head.accept(entry(7, b"h6" * 16, b"h7" * 16))
    head.accept(entry(7, b"h6" * 16, b"h7" * 16), snapshot=True)
    head.accept(entry(8, b"h7" * 16, b"h8" * 16))
    assert (head.seq, head.head) == (8, b"h8" * 16)
    with pytest.raises(ReplayedEntry):  # a snapshot never moves a chain backwards
        head.accept(entry(5, b"h4" * 16, b"h5" * 16), snapshot=True)


def test_an_entry_may_continue_exactly_from_what_a_snapshot_vouched_for() -> None:
    head = FeedHead()
    head.cover(5, b"h5" * 16, b"w" * 16)
    with pytest.raises(MissingEntry):  # not from the vouched head: still withheld history
        head.accept(entry(7, b"h6" * 16, b"h7" * 16))
    with pytest.raises(MissingEntry):  # the right number, but another chain
        head.accept(entry(6, b"xx" * 16, b"h6" * 16))
    head.accept(entry(6, b"h5" * 16, b"h6" * 16))
    assert (head.seq, head.head) == (6, b"h6" * 16)


def test_an_entry_in_order_needs_no_snapshot_even_below_a_floor() -> None:
    """After a relay lost a mailbox, writers send their feeds again from entry 1."""
    head = FeedHead()
    head.cover(5, b"h5" * 16, b"w" * 16)
    head.accept(entry(1, GENESIS, b"h1" * 16))
    assert head.seq == 1


def test_a_snapshot_contradicting_a_verified_head_is_a_fork() -> None:
    head = FeedHead()
    head.accept(entry(1, GENESIS, b"h1" * 16))
    with pytest.raises(ForkedFeed):
        head.cover(1, b"xx" * 16, b"w" * 16)
    head.cover(1, b"h1" * 16, b"w" * 16)
    head.cover(0, GENESIS, b"w" * 16)  # behind what we know: nothing to learn
    assert (head.floor_seq, head.seq) == (1, 1)
