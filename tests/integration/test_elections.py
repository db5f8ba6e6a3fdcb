"""Leader elections with real processes (tests/integration/cluster.py): ElectLeaders through
Kafka 4.4's own kafka-leader-election.sh and leader rebalancing (auto.leader.rebalance.enable)
on three combined nodes; unclean.leader.election.enable changed at run time, and what an unclean
election discarded as weir-admin shows it, on three controllers and three brokers (the
controllers must outlive the brokers: two dead combined nodes would take the quorum with them,
and without an active controller nothing is fenced or elected).

Waits are bounded; nothing asserts speed."""
from __future__ import annotations

import time

import helpers as h
from cluster import Cluster, wait_until
from kafka_ref import kafka_tool
from test_doomsday import (BOUND_S, OVERRIDES, SPLIT6, assert_no_errors, bring_down,
                           hold_offline, read_back, start_all, unclean_rows, wait_isr)

COMBINED = {i: ["broker", "controller"] for i in (1, 2, 3)}
REPLICATED = {"default.replication.factor": "3", "min.insync.replicas": "2"}
WAIT_S = 60.0  # a bound on waiting for the cluster to act, not a timing assertion


def create(c: Cluster, topic: str):
    c.create_topic(topic, rf=3)


def move_leadership_away(c: Cluster, topic: str) -> int:
    """Restarts the preferred leader cleanly (controlled shutdown moves leadership away) and
    waits until it is back in the ISR, led by another replica. Returns the preferred id."""
    p = c.partition(topic)
    preferred = p.replicas[0]
    assert p.leader == preferred
    assert c.node(preferred).stop() == 0
    wait_until("leadership moved", lambda: c.partition(topic).leader not in (-1, preferred),
               WAIT_S, detail=c.logs)
    c.node(preferred).start()
    wait_until("the preferred replica back in the ISR",
               lambda: preferred in c.partition(topic).isr, WAIT_S, detail=c.logs)
    return preferred


def test_kafka_leader_election_preferred_and_unclean(cluster_factory):
    c = cluster_factory(COMBINED, {**REPLICATED, "auto.leader.rebalance.enable": "false"})
    t = h.topic_name("elect")
    create(c, t)
    bs = ["--bootstrap-server", c.node(1).bootstrap]

    # Led by its preferred replica: nothing to do (Kafka's tool prints the already-elected).
    out = kafka_tool("kafka-leader-election", *bs, "--election-type", "preferred",
                     "--topic", t, "--partition", "0").check().stdout
    assert f"Valid replica already elected for partitions {t}-0" in out, out

    preferred = move_leadership_away(c, t)
    other = c.partition(t).leader
    assert other != preferred

    out = kafka_tool("kafka-leader-election", *bs, "--election-type", "preferred",
                     "--topic", t, "--partition", "0").check().stdout
    assert f"Successfully completed leader election (PREFERRED) for partitions {t}-0" in out, out
    wait_until("the preferred replica leads", lambda: c.partition(t).leader == preferred,
               WAIT_S, detail=c.logs)

    # Every partition at once: the ones led already are left out of the answer.
    move_leadership_away(c, t)
    res = kafka_tool("kafka-leader-election", *bs, "--election-type", "preferred",
                     "--all-topic-partitions")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Successfully completed leader election (PREFERRED) for partitions {t}-0" in res.stdout
    wait_until("the preferred replica leads", lambda: c.partition(t).leader == preferred,
               WAIT_S, detail=c.logs)

    # Unclean on a led partition: not needed. An unknown partition: Kafka's error.
    out = kafka_tool("kafka-leader-election", *bs, "--election-type", "unclean",
                     "--topic", t, "--partition", "0").check().stdout
    assert f"Valid replica already elected for partitions {t}-0" in out, out
    bad = kafka_tool("kafka-leader-election", *bs, "--election-type", "preferred",
                     "--topic", t, "--partition", "7")
    assert bad.returncode != 0
    assert "UnknownTopicOrPartitionException" in bad.stdout + bad.stderr, bad.stdout + bad.stderr


