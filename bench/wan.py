#!/usr/bin/env python3
"""The inter-region tunnel at a distance: two regions on loopback, the tunnel between them
through an emulated WAN path (sluice_wan_relay, bench/wan_relay.cc: delay, a shared bandwidth,
a TCP-like window, loss), measured side by side with a plain TCP connection over an identical
path.

Region A (us-east-1) is where the clients enter: one sluice with its own origin. Region B
(eu-west-1): one sluice with its own origin. Every node's tunnel address for B is the relay's
listen address; the relay forwards to B's sluice. Which requests cross is chosen per request
by the steering decision itself: a member whose home region (the x-home-region header) is B is
tunneled home (misrouted: proxy_home); a member with no home region is served by A from its
own origin. So "local" and "tunneled" requests go through the same sluice A, the same client,
and differ only by the tunnel hop. Each response's sluice-region header is checked.

For each RTT in --rtts and each loss in --losses (fresh relays and sluices for each):
  (a) one large download (--size; with loss, at most 20 MiB, and the run says so) with curl:
      through A -> relay -> B -> B's origin (tunnel_mbps), and over one TCP connection through
      a second, identical relay straight to B's origin (tcp_mbps, the limit); ratio = tunnel /
      tcp. Both are curl's speed_download: the size over the whole time, the connection's and
      the first byte's RTTs and TCP's slow start included; both start cold (a new TCP
      connection; the tunnel's warm connections have carried nothing but PINGs, and their
      windows start at 256 KiB). Each download is bounded by --max-seconds (curl's --max-time;
      the rate is then of what arrived, and the run says so). The link is 400 Mbit/s by
      default: at 1000 the tunnel's path (relay, two sluices, nginx, curl) needs more than
      this machine's two cores, the relay's deliveries come late and the tunnel's figure
      swings by 20% from run to run (0.73 to 0.92 of plain TCP at 80 ms).
  (b) --members concurrent members (200), 10 small requests each on one keep-alive
      connection to A (a Python asyncio client), each member at 4 requests/s, the members'
      schedules spread evenly (a closed loop, or h2load --rps, whose clients all fire at once,
      measured a queue in sluice or in the client, not a request): all of them served
      locally, then all tunneled (after one warm-up request per member through the tunnel, so
      the tunnel's connections are open), in 3 interleaved rounds. added_p50_ms, added_p99_ms:
      tunneled minus local percentiles of the request latency (each the median of its 3
      rounds). Ideal: one RTT.
  (c) the first request after the tunnel's connections were reset (SIGUSR1 to the relay, then
      0.5 s of idle tunnel), minus the steady single-request latency (the median of 5 tunneled
      requests on a warm tunnel), in RTTs: first_after_idle_extra_rtts (the median of 3). A
      new TCP connection costs one RTT of handshake (the relay emulates it); cleartext HTTP/2
      should add nothing more.

Each RTT/loss ends with one machine-readable line:
  wan: rtt_ms=R loss_pct=L tunnel_mbps=T tcp_mbps=C ratio=T/C added_p50_ms=A added_p99_ms=B
       first_after_idle_extra_rtts=K
(on one line), and a table of every run is printed at the end.

Usage: bench/wan.py [--rtts 30,80,150] [--losses 0,0.5] [--size 100] [--members 200]
                    [--bandwidth-mbps 400] [--max-seconds 120]
                    [--sluice build/proxy/sluice] [--relay build/bench/sluice_wan_relay]
       bench/wan.py --quick   (30 ms, no loss, a 10 MiB file, 50 members: the smoke test's run)
Needs: nginx (nginx-light), curl; loopback only, every process stopped by its PID.
"""

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from sluicetest import debian
from sluicetest.nginx import Nginx
from sluicetest.process import SLUICE_BIN, Sluice, free_port
from sluicetest.secret_files import write_secrets
from sluicetest.wan_relay import WAN_RELAY_BIN, WanRelay

