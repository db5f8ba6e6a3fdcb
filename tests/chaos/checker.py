"""The checker: Jepsen's queue ("kafka") workload in spirit, over what the clients recorded.

Inputs: what was sent (value -> session, seq, partition), what was acknowledged (value ->
partition, offset), every read the consumer group made during the run (partition, offset,
value), and the final log (each partition read from its start to its high watermark after the
cluster healed). Each value is unique, so:

- lost: acknowledged, and not in the final log.
- duplicated: a value at more than one offset of the final log (each extra copy counts; a
  message that was never acknowledged still must not appear twice).
- wrong_offset: acknowledged at (p, o) but in the final log once, somewhere else.
- reordered: two acknowledged messages of one producer session to one partition whose offsets
  are in the other order than they were sent (the idempotent producer's ordering guarantee).
- phantom: a value in the final log, or read by a consumer, that no producer sent.
- diverged_reads: a consumer read (p, o) = v, and the final log has something else at (p, o):
  it saw data above the high watermark that later disappeared (or data that changed).
"""
from __future__ import annotations

from collections import defaultdict


def check(sent: dict, acked: dict, final: dict, reads: list) -> dict:
    where: dict[str, list[tuple[int, int]]] = defaultdict(list)
    at: dict[tuple[int, int], str] = {}
    non_monotonic = 0
    for p, entries in final.items():
        last = -1
        for o, v in entries:
            where[v].append((p, o))
            at[(p, o)] = v
            if o <= last:
                non_monotonic += 1
            last = o

    lost = [v for v in acked if v not in where]
    duplicated = sum(len(locs) - 1 for locs in where.values() if len(locs) > 1)
    dup_examples = [(v, locs) for v, locs in where.items() if len(locs) > 1][:5]
    wrong_offset = [(v, acked[v], where[v][0]) for v in acked
                    if len(where.get(v, ())) == 1 and where[v][0] != acked[v]]
    phantom = [v for v in where if v not in sent]

    # Order: acknowledged messages of one session to one partition, by final offset, must be
    # in send order.
    by_stream: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for v, (p, _) in acked.items():
        locs = where.get(v)
        if not locs or v not in sent:
            continue
        session, seq, _ = sent[v]
        by_stream[(session, p)].append((locs[0][1], seq))
    reordered = 0
    reorder_examples = []
    for key, pairs in by_stream.items():
        pairs.sort()
        top = -1
        for o, seq in pairs:
            if seq < top:
                reordered += 1
                if len(reorder_examples) < 5:
                    reorder_examples.append({"stream": key, "offset": o, "seq": seq,
                                             "after_seq": top})
            top = max(top, seq)

    diverged = []
    read_phantom = set()
    for p, o, v in reads:
        if v not in sent:
            read_phantom.add(v)
        if at.get((p, o)) != v:
            diverged.append((p, o, v, at.get((p, o))))

    unacked_present = sum(1 for v in where if v in sent and v not in acked)
    return {
        "acked": len(acked),
        "sent": len(sent),
        "final_messages": sum(len(e) for e in final.values()),
        "lost": len(lost),
        "duplicated": duplicated,
        "reordered": reordered,
        "wrong_offset": len(wrong_offset),
        "phantom": len(phantom) + len(read_phantom - set(phantom)),
        "diverged_reads": len(diverged),
        "non_monotonic_offsets": non_monotonic,
        "unacked_present": unacked_present,
        "examples": {
            "lost": lost[:5],
            "duplicated": [[v, locs] for v, locs in dup_examples],
            "wrong_offset": [list(x) for x in wrong_offset[:5]],
            "reordered": reorder_examples,
            "phantom": (phantom + sorted(read_phantom))[:5],
            "diverged_reads": [list(x) for x in diverged[:5]],
        },
    }


FAILURES = ("lost", "duplicated", "reordered", "wrong_offset", "phantom", "diverged_reads",
            "non_monotonic_offsets")


def failed(result: dict) -> bool:
    return any(result[k] for k in FAILURES)


def unavailability(ack_times: dict, windows: list, run_start: float, run_end: float) -> tuple:
    """The longest time any partition went without an acknowledgement between run_start and
    run_end (the producers write every partition steadily, so a gap is a partition that took no
    writes), overall and per fault kind (each gap counted for the round it overlaps most;
    rounds are [(kind, t0, t1)])."""
    worst = 0.0
    by_kind: dict[str, float] = {}
    for times in ack_times.values():
        ts = sorted(t for t in times if t >= run_start)
        inside = [t for t in ts if t <= run_end]
        after = ts[len(inside):]
        # A gap still open at run_end lasts until the partition's next acknowledgement.
        edges = [run_start] + inside + [after[0] if after else run_end]
        for a, b in zip(edges, edges[1:]):
            gap = b - a
            worst = max(worst, gap)
            # A gap counts for the round it overlaps most (the fault that stopped the writes;
            # the last acknowledgement before it may come just before the round began).
            best, kind_of = 0.0, None
            for kind, t0, t1 in windows:
                overlap = min(b, t1) - max(a, t0)
                if overlap > best:
                    best, kind_of = overlap, kind
            if kind_of is not None:
                by_kind[kind_of] = max(by_kind.get(kind_of, 0.0), gap)
    return round(worst, 2), {k: round(v, 2) for k, v in sorted(by_kind.items())}
