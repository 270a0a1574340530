#!/usr/bin/env python3
"""What a fleet costs etcd and each node as it grows: 30, 300 and 3000 simulated nodes.

For each size N, one fresh etcd (Debian's etcd-server) on loopback and one sluice_fleet_sim
(bench/fleet_sim.cc): N real sluice::Fleet nodes in one process, over three regions, each with
its own etcd client, lease, watch and published view. The simulator starts them in batches,
lets the fleet settle, makes steering changes through the leader and times each one until
every node has it, times the leader's gates, then kills the leader (no resignation: its lease
must expire) and times the takeover. It prints its figures as JSON (see bench/fleet_sim.cc);
this script adds etcd's side:

  etcd CPU %     utime + stime of etcd over the settle window (marked by the simulator on
                 stderr), per second of wall time; cpu_max: the busiest second sampled in it
  etcd RSS MiB   resident memory (smaps_rollup) at the end of the settle window
  events/s       etcd_debugging_mvcc_events_total (watch events etcd sent), over the window
  requests/s     grpc_server_started_total (etcd's JSON gateway turns each call into a gRPC
                 call or stream; over gRPC a keep-alive is a message on a stream that lasts),
                 over the window
  messages/s     grpc_server_msg_received_total (every call and every keep-alive, either
                 way), over the window

Usage: bench/fleet_sim.py [--sim build/bench/sluice_fleet_sim] [--sizes 30,300,3000]
                          [--changes 20] [--settle 10] [--publish-ms 1000] [--lease-ttl 5]
                          [--standbys 1] [--max-rss-mib 8192] [--api grpc|json]
Prints a table, then one line per size for machines, the largest size last:
  fleet: nodes=N p99_ms=.. full_ms=.. missing=.. etcd_events_per_s=.. node_rx_bytes_per_s=..
         failover_s=.. api=grpc|json
Needs: etcd (apt-get install etcd-server). Every process it starts is stopped by its PID; the
temporary directories are removed; every wait is bounded (a simulator that grows past
--max-rss-mib is killed, its size reported as failed).
"""

import argparse
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from sluicetest.etcd import Etcd
from sluicetest.process import ROOT, cpu_seconds, rss_kib

PREFIX = "/sluice/sim/"
METRICS = ("etcd_debugging_mvcc_events_total", "etcd_server_proposals_committed_total",
           "grpc_server_started_total", "grpc_server_handled_total",
           "grpc_server_msg_received_total",
           "etcd_mvcc_db_total_size_in_bytes")


def raise_descriptor_limit():
    """The soft limit up to the hard one, for this process and its children (etcd holds a
    socket per node connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def scrape(port):
    """The sums of METRICS over their labels from etcd's /metrics; {} when it did not answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        return {}
    finally:
        conn.close()
    sums = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in METRICS:
            try:
                sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
            except (ValueError, IndexError):
                pass
    return sums


