"""The checker on hand-made histories: each kind of violation is counted, and a clean history
passes. (The chaos run itself is test_chaos.py.)"""
import checker


def _clean():
    sent = {f"s1:{i}": ("s1", i, i % 2) for i in range(6)}
    acked = {"s1:0": (0, 0), "s1:1": (1, 0), "s1:2": (0, 1), "s1:3": (1, 1), "s1:4": (0, 2)}
    # s1:5 was sent, never acknowledged, and is in the log: allowed (indeterminate).
    final = {0: [(0, "s1:0"), (1, "s1:2"), (2, "s1:4")], 1: [(0, "s1:1"), (1, "s1:3"), (2, "s1:5")]}
    reads = [(0, 0, "s1:0"), (1, 2, "s1:5")]
    return sent, acked, final, reads


def test_a_clean_history_passes():
    r = checker.check(*_clean())
    assert not checker.failed(r), r
    assert r["acked"] == 5 and r["unacked_present"] == 1


def test_a_lost_acknowledged_message_is_counted():
    sent, acked, final, reads = _clean()
    final[0] = [(0, "s1:0"), (1, "s1:2")]
    r = checker.check(sent, acked, final, reads)
    assert r["lost"] == 1 and r["examples"]["lost"] == ["s1:4"]
    assert checker.failed(r)


def test_a_duplicate_is_counted_even_if_never_acknowledged():
    sent, acked, final, reads = _clean()
    final[1].append((3, "s1:5"))
    final[0].append((3, "s1:0"))
    r = checker.check(sent, acked, final, reads)
    assert r["duplicated"] == 2


def test_an_acknowledged_offset_that_moved_is_counted():
    sent, acked, final, reads = _clean()
    final[0] = [(0, "s1:0"), (1, "s1:2"), (3, "s1:4")]
    r = checker.check(sent, acked, final, reads)
    assert r["wrong_offset"] == 1 and r["lost"] == 0


def test_reordering_within_a_session_and_partition_is_counted():
    sent, acked, final, reads = _clean()
    final[0] = [(0, "s1:2"), (1, "s1:0"), (2, "s1:4")]
    acked["s1:0"], acked["s1:2"] = (0, 1), (0, 0)
    r = checker.check(sent, acked, final, reads)
    assert r["reordered"] == 1 and r["wrong_offset"] == 0


def test_a_read_of_data_that_later_disappeared_is_counted():
    sent, acked, final, reads = _clean()
    reads.append((1, 3, "s1:5"))  # read above what the final log holds
    r = checker.check(sent, acked, final, reads)
    assert r["diverged_reads"] == 1 and checker.failed(r)


def test_phantoms_in_the_log_and_in_reads_are_counted():
    sent, acked, final, reads = _clean()
    final[1].append((3, "garbage"))
    reads.append((1, 3, "garbage"))
    reads.append((1, 4, "other"))
    r = checker.check(sent, acked, final, reads)
    assert r["phantom"] == 2


def test_unavailability_is_the_longest_gap_between_acknowledgements():
    acks = {0: [1.0, 2.0, 9.0, 10.0], 1: [1.5, 3.0, 4.0, 9.5]}
    worst, by_kind = checker.unavailability(acks, [("kill9", 1.8, 8.0), ("pause", 8.0, 10.0)],
                                            1.0, 10.0)
    assert worst == 7.0
    # Each gap counts for the round it overlaps most: 2.0-9.0 (p0) and 4.0-9.5 (p1) for
    # kill9, 9.0-10.0 and 9.5-10.0 for pause.
    assert by_kind == {"kill9": 7.0, "pause": 1.0}


def test_a_gap_open_at_the_end_lasts_until_the_next_acknowledgement():
    acks = {0: [1.0, 2.0, 12.0], 1: [15.0]}
    worst, by_kind = checker.unavailability(acks, [("pause", 0.5, 9.0)], 1.0, 10.0)
    assert worst == 14.0  # partition 1: nothing from 1.0 until 15.0
    assert by_kind == {"pause": 14.0}