def test_auto_leader_rebalance_moves_leadership_back(cluster_factory):
    c = cluster_factory(COMBINED, {**REPLICATED, "leader.imbalance.check.interval.seconds": "2"})
    t = h.topic_name("rebalance")
    create(c, t)
    preferred = move_leadership_away(c, t)
    # No ElectLeaders: the active controller's periodic check moves it back.
    wait_until("leadership back on the preferred replica",
               lambda: c.partition(t).leader == preferred, WAIT_S, detail=c.logs)



def test_unclean_election_at_run_time_records_what_it_discarded(cluster_factory):
    """min.insync.replicas=1 (so no ELR arises): the followers die one after the other, the
    leader acknowledges alone, then dies too. The followers return: offline while
    unclean.leader.election.enable is false; set true at run time (kafka-configs.sh), one of
    them is elected. The old leader returns, truncates, and what it discarded — exactly the
    acknowledged records the new leader lacks — is what weir-admin shows from every broker,
    and still shows after that broker restarts."""
    c = cluster_factory(SPLIT6, OVERRIDES)
    t = h.topic_name("unclean")
    c.create_topic(t, rf=3, config={"min.insync.replicas": "1"})
    d = bring_down(c, t)
    assert not d.refused and len(d.acked) == 75, d.batches
    old = d.leader.node_id

    start_all(d.first, d.second)
    hold_offline(c, t)
    kafka_tool("kafka-configs", "--bootstrap-server", d.first.bootstrap, "--alter",
               "--entity-type", "topics", "--entity-name", t,
               "--add-config", "unclean.leader.election.enable=true").check()
    new_leader = wait_until("an unclean leader",
                            lambda: (l := c.partition(t).leader) in (d.first.node_id,
                                                                       d.second.node_id) and l,
                            BOUND_S, detail=c.logs)
    start_all(d.leader)
    wait_isr(c, t, c.node(new_leader), (4, 5, 6))

    def recorded():
        rows = unclean_rows(c, t, d.first)
        mine = [r for r in rows["discarded"] if r["broker"] == old]
        return rows if mine and rows["elections"][0]["leader_log_end"] is not None else None

    rows = wait_until("the discarded range recorded", recorded, BOUND_S, detail=c.logs)
    print(f"\nunclean election at run time: leader {new_leader}; recorded: {rows}")
    [e] = rows["elections"]
    assert (e["partition"], e["leader"]) == (0, new_leader), rows
    kept = e["leader_log_end"]
    [mine] = [r for r in rows["discarded"] if r["broker"] == old]
    lost = sorted(o for o in d.acked if o >= kept)
    assert lost, f"the unclean leader had everything ({kept}); the test lost nothing"
    assert (mine["from_offset"], mine["to_offset"]) == (kept, lost[-1] + 1), (mine, lost)
    assert mine["committed"] == len(lost) == mine["records"], (mine, lost)
    # Every broker answers the same.
    for n in c.brokers():
        assert unclean_rows(c, t, n) == rows, n.name
    # What the cluster serves now: the acknowledged records below the unclean leader's end,
    # nothing of what was discarded.
    got = read_back(c, t, kept)
    assert got == {o: v for o, v in d.acked.items() if o < kept}, sorted(got.items())
    text = (d.leader.data_dir / f"{t}-0" / "weir-unclean-discards").read_text()
    assert text.startswith(f"v1 {e['leader_epoch']} {kept} {lost[-1] + 1} "), text

    # The record outlives a restart of the broker that discarded (its file is sent again on
    # open; the controller keeps one range per broker).
    d.leader.kill9()
    start_all(d.leader)
    wait_isr(c, t, c.node(new_leader), (4, 5, 6))
    time.sleep(2)  # long enough for a repeated report to be committed
    for n in c.brokers():
        assert unclean_rows(c, t, n) == rows, n.name
    assert_no_errors(c)
