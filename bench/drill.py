#!/usr/bin/env python3
"""Chaos Kong on one machine: a region's origins die under load and the region is evacuated.

Three regions on loopback (us-east-1, us-west-2, eu-west-1): one sluice each, all sharing one
steering table through one etcd, and two origins (nginx) per region. sluice_drill_load sends a
steady open-loop load of many members through all three regions: GETs and POST /start ("stream
starts"), each member always entering through the same region. At --kill-at the origins of
the victim region are killed (SIGKILL); at --evacuate-at `sluicectl evacuate` starts a ramp that
moves the victim's members to the two other regions. Until the ramp reaches a member, its
requests still enter the victim region, find the origins dead, and are failed over to a savior
through the inter-region tunnels (connect failures, and resets of idempotent requests).

Every request is counted by the client: succeeded, failed (by kind), served by which region
(the sluice-region response header); retries and failovers come from each sluice's /metrics.
Prints a per-second timeline and a verdict, writes drill.csv and drill.png (gnuplot).

Targets: no failed GET, at most 0.1% failed POSTs (rounded up to whole requests: a POST in
flight when its origin dies cannot be retried safely, so a short run may lose one), at least 1,000,000 requests (not with
--quick), and the victim at 100% evacuated within the configured ramp (steps x hold + 3 s).

Usage: bench/drill.py [--rate 15000] [--duration 80] [--kill-at 20] [--evacuate-at 25]
                      [--hold 3s] [--out DIR] [--install]
       bench/drill.py --quick            (a short smoke run: what the test suite runs)
Needs: etcd (etcd-server), nginx (nginx-light), gnuplot (gnuplot-nox), and the build's sluice,
sluicectl and sluice_drill_load. Loopback only; every process is stopped by its PID.
"""

import argparse
import collections
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from sluicetest import admin, debian, metrics
from sluicetest.etcd import Etcd
from sluicetest.secret_files import write_secrets
from sluicetest.nginx import region_origin
from sluicetest.process import ROOT, Sluice, free_port, wait_for_port

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
TOKEN = secrets.token_hex(24)  # a fresh one each run, as an operator would make it
PACKAGES = {"etcd": "etcd-server", "nginx": "nginx-light", "gnuplot": "gnuplot-nox"}


def sluice_config(region, ports, origins, admin_port, work, etcd_url, hold):
    saviors = {r: {o: 50 for o in REGIONS if o != r} for r in REGIONS}
    regions = "".join(
        "    %s:\n      tunnel: [127.0.0.1:%d]\n      saviors: {%s}\n" % (
            r, ports[r], ", ".join("%s: %d" % kv for kv in saviors[r].items()))
        for r in REGIONS)
    return """
workers: 1
log_level: warn
listeners: [{address: 127.0.0.1:%(port)d}]
limits: {max_connections: 0}
clusters:
  - name: app
    endpoints: [%(origins)s]
    connect_timeout: 500ms
    health_check: {path: /health, interval: 1s, timeout: 500ms, rise: 2, fall: 2}
    outlier_detection: {consecutive_failures: 5, base_ejection: 30s, max_ejection: 300s}
routes:
  - cluster: app
    filters:
      - retry:
          attempts: 3
          on: [connect_failure, reset, timeout, gateway_error]
          methods: idempotent
          per_try_timeout: 2s
          backoff: {base: 5ms, max: 50ms}
proxy:
  trust_client_headers: true  # the clients here stand for the apps' own gateway
steering:
  local_region: %(region)s
  misrouted: serve_local
  member_id: [{header: x-member-id}]
  tunnel: {insecure: true, key_file: %(work)s/tunnel.key, http2: true}
  failover: true
  regions:
%(regions)s
metrics:
  stream_starts: [{method: POST, path_prefix: /start, status: 2xx}]
admin:
  address: 127.0.0.1:%(admin)d
  tokens: [{name: drill, role: admin, token_file: %(work)s/admin.token}]
controller:
  state_file: %(work)s/%(region)s.state.json
  audit_log: %(work)s/%(region)s.audit.jsonl
  gates: {window: 10s, recheck: 1s, health_interval: 1s}
fleet:
  etcd: {endpoints: [%(etcd)s]}
  prefix: /sluice/drill/
  node: drill-%(region)s
  lease_ttl: 4s
""" % {"port": ports[region], "origins": ", ".join("127.0.0.1:%d" % p for p in origins),
       "region": region, "work": work, "regions": regions, "admin": admin_port,
       "etcd": etcd_url}