PACKAGES = {"nginx": "nginx-light", "curl": "curl"}
REGION_A, REGION_B = "us-east-1", "eu-west-1"
MIB = 1 << 20
LOSS_SIZE_MIB = 20  # the download's size cap when the path loses packets
REQUESTS_PER_MEMBER = 10
STEADY_REQUESTS, IDLE_ROUNDS, IDLE_S = 5, 3, 0.5
LOAD_ROUNDS = 3
# Each member's pace in (b): below saturation on this machine (200 members: 800 requests/s),
# so the local baseline is the latency of a request, not of a queue, and slower than the
# longest RTT, so a tunneled member seldom waits for its own previous request.
MEMBER_RPS = 4
LOAD_TIMEOUT_S = 120.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtts", default="30,80,150", help="round-trip times, ms")
    parser.add_argument("--losses", default="0,0.5", help="loss per segment, percent")
    parser.add_argument("--size", type=float, default=100, help="the download, MiB")
    parser.add_argument("--members", type=int, default=200, help="concurrent members in (b)")
    parser.add_argument("--bandwidth-mbps", type=float, default=400,
                        help="the emulated link, each direction")
    parser.add_argument("--max-seconds", type=float, default=120, help="per download")
    parser.add_argument("--quick", action="store_true",
                        help="one RTT (30 ms), no loss, 10 MiB, 50 members")
    parser.add_argument("--sluice", default=SLUICE_BIN)
    parser.add_argument("--relay", default=WAN_RELAY_BIN)
    parser.add_argument("--install", action="store_true", help="apt-get install what is missing")
    args = parser.parse_args()
    if args.quick:
        args.rtts, args.losses, args.size, args.members = "30", "0", 10, 50
    try:
        args.rtts = [float(v) for v in args.rtts.split(",")]
        args.losses = [float(v) for v in args.losses.split(",")]
    except ValueError:
        parser.error("--rtts and --losses are comma-separated numbers")
    if min(args.rtts) < 0 or min(args.losses) < 0 or max(args.losses) > 100:
        parser.error("an RTT below 0 or a loss outside 0..100")
    if args.size <= 0 or args.members <= 0 or args.max_seconds <= 0:
        parser.error("--size, --members and --max-seconds must be positive")
    return args


def origin(work, name, port, files):
    """nginx serving `files` (its directory) and /small ("hello world\\n")."""
    server = ("listen 127.0.0.1:%d; root %s; sendfile on; "
              "location = /small { return 200 \"hello world\\n\"; }" % (port, files))
    return Nginx(work, name, server, port=port, worker_connections=4096,
                 rlimit_nofile=None).start()


def write_files(directory, sizes):
    """Sparse files of these sizes (bytes), named by their size in bytes."""
    os.makedirs(directory, exist_ok=True)
    for size in sizes:
        with open(os.path.join(directory, str(size)), "wb") as f:
            f.truncate(size)
        os.chmod(f.name, 0o644)


def sluice_config(region, port, origin_port, tunnels, key_file):
    """One region's node: its origin, and the steering section with both regions' tunnel
    addresses (`tunnels`: {region: host:port})."""
    regions = "".join("    %s: {tunnel: [%s]}\n" % (r, address)
                      for r, address in sorted(tunnels.items()))
    return """
workers: 1
log_level: warn
listeners: [{address: 127.0.0.1:%(port)d}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%(origin)d]
    connect_timeout: 500ms
routes:
  - cluster: app
proxy:
  trust_client_headers: true  # the clients here stand for the apps' own gateway
steering:
  local_region: %(region)s
  misrouted: proxy_home
  failover: false
  member_id: [{header: x-member-id}]
  home_region: [{header: x-home-region}]
  tunnel: {insecure: true, key_file: %(key)s, http2: true}
  regions:
%(regions)s""" % {"port": port, "origin": origin_port, "region": region, "key": key_file,
                  "regions": regions}


