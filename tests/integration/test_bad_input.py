"""Hostile bytes on the wire. After each case the broker must still be up, still serve other
clients, and must not have touched the segment files it already had."""
from __future__ import annotations

import hashlib
import random
import struct
import time

import pytest
from kafka.protocol.list_offsets import ListOffsetsRequest
from kafka.protocol.produce import ProduceRequest
from kafka.record.default_records import DefaultRecordBatchBuilder

import helpers as h
import kwire
from conftest import Broker, _track

SEED_PARTITIONS = 2
SEED_N = 200


def _segment_snapshot(data_dir):
    # The metadata log (KRaft's __cluster_metadata) legitimately grows when a test creates a
    # topic; what bad input must never touch is the partitions' data.
    return {str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(data_dir.rglob("*.log"))
            if p.is_file() and not p.parent.name.startswith("__cluster_metadata")}


def _stable_snapshot(data_dir, timeout=15.0):
    deadline = time.monotonic() + timeout
    prev = _segment_snapshot(data_dir)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cur = _segment_snapshot(data_dir)
        if cur == prev:
            return cur
        prev = cur
    raise AssertionError("segment files kept changing with no client activity")


class Victim:
    def __init__(self, broker: Broker):
        self.b = broker
        self.topic = h.topic_name("seed")
        h.create_topic(broker.bootstrap, self.topic, SEED_PARTITIONS)
        p = h.producer(broker.bootstrap, acks="all")
        reports = h.produce_and_collect(p, [(b"k%d" % i, b"v%d" % i) for i in range(SEED_N)], self.topic)
        assert all(r[0] is None for r in reports)
        self.contents = self._read()
        self.snapshot = _stable_snapshot(broker.data_dir)
        assert self.snapshot, f"no *.log segment files under {broker.data_dir}"

    def _read(self):
        msgs = h.consume_all(self.b.bootstrap, self.topic, range(SEED_PARTITIONS), expected=SEED_N, timeout=30)
        return sorted((m.partition(), m.offset(), m.key(), m.value()) for m in msgs)

    def assert_healthy(self):
        assert self.b.alive(), f"broker died (exit {self.b.proc.returncode})"
        kwire.probe(self.b.bootstrap)
        assert self.topic in h.admin(self.b.bootstrap).list_topics(timeout=10).topics
        assert self._read() == self.contents, "existing data changed"
        now = _segment_snapshot(self.b.data_dir)
        changed = [f for f, digest in self.snapshot.items() if now.get(f) != digest]
        assert not changed, f"existing segment files changed or vanished: {changed}"


@pytest.fixture(scope="module")
def _victim(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("weir-victim"), name="weir-victim")
    try:
        b.start()
        yield Victim(b)
    finally:
        b.cleanup()


@pytest.fixture
def victim(request, _victim):
    _track(request, _victim.b)
    assert _victim.b.alive(), "the broker died in an earlier bad-input test"
    return _victim


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_bytes(victim, seed):
    rng = random.Random(seed)
    junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
    with kwire.Conn(victim.b.bootstrap) as c:
        c.send_raw(junk)
        # The broker may close at once (bad size or unparseable header) or wait for the rest
        # of a frame it was promised; it must never answer garbage.
        c.closed_by_peer(3)
    victim.assert_healthy()


def test_random_payload_in_valid_frame_closes(victim):
    rng = random.Random(42)
    body = struct.pack(">h", 0x7ABC) + bytes(rng.getrandbits(8) for _ in range(200))
    with kwire.Conn(victim.b.bootstrap) as c:
        c.send_raw(kwire.frame(body))
        assert c.closed_by_peer(10), "an unparseable request must close the connection"
    victim.assert_healthy()


def test_truncated_frame_then_disconnect(victim):
    header = kwire.request_header_v1(kwire.API_API_VERSIONS, 0, 1)
    with kwire.Conn(victim.b.bootstrap) as c:
        c.send_raw(struct.pack(">i", 100) + header)  # promised 100 bytes, sent fewer
        assert not c.closed_by_peer(1), "the broker should wait for the rest of the frame"
    victim.assert_healthy()
    # the size prefix itself cut short
    with kwire.Conn(victim.b.bootstrap) as c:
        c.send_raw(b"\x00\x00")
    victim.assert_healthy()


def test_truncated_header_inside_complete_frame_closes(victim):
    # api_key, api_version, correlation_id, then a client_id length of 50 with no bytes after
    body = struct.pack(">hhih", kwire.API_API_VERSIONS, 0, 1, 50)
    with kwire.Conn(victim.b.bootstrap) as c:
        c.send_raw(kwire.frame(body))
        assert c.closed_by_peer(10)
    victim.assert_healthy()