def scrape(admin_port):
    """The counters and gauges the timeline needs from one node's /metrics."""
    out = collections.Counter()
    for name, labels, value in metrics.samples(admin.scrape(admin_port, timeout=2)):
        if name == "sluice_retries_total":
            out["retries"] += value
        elif name == "sluice_steering_failovers_total":
            out["failovers"] += value
        elif name == "sluice_steering_evacuated_ratio":
            out["evacuated:" + dict(labels)["region"]] = value
        elif name == "sluice_stream_starts_total":
            out["starts:" + dict(labels)["region"]] += value
    return out


class Timeline:
    """Per second since the load started: the client's counts, latency, and each node's
    metrics."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.defaultdict(collections.Counter)  # second -> key -> n
        self.latency = {}
        self.metrics = {}  # second -> {region: Counter}
        self.totals = collections.Counter()
        self.issued = 0

    def read_load(self, stream):
        for line in stream:
            fields = line.decode().strip().split(",")
            with self.lock:
                if fields[0] == "c":
                    second, entry, method, outcome, served, n = fields[1:]
                    n = int(n)
                    bucket = self.counts[int(second)]
                    bucket[(method, outcome, served)] += n
                    bucket[("entry", entry)] += n
                    self.totals[(method, outcome)] += n
                elif fields[0] == "l":
                    self.latency[int(fields[1])] = tuple(float(x) for x in fields[2:5])
                elif fields[0] == "s":
                    self.issued = max(self.issued, int(fields[2]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=os.path.join(ROOT, "build/proxy/sluice"))
    parser.add_argument("--sluicectl", default=os.path.join(ROOT, "build/ctl/sluicectl"))
    parser.add_argument("--load", default=os.path.join(ROOT, "build/bench/sluice_drill_load"))
    parser.add_argument("--rate", type=float, default=15000, help="requests/s, all regions")
    parser.add_argument("--duration", type=float, default=80, help="seconds of load")
    parser.add_argument("--kill-at", type=float, default=20)
    parser.add_argument("--evacuate-at", type=float, default=25)
    parser.add_argument("--victim", default="us-east-1", choices=REGIONS)
    parser.add_argument("--ramp", default="1,5,10,25,50,100")
    parser.add_argument("--hold", default="3s")
    parser.add_argument("--members", type=int, default=200000)
    parser.add_argument("--post-percent", type=float, default=20)
    parser.add_argument("--min-requests", type=int, default=1000000)
    parser.add_argument("--out", default=".", help="where drill.csv and drill.png go")
    parser.add_argument("--install", action="store_true", help="apt-get install what is missing")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.duration, args.kill_at, args.evacuate_at = 400, 8, 3, 4
        args.hold, args.members, args.min_requests = "0.5s", 1000, 0
    if args.install:
        debian.install_missing(PACKAGES, recommends=False)
    debian.require(PACKAGES)
    for binary in (args.sluice, args.sluicectl, args.load):
        if not os.access(binary, os.X_OK):
            sys.exit("%s is not built (cmake --build build)" % binary)
    hold_s = float(args.hold.rstrip("s"))
    steps = len(args.ramp.split(","))
    ramp_budget = (steps - 1) * hold_s + 3.0

    work = tempfile.mkdtemp(prefix="sluice-drill-")
    write_secrets(work, (("admin.token", TOKEN), ("tunnel.key", secrets.token_hex(32))))
    etcd = Etcd()
    origins = {r: [] for r in REGIONS}
    nodes, admin_ports = {}, {}
    load = None
    timeline = Timeline()
    events = []  # (second, what)
    evac_started = full_at = None
    try:
        etcd.start()
        ports = {r: free_port() for r in REGIONS}
        for region in REGIONS:
            for i in range(2):
                origins[region].append(region_origin(work, "%s-origin-%d" % (region, i),
                                                     free_port(), region))
        for region in REGIONS:
            admin_ports[region] = free_port()
            # The configuration names its admin port; its file and the log go to `work`.
            nodes[region] = Sluice(
                sluice_config(region, ports, [o.port for o in origins[region]],
                              admin_ports[region], work, etcd.url, args.hold),
                port=ports[region], admin=False, binary=os.path.abspath(args.sluice),
                directory=work, name=region).start()
        for region in REGIONS:
            for o in origins[region]:
                wait_for_port(o.port)
        time.sleep(2.5)  # health checks rise (2 x 1 s) before the load starts

        load = subprocess.Popen(
            [args.load, "--rate", str(args.rate), "--duration", str(args.duration),
             "--members", str(args.members), "--post-percent", str(args.post_percent),
             "--timeout", "10"] +
            sum((["--entry", "%s=127.0.0.1:%d" % (r, ports[r])] for r in REGIONS), []),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        started = time.monotonic()
        reader = threading.Thread(target=timeline.read_load, args=(load.stdout,), daemon=True)
        reader.start()

        killed = evacuated = False
        while load.poll() is None:
            now = time.monotonic() - started
            second = int(now)
            if second not in timeline.metrics:
                timeline.metrics[second] = {}
                for region in REGIONS:
                    try:
                        timeline.metrics[second][region] = scrape(admin_ports[region])
                    except OSError:
                        timeline.metrics[second][region] = collections.Counter()
                evacuated_everywhere = all(
                    m.get("evacuated:" + args.victim, 0) >= 1.0
                    for m in timeline.metrics[second].values())
                if evacuated and full_at is None and evacuated_everywhere:
                    full_at = now
                    events.append((now, "%s 100%% evacuated on every node" % args.victim))
            if not killed and now >= args.kill_at:
                for o in origins[args.victim]:
                    o.kill()
                killed = True
                events.append((now, "%s origins killed" % args.victim))
            if not evacuated and now >= args.evacuate_at:
                others = [r for r in REGIONS if r != args.victim]
                cmd = [args.sluicectl, "--admin", "http://127.0.0.1:%d" % admin_ports[others[0]],
                       "--token-file", os.path.join(work, "admin.token"), "evacuate", args.victim,
                       "--to", ",".join("%s=50" % r for r in others), "--ramp", args.ramp,
                       "--hold", args.hold]
                result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                evacuated = True
                evac_started = now
                events.append((now, "sluicectl evacuate %s: %s" % (
                    args.victim, (result.stdout + result.stderr).strip())))
                if result.returncode != 0:
                    raise SystemExit("sluicectl failed: %s" % result.stderr)
            time.sleep(0.05)
        reader.join(10)
        load_error = load.stderr.read().decode()
        if load.returncode != 0:
            raise SystemExit("sluice_drill_load exited with %d: %s" % (load.returncode,
                                                                      load_error))
    finally:
        if load and load.poll() is None:
            load.kill()
            load.wait(5)
        for node in nodes.values():
            node.stop()
        for region in REGIONS:
            for o in origins[region]:
                o.stop()
        etcd.stop()

    report(args, timeline, events, evac_started, full_at, ramp_budget, work)
    shutil.rmtree(work, ignore_errors=True)
    etcd.cleanup()


def report(args, timeline, events, evac_started, full_at, ramp_budget, work):
    seconds = sorted(set(timeline.counts) | set(timeline.metrics))
    rows = []
    for s in seconds:
        c = timeline.counts.get(s, collections.Counter())
        # A scrape at second s shows the nodes' state at its start: second s is what changed
        # between that scrape and the next one, and the gauges as they stood at its end.
        before, after = timeline.metrics.get(s, {}), timeline.metrics.get(s + 1, {})
        row = {"second": s}
        for r in REGIONS:
            row["starts_" + r] = sum(n for k, n in c.items()
                                     if k[:2] == ("POST", "ok") and k[2] == r)
            row["gets_" + r] = sum(n for k, n in c.items() if k[:2] == ("GET", "ok") and k[2] == r)
            row["entered_" + r] = c.get(("entry", r), 0)
        row["get_failed"] = sum(n for k, n in c.items() if k[0] == "GET" and k[1] != "ok")
        row["post_failed"] = sum(n for k, n in c.items() if k[0] == "POST" and k[1] != "ok")
        for key in ("retries", "failovers"):
            row[key] = int(sum(after[r].get(key, 0) - before[r].get(key, 0)
                               for r in REGIONS if r in before and r in after))
        state = after or before
        fractions = [v.get("evacuated:" + args.victim, 0) for v in state.values()] or [0]
        row["evacuated_pct"] = 100.0 * min(fractions)
        row["p99_ms"] = timeline.latency.get(s, (0, 0, 0))[1]
        rows.append(row)

    columns = ["second"] + ["entered_" + r for r in REGIONS] + \
        ["starts_" + r for r in REGIONS] + ["gets_" + r for r in REGIONS] + \
        ["get_failed", "post_failed", "retries", "failovers", "evacuated_pct", "p99_ms"]
    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, "drill.csv")
    with open(csv_path, "w") as f:
        f.write(",".join(columns) + "\n")
        for row in rows:
            f.write(",".join(("%.3f" % row[k]) if isinstance(row[k], float) else str(row[k])
                             for k in columns) + "\n")

    short = {"us-east-1": "use1", "us-west-2": "usw2", "eu-west-1": "euw1"}
    print("second | starts/s by serving region (%s) | GETs ok | GET fail | POST fail | "
          "retries | failovers | %s evacuated | p99 ms" % (
              " ".join(short[r] for r in REGIONS), args.victim))
    for row in rows:
        print("%6d | %s | %7d | %8d | %9d | %7d | %9d | %5.1f%% | %7.1f" % (
            row["second"], " ".join("%5d" % row["starts_" + r] for r in REGIONS),
            sum(row["gets_" + r] for r in REGIONS), row["get_failed"], row["post_failed"],
            row["retries"], row["failovers"], row["evacuated_pct"], row["p99_ms"]))
    for at, what in events:
        print("at %5.1f s: %s" % (at, what))

    totals = timeline.totals
    gets = sum(n for (method, _), n in totals.items() if method == "GET")
    posts = sum(n for (method, _), n in totals.items() if method == "POST")
    get_failed = sum(n for (method, outcome), n in totals.items()
                     if method == "GET" and outcome != "ok")
    post_failed = sum(n for (method, outcome), n in totals.items()
                      if method == "POST" and outcome != "ok")
    served = collections.Counter()
    for c in timeline.counts.values():
        for k, n in c.items():
            if len(k) == 3 and k[1] == "ok":
                served[k[2]] += n
    failures = {"%s %s" % k: n for k, n in totals.items() if k[1] != "ok"}
    retries = sum(r["retries"] for r in rows)
    failovers = sum(r["failovers"] for r in rows)
    print("\nrequests: %d (%d GET, %d POST); failed GET %d, failed POST %d (%.4f%%)%s" % (
        gets + posts, gets, posts, get_failed, post_failed,
        100.0 * post_failed / max(posts, 1),
        "; by kind: %s" % failures if failures else ""))
    print("served by: %s; retried attempts (sluice): %d; failovers to a savior: %d" % (
        ", ".join("%s %d" % kv for kv in sorted(served.items())), retries, failovers))
    ramp_took = None if full_at is None or evac_started is None else full_at - evac_started
    print("evacuation: %s" % ("never reached 100%" if ramp_took is None else
                               "100%% on every node %.1f s after sluicectl (ramp %s, hold %s; "
                               "budget %.1f s)" % (ramp_took, args.ramp, args.hold, ramp_budget)))

    plot(args, csv_path)
    missed = []
    if gets + posts < args.min_requests:
        missed.append("only %d requests (target %d)" % (gets + posts, args.min_requests))
    if get_failed:
        missed.append("%d GETs failed" % get_failed)
    if post_failed > math.ceil(0.001 * posts):
        missed.append("%.3f%% of POSTs failed" % (100.0 * post_failed / max(posts, 1)))
    if ramp_took is None or ramp_took > ramp_budget:
        missed.append("the evacuation did not reach 100%% within %.1f s" % ramp_budget)
    if missed:
        print("TARGETS MISSED: " + "; ".join(missed) + " (logs kept in %s)" % work)
        sys.exit(1)
    print("targets met: no failed GET, POST failures within 0.1%, evacuation within the ramp")


def plot(args, csv_path):
    png = os.path.join(args.out, "drill.png")
    script = """
