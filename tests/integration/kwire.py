"""Minimal Kafka wire-protocol helpers for the integration tests.

Two layers:
  * hand-written encoders/decoders for the few requests the harness needs before any
    client library is involved (ApiVersions v0, Metadata v1), used by the readiness probe;
  * a `Conn` that sends kafka-python protocol structs (or arbitrary raw bytes) over a plain
    socket, for the tests that must control every byte (bad input, idempotence, metadata).

Every socket operation has a timeout; only 127.0.0.1 is ever contacted.
"""
from __future__ import annotations

import io
import socket
import struct
import time

API_PRODUCE = 0
API_METADATA = 3
API_API_VERSIONS = 18

# Kafka error codes used by the tests (org.apache.kafka.common.protocol.Errors).
NONE = 0
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
NOT_ENOUGH_REPLICAS = 19
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REQUEST = 42
INVALID_CONFIG = 40


class WireError(Exception):
    pass


def split_hostport(bootstrap: str) -> tuple[str, int]:
    host, port = bootstrap.rsplit(":", 1)
    assert host == "127.0.0.1", f"tests only ever talk to 127.0.0.1, not {host}"
    return host, int(port)


def _str(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request_header_v1(api_key: int, api_version: int, correlation_id: int,
                      client_id: str | None = "weir-it") -> bytes:
    return struct.pack(">hhi", api_key, api_version, correlation_id) + _str(client_id)


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


class Reader:
    def __init__(self, data: bytes):
        self.buf = io.BytesIO(data)

    def _take(self, n: int) -> bytes:
        b = self.buf.read(n)
        if len(b) != n:
            raise WireError(f"short response: wanted {n} bytes, got {len(b)}")
        return b

    def i8(self):
        return struct.unpack(">b", self._take(1))[0]

    def i16(self):
        return struct.unpack(">h", self._take(2))[0]

    def i32(self):
        return struct.unpack(">i", self._take(4))[0]

    def i64(self):
        return struct.unpack(">q", self._take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self._take(n).decode()

    def remaining(self) -> bytes:
        return self.buf.read()


def parse_api_versions_v0(body: bytes) -> tuple[int, dict[int, tuple[int, int]]]:
    """body = response after the correlation id. Returns (error_code, {api_key: (min, max)})."""
    r = Reader(body)
    err = r.i16()
    n = r.i32()
    apis = {}
    for _ in range(max(n, 0)):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    return err, apis


def parse_metadata_v1_brokers(body: bytes) -> tuple[list[tuple[int, str, int]], int]:
    r = Reader(body)
    brokers = []
    for _ in range(r.i32()):
        node_id, host, port = r.i32(), r.string(), r.i32()
        r.string()  # rack
        brokers.append((node_id, host, port))
    controller = r.i32()
    return brokers, controller


class Conn:
    """One TCP connection to the broker. Correlation ids are checked on every response."""

    def __init__(self, bootstrap: str, timeout: float = 10.0):
        self.addr = split_hostport(bootstrap)
        self.timeout = timeout
        self.sock = socket.create_connection(self.addr, timeout=timeout)
        self.sock.settimeout(timeout)
        self.corr = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw bytes ---------------------------------------------------------------------
    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def recv_exact(self, n: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"timed out after {len(out)}/{n} bytes")
            self.sock.settimeout(left)
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError(f"connection closed by broker after {len(out)}/{n} bytes")
            out += chunk
        self.sock.settimeout(self.timeout)
        return bytes(out)

    def recv_frame(self, timeout: float | None = None, max_size: int = 256 << 20) -> bytes:
        (size,) = struct.unpack(">i", self.recv_exact(4, timeout))
        if size < 4 or size > max_size:
            raise WireError(f"implausible response size {size}")
        return self.recv_exact(size, timeout)

    def send_request_raw(self, api_key: int, api_version: int, body: bytes,
                         client_id: str | None = "weir-it") -> int:
        self.corr += 1
        self.send_raw(frame(request_header_v1(api_key, api_version, self.corr, client_id) + body))
        return self.corr

    def recv_response_raw(self, expect_corr: int, flexible_header: bool = False,
                          timeout: float | None = None) -> bytes:
        data = self.recv_frame(timeout)
        (corr,) = struct.unpack(">i", data[:4])
        if corr != expect_corr:
            raise WireError(f"correlation id {corr} != expected {expect_corr}")
        body = data[4:]
        if flexible_header:  # response header v1: tagged fields (we only accept none)
            if body[:1] != b"\x00":
                raise WireError("unexpected tagged fields in response header")
            body = body[1:]
        return body

    def closed_by_peer(self, timeout: float = 10.0) -> bool:
        """True if the broker closes (EOF or reset) within `timeout` without sending anything.
        Raises WireError if it sends data instead; False if it neither closes nor sends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            raise WireError(f"broker answered garbage with {len(chunk)} bytes: {chunk[:64]!r}")
        return False

    # -- kafka-python protocol structs ----------------------------------------------------
    def call(self, request, client_id: str = "weir-it", timeout: float | None = None):
        """Send a kafka-python Request struct, return the decoded Response struct."""
        self.corr += 1
        header = request.build_header(correlation_id=self.corr, client_id=client_id)
        self.send_raw(frame(header.encode() + request.encode()))
        # ApiVersions responses always use response header v0 (KIP-511).
        flexible = bool(getattr(request, "FLEXIBLE_VERSION", False)) and request.API_KEY != API_API_VERSIONS
        body = self.recv_response_raw(self.corr, flexible_header=flexible, timeout=timeout)
        return request.RESPONSE_TYPE.decode(io.BytesIO(body))

    # -- hand-written requests --------------------------------------------------------------
    def api_versions_v0(self) -> tuple[int, dict[int, tuple[int, int]]]:
        corr = self.send_request_raw(API_API_VERSIONS, 0, b"")
        return parse_api_versions_v0(self.recv_response_raw(corr))

    def metadata_v1_no_topics(self):
        corr = self.send_request_raw(API_METADATA, 1, struct.pack(">i", 0))
        return parse_metadata_v1_brokers(self.recv_response_raw(corr))


def probe(bootstrap: str, timeout: float = 5.0) -> dict[int, tuple[int, int]]:
    """Readiness probe: ApiVersions v0 and Metadata v1 round trips on one connection.
    Returns the ApiVersions map. Raises on any failure."""
    _, port = split_hostport(bootstrap)
    with Conn(bootstrap, timeout=timeout) as c:
        err, apis = c.api_versions_v0()
        if err != NONE:
            raise WireError(f"ApiVersions v0 error {err}")
        if API_METADATA not in apis:
            raise WireError("ApiVersions does not list Metadata")
        brokers, _controller = c.metadata_v1_no_topics()
        if not any(h == "127.0.0.1" and p == port for _, h, p in brokers):
            raise WireError(f"Metadata brokers {brokers} do not include 127.0.0.1:{port}")
        return apis