class Run:
    """One size: etcd and the simulator, sampled until the simulator exits."""

    def __init__(self, args, nodes, work):
        self.args = args
        self.nodes = nodes
        self.work = work
        self.etcd = Etcd()
        self.sim = None
        self.samples = []  # (monotonic, etcd cpu seconds, etcd rss kib, sim rss kib)
        self.marks = {}  # phase -> (monotonic, etcd cpu seconds, metrics, etcd rss kib)
        self.stdout = []
        self.error = None
        self.done = threading.Event()
        self.log = None

    def sample(self):
        try:
            return (time.monotonic(), cpu_seconds([self.etcd.process.pid]),
                    rss_kib([self.etcd.process.pid]), rss_kib([self.sim.pid]))
        except OSError:
            return None  # one of them is gone

    def sampler(self):
        """Every second: etcd's CPU and memory, and the simulator's memory (killed past the
        limit)."""
        while not self.done.wait(1.0):
            s = self.sample()
            if s is None:
                continue
            self.samples.append(s)
            if s[3] > self.args.max_rss_mib * 1024 and self.sim.poll() is None:
                self.error = "the simulator grew past %d MiB: killed" % self.args.max_rss_mib
                os.kill(self.sim.pid, signal.SIGKILL)

    def read_stderr(self):
        """The simulator's log, and the phases it marks: etcd is sampled at each."""
        for raw in self.sim.stderr:
            line = raw.decode(errors="replace")
            self.log.write(line)
            if line.startswith("fleet_sim: ") and " mono=" in line:
                phase = line.split()[1]
                self.marks[phase] = (time.monotonic(), cpu_seconds([self.etcd.process.pid]),
                                     scrape(self.etcd.client_port),
                                     rss_kib([self.etcd.process.pid]))
        self.log.flush()

    def read_stdout(self):
        for raw in self.sim.stdout:
            self.stdout.append(raw.decode(errors="replace"))

    def bound(self):
        """Seconds the simulator may take at most: its own bounds, and a margin."""
        a = self.args
        return (60 + self.nodes / 50 + a.settle + a.changes * (10 + a.lease_ttl + 10) +
                a.lease_ttl + 10 + 120)

    def run(self):
        a = self.args
        self.etcd.start()
        cmd = [a.sim, "--etcd", self.etcd.url, "--nodes", str(self.nodes), "--changes",
               str(a.changes), "--prefix", PREFIX, "--lease-ttl-s", str(a.lease_ttl),
               "--publish-ms", str(a.publish_ms), "--settle-s", str(a.settle), "--failover", "1",
               "--standbys", str(a.standbys), "--api", a.api]
        self.log = open(os.path.join(self.work, "sim-%d.log" % self.nodes), "w")
        started = time.monotonic()
        first = (started, cpu_seconds([self.etcd.process.pid]))
        self.sim = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        threads = [threading.Thread(target=t, daemon=True)
                   for t in (self.sampler, self.read_stderr, self.read_stdout)]
        for t in threads:
            t.start()
        try:
            code = self.sim.wait(self.bound())
        except subprocess.TimeoutExpired:
            self.error = "the simulator did not finish in %.0f s: killed" % self.bound()
            os.kill(self.sim.pid, signal.SIGKILL)
            code = self.sim.wait(10)
        last = (time.monotonic(), cpu_seconds([self.etcd.process.pid]))
        self.done.set()
        for t in threads:
            t.join(15)
        self.log.close()
        return self.result(code, first, last)

    def result(self, code, first, last):
        row = {"nodes": self.nodes, "api": self.args.api}
        try:
            row.update(json.loads(self.stdout[-1]) if self.stdout else {})
        except ValueError:
            pass
        if code != 0 or "p99_ms" not in row:
            with open(os.path.join(self.work, "sim-%d.log" % self.nodes)) as f:
                lines = f.read().splitlines()
            # Its own message when it gave up, else the end of its log.
            said = [l for l in lines if l.startswith("sluice_fleet_sim: ")]
            why = said[-1] if said else " | ".join(lines[-3:])
            row["error"] = self.error or "the simulator exited with %s: %s" % (code, why)
            return row
        row["write_retries"] = len(row.get("write_errors", []))
        row["etcd_cpu_overall_pct"] = (last[1] - first[1]) / (last[0] - first[0]) * 100
        begin, end = self.marks.get("settle_begin"), self.marks.get("settle_end")
        if begin and end and end[0] > begin[0]:
            seconds = end[0] - begin[0]
            row["etcd_cpu_pct"] = (end[1] - begin[1]) / seconds * 100
            inside = [s for s in self.samples if begin[0] <= s[0] <= end[0]]
            per_second = [(b[1] - a[1]) / (b[0] - a[0]) * 100
                          for a, b in zip(inside, inside[1:]) if b[0] > a[0]]
            row["etcd_cpu_max_pct"] = max(per_second) if per_second else None
            row["etcd_rss_mib"] = end[3] / 1024

            def rate(name):
                if name in begin[2] and name in end[2]:
                    return (end[2][name] - begin[2][name]) / seconds
                return None
            row["etcd_events_per_s"] = rate("etcd_debugging_mvcc_events_total")
            row["etcd_proposals_per_s"] = rate("etcd_server_proposals_committed_total")
            row["etcd_requests_per_s"] = (rate("grpc_server_started_total") or
                                          rate("grpc_server_handled_total"))
            row["etcd_messages_per_s"] = rate("grpc_server_msg_received_total")
            db = end[2].get("etcd_mvcc_db_total_size_in_bytes")
            row["etcd_db_mib"] = db / (1 << 20) if db is not None else None
        row["etcd_rss_peak_mib"] = max((s[2] for s in self.samples), default=0) / 1024
        row["sim_rss_peak_mib"] = max((s[3] for s in self.samples), default=0) / 1024
        return row

    def cleanup(self):
        self.done.set()
        if self.sim is not None and self.sim.poll() is None:
            os.kill(self.sim.pid, signal.SIGKILL)
            self.sim.wait(10)
        if self.log is not None and not self.log.closed:
            self.log.close()
        self.etcd.cleanup()


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