def download(url, headers, max_seconds):
    """curl's view of one GET: (Mbit/s, bytes, the sluice-region header or None, timed out)."""
    cmd = ["curl", "-s", "-D", "-", "-o", "/dev/null", "--max-time", "%g" % max_seconds,
           "-w", "\nspeed=%{speed_download} size=%{size_download} status=%{http_code}\n"]
    for name, value in headers.items():
        cmd += ["-H", "%s: %s" % (name, value)]
    result = subprocess.run(cmd + [url], capture_output=True, text=True,
                            timeout=max_seconds + 30, stdin=subprocess.DEVNULL)
    if result.returncode not in (0, 28):
        raise RuntimeError("curl %s failed (%d): %s" % (url, result.returncode, result.stderr))
    tail = re.search(r"speed=([\d.]+) size=(\d+) status=(\d+)", result.stdout)
    if not tail or tail.group(3) != "200":
        raise RuntimeError("curl %s: no 200 answer: %s" % (url, result.stdout[-500:]))
    region = re.search(r"(?im)^sluice-region: *(\S+)", result.stdout)
    return (float(tail.group(1)) * 8 / 1e6, int(tail.group(2)), region and region.group(1),
            result.returncode == 28)


async def connect(port, count):
    """`count` connections to 127.0.0.1:port: [(reader, writer)]."""
    return await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port)
                                  for _ in range(count)))


async def member(connection, name, home, count, start, interval, latencies, served):
    """One member: `count` GET /small on its connection to A, the k-th sent at start + k *
    interval (loop time), or when the one before is answered if that is later."""
    reader, writer = connection
    loop = asyncio.get_running_loop()
    request = ("GET /small HTTP/1.1\r\nHost: wan.bench\r\nx-member-id: %s\r\n%s\r\n" % (
        name, "x-home-region: %s\r\n" % home if home else "")).encode()
    for k in range(count):
        pause = start + k * interval - loop.time()
        if pause > 0:
            await asyncio.sleep(pause)  # the member's pace: the load's schedule
        started = time.monotonic()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if not head.startswith(b"HTTP/1.1 200") or not length:
            raise RuntimeError("unexpected answer: %r" % head[:200])
        await reader.readexactly(int(length.group(1)))
        latencies.append((time.monotonic() - started) * 1000)
        region = re.search(rb"(?i)\r\nsluice-region: *([^\r]+)", head)
        region = region.group(1).decode() if region else "-"
        served[region] = served.get(region, 0) + 1


def requests(port, members, count, home, prefix="member", rps=None):
    """`members` members at once, each on its own connection to A (all opened first), `count`
    requests each: one after another, or at `rps` per member with the members' schedules
    spread evenly (no burst). Returns the latencies (ms) after checking every request was
    served where it should be (B when `home` is B, else A)."""
    latencies, served = [], {}
    interval = 1.0 / rps if rps else 0.0

    async def all_members():
        connections = await connect(port, members)
        try:
            start = asyncio.get_running_loop().time()
            await asyncio.gather(*(
                member(c, "%s-%d" % (prefix, i), home, count, start + i * interval / members,
                       interval, latencies, served) for i, c in enumerate(connections)))
        finally:
            for _, writer in connections:
                writer.close()

    asyncio.run(asyncio.wait_for(all_members(), LOAD_TIMEOUT_S))
    expected = home or REGION_A
    if set(served) != {expected}:
        raise RuntimeError("requests for %s were served by %s" % (expected, served))
    return latencies


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def first_after_idle(port, relay, rtt_ms):
    """(c): extra latency of the first request after the tunnel's connections were reset, in
    RTTs: the median of IDLE_ROUNDS rounds."""
    steady = statistics.median(requests(port, 1, 1, REGION_B, "steady")[0]
                               for _ in range(STEADY_REQUESTS))
    extras = []
    for i in range(IDLE_ROUNDS):
        relay.signal(signal.SIGUSR1)
        # The idle period is the scenario, not a wait for something: the reset reaches sluice
        # at once (loopback), and the tunnel then stays idle this long.
        time.sleep(IDLE_S)
        first = requests(port, 1, 1, REGION_B, "idle-%d" % i)[0]
        extras.append(first - steady)
    extra = statistics.median(extras)
    return (extra / rtt_ms if rtt_ms > 0 else 0.0), steady, extra


