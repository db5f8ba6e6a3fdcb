"""Network namespaces for the chaos harness.

One namespace per broker, joined to a bridge in the root namespace by a veth pair. The clients
(producers, consumers, the harness's own admin calls) live in the root namespace and reach every
broker through the bridge's address, so "cut off from the other brokers" and "cut off from the
clients" are different sets of addresses to drop.

Network faults are nftables rules in a table of the broker's own namespace (`inet weirchaos`):
healing is deleting that table. The kernel this was written on has no netem, so packet loss is
nftables' `numgen random` too. Without the `nft` binary, cuts fall back to blackhole routes and
packet loss is not offered.

Every name carries the harness's tag (its PID), so `remove_stale()` can delete what a run that
was killed with -9 left behind without touching anyone else's namespaces.
"""
from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess

NETNS_PREFIX = "wchaos"
TABLE = "weirchaos"
# Bound on every ip/nft/tc invocation: they are local netlink calls and return in milliseconds.
CMD_TIMEOUT_S = 20


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def netns_works() -> tuple[bool, str]:
    """Whether this process may create network namespaces (root, CAP_SYS_ADMIN and CAP_NET_ADMIN)."""
    if shutil.which("ip") is None:
        return False, "the ip command (iproute2) is not installed"
    name = f"{NETNS_PREFIX}-probe-{os.getpid()}"
    try:
        r = run("ip", "netns", "add", name, check=False)
        if r.returncode != 0:
            return False, f"ip netns add failed: {r.stderr.strip()}"
        run("ip", "netns", "del", name, check=False)
        return True, ""
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale() -> list[str]:
    """Deletes namespaces, links and mounts of earlier harness runs whose process is gone."""
    removed = []
    mounts = open("/proc/mounts").read().splitlines()
    for line in mounts:
        parts = line.split()
        m = re.search(rf"/{NETNS_PREFIX}-(\d+)/", parts[1] + "/") if len(parts) > 1 else None
        if m and not _pid_alive(int(m.group(1))):
            run("umount", "-l", parts[1], check=False)
            removed.append(f"mount {parts[1]}")
    r = run("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{NETNS_PREFIX}-(\d+)-\d+", name)
        if m and not _pid_alive(int(m.group(1))):
            run("ip", "netns", "del", name, check=False)
            removed.append(f"netns {name}")
    r = run("ip", "-o", "link", "show", check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"\d+: (wc[bh](\d+)(?:-\d+)?)[@:]", line)
        if m and not _pid_alive(int(m.group(2))):
            run("ip", "link", "del", m.group(1), check=False)
            removed.append(f"link {m.group(1)}")
    return removed


