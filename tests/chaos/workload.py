"""The workload: idempotent acks=all producers and a consumer group (confluent-kafka), recording
what was sent, what was acknowledged at which offset, and what was read, for the checker.

Every message value is unique: "<session>:<seq>:" then padding, where a session is one producer
instance (a new one replaces a producer that hit a fatal error) and seq counts that session's
messages. Each session writes its partitions round-robin, so the checker can tell the order in
which messages of one session went to one partition.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

PAD = b"." * 80

# librdkafka's own log lines (connection refused, timeouts: expected under faults) go to a
# file in the run's workdir, not to the progress output. run.py sets the file.
CLIENT_LOG = logging.getLogger("weir-chaos-clients")
CLIENT_LOG.propagate = False


def log_clients_to(path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    CLIENT_LOG.addHandler(handler)
    CLIENT_LOG.setLevel(logging.INFO)


def client_config(**kv) -> dict:
    """librdkafka settings every client of the harness shares."""
    return {"logger": CLIENT_LOG, **kv}


def create_assigned_topic(bootstrap: str, name: str, assignment: list[list[int]]) -> None:
    """A topic with explicit replicas (the first of each list its preferred leader), min ISR 2.
    By kafka-python, as librdkafka 2.16 refuses any explicit replica assignment in CreateTopics
    ("a default partition count and a replica assignment are mutually exclusive")."""
    from kafka.admin import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic
    ka = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=30000)
    try:
        ka.create_topics([KNewTopic(name, num_partitions=-1, replication_factor=-1,
                                    replica_assignments=dict(enumerate(assignment)),
                                    topic_configs={"min.insync.replicas": "2"})])
    finally:
        ka.close()


class History:
    """Everything the clients saw; written by the client threads under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent: dict[str, tuple[str, int, int]] = {}  # value -> (session, seq, partition)
        self.acked: dict[str, tuple[int, int]] = {}  # value -> (partition, offset)
        self.failed: dict[str, str] = {}  # value -> error name (indeterminate)
        self.ack_times: dict[int, list[float]] = defaultdict(list)  # partition -> ack times
        self.errors: Counter = Counter()  # produce error names
        self.fatal: list[str] = []
        self.reads: list[tuple[int, int, str]] = []  # (partition, offset, value) as consumed
        self.consumer_errors: Counter = Counter()