class Run:
    """One RTT and loss: its relays and sluices, measured by measure()."""

    def __init__(self, args, work, origins, key_file, rtt_ms, loss_pct):
        self.args, self.work, self.origins, self.key_file = args, work, origins, key_file
        self.rtt_ms, self.loss_pct = rtt_ms, loss_pct
        self.processes = []
        self.size = int(args.size * MIB)
        if loss_pct > 0:
            self.size = min(self.size, LOSS_SIZE_MIB * MIB)
        self.notes = []

    def start(self):
        name = "rtt%g-loss%g" % (self.rtt_ms, self.loss_pct)
        model = {"delay_ms": self.rtt_ms / 2, "bandwidth_mbps": self.args.bandwidth_mbps,
                 "loss_pct": self.loss_pct, "binary": self.args.relay}
        port_b = free_port()
        self.tunnel_relay = self.keep(WanRelay(port_b, os.path.join(
            self.work, name + ".tunnel-relay.log"), **model)).start()
        self.tcp_relay = self.keep(WanRelay(self.origins[REGION_B].port, os.path.join(
            self.work, name + ".tcp-relay.log"), **model)).start()
        port_a = free_port()
        tunnels = {REGION_A: "127.0.0.1:%d" % port_a,
                   REGION_B: "127.0.0.1:%d" % self.tunnel_relay.port}
        for region, port in ((REGION_B, port_b), (REGION_A, port_a)):
            config = sluice_config(region, port, self.origins[region].port, tunnels,
                                   self.key_file)
            node = Sluice(config, port=port, binary=self.args.sluice, directory=self.work,
                          name="%s.%s" % (name, region))
            self.keep(node).start()
        self.port_a = port_a
        return self

    def keep(self, process):
        self.processes.append(process)
        return process

    def stop(self):
        for process in reversed(self.processes):
            process.stop()

    def measure(self):
        """Fills the figures of (a), (b) and (c)."""
        path = "/%d" % self.size
        member_headers = {"x-member-id": "download", "x-home-region": REGION_B}
        self.tunnel_mbps, got, region, cut = download(
            "http://127.0.0.1:%d%s" % (self.port_a, path), member_headers,
            self.args.max_seconds)
        self.check_download("tunnel", got, region, REGION_B, cut)
        self.tcp_mbps, got, region, cut = download(
            "http://127.0.0.1:%d%s" % (self.tcp_relay.port, path), {}, self.args.max_seconds)
        self.check_download("tcp", got, region, None, cut)
        self.ratio = self.tunnel_mbps / self.tcp_mbps if self.tcp_mbps > 0 else float("nan")

        members = self.args.members
        requests(self.port_a, members, 1, REGION_B, "warm")  # the tunnel's connections opened
        rounds = {None: [], REGION_B: []}
        for _ in range(LOAD_ROUNDS):  # interleaved: a busy moment of the machine hits both
            for home, latencies in rounds.items():
                latencies.append(requests(self.port_a, members, REQUESTS_PER_MEMBER, home,
                                          rps=MEMBER_RPS))
        self.local_ms, self.tunneled_ms = (
            tuple(statistics.median(percentile(r, p) for r in rounds[home]) for p in (50, 99))
            for home in (None, REGION_B))
        self.added_p50 = self.tunneled_ms[0] - self.local_ms[0]
        self.added_p99 = self.tunneled_ms[1] - self.local_ms[1]

        self.idle_rtts, self.steady_ms, self.idle_extra_ms = first_after_idle(
            self.port_a, self.tunnel_relay, self.rtt_ms)

    def check_download(self, what, got, region, expected_region, cut):
        if region != expected_region:
            raise RuntimeError("%s download served by %s, not %s" % (what, region,
                                                                    expected_region))
        if cut:
            self.notes.append("%s download cut at %g s: %.1f of %.1f MiB" % (
                what, self.args.max_seconds, got / MIB, self.size / MIB))
        elif got != self.size:
            raise RuntimeError("%s download: %d bytes of %d" % (what, got, self.size))

    def line(self):
        return ("wan: rtt_ms=%g loss_pct=%g tunnel_mbps=%.1f tcp_mbps=%.1f ratio=%.3f "
                "added_p50_ms=%.2f added_p99_ms=%.2f first_after_idle_extra_rtts=%.1f" % (
                    self.rtt_ms, self.loss_pct, self.tunnel_mbps, self.tcp_mbps, self.ratio,
                    self.added_p50, self.added_p99, self.idle_rtts))

    def report(self):
        print("  (a) %.0f MiB: tunnel %.1f Mbit/s, plain TCP %.1f Mbit/s, ratio %.3f%s" % (
            self.size / MIB, self.tunnel_mbps, self.tcp_mbps, self.ratio,
            " (capped at %d MiB with loss)" % LOSS_SIZE_MIB
            if self.loss_pct > 0 and self.args.size > LOSS_SIZE_MIB else ""))
        print("  (b) %d members x %d: local p50 %.2f p99 %.2f ms, tunneled p50 %.2f p99 %.2f ms"
              % ((self.args.members, REQUESTS_PER_MEMBER) + self.local_ms + self.tunneled_ms))
        print("  (c) steady %.2f ms, first after reset + %.1f s idle: +%.2f ms (%.1f RTT)" % (
            self.steady_ms, IDLE_S, self.idle_extra_ms, self.idle_rtts))
        for note in self.notes:
            print("  note: %s" % note)
        relays = [("tunnel relay", self.tunnel_relay), ("tcp relay", self.tcp_relay)]
        for what, relay in relays:
            totals = relay.totals()
            if totals:
                print("  %s: %s" % (what, " ".join("%s=%d" % kv for kv in totals.items())))


