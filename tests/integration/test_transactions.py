"""Weir has no transaction coordinator yet. A transactional client must hear so at once and
clearly (it used to wait for its whole init_transactions timeout, retrying
COORDINATOR_NOT_AVAILABLE), while idempotent producers keep working."""
from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from helpers import common_conf, create_topic, producer, produce_and_collect, topic_name

INIT_TIMEOUT_S = 60.0  # the client's own bound; the answer must come long before it


def test_init_transactions_fails_at_once_with_a_clear_error(broker):
    conf = common_conf(broker.bootstrap)
    conf["transactional.id"] = "weir-it-txn"
    p = Producer(conf)
    started = time.monotonic()
    with pytest.raises(KafkaException) as e:
        p.init_transactions(INIT_TIMEOUT_S)
    took = time.monotonic() - started
    err = e.value.args[0]
    assert err.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, err
    assert err.fatal(), err
    assert "not supported" in err.str(), err
    assert took < INIT_TIMEOUT_S / 2, f"init_transactions waited {took:.1f} s for its answer"


def test_idempotent_producers_are_unaffected(broker):
    topic = topic_name("idem")
    create_topic(broker.bootstrap, topic)
    reports = produce_and_collect(producer(broker.bootstrap, **{"enable.idempotence": True}),
                                  [(None, b"v")] * 5, topic)
    assert [r[0] for r in reports] == [None] * 5
