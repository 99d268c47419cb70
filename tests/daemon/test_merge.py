import itertools

from carnet.daemon.clock import MAX_DRIFT_MS, Stamp, receive, tick
from carnet.daemon.merge import is_deleted, merge


def test_clock_ticks_monotonically_even_when_wall_clock_goes_back() -> None:
    a = tick(Stamp(0, 0, ""), "a", now=1000)
    b = tick(a, "a", now=900)
    assert b > a and b.wall == 1000 and b.counter == 1
    assert Stamp.decode(b.encode()) == b
    assert (a.encode() < b.encode()) == (a < b)


def test_clock_receive_moves_past_remote_but_not_a_far_future_one() -> None:
    ours = Stamp(1000, 3, "a")
    assert receive(ours, Stamp(2000, 5, "b"), "a", now=1500) == Stamp(2000, 6, "a")
    far = Stamp(1500 + MAX_DRIFT_MS + 1, 0, "b")
    assert receive(ours, far, "a", now=1500).wall == 1500


def test_merge_is_order_independent() -> None:
    writes = [
        {"notes": ("from A", "000000000000010.000000.aa")},
        {"notes": ("from B", "000000000000010.000000.bb")},
        {"reason": ("check-up", "000000000000005.000001.aa"), "notes": ("old", "00000000000001.x")},
    ]
    results = set()
    for order in itertools.permutations(writes):
        values: dict = {}
        clocks: dict = {}
        for w in order:
            merge(values, clocks, w)
        results.add((values["notes"], values["reason"]))
    assert results == {("from B", "check-up")}


def test_delete_beats_older_edit_but_not_a_newer_one() -> None:
    clocks = {"notes": "000000000000010.000000.aa", "deleted": "000000000000020.000000.bb"}
    assert is_deleted(clocks)
    clocks["notes"] = "000000000000030.000000.aa"
    assert not is_deleted(clocks)
    assert not is_deleted({"notes": "1"})