def table(runs):
    print("\n%-7s %-6s %12s %10s %6s %12s %12s %12s" % (
        "rtt ms", "loss %", "tunnel Mb/s", "tcp Mb/s", "ratio", "added p50", "added p99",
        "first RTTs"))
    for run in runs:
        print("%-7g %-6g %12.1f %10.1f %6.3f %12.2f %12.2f %12.1f" % (
            run.rtt_ms, run.loss_pct, run.tunnel_mbps, run.tcp_mbps, run.ratio, run.added_p50,
            run.added_p99, run.idle_rtts))


def main():
    args = parse_args()
    if args.install:
        debian.install_missing(PACKAGES, recommends=False)
    debian.require(PACKAGES)
    for binary in (args.sluice, args.relay):
        if not os.access(binary, os.X_OK):
            sys.exit("%s is not built (cmake --build build)" % binary)
    work = tempfile.mkdtemp(prefix="sluice-wan-")
    os.chmod(work, 0o755)  # nginx's worker (nobody, when run as root) reads the files below
    key_file = write_secrets(work, (("tunnel.key", secrets.token_hex(32)),))["tunnel.key"]
    sizes = {int(args.size * MIB), min(int(args.size * MIB), LOSS_SIZE_MIB * MIB)}
    write_files(os.path.join(work, "files"), sizes)
    origins, runs, code = {}, [], 0
    try:
        for region in (REGION_A, REGION_B):
            origins[region] = origin(work, region + "-origin", free_port(),
                                     os.path.join(work, "files"))
        for rtt in args.rtts:
            for loss in args.losses:
                run = Run(args, work, origins, key_file, rtt, loss)
                print("RTT %g ms, loss %g %%, link %g Mbit/s each way:" % (
                    rtt, loss, args.bandwidth_mbps))
                try:
                    run.start().measure()
                finally:
                    run.stop()
                run.report()
                print(run.line())
                sys.stdout.flush()
                runs.append(run)
        table(runs)
    except (RuntimeError, OSError, subprocess.SubprocessError, asyncio.TimeoutError) as e:
        print("wan failed: %s (logs in %s)" % (e, work))
        code = 1
    finally:
        for node in origins.values():
            node.stop()
    if code == 0:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