def _free_subnet(tag: int) -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that no route of this host overlaps, chosen from the tag so that
    concurrent runs start at different places."""
    used = []
    for line in run("ip", "-4", "route", "show", "table", "all", check=False).stdout.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("broadcast", "local", "unicast") and len(line.split()) > 1:
            word = line.split()[1]
        try:
            used.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            pass
    for i in range(4000):
        k = (tag + i * 7919) % (200 * 250)
        net = ipaddress.ip_network(f"10.{50 + k // 250}.{k % 250}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise RuntimeError("no free 10.x.y.0/24 subnet for the chaos bridge")


class Topology:
    """n namespaces wchaos-<tag>-<i>, veth wch<tag>-<i> (root side, on bridge wcb<tag>) and eth0
    (namespace side, 10.a.b.i/24); the bridge has 10.a.b.254, the clients' source address."""

    def __init__(self, n: int, tag: int | None = None):
        self.tag = tag if tag is not None else os.getpid()
        self.n = n
        self.bridge = f"wcb{self.tag}"
        self.netns = {i: f"{NETNS_PREFIX}-{self.tag}-{i}" for i in range(1, n + 1)}
        self.host_veth = {i: f"wch{self.tag}-{i}" for i in range(1, n + 1)}
        self.subnet = None
        self.ips: dict[int, str] = {}
        self.client_ip = ""
        self.have_nft = shutil.which("nft") is not None
        self._blackholes: dict[int, list[str]] = {}
        self._created = False

    def create(self) -> None:
        self.subnet = _free_subnet(self.tag)
        hosts = list(self.subnet.hosts())
        self.client_ip = str(hosts[253])
        self.ips = {i: str(hosts[i - 1]) for i in range(1, self.n + 1)}
        self._created = True
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.client_ip}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for i, ns in self.netns.items():
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", self.host_veth[i], "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            run("ip", "link", "set", self.host_veth[i], "master", self.bridge, "up")
            run("ip", "-n", ns, "addr", "add", f"{self.ips[i]}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def destroy(self) -> None:
        """Removes everything create() made; safe to call twice or after a partial create()."""
        for ns in self.netns.values():
            run("ip", "netns", "del", ns, check=False)
        for v in self.host_veth.values():
            run("ip", "link", "del", v, check=False)
        run("ip", "link", "del", self.bridge, check=False)

    def exec_prefix(self, i: int) -> list[str]:
        return ["ip", "netns", "exec", self.netns[i]]

    # ---- faults -------------------------------------------------------------------------

    def _nft(self, i: int, rules: str) -> None:
        script = (f"table inet {TABLE} {{\n"
                  f"  chain in {{ type filter hook input priority 0; policy accept; {rules} }}\n"
                  f"  chain out {{ type filter hook output priority 0; policy accept; "
                  f"{rules.replace('saddr', 'daddr')} }}\n}}\n")
        r = subprocess.run(["ip", "netns", "exec", self.netns[i], "nft", "-f", "-"], input=script,
                           text=True, capture_output=True, timeout=CMD_TIMEOUT_S)
        if r.returncode != 0:
            raise RuntimeError(f"nft in {self.netns[i]} failed: {r.stderr.strip()}")

    def cut(self, i: int, addrs: list[str]) -> None:
        """Drops every packet between broker i and `addrs` (both directions, in i's namespace)."""
        if self.have_nft:
            s = ", ".join(addrs)
            self._nft(i, f"ip saddr {{ {s} }} drop;")
        else:
            for a in addrs:
                run("ip", "-n", self.netns[i], "route", "add", "blackhole", f"{a}/32")
                self._blackholes.setdefault(i, []).append(a)

    def cut_from_peers(self, i: int) -> None:
        self.cut(i, [ip for j, ip in self.ips.items() if j != i])

    def cut_from_clients(self, i: int) -> None:
        self.cut(i, [self.client_ip])

    def loss(self, i: int, percent: int) -> None:
        """Drops `percent`% of broker i's packets, each direction (netem's `loss`, by nftables)."""
        if not self.have_nft:
            raise RuntimeError("packet loss needs nft (nftables)")
        if not 0 < percent < 100:
            raise ValueError(f"loss must be 1..99 %, not {percent}")
        self._nft(i, f"numgen random mod 100 < {percent} drop;")

    def link(self, i: int, up: bool) -> None:
        run("ip", "-n", self.netns[i], "link", "set", "eth0", "up" if up else "down")

    def heal(self, i: int) -> None:
        if self.have_nft:
            run("ip", "netns", "exec", self.netns[i], "nft", "delete", "table", "inet", TABLE,
                check=False)
        for a in self._blackholes.pop(i, []):
            run("ip", "-n", self.netns[i], "route", "del", "blackhole", f"{a}/32", check=False)
        self.link(i, True)

    def heal_all(self) -> None:
        for i in self.netns:
            self.heal(i)


if __name__ == "__main__":
    # scripts/chaos.sh calls this on exit: whatever a run left behind (it was killed, or its
    # own cleanup was interrupted) goes once its process is gone.
    import sys
    if sys.argv[1:] == ["--remove-stale"]:
        for what in remove_stale():
            print(f"chaos: removed {what}")
    else:
        sys.exit("usage: topology.py --remove-stale")