set datafile separator ","
set terminal pngcairo size 1200,700 noenhanced
set output "%(png)s"
set title "Chaos Kong drill: %(victim)s origins killed at %(kill)gs, evacuation from %(evac)gs"
set xlabel "second"
set ylabel "requests/s"
set y2label "%(victim)s evacuated (%%)"
set y2range [0:105]
set ytics nomirror
set y2tics
set key outside bottom center horizontal
set grid
set arrow from %(kill)g, graph 0 to %(kill)g, graph 1 nohead lc rgb "red" dt 2
set arrow from %(evac)g, graph 0 to %(evac)g, graph 1 nohead lc rgb "blue" dt 2
plot "%(csv)s" using 1:5 with lines lw 2 title "starts served by us-east-1", \\
     "" using 1:6 with lines lw 2 title "starts served by us-west-2", \\
     "" using 1:7 with lines lw 2 title "starts served by eu-west-1", \\
     "" using 1:14 with lines lw 1 dt 3 lc rgb "gray40" title "failed over to a savior (Isthmus)", \\
     "" using 1:($11+$12) with impulses lw 3 lc rgb "red" title "failed requests", \\
     "" using 1:15 axes x1y2 with steps lw 2 lc rgb "black" title "evacuated %%"
""" % {"png": png, "csv": csv_path, "victim": args.victim, "kill": args.kill_at,
       "evac": args.evacuate_at}
    result = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if result.returncode != 0:
        print("gnuplot failed: %s" % result.stderr.strip())
    else:
        print("wrote %s and %s" % (csv_path, png))


if __name__ == "__main__":
    main()