@pytest.mark.parametrize("size", [0x80000000, 0x7FFFFFFF, 0xFFFFFFFF, 0])
def test_absurd_size_prefix_closes_without_allocating(victim, size):
    rss_before = victim.b.rss_kib()
    with kwire.Conn(victim.b.bootstrap) as c:
        c.send_raw(struct.pack(">I", size) + b"\x00" * 64)
        assert c.closed_by_peer(10), f"size prefix {size:#x} must close the connection"
    rss_after = victim.b.rss_kib()
    if rss_before is not None and rss_after is not None:
        assert rss_after - rss_before < 256 * 1024, f"RSS grew {rss_before} -> {rss_after} KiB"
    victim.assert_healthy()


def test_unknown_api_key_closes(victim):
    with kwire.Conn(victim.b.bootstrap) as c:
        c.send_request_raw(32000, 0, b"\x00" * 16)
        assert c.closed_by_peer(10), "Kafka closes the connection on an unknown API key"
    victim.assert_healthy()


def test_api_versions_unsupported_version(victim):
    """KIP-511: an ApiVersions request of a version the broker does not know gets a v0-format
    response with UNSUPPORTED_VERSION and (at least) ApiVersions' own supported range, and the
    connection stays open so the client can retry with a version it now knows is supported."""
    with kwire.Conn(victim.b.bootstrap) as c:
        c.corr = 41
        # a future flexible ApiVersions: request header v2 (tagged fields), compact-string body
        header = struct.pack(">hhi", kwire.API_API_VERSIONS, 127, 42) + b"\x00\x07weir-it" + b"\x00"
        body = b"\x08weir-it" + b"\x061.0.0" + b"\x00"
        c.send_raw(kwire.frame(header + body))
        resp = c.recv_response_raw(42)
        err, apis = kwire.parse_api_versions_v0(resp)
        assert err == kwire.UNSUPPORTED_VERSION, err
        assert kwire.API_API_VERSIONS in apis, apis
        lo, hi = apis[kwire.API_API_VERSIONS]
        assert lo == 0 and hi >= 3, (lo, hi)

        err, apis = c.api_versions_v0()
        assert err == kwire.NONE and kwire.API_API_VERSIONS in apis and kwire.API_PRODUCE in apis
    victim.assert_healthy()


def _produce_version(broker):
    lo, hi = broker.api_versions[kwire.API_PRODUCE]
    v = min(hi, len(ProduceRequest) - 1)
    assert v >= 3 and v >= lo, f"broker's Produce range {lo}..{hi} has no non-flexible v2-batch version"
    return v


def _batch(n=3, producer_id=-1, epoch=-1, base_sequence=-1):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=producer_id, producer_epoch=epoch,
                                  base_sequence=base_sequence, batch_size=1 << 20)
    ts = int(time.time() * 1000)
    for i in range(n):
        b.append(i, timestamp=ts, key=b"key%d" % i, value=b"value %d" % i, headers=[])
    return bytes(b.build())


def _produce_raw(broker, topic, batch, acks=-1):
    v = _produce_version(broker)
    req = ProduceRequest[v](transactional_id=None, required_acks=acks, timeout=10000,
                            topics=[(topic, [(0, batch)])])
    with kwire.Conn(broker.bootstrap) as c:
        resp = c.call(req)
    [(name, [part])] = resp.topics
    assert name == topic
    return part  # (partition, error_code, base_offset, ...)


def _log_end(broker, topic, partition=0):
    with kwire.Conn(broker.bootstrap) as c:
        resp = c.call(ListOffsetsRequest[1](replica_id=-1, topics=[(topic, [(partition, -1)])]))
    [(_, [(_p, err, _ts, off)])] = resp.topics
    assert err == kwire.NONE
    return off


def test_produce_with_corrupt_crc_is_refused(victim):
    b = victim.b
    # control: the same hand-built request with an intact batch is accepted (proves the bytes
    # below are otherwise valid); it goes to a scratch topic so the seed's files stay untouched
    scratch = h.topic_name("scratch")
    h.create_topic(b.bootstrap, scratch, 1)
    part = _produce_raw(b, scratch, _batch())
    assert part[1] == kwire.NONE and part[2] == 0, part

    end_before = _log_end(b, victim.topic)
    good = _batch()
    bad = bytearray(good)
    bad[-3] ^= 0xFF  # inside the last record's value: covered by the CRC-32C
    part = _produce_raw(b, victim.topic, bytes(bad))
    assert part[1] == kwire.CORRUPT_MESSAGE, f"expected CORRUPT_MESSAGE, got error {part[1]}"

    bad = bytearray(good)
    bad[17] ^= 0x01  # the CRC field itself (offset 17..20 of a v2 batch)
    part = _produce_raw(b, victim.topic, bytes(bad))
    assert part[1] == kwire.CORRUPT_MESSAGE, f"expected CORRUPT_MESSAGE, got error {part[1]}"

    assert _log_end(b, victim.topic) == end_before, "a corrupt batch must not be appended"
    victim.assert_healthy()