COLUMNS = (("nodes", "nodes", "d"), ("start s", "start_s", ".1f"), ("p50 ms", "p50_ms", ".1f"),
           ("p99 ms", "p99_ms", ".1f"), ("full ms", "full_ms", ".1f"),
           ("missing", "missing", "d"), ("retries", "write_retries", "d"),
           ("failover s", "failover_s", ".2f"), ("lease left s", "failover_lease_left_s", ".2f"),
           ("etcd cpu %", "etcd_cpu_pct", ".0f"), ("cpu max %", "etcd_cpu_max_pct", ".0f"),
           ("etcd MiB", "etcd_rss_mib", ".0f"), ("events/s", "etcd_events_per_s", ".0f"),
           ("requests/s", "etcd_requests_per_s", ".0f"),
           ("messages/s", "etcd_messages_per_s", ".0f"),
           ("node rx B/s", "node_rx_bytes_per_s", ".0f"),
           ("node tx B/s", "node_tx_bytes_per_s", ".0f"),
           ("conn/node/s max", "conn_per_node_per_s_max", ".3f"),
           ("gate us", "gate_us", ".1f"), ("gate 1st us", "gate_first_us", ".1f"), ("sim cpu %", "sim_cpu_pct", ".0f"),
           ("sim MiB", "sim_rss_peak_mib", ".0f"))


def table(rows):
    cells = [[h for h, _, _ in COLUMNS]]
    for row in rows:
        cells.append([fmt(row.get(k), spec) for _, k, spec in COLUMNS])
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def machine_line(row):
    if "error" in row:
        return "fleet: nodes=%d error=%s" % (row["nodes"], json.dumps(row["error"][:200]))
    return ("fleet: nodes=%d p99_ms=%s full_ms=%s missing=%d retries=%d etcd_events_per_s=%s "
            "node_rx_bytes_per_s=%s failover_s=%s api=%s" % (
                row["nodes"], fmt(row.get("p99_ms"), ".1f"), fmt(row.get("full_ms"), ".1f"),
                row.get("missing", 0), row.get("write_retries", 0),
                fmt(row.get("etcd_events_per_s"), ".0f"),
                fmt(row.get("node_rx_bytes_per_s"), ".0f"), fmt(row.get("failover_s"), ".2f"),
                row["api"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sim", default=os.path.join(ROOT, "build/bench/sluice_fleet_sim"))
    parser.add_argument("--sizes", default="30,300,3000", help="node counts (30,300,3000)")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--settle", type=float, default=10, help="seconds (10)")
    parser.add_argument("--publish-ms", type=int, default=1000)
    parser.add_argument("--lease-ttl", type=int, default=5, help="seconds (5)")
    parser.add_argument("--standbys", type=int, default=1, choices=range(0, 9),
                        help="fleet.standbys (1)")
    parser.add_argument("--max-rss-mib", type=int, default=8192,
                        help="the simulator is killed past this (8192)")
    parser.add_argument("--json", help="write every row's figures here")
    parser.add_argument("--api", default="grpc", choices=("grpc", "json"),
                        help="how the nodes' etcd clients keep leases alive and watch (grpc)")
    args = parser.parse_args()
    args.sim = os.path.abspath(args.sim)
    if not os.access(args.sim, os.X_OK):
        sys.exit("no executable %s: build it first (make sluice_fleet_sim)" % args.sim)
    try:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    except ValueError:
        sys.exit("--sizes: node counts separated by commas, got %r" % args.sizes)
    limit = raise_descriptor_limit()
    if limit < 4 * max(sizes) + 256:
        print("warning: the descriptor limit is %d; %d nodes want about %d" % (
            limit, max(sizes), 4 * max(sizes)), file=sys.stderr)

    work = tempfile.mkdtemp(prefix="sluice-fleet-sim-")
    rows = []
    try:
        for n in sizes:
            run = Run(args, n, work)
            try:
                rows.append(run.run())
            finally:
                run.cleanup()
            if "error" in rows[-1]:
                print("nodes=%d: %s" % (n, rows[-1]["error"]), file=sys.stderr)
    finally:
        shutil.rmtree(work, True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print("fleet simulator: %d changes, settle %g s, publish every %d ms, lease %d s, etcd's %s "
          "API; delays from the leader's write until each node has the version" % (
              args.changes, args.settle, args.publish_ms, args.lease_ttl, args.api))
    table(rows)
    for row in rows:
        print(machine_line(row))
    sys.exit(1 if any("error" in row for row in rows) else 0)


if __name__ == "__main__":
    main()
