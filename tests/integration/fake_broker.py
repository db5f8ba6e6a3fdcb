#!/usr/bin/env python3
"""A tiny stand-in broker for the harness self-test (test_harness.py): accepts the weir
command line, answers ApiVersions v0 and Metadata v1 (no topics), exits 0 on SIGTERM/SIGINT.
FAKE_MODE=crash exits 3 at once; FAKE_MODE=hang never listens; FAKE_MODE=stubborn ignores SIGTERM."""
import os
import signal
import socket
import struct
import sys
import threading

args = sys.argv[1:]
props = {}
for line in open(args[args.index("--config") + 1]):
    if "=" in line:
        k, v = line.strip().split("=", 1)
        props[k] = v
for i, a in enumerate(args):
    if a == "--override":
        k, v = args[i + 1].split("=", 1)
        props[k] = v
port = int(props["listeners"].rsplit(":", 1)[1])
mode = os.environ.get("FAKE_MODE", "")
print(f"fake broker: port {port} mode {mode!r} props {sorted(props)}", file=sys.stderr, flush=True)
if mode == "crash":
    print("fake broker: crashing on purpose", file=sys.stderr, flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else (lambda *_: os._exit(0)))
signal.signal(signal.SIGINT, lambda *_: os._exit(0))
if mode == "hang":
    signal.pause()


def serve(c):
    with c:
        while True:
            hdr = c.recv(4, socket.MSG_WAITALL)
            if len(hdr) < 4:
                return
            req = c.recv(struct.unpack(">i", hdr)[0], socket.MSG_WAITALL)
            key, ver, corr = struct.unpack(">hhi", req[:8])
            if key == 18:
                body = struct.pack(">hi", 0, 2) + struct.pack(">hhh", 3, 0, 1) + struct.pack(">hhh", 18, 0, 0)
            elif key == 3 and ver == 1:
                host = b"127.0.0.1"
                body = (struct.pack(">i", 1) + struct.pack(">ih", 1, len(host)) + host
                        + struct.pack(">ih", port, -1) + struct.pack(">ii", 1, 0))
            else:
                return
            out = struct.pack(">i", corr) + body
            c.sendall(struct.pack(">i", len(out)) + out)


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(16)
while True:
    conn, _ = ls.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