class ProducerThread(threading.Thread):
    def __init__(self, name: str, bootstrap: str, topic: str, partitions: int, rate: float,
                 history: History, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.pname = name
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.rate = rate
        self.h = history
        self.stop_ev = stop
        self.sessions = 0
        self.unresolved = 0
        self.error: BaseException | None = None

    def _new_producer(self) -> tuple[Producer, str, threading.Event]:
        self.sessions += 1
        session = f"{self.pname}s{self.sessions}"
        fatal = threading.Event()

        def on_error(err: KafkaError):
            if err.fatal():
                with self.h.lock:
                    self.h.fatal.append(f"{session}: {err.name()} {err.str()}")
                fatal.set()

        p = Producer(client_config(**{
            "bootstrap.servers": self.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # Long enough to ride out every fault (a frozen broker is fenced after 9 s); a
            # timed-out message is indeterminate, never counted as acknowledged.
            "message.timeout.ms": 120000,
            "request.timeout.ms": 15000,
            "queue.buffering.max.messages": 200000,
            "error_cb": on_error,
            "client.id": session,
        }))
        return p, session, fatal

    def _on_delivery(self, err, msg):
        value = msg.value()[: msg.value().index(b":", msg.value().index(b":") + 1)].decode()
        now = time.monotonic()
        with self.h.lock:
            if err is None:
                self.h.acked[value] = (msg.partition(), msg.offset())
                self.h.ack_times[msg.partition()].append(now)
            else:
                self.h.failed[value] = err.name()
                self.h.errors[err.name()] += 1

    def run(self):
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - reported by the harness
            self.error = e

    def _run(self):
        p, session, fatal = self._new_producer()
        seq = 0
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop_ev.is_set():
            if fatal.is_set():
                # librdkafka's idempotent producer cannot continue after a fatal error: what it
                # had in flight is failed (indeterminate); a new session carries on.
                p.flush(10)
                p, session, fatal = self._new_producer()
                seq = 0
            now = time.monotonic()
            if now < next_at:
                p.poll(min(next_at - now, 0.05))
                continue
            next_at = max(next_at + interval, now - 1.0)
            part = seq % self.partitions
            value = f"{session}:{seq}"
            with self.h.lock:
                self.h.sent[value] = (session, seq, part)
            try:
                p.produce(self.topic, value=value.encode() + b":" + PAD, partition=part,
                          on_delivery=self._on_delivery)
            except BufferError:
                with self.h.lock:
                    del self.h.sent[value]
                p.poll(0.1)
                continue
            seq += 1
            p.poll(0)
        # Drain: everything sent gets an answer or times out (bounded by message.timeout.ms).
        deadline = time.monotonic() + 150
        while len(p) > 0 and time.monotonic() < deadline:
            p.poll(0.2)
        self.unresolved += len(p)


class ConsumerThread(threading.Thread):
    """A group member reading the topic from the start; every read goes to the history."""

    def __init__(self, bootstrap: str, topic: str, group: str, history: History,
                 stop: threading.Event):
        super().__init__(name="consumer", daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.h = history
        self.stop_ev = stop
        self.error: BaseException | None = None

    def run(self):
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001
            self.error = e

    def _run(self):
        c = Consumer(client_config(**{
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 1000,
            "session.timeout.ms": 30000,
        }))
        c.subscribe([self.topic])
        try:
            while not self.stop_ev.is_set():
                msgs = c.consume(500, 0.5)
                batch = []
                for m in msgs:
                    if m.error():
                        self.h.consumer_errors[m.error().name()] += 1
                        continue
                    v = m.value()
                    end = v.find(b":", v.find(b":") + 1)
                    batch.append((m.partition(), m.offset(), v[:end].decode(errors="replace")
                                  if end > 0 else v.decode(errors="replace")))
                if batch:
                    with self.h.lock:
                        self.h.reads.extend(batch)
        finally:
            c.close()


def read_all(bootstrap: str, topic: str, partitions: int, timeout_s: float) -> dict[int, list]:
    """Every partition read from its start to its high watermark, with a fresh assigned
    consumer: {partition: [(offset, value), ...]}. Raises TimeoutError if it cannot finish."""
    c = Consumer(client_config(**{
        "bootstrap.servers": bootstrap,
        "group.id": "weir-chaos-final",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    }))
    deadline = time.monotonic() + timeout_s
    out: dict[int, list] = {p: [] for p in range(partitions)}
    try:
        ends = {}
        for p in range(partitions):
            while True:
                try:
                    lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    ends[p] = (lo, hi)
                    break
                except Exception:  # noqa: BLE001 - retried until the deadline
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no watermarks for partition {p}")
                    time.sleep(1)
        c.assign([TopicPartition(topic, p, ends[p][0]) for p in range(partitions)])
        pos = {p: ends[p][0] for p in range(partitions)}
        while any(pos[p] < ends[p][1] for p in range(partitions)):
            if time.monotonic() > deadline:
                short = {p: (pos[p], ends[p][1]) for p in range(partitions) if pos[p] < ends[p][1]}
                raise TimeoutError(f"final read incomplete: {short}")
            for m in c.consume(1000, 1.0):
                if m.error():
                    continue
                v = m.value()
                end = v.find(b":", v.find(b":") + 1)
                value = v[:end].decode(errors="replace") if end > 0 else v.decode(errors="replace")
                out[m.partition()].append((m.offset(), value))
                pos[m.partition()] = m.offset() + 1
    finally:
        c.close()
    return out
