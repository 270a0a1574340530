#!/usr/bin/env python3
"""Chaos Kong on one machine: a region goes bad under load and is evacuated, by a person
(sluicectl) or, with --auto, by sluice's own detector.

Three regions on loopback (us-east-1, us-west-2, eu-west-1): one sluice each, all sharing one
steering table through one etcd, and two origins (nginx) per region. sluice_drill_load sends a
steady open-loop load of many members through all three regions: GETs and POST /start ("stream
starts"), each member always entering through the same region. At --fault-at (--kill-at) the
scenario's fault comes (--victim is us-east-1 by default):
  kill      the victim's origins die (SIGKILL);
  brownout  half of the victim's origin answers fail: 503 (--brownout 503), or only after 3 s,
            past sluice's per-try timeout (--brownout slow); /health stays fine;
  global    every region's load drops by 40% (a quiet evening: no region is sick);
  surge     five times the load enters the victim (a flood: no region is sick);
  two       the origins of the victim and of the next region die (not a regional failure).
Requests that find their region's origins dead are failed over to a savior through the
inter-region tunnels (connect failures, and resets of idempotent requests) until the region is
evacuated.

Manual (the default): at --evacuate-at `sluicectl evacuate` starts a ramp that moves the
victim's members to the other regions (only those whose origins live). When the sluice binary
knows the detection section, the detector runs in alert mode on a history seeded from the
nominal load: it reports verdicts and acts on none.

--auto: nobody runs sluicectl; sluice's detector (mode auto) must see the sick region and
evacuate it by itself. After --warmup seconds of load the drill reads each region's measured
stream starts and requests per second from /v1/detection, writes a week and a day of history at
those levels (one row a minute, +-2% seeded noise), imports it into every node (sluicectl
history import) and waits until every region's verdict is "ok" before the fault. The detector
is configured with dip_ratio 0.6, dip_for 8s, window 5s and a ramp of 10, 25, 50, 100% holding
5 s; --quick uses dip_for 3s, window 2s, holds of 1 s and, with --auto, 900 requests/s (the
detector needs some stream starts to tell a dip from noise).

--dns: the clients find the edge through an authoritative DNS server (knot, zone drill.test.):
api.drill.test. holds one A record per region, TTL --dns-ttl (5 s). The three sluices listen on
one port at 127.0.0.11 (us-east-1), 127.0.0.12 (us-west-2) and 127.0.0.13 (eu-west-1) (their
tunnels too; admin ports on 127.0.0.1), each with a dns section and knot's TSIG key, so an
evacuation at 100% ends with sluice's DNS step: the victim's record out of api.drill.test. Each
region's clients connect to their region's address while the answer holds it, else to another
of its addresses. The timeline shows what knot answers each second (the last octets).

--kill-edge (implies --dns and --auto; a fault of its own, no --scenario): the victim's sluice
process is SIGKILLed (its origins live). The fleet leader's detector must declare the edge dead
(audit: "edge: us-east-1 suspect -> dead: ...") and evacuate it, DNS step first.

Every request is counted by the client: succeeded, failed (by kind), served by which region
(the sluice-region response header); retries, failovers, evacuations and the detector's view
come from each sluice's /metrics and /v1/detection. Prints a per-second timeline and a verdict,
writes drill.csv and drill.png (gnuplot).

Targets:
  manual, every scenario: the victim at 100% evacuated within the ramp (steps x hold + 3 s after
    sluicectl); the detector in alert mode starts no evacuation. kill also: no failed GET, at
    most 0.1% failed POSTs (rounded up to whole requests: a POST in flight when its origin dies
    cannot be retried safely), at least --min-requests requests (not with --quick).
  --auto kill: a "sick" verdict within 15 s of the fault, 100% evacuated within 60 s, one
    evacuation started by the detector, no failed GET, at most 0.01% failed POSTs (rounded up),
    at least --min-requests requests (not with --quick).
  --auto brownout: the same verdict, evacuation and count targets; failed requests are
    reported but have no target (answers that failed with 503 are failed for the client).
  --auto global, surge: no evacuation. --auto two: no evacuation, and a "multi_region_dip"
    verdict (the alert) seen.
  --dns kill (manual or --auto): also the DNS step applied within 5 s of 100% evacuated.
  --kill-edge: the edge declared dead within 10 s of the kill, its record out of DNS within
    15 s, no failed request issued later than the kill + TTL + 15 s.
The last line of the output is machine-readable, whatever happened:
  drill: scenario=kill mode=auto requests=N failed_get=N failed_post=N verdict_s=X
         evacuated_s=Y evacuations=N
(on one line; verdict_s: the fault to the first "sick" verdict on any node; evacuated_s: the
fault to 100% evacuated on every node, of the victim (with --auto for global, surge and two:
of any region); one decimal, "-" when it did not happen; evacuations: those the detector
started). --dns and --kill-edge runs add, on the same line,
    edge_dead_s=X dns_s=Y failed_after_ttl=N
(from the fault: to the first "edge: <victim> suspect -> dead" audit line of a node that lives,
and to the first "DNS applied" audit line for the victim or a node's GET /v1/dns with it in
applied_out; the failed requests issued after the fault + TTL + 15 s; with --kill-edge the
scenario is "edge").
The exit status is 0 when every target was met.

Usage: bench/drill.py [--scenario kill|brownout|global|surge|two] [--rate 15000]
                      [--duration 80] [--fault-at 20] [--evacuate-at 25] [--hold 3s]
                      [--out DIR] [--install]
       bench/drill.py --auto [--scenario ...] [--warmup 15] [--fault-at 30]
                      [--duration 100, 60 for global, surge and two] [--seed 1] ...
       bench/drill.py --dns [--dns-ttl 5] [--auto] [--scenario kill] ...
       bench/drill.py --kill-edge [--dns-ttl 5] [--fault-at 30] [--duration 100] ...
       bench/drill.py --wan-rtt 80 [--auto] [--scenario ...]   (tunnels through an emulated
                      WAN path: sluice_wan_relay in front of every region's tunnel endpoint)
       bench/drill.py --quick [--auto] [--scenario ...]   (short runs: what the test suite runs)
Needs: etcd (etcd-server), nginx (nginx-light), gnuplot (gnuplot-nox), with --dns knot and
knot-dnsutils, and the build's sluice,
sluicectl and sluice_drill_load. Loopback only; every process is stopped by its PID.
"""

import argparse
import calendar
import collections
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from sluicetest import admin, debian, metrics
from sluicetest.etcd import Etcd
from sluicetest.knot import Knot, missing as knot_missing
from sluicetest.secret_files import write_secrets
from sluicetest.nginx import brownout_region_origin, region_origin
from sluicetest.process import ROOT, Sluice, child_pids, free_port, wait_for_port, wait_until
from sluicetest.wan_relay import WanRelay

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
SHORT = {"us-east-1": "use1", "us-west-2": "usw2", "eu-west-1": "euw1"}
SCENARIOS = ("kill", "brownout", "global", "surge", "two")
TOKEN = secrets.token_hex(24)  # a fresh one each run, as an operator would make it
PACKAGES = {"etcd": "etcd-server", "nginx": "nginx-light", "gnuplot": "gnuplot-nox"}
# The detector's clock: the full drill's, and a faster one for --quick (so a short run still
# sees a verdict and a whole ramp).
DETECTION = {False: {"window": "5s", "dip_for": "8s", "hold": "5s"},
             True: {"window": "2s", "dip_for": "3s", "hold": "1s"}}
HISTORY_DAYS = 8
VERDICT_TARGET_S, EVACUATED_TARGET_S = 15.0, 60.0
# An audit line of a verdict turning "sick": a region's ("detection: us-east-1 dipping -> sick:
# ...") or the global one ("detection: ok -> sick: ...").
AUDIT_SICK = re.compile(r"^detection: (?:(\S+) )?\S+ -> sick\b")
# With --dns: every region's sluice on its own loopback address (one port for all), which is
# its A record under DNS_NAME. The audit lines the DNS report reads: the dead-edge detector's
# ("edge: us-east-1 suspect -> dead: ...") and the DNS step's outcome ("plan 3: DNS applied: ...",
# actor "dns").
DNS_ZONE, DNS_NAME = "drill.test.", "api.drill.test."
DNS_HOSTS = {"us-east-1": "127.0.0.11", "us-west-2": "127.0.0.12", "eu-west-1": "127.0.0.13"}
DNS_PACKAGES = {"knotd": "knot", "kdig": "knot-dnsutils", "knsupdate": "knot-dnsutils"}
AUDIT_EDGE_DEAD = re.compile(r"^edge: (\S+) \w+ -> dead\b")
AUDIT_DNS_APPLIED = re.compile(r"^(?:plan \d+: )?DNS applied\b")
EDGE_DEAD_TARGET_S, EDGE_DNS_TARGET_S, DNS_AFTER_FULL_TARGET_S = 10.0, 15.0, 5.0
# --kill-edge: failed requests issued this long past the fault + the TTL have no excuse (the
# clients' cached answers have run out, the records are long out).
FAILED_AFTER_TTL_GRACE_S = 15.0


def sluice_config(region, ports, origins, admin_port, work, etcd_url, hold, detection=None,
                  hosts=None, dns=None, tunnels=None):
    """One node's configuration; `detection`, when given, is its detection section, `dns` its
    dns section. hosts: {region: the IP its listener (and so its tunnel endpoint) is on},
    127.0.0.1 by default. tunnels: {region: its tunnel endpoint as host:port}, by default its
    listener (with --wan-rtt, the relay in front of it)."""
    hosts = hosts or {r: "127.0.0.1" for r in REGIONS}
    tunnels = tunnels or {r: "%s:%d" % (hosts[r], ports[r]) for r in REGIONS}
    saviors = {r: {o: 50 for o in REGIONS if o != r} for r in REGIONS}
    regions = "".join(
        "    %s:\n      tunnel: [%s]\n      saviors: {%s}\n" % (
            r, tunnels[r], ", ".join("%s: %d" % kv for kv in saviors[r].items()))
        for r in REGIONS)
    return """
workers: 1
log_level: warn
listeners: [{address: %(host)s:%(port)d}]
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
""" % {"port": ports[region], "host": hosts[region],
       "origins": ", ".join("127.0.0.1:%d" % p for p in origins),
       "region": region, "work": work, "regions": regions, "admin": admin_port,
       "etcd": etcd_url} + (detection or "") + (dns or "")


def detection_config(mode, work, region, quick):
    """The detection section: `mode` alert or auto; the history in the node's own SQLite file."""
    return """
detection:
  mode: %(mode)s
  history_file: %(work)s/%(region)s.history.db
  dip_ratio: 0.6
  dip_for: %(dip_for)s
  min_expected_sps: 5
  surge_ratio: 2
  window: %(window)s
  cooldown: 10m
  evacuate: {steps: [10%%, 25%%, 50%%, 100%%], hold: %(hold)s}
""" % dict(DETECTION[quick], mode=mode, work=work, region=region)


def dns_config(knot, ttl):
    """The dns section: each region's A record under DNS_NAME, updates signed with knot's key;
    an evacuation at 100% ends with the DNS step."""
    return """
dns:
  zone: %(zone)s
  servers: [%(server)s]
  key_file: %(key)s
  ttl: %(ttl)ds
  timeout: 2s
  plans: true
  records:
%(records)s""" % {"zone": DNS_ZONE, "server": knot.address, "key": knot.key_file, "ttl": ttl,
                  "records": "".join("    %s: [{name: %s, type: A, data: %s}]\n" % (
                      r, DNS_NAME.split(".")[0], DNS_HOSTS[r]) for r in REGIONS)}


def free_port_on(hosts, attempts=50):
    """A port free on every one of `hosts` (IPs), for listeners that share it."""
    for _ in range(attempts):
        port = free_port()
        try:
            for host in hosts:
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on all of %s after %d tries" % (", ".join(hosts), attempts))


def accepts(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def compact_answer(addresses):
    """An answer as the table shows it: the last octets ("11,12,13"), "none" for no record, "?"
    when the server did not answer."""
    if addresses is None:
        return "?"
    return ",".join(a.rsplit(".", 1)[-1] for a in sorted(addresses)) or "none"


def detection_supported(binary, work):
    """True when `sluice --check` takes a configuration with a detection section."""
    ports = {r: 1 for r in REGIONS}
    path = os.path.join(work, "check.yaml")
    with open(path, "w") as f:
        f.write(sluice_config(REGIONS[0], ports, [2], 3, work, "http://127.0.0.1:4", "1s",
                              detection_config("alert", work, "check", False)))
    result = subprocess.run([binary, "--check", "--config", path], capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


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
        elif name == "sluice_stream_starts_expected":
            out["expected:" + dict(labels)["region"]] = value
        elif name == "sluice_detection_evacuations_total":
            out["detector_evacuations"] += value
    return out


class Timeline:
    """Per second since the load started: the client's counts and latency."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.defaultdict(collections.Counter)  # second -> key -> n
        self.latency = {}
        self.totals = collections.Counter()
        self.issued = 0
        self.failed_issued = collections.Counter()  # second issued in -> failed requests
        self.failed_lines = False  # whether the load says when its failed requests were issued

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
                elif fields[0] == "f":
                    self.failed_issued[int(fields[1])] += int(fields[5])
                    self.failed_lines = True


class Monitor(threading.Thread):
    """What the nodes say while the load runs: each node's /metrics at the start of every
    second, and (with detection on) each node's /v1/detection four times a second; with `knot`
    (--dns) also what it answers for DNS_NAME and each node's /v1/dns, once a second. Times are
    seconds since the load started. drop() forgets a node (one that was killed)."""

    def __init__(self, admin_ports, started, detection, knot=None):
        super().__init__(daemon=True)
        self.admin_ports = dict(admin_ports)
        self.knot = knot
        self.answers = {}  # second -> DNS_NAME's addresses (None: no answer)
        self.dns_out = {}  # region -> first t a node's /v1/dns had it in applied_out
        self.started = started
        self.detection_on = detection
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.metrics = {}  # second -> {node: Counter}
        self.detection = collections.defaultdict(dict)  # second -> {node: the last answer}
        self.latest = {}  # node -> (t, the last answer)
        self.verdicts = {}  # (node, subject) -> (verdict, reason); subject: a region or global
        self.transitions = []  # (t, node, subject, before, after, reason)
        self.full = {}  # region -> first t every node had it 100% evacuated
        self.errors = collections.Counter()
        self.final = None  # the scrape after the load ended

    def now(self):
        return time.monotonic() - self.started

    def nodes(self):
        with self.lock:
            return dict(self.admin_ports)

    def drop(self, node):
        with self.lock:
            self.admin_ports.pop(node, None)

    def run(self):
        next_poll = 0.0
        while not self.stopping.is_set():
            now = self.now()
            if int(now) not in self.metrics:
                self.scrape(int(now))
            if self.detection_on and now >= next_poll:
                next_poll = now + 0.25
                self.poll()
            self.stopping.wait(0.05)

    def scrape(self, second):
        """Every node's /metrics, kept as `second`'s (None: only returned)."""
        sample = {}
        for node, port in self.nodes().items():
            try:
                sample[node] = scrape(port)
            except (OSError, ValueError):
                sample[node] = collections.Counter()
                self.errors["metrics " + node] += 1
        now = self.now()
        if second is None:
            return sample
        if self.knot:
            self.watch_dns(second)
        with self.lock:
            self.metrics[second] = sample
            for region in REGIONS:
                if region not in self.full and all(
                        m.get("evacuated:" + region, 0) >= 1.0 for m in sample.values()):
                    self.full[region] = now
        return sample

    def watch_dns(self, second):
        """What knot answers for DNS_NAME now, and which regions each node says are out."""
        answer = self.knot.dig(DNS_NAME, timeout=1)
        with self.lock:
            self.answers[second] = answer
        for node, port in self.nodes().items():
            try:
                status, body = admin.call(port, "GET", "/v1/dns", TOKEN, timeout=1)
            except OSError:
                status, body = 0, None
            if status != 200 or not isinstance(body, dict):
                self.errors["dns " + node] += 1
                continue
            now = self.now()
            with self.lock:
                for region in body.get("applied_out") or []:
                    self.dns_out.setdefault(region, now)

    def poll(self):
        for node, port in self.nodes().items():
            try:
                status, body = admin.call(port, "GET", "/v1/detection", TOKEN, timeout=1)
            except OSError:
                status, body = 0, None
            if status != 200 or not isinstance(body, dict):
                self.errors["detection " + node] += 1
                continue
            now = self.now()
            with self.lock:
                self.latest[node] = (now, body)
                self.detection[int(now)][node] = body
                subjects = dict(body.get("regions") or {})
                subjects["global"] = body.get("global") or {}
                for subject, view in subjects.items():
                    verdict = view.get("verdict", "?")
                    reason = view.get("reason", "")
                    before = self.verdicts.get((node, subject), (None, ""))[0]
                    if verdict != before:
                        self.transitions.append((now, node, subject, before, verdict, reason))
                    self.verdicts[(node, subject)] = (verdict, reason)

    def first_after(self, subjects, verdicts, since):
        """The first time at or after `since` that a node's verdict on one of `subjects` turned
        into one of `verdicts`; None if none did."""
        with self.lock:
            times = [t for (t, _, subject, _, after, _) in self.transitions
                     if subject in subjects and after in verdicts and t >= since]
        return min(times) if times else None

    def stop(self):
        self.stopping.set()
        self.join(10)


class Result:
    """What the last line says."""

    def __init__(self, args):
        self.scenario = args.scenario
        self.mode = "auto" if args.auto else "manual"
        self.requests = self.failed_get = self.failed_post = 0
        self.verdict_s = self.evacuated_s = None
        self.evacuations = 0
        # --dns and --kill-edge only: the fault to the victim declared dead, to its records out
        # (DNS applied), and the failed requests issued past the fault + TTL + the grace.
        self.dns = args.dns
        self.edge_dead_s = self.dns_s = None
        self.failed_after_ttl = 0

    def line(self):
        def seconds(value):
            return "-" if value is None else "%.1f" % value
        return ("drill: scenario=%s mode=%s requests=%d failed_get=%d failed_post=%d "
                "verdict_s=%s evacuated_s=%s evacuations=%d" % (
                    self.scenario, self.mode, self.requests, self.failed_get, self.failed_post,
                    seconds(self.verdict_s), seconds(self.evacuated_s), self.evacuations)) + (
                        " edge_dead_s=%s dns_s=%s failed_after_ttl=%d" % (
                            seconds(self.edge_dead_s), seconds(self.dns_s),
                            self.failed_after_ttl) if self.dns else "")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=os.path.join(ROOT, "build/proxy/sluice"))
    parser.add_argument("--sluicectl", default=os.path.join(ROOT, "build/ctl/sluicectl"))
    parser.add_argument("--load", default=os.path.join(ROOT, "build/bench/sluice_drill_load"))
    parser.add_argument("--scenario", choices=SCENARIOS, default=None, help="kill")
    parser.add_argument("--auto", action="store_true",
                        help="no sluicectl: sluice's detector must evacuate by itself")
    parser.add_argument("--dns", action="store_true",
                        help="clients find the edge through an authoritative DNS server (knot): "
                        "%s, one A record per region; evacuations end with sluice's DNS step"
                        % DNS_NAME)
    parser.add_argument("--dns-ttl", type=int, default=5, help="seconds, --dns (5)")
    parser.add_argument("--kill-edge", action="store_true",
                        help="the fault kills the victim's sluice (not its origins); the "
                        "leader must declare the edge dead and take its records out. Implies "
                        "--dns and --auto")
    parser.add_argument("--brownout", choices=("503", "slow"), default="503",
                        help="how the victim's origins fail in the brownout scenario")
    parser.add_argument("--rate", type=float,
                        help="requests/s, all regions (15000; 5000 for surge: 11,700 after it)")
    parser.add_argument("--duration", type=float,
                        help="seconds of load (manual 80; auto 100, 60 for global, surge, two)")
    parser.add_argument("--fault-at", "--kill-at", dest="fault_at", type=float,
                        help="seconds into the load (manual 20, auto 30)")
    parser.add_argument("--evacuate-at", type=float, default=None, help="manual only (25)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="--auto: seconds of load before the history is measured (15)")
    parser.add_argument("--victim", default="us-east-1", choices=REGIONS)
    parser.add_argument("--ramp", default="1,5,10,25,50,100", help="manual only")
    parser.add_argument("--hold", default=None, help="manual only (3s)")
    parser.add_argument("--global-factor", type=float, default=0.6)
    parser.add_argument("--surge-factor", type=float, default=5.0)
    parser.add_argument("--members", type=int, default=None, help="200000")
    parser.add_argument("--post-percent", type=float, default=20)
    parser.add_argument("--min-requests", type=int, default=None, help="1000000 (kill)")
    parser.add_argument("--seed", type=int, default=1, help="the load's and the history's")
    parser.add_argument("--out", default=".", help="where drill.csv and drill.png go")
    parser.add_argument("--install", action="store_true", help="apt-get install what is missing")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--wan-rtt", type=float, default=0,
                        help="ms: the tunnels between regions cross an emulated WAN path of "
                             "this round trip (sluice_wan_relay); not with --dns")
    parser.add_argument("--relay", default=os.path.join(ROOT, "build/bench/sluice_wan_relay"))
    args = parser.parse_args()
    if args.wan_rtt < 0:
        parser.error("--wan-rtt is a round trip in ms, 0 or more")
    if args.wan_rtt and (args.dns or args.kill_edge):
        parser.error("--wan-rtt: not with --dns or --kill-edge (their tunnels are on the "
                     "regions' own addresses)")
    if args.kill_edge:
        if args.scenario not in (None, "kill"):
            parser.error("--kill-edge is a fault of its own (the victim's sluice SIGKILLed, its "
                         "origins up): it takes no --scenario %s" % args.scenario)
        # The dead edge is the detector's (auto mode) and ends with the records out (DNS).
        args.scenario, args.dns, args.auto = "edge", True, True
    if args.scenario is None:
        args.scenario = "kill"
    if args.dns_ttl < 1:
        parser.error("--dns-ttl is at least 1 (seconds)")
    quick, auto, calm = args.quick, args.auto, args.scenario in ("global", "surge", "two")
    edge = args.scenario == "edge"
    # --kill-edge counts the failed requests issued after the fault + TTL + the grace: the load
    # runs some seconds past that.
    edge_tail = args.dns_ttl + FAILED_AFTER_TTL_GRACE_S + (5 if quick else 20)

    def default(name, value):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if quick:
        # The detector judges a few seconds of stream starts: --auto needs some more of them
        # than a manual run, or the noise of a tiny load looks like a dip.
        default("rate", 900 if auto else 400)
        default("members", 3000 if auto else 1000)
        default("min_requests", 0)
        default("hold", "0.5s")
        default("warmup", 4)
        default("fault_at", 12 if auto else 3)
        default("evacuate_at", 4)
        if edge:
            default("duration", args.fault_at + edge_tail)
        # --dns: the DNS step comes after the ramp, and the clients' answers expire a TTL later.
        default("duration", (24 if calm else 32) if auto else (10 + args.dns_ttl if args.dns
                                                               else 8))
    default("rate", 5000 if args.scenario == "surge" else 15000)
    default("members", 200000)
    default("min_requests", 1000000)
    default("hold", "3s")
    default("warmup", 15)
    default("fault_at", 30 if auto else 20)
    default("evacuate_at", 25)
    if edge:
        default("duration", max(100, args.fault_at + edge_tail))
    default("duration", (60 if calm else 100) if auto else 80)
    if not auto and args.evacuate_at < args.fault_at:
        parser.error("--evacuate-at comes before the fault")
    if args.fault_at >= args.duration:
        parser.error("the fault comes after the load ends")
    if edge and args.duration < args.fault_at + args.dns_ttl + FAILED_AFTER_TTL_GRACE_S + 2:
        parser.error("--kill-edge needs the load to run at least %g s past the fault (the TTL, "
                     "%g s of grace, then some load whose failures count)" % (
                         args.dns_ttl + FAILED_AFTER_TTL_GRACE_S + 2, FAILED_AFTER_TTL_GRACE_S))
    if auto and args.warmup + 6 >= args.fault_at:
        parser.error("--auto needs --fault-at at least 6 s past --warmup (the history is "
                     "measured for 4 s, imported, and judged before the fault)")
    return args


def faulted_regions(args):
    """The regions the fault hits: the victim, both for two, every region for global."""
    if args.scenario == "global":
        return list(REGIONS)
    if args.scenario == "two":
        return [args.victim, REGIONS[(REGIONS.index(args.victim) + 1) % len(REGIONS)]]
    return [args.victim]


def history_csv(path, levels, now, seed):
    """HISTORY_DAYS of history up to 10 minutes ago, one row per region and minute, at `levels`
    ({region: (entry_sps, serving_sps, requests_per_second)}) with +-2% noise. The detector
    expects now from a day and a week ago, so the flat week says "as usual"."""
    rng = random.Random(seed)
    end = int(now // 60) * 60 - 600
    rows = 0
    with open(path, "w") as f:
        f.write("# sluice-history/1\ntime,span,region,entry_sps,serving_sps,"
                "requests_per_second\n")
        for t in range(end - HISTORY_DAYS * 86400, end, 60):
            for region in REGIONS:
                k = 1 + rng.uniform(-0.02, 0.02)
                entry, serving, requests = levels[region]
                f.write("%d,60,%s,%.3f,%.3f,%.3f\n" % (t, region, entry * k, serving * k,
                                                         requests * k))
                rows += 1
    return rows


def import_history(args, admin_ports, work, path):
    """sluicectl history import into every node (one command, every endpoint); raises with its
    message when a node refuses. Returns the seconds it took."""
    cmd = [args.sluicectl] + sum((["--admin", "http://127.0.0.1:%d" % admin_ports[r]]
                                  for r in REGIONS), []) + [
        "--token-file", os.path.join(work, "admin.token"), "--timeout", "30s",
        "history", "import", path]
    began = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError("sluicectl history import failed: %s" % (
            result.stdout + result.stderr).strip())
    return time.monotonic() - began


def measured_levels(monitor, seconds=4.0):
    """Each region's entry and serving SPS and requests per second as the nodes see them,
    averaged over every node's answers in the last `seconds`."""
    time.sleep(seconds)
    since = monitor.now() - seconds
    sums = {r: [0.0, 0.0, 0.0] for r in REGIONS}
    n = 0
    with monitor.lock:
        for second, answers in monitor.detection.items():
            if second < since:
                continue
            for body in answers.values():
                regions = body.get("regions") or {}
                if not all(r in regions for r in REGIONS):
                    continue
                n += 1
                for r in REGIONS:
                    for i, key in enumerate(("entry_sps", "serving_sps",
                                             "requests_per_second")):
                        sums[r][i] += float(regions[r].get(key) or 0)
    if n == 0:
        raise RuntimeError("no node answered /v1/detection with every region during the warmup")
    levels = {r: tuple(v / n for v in sums[r]) for r in REGIONS}
    for r, (entry, serving, requests) in levels.items():
        if entry <= 0 or serving <= 0 or requests <= 0:
            raise RuntimeError("after the warmup %s shows entry_sps %.1f, serving_sps %.1f, "
                               "requests_per_second %.1f: nothing to seed a history with" % (
                                   r, entry, serving, requests))
    return levels


def wait_all_ok(monitor, admin_ports, deadline):
    """Waits until every node says every region is "ok" (until `deadline`, seconds since the
    load started). Raises with what they say instead."""
    while True:
        with monitor.lock:
            views = {node: monitor.latest.get(node) for node in admin_ports}
        fresh = {node: v[1] for node, v in views.items()
                 if v is not None and monitor.now() - v[0] < 1.0}
        if len(fresh) == len(admin_ports) and all(
                (body.get("regions") or {}).get(r, {}).get("verdict") == "ok"
                for body in fresh.values() for r in REGIONS):
            return monitor.now()
        if monitor.now() >= deadline:
            said = "; ".join(
                "%s says %s" % (node, ", ".join(
                    "%s %s (%s)" % (r, v.get("verdict"), v.get("reason", ""))
                    for r, v in sorted((body.get("regions") or {}).items())))
                for node, body in sorted(fresh.items()))
            raise RuntimeError("not every region was \"ok\" on every node by %.1f s, before the "
                               "fault (a later --fault-at gives the detector more time): %s" % (
                                   deadline, said or "no node answered"))
        time.sleep(0.1)


def sleep_until(started, at, load):
    """Sleeps until `at` seconds since `started`; False if the load ended first."""
    while time.monotonic() - started < at:
        if load.poll() is not None:
            return False
        time.sleep(min(0.02, max(0.0, at - (time.monotonic() - started))))
    return True


def main():
    args = parse_args()
    result = Result(args)
    try:
        code = run(args, result)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print("drill failed: %s" % e)
        code = 1
    except SystemExit as e:
        if e.code not in (None, 0):
            print(e.code if isinstance(e.code, str) else "drill failed (exit %s)" % e.code)
        code = 1 if e.code not in (None, 0) else 0
    sys.stdout.flush()
    print(result.line())
    sys.exit(code)


def run(args, result):
    """The drill; returns the exit status. Fills `result` as it learns things."""
    if args.install:
        debian.install_missing(dict(PACKAGES, **(DNS_PACKAGES if args.dns else {})),
                               recommends=False)
    debian.require(PACKAGES)
    if args.dns and knot_missing():
        raise SystemExit("--dns needs knot: %s" % knot_missing())
    for binary in (args.sluice, args.sluicectl, args.load):
        if not os.access(binary, os.X_OK):
            raise SystemExit("%s is not built (cmake --build build)" % binary)
    faulted = faulted_regions(args)
    saviors = [r for r in REGIONS if r != args.victim and
               not (args.scenario in ("kill", "two") and r in faulted)]

    work = tempfile.mkdtemp(prefix="sluice-drill-")
    write_secrets(work, (("admin.token", TOKEN), ("tunnel.key", secrets.token_hex(32))))
    supported, check_output = detection_supported(os.path.abspath(args.sluice), work)
    if args.auto and not supported:
        shutil.rmtree(work, ignore_errors=True)
        raise SystemExit("--auto: %s does not take a detection section (%s)" % (
            args.sluice, check_output.splitlines()[-1] if check_output else "no message"))
    detection_mode = "auto" if args.auto else ("alert" if supported else None)
    print("scenario %s, %s; detection: %s%s" % (
        args.scenario + (" (%s)" % args.brownout if args.scenario == "brownout" else "") +
        (" (--kill-edge: %s's sluice dies)" % args.victim if args.scenario == "edge" else ""),
        "auto" if args.auto else "manual",
        detection_mode or "not in this sluice (no verdicts)",
        "; DNS: %s, TTL %d s" % (DNS_NAME, args.dns_ttl) if args.dns else ""))

    etcd = Etcd()
    origins = {r: [] for r in REGIONS}
    nodes, admin_ports, relays = {}, {}, {}
    load = monitor = tarpit = knot = None
    timeline = Timeline()
    events = []  # (second, what)
    marks = {}  # fault, evacuate, armed: seconds since the load started
    started = wall_started = None
    ok = False
    try:
        etcd.start()
        hosts = {r: "127.0.0.1" for r in REGIONS}
        if args.dns:
            # One port on three addresses: the port in the clients' --port, the address from DNS.
            knot = Knot(zone=DNS_ZONE, ttl=args.dns_ttl, directory=os.path.join(work, "knot"),
                        records=[(DNS_NAME, "A", DNS_HOSTS[r]) for r in REGIONS]).start()
            hosts = dict(DNS_HOSTS)
            shared = free_port_on(hosts.values())
            ports = {r: shared for r in REGIONS}
        else:
            ports = {r: free_port() for r in REGIONS}
        for region in REGIONS:
            for i in range(2):
                origins[region].append(region_origin(work, "%s-origin-%d" % (region, i),
                                                     free_port(), region))
        tunnels = None
        if args.wan_rtt:
            # Each region's tunnel endpoint is a relay in front of its listener: every request
            # tunneled into it crosses args.wan_rtt of emulated WAN (clients enter directly).
            for region in REGIONS:
                relays[region] = WanRelay(
                    ports[region], os.path.join(work, region + ".relay.log"),
                    delay_ms=args.wan_rtt / 2, binary=os.path.abspath(args.relay)).start()
            tunnels = {r: "127.0.0.1:%d" % relays[r].port for r in REGIONS}
            print("tunnels through an emulated WAN path of %g ms RTT" % args.wan_rtt)
        configs = {}
        for region in REGIONS:
            admin_ports[region] = free_port()
            detection = detection_config(detection_mode, work, region, args.quick) \
                if detection_mode else None
            configs[region] = sluice_config(
                region, ports, [o.port for o in origins[region]], admin_ports[region], work,
                etcd.url, args.hold, detection, hosts, dns_config(knot, args.dns_ttl)
                if knot else None, tunnels)
        if knot:
            check_dns_config(args.sluice, work, configs[REGIONS[0]])
        for region in REGIONS:
            # The configuration names its admin port; its file and the log go to `work`. With
            # --dns the listener is not on 127.0.0.1: start() waits for the admin port.
            nodes[region] = Sluice(
                configs[region], port=admin_ports[region] if knot else ports[region],
                admin=False, binary=os.path.abspath(args.sluice), directory=work,
                name=region).start()
        for region in REGIONS:
            wait_for_port(admin_ports[region])
            if knot and not wait_until(lambda: accepts(hosts[region], ports[region]), 10, 0.05):
                raise RuntimeError("%s's sluice does not listen on %s:%d" % (
                    region, hosts[region], ports[region]))
            for o in origins[region]:
                wait_for_port(o.port)
        if args.scenario == "brownout" and args.brownout == "slow":
            tarpit = socket.socket()
            tarpit.bind(("127.0.0.1", 0))
            tarpit.listen(64)  # and never accepts: what connects there waits for nothing
        if detection_mode == "alert":
            # The nominal load as history, so the detector has something to compare with.
            share = args.rate / len(REGIONS)
            levels = {r: (share * args.post_percent / 100,) * 2 + (share,) for r in REGIONS}
            path = os.path.join(work, "history.csv")
            history_csv(path, levels, time.time(), args.seed)
            try:
                import_history(args, admin_ports, work, path)
            except (RuntimeError, subprocess.SubprocessError) as e:
                print("warning: no history for the detector in alert mode: %s" % e)
        time.sleep(2.5)  # health checks rise (2 x 1 s) before the load starts

        changes = []
        if args.scenario == "global":
            changes = ["--change", "%g:%g" % (args.fault_at, args.global_factor)]
        elif args.scenario == "surge":
            changes = ["--change", "%g:%g:%s" % (args.fault_at, args.surge_factor, args.victim)]
        resolve = []
        if knot:
            resolve = ["--dns", knot.address, "--name", DNS_NAME, "--port", str(ports[REGIONS[0]])]
        load = subprocess.Popen(
            [args.load, "--rate", str(args.rate), "--duration", str(args.duration),
             "--members", str(args.members), "--post-percent", str(args.post_percent),
             "--timeout", "10", "--seed", str(args.seed)] + changes + resolve +
            sum((["--entry", "%s=%s:%d" % (r, hosts[r], ports[r])] for r in REGIONS), []),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        started, wall_started = time.monotonic(), time.time()
        reader = threading.Thread(target=timeline.read_load, args=(load.stdout,), daemon=True)
        reader.start()
        monitor = Monitor(admin_ports, started, detection_mode is not None, knot)
        monitor.start()

        if args.auto:
            if not sleep_until(started, args.warmup, load):
                raise RuntimeError("the load ended during the warmup")
            levels = measured_levels(monitor, 4.0)
            path = os.path.join(work, "history.csv")
            rows = history_csv(path, levels, time.time(), args.seed)
            took = import_history(args, admin_ports, work, path)
            events.append((monitor.now(), "history imported into every node in %.1f s: %d rows "
                           "(entry/serving starts/s, requests/s: %s)" % (took, rows, ", ".join(
                               "%s %.1f/%.1f, %.0f" % (SHORT[r], e, s, q)
                               for r, (e, s, q) in levels.items()))))
            marks["armed"] = wait_all_ok(monitor, admin_ports, args.fault_at - 0.2)
            events.append((marks["armed"], "every region \"ok\" on every node"))

        if not sleep_until(started, args.fault_at, load):
            raise RuntimeError("the load ended before the fault")
        marks["fault"] = time.monotonic() - started
        if args.scenario in ("kill", "two"):
            for region in faulted:
                for o in origins[region]:
                    o.kill()
            what = "%s origins killed" % " and ".join(faulted)
        elif args.scenario == "brownout":
            for o in origins[args.victim]:
                brownout_region_origin(o, args.victim, args.brownout, 50,
                                       tarpit and tarpit.getsockname()[1])
            what = "%s origins browned out: 50%% of answers %s" % (
                args.victim, "503" if args.brownout == "503" else "after 3 s")
        elif args.scenario == "edge":
            what = kill_edge(args.victim, nodes[args.victim], hosts[args.victim],
                             ports[args.victim])
            monitor.drop(args.victim)
        elif args.scenario == "global":
            what = "every region's load x%g" % args.global_factor
        else:
            what = "%s's load x%g" % (args.victim, args.surge_factor)
        events.append((marks["fault"], what))

        if not args.auto:
            if not sleep_until(started, args.evacuate_at, load):
                raise RuntimeError("the load ended before the evacuation")
            marks["evacuate"] = time.monotonic() - started
            weight = 100 // len(saviors)
            cmd = [args.sluicectl, "--admin", "http://127.0.0.1:%d" % admin_ports[saviors[0]],
                   "--token-file", os.path.join(work, "admin.token"), "evacuate", args.victim,
                   "--to", ",".join("%s=%d" % (r, weight) for r in saviors), "--ramp",
                   args.ramp, "--hold", args.hold]
            evacuate = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            events.append((marks["evacuate"], "sluicectl evacuate %s: %s" % (
                args.victim, (evacuate.stdout + evacuate.stderr).strip())))
            if evacuate.returncode != 0:
                raise RuntimeError("sluicectl failed: %s" % evacuate.stderr)

        try:
            load.wait(args.duration + 30)
        except subprocess.TimeoutExpired:
            raise RuntimeError("sluice_drill_load still runs %.0f s after its end" % 30)
        reader.join(10)
        load_error = load.stderr.read().decode()
        if load.returncode != 0:
            raise RuntimeError("sluice_drill_load exited with %d: %s" % (load.returncode,
                                                                         load_error))
        monitor.stop()
        monitor.final = monitor.scrape(None)  # the last word: the evacuations counted
        ok = True
    finally:
        if monitor:
            monitor.stop()
        if load and load.poll() is None:
            load.kill()
            load.wait(5)
        for node in nodes.values():
            node.stop()
        for relay in relays.values():
            relay.stop()
        for region in REGIONS:
            for o in origins[region]:
                o.stop()
        etcd.stop()
        if knot:
            knot.stop()
        if tarpit:
            tarpit.close()
        audit = read_audit(work, wall_started)
        fill_result(args, result, timeline, monitor, marks, audit)
        if args.dns:
            fill_dns_result(args, result, timeline, monitor, marks, audit)
        if not ok:
            print("logs kept in %s" % work)

    missed = report(args, result, timeline, monitor, audit, events + audit_events(
        audit, reference_node(faulted)), marks, faulted, detection_mode)
    if missed:
        print("TARGETS MISSED: " + "; ".join(missed) + " (logs kept in %s)" % work)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    etcd.cleanup()
    return 0


def check_dns_config(binary, work, text):
    """Refuses a sluice that does not take the dns section (sluice --check)."""
    path = os.path.join(work, "dns-check.yaml")
    with open(path, "w") as f:
        f.write(text)
    result = subprocess.run([os.path.abspath(binary), "--check", "--config", path],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise SystemExit("--dns: %s does not take the dns section (%s)" % (
            binary, output.splitlines()[-1] if output else "no message"))


def kill_edge(region, node, host, port):
    """SIGKILL to a region's sluice (and children, if it has any), by PID; checks its listener
    refuses. Returns what happened, for the timeline."""
    pids = [node.pid] + child_pids(node.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.proc.wait(5)
    if not wait_until(lambda: not accepts(host, port), 2, 0.05):
        raise RuntimeError("%s:%d still accepts after its sluice was SIGKILLed" % (host, port))
    return "%s's sluice killed (SIGKILL to pid %s); its origins live" % (
        region, ", ".join(str(p) for p in pids))


def reference_node(faulted):
    """The node whose view of the detection the timeline shows: one whose region's origins
    live."""
    return next((r for r in reversed(REGIONS) if r not in faulted), REGIONS[-1])


def read_audit(work, wall_started):
    """The detector's lines in every node's audit log, and the DNS step's (actor "dns", only
    with --dns): [(seconds since the load started, node, actor, action)], in time order."""
    lines = []
    if wall_started is None:
        return lines
    for region in REGIONS:
        try:
            with open(os.path.join(work, "%s.audit.jsonl" % region)) as f:
                text = f.readlines()
        except OSError:
            continue
        for line in text:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("actor") not in ("detector", "dns"):
                continue
            at = parse_time(entry.get("time", ""))
            lines.append((at - wall_started if at is not None else float("nan"), region,
                          entry["actor"], entry.get("action", "")))
    lines.sort(key=lambda line: (math.isnan(line[0]), line[0]))
    return lines


def audit_events(audit, reference):
    """The audit lines as events: the reference node's, and what the others did (their plans;
    their verdicts are the reference node's again)."""
    return [(t, "%s audit: %s: %s" % (SHORT[node], actor, action))
            for t, node, actor, action in audit
            if node == reference or not action.startswith("detection:")]


def sick_verdicts(monitor, audit, since):
    """[(t, subject)]: every "sick" verdict a node reached at or after `since`, by the audit
    logs and the polls of /v1/detection; subject is a region or "global"."""
    out = []
    for t, _, actor, action in audit:
        m = AUDIT_SICK.match(action) if actor == "detector" else None
        if m and t >= since:
            out.append((t, m.group(1) or "global"))
    with monitor.lock:
        out += [(t, subject) for (t, _, subject, _, after, _) in monitor.transitions
                if after == "sick" and t >= since]
    return sorted(out)


def parse_time(text):
    """Seconds since the epoch from RFC 3339 in UTC ("2026-12-02T07:39:21.735566371+00:00", or
    with "Z"); None if it is not that."""
    for suffix in ("Z", "+00:00"):
        if text.endswith(suffix):
            text = text[:-len(suffix)]
            break
    else:
        return None
    whole, _, fraction = text.partition(".")
    try:
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return seconds + (float("0." + fraction) if fraction.isdigit() else 0.0)
    except ValueError:
        return None


def fill_result(args, result, timeline, monitor, marks, audit):
    totals = timeline.totals
    result.requests = sum(totals.values())
    result.failed_get = sum(n for (method, outcome), n in totals.items()
                            if method == "GET" and outcome != "ok")
    result.failed_post = sum(n for (method, outcome), n in totals.items()
                             if method == "POST" and outcome != "ok")
    fault = marks.get("fault")
    if monitor is None or fault is None:
        return
    sick = sick_verdicts(monitor, audit, fault)
    result.verdict_s = max(0.0, sick[0][0] - fault) if sick else None
    if args.scenario in ("kill", "brownout", "edge") or not args.auto:
        full = monitor.full.get(args.victim)
    else:
        full = min(monitor.full.values()) if monitor.full else None
    result.evacuated_s = None if full is None else max(0.0, full - fault)
    last = monitor.final or (monitor.metrics[max(monitor.metrics)] if monitor.metrics else {})
    result.evacuations = int(sum(m.get("detector_evacuations", 0) for m in last.values()))


def fill_dns_result(args, result, timeline, monitor, marks, audit):
    """--dns, --kill-edge: the fault to the victim declared dead and to its records out, by the
    audit logs of the nodes that live (and, for the records, their /v1/dns); the failed requests
    issued after the fault + TTL + FAILED_AFTER_TTL_GRACE_S."""
    fault = marks.get("fault")
    if monitor is None or fault is None:
        return
    alive = [r for r in REGIONS if not (args.scenario == "edge" and r == args.victim)]
    dead, applied = [], []
    for t, node, actor, action in audit:
        if node not in alive or not t >= fault:
            continue
        edge = AUDIT_EDGE_DEAD.match(action)
        if actor == "detector" and edge and edge.group(1) == args.victim:
            dead.append(t)
        if actor == "dns" and AUDIT_DNS_APPLIED.match(action) and \
                args.victim in action.rpartition("(out:")[2]:
            applied.append(t)
    with monitor.lock:
        seen = monitor.dns_out.get(args.victim)
    if seen is not None and seen >= fault:
        applied.append(seen)
    result.edge_dead_s = min(dead) - fault if dead else None
    result.dns_s = min(applied) - fault if applied else None
    # By the second each request was issued in: one that ends after the threshold counts (it
    # may hold requests issued up to a second before it: the stricter reading). A load that
    # does not say when its failed requests were issued is counted by when they ended.
    threshold = fault + args.dns_ttl + FAILED_AFTER_TTL_GRACE_S
    if timeline.failed_lines or not (result.failed_get + result.failed_post):
        result.failed_after_ttl = sum(n for s, n in timeline.failed_issued.items()
                                      if s + 1 > threshold)
    else:
        result.failed_after_ttl = sum(
            n for s, c in timeline.counts.items() if s + 1 > threshold
            for k, n in c.items() if len(k) == 3 and k[1] != "ok")


def report(args, result, timeline, monitor, audit, events, marks, faulted, detection_mode):
    """Prints the timeline and the totals, writes the CSV and the plot; returns the targets
    missed."""
    seconds = sorted(set(timeline.counts) | set(monitor.metrics))
    reference = reference_node(faulted)
    rows = []
    for s in seconds:
        c = timeline.counts.get(s, collections.Counter())
        # A scrape at second s shows the nodes' state at its start: second s is what changed
        # between that scrape and the next one, and the gauges as they stood at its end.
        before, after = monitor.metrics.get(s, {}), monitor.metrics.get(s + 1, {})
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
        view = monitor.detection.get(s, {}).get(reference) or {}
        regions = view.get("regions") or {}
        for r in REGIONS:
            v = regions.get(r) or {}
            # null (nothing expected yet) and missing alike: an empty field.
            for column, key in (("sps_", "sps"), ("expected_", "expected"),
                                ("verdict_", "verdict")):
                value = v.get(key)
                row[column + r] = "" if value is None else value
        row["global_verdict"] = (view.get("global") or {}).get("verdict") or ""
        if args.dns:
            row["dns_answer"] = compact_answer(monitor.answers.get(s)) \
                if s in monitor.answers else ""
        rows.append(row)

    columns = ["second"] + ["entered_" + r for r in REGIONS] + \
        ["starts_" + r for r in REGIONS] + ["gets_" + r for r in REGIONS] + \
        ["get_failed", "post_failed", "retries", "failovers", "evacuated_pct", "p99_ms"] + \
        ["sps_" + r for r in REGIONS] + ["expected_" + r for r in REGIONS] + \
        ["verdict_" + r for r in REGIONS] + ["global_verdict"] + \
        (["dns_answer"] if args.dns else [])
    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, "drill.csv")
    with open(csv_path, "w") as f:
        f.write(",".join(columns) + "\n")
        for row in rows:
            # (the DNS answer's octets with spaces: the CSV's separator is the comma)
            f.write(",".join(("%.3f" % row[k]) if isinstance(row[k], float) else
                             str(row[k]).replace(",", " ") for k in columns) + "\n")

    detecting = detection_mode is not None
    print("second | starts/s by serving region (%s) | GETs ok | GET fail | POST fail | "
          "retries | failovers | %s evacuated | p99 ms%s%s" % (
              " ".join(SHORT[r] for r in REGIONS), args.victim,
              " | DNS %s" % DNS_NAME if args.dns else "",
              " | SPS/expected, verdict (%s's view)" % reference if detecting else ""))
    for row in rows:
        view = ""
        if detecting:
            view = " | " + "  ".join("%s %s" % (
                ("%3.0f/%-3.0f" % (row["sps_" + r], row["expected_" + r]))
                if isinstance(row["sps_" + r], (int, float)) and
                isinstance(row["expected_" + r], (int, float)) else "   -   ",
                (row["verdict_" + r] or "-")[:8]) for r in REGIONS)
        print("%6d | %s | %7d | %8d | %9d | %7d | %9d | %5.1f%% | %7.1f%s%s" % (
            row["second"], " ".join("%5d" % row["starts_" + r] for r in REGIONS),
            sum(row["gets_" + r] for r in REGIONS), row["get_failed"], row["post_failed"],
            row["retries"], row["failovers"], row["evacuated_pct"], row["p99_ms"],
            " | %-8s" % row["dns_answer"] if args.dns else "", view))
    audited = any(what.startswith(SHORT[reference] + " audit") for _, what in events)
    for t, node, subject, before, after, reason in monitor.transitions:
        if node == reference and not audited:  # the audit log says the same, timed better
            events.append((t, "%s says %s: %s -> %s%s" % (
                SHORT[node], subject, before, after, " (%s)" % reason if reason else "")))
    for region, t in sorted(monitor.full.items(), key=lambda kv: kv[1]):
        events.append((t, "%s 100%% evacuated on every node" % region))
    for at, what in sorted(events, key=lambda e: (math.isnan(e[0]), e[0])):
        print("at %5.1f s: %s" % (at, what))
    if monitor.errors:
        print("unanswered scrapes: %s" % dict(monitor.errors))

    totals = timeline.totals
    gets = sum(n for (method, _), n in totals.items() if method == "GET")
    posts = sum(n for (method, _), n in totals.items() if method == "POST")
    get_failed, post_failed = result.failed_get, result.failed_post
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

    fault = marks.get("fault")
    hold_s = float(args.hold.rstrip("s"))
    ramp_budget = (len(args.ramp.split(",")) - 1) * hold_s + 3.0
    ramp_took = None
    if not args.auto:
        full = monitor.full.get(args.victim)
        ramp_took = None if full is None else full - marks["evacuate"]
        print("evacuation: %s" % ("never reached 100%" if ramp_took is None else
                                   "100%% on every node %.1f s after sluicectl (ramp %s, hold "
                                   "%s; budget %.1f s)" % (ramp_took, args.ramp, args.hold,
                                                           ramp_budget)))
    multi = monitor.first_after(("global",), ("multi_region_dip",), fault)
    if detecting:
        print("detector: first \"sick\" %s after the fault%s; %d evacuation(s) started by it%s" % (
            "never" if result.verdict_s is None else "%.1f s" % result.verdict_s,
            "" if multi is None else "; \"multi_region_dip\" %.1f s after it" % (multi - fault),
            result.evacuations,
            "" if result.evacuated_s is None else
            "; 100%% evacuated %.1f s after the fault" % result.evacuated_s))
        # Once armed, nothing should dip before the fault (manual runs seed the history before
        # the load, so its start dips).
        early = [(t, node, subject, after) for t, node, subject, _, after, _ in
                 monitor.transitions if after in ("sick", "dipping", "evacuated", "vetoed",
                                                  "multi_region_dip") and
                 marks.get("armed", fault) <= t < fault]
        if early:
            print("before the fault: %s" % ", ".join(
                "%.1f s %s says %s %s" % e for e in early[:6]))

    dns_after_full = None
    if args.dns:
        dns_after_full = report_dns(args, result, monitor, fault)

    plot(args, csv_path, columns, marks, detecting,
         None if result.verdict_s is None else fault + result.verdict_s)

    missed = []
    if args.scenario == "edge":
        if result.edge_dead_s is None or result.edge_dead_s > EDGE_DEAD_TARGET_S:
            missed.append("%s not declared dead within %g s of the kill" % (
                args.victim, EDGE_DEAD_TARGET_S))
        if result.dns_s is None or result.dns_s > EDGE_DNS_TARGET_S:
            missed.append("%s's records not out of DNS within %g s of the kill" % (
                args.victim, EDGE_DNS_TARGET_S))
        if result.failed_after_ttl:
            missed.append("%d requests issued after the kill + TTL + %g s failed" % (
                result.failed_after_ttl, FAILED_AFTER_TTL_GRACE_S))
    elif args.auto:
        if args.scenario in ("kill", "brownout"):
            sick = sorted({subject for _, subject in sick_verdicts(monitor, audit, fault)
                           if subject in REGIONS})
            if result.verdict_s is None or result.verdict_s > VERDICT_TARGET_S:
                missed.append("no \"sick\" verdict within %g s of the fault" % VERDICT_TARGET_S)
            elif any(s != args.victim for s in sick):
                missed.append("regions other than %s called sick: %s" % (
                    args.victim, ", ".join(s for s in sick if s != args.victim)))
            if result.evacuated_s is None or result.evacuated_s > EVACUATED_TARGET_S:
                missed.append("%s not 100%% evacuated within %g s of the fault" % (
                    args.victim, EVACUATED_TARGET_S))
            if result.evacuations != 1:
                missed.append("the detector started %d evacuations, not 1" % result.evacuations)
        else:
            if result.evacuations:
                missed.append("the detector started %d evacuation(s)" % result.evacuations)
            if monitor.full:
                missed.append("%s evacuated" % ", ".join(sorted(monitor.full)))
            if args.scenario == "two" and multi is None:
                missed.append("no \"multi_region_dip\" verdict after the fault")
    else:
        if ramp_took is None or ramp_took > ramp_budget:
            missed.append("the evacuation did not reach 100%% within %.1f s" % ramp_budget)
        if result.evacuations:
            missed.append("the detector in alert mode started %d evacuation(s)" %
                          result.evacuations)
    if args.scenario == "kill":
        post_share = 0.0001 if args.auto else 0.001
        if gets + posts < args.min_requests:
            missed.append("only %d requests (target %d)" % (gets + posts, args.min_requests))
        if get_failed:
            missed.append("%d GETs failed" % get_failed)
        if post_failed > math.ceil(post_share * posts):
            missed.append("%.4f%% of POSTs failed (target %g%%)" % (
                100.0 * post_failed / max(posts, 1), 100 * post_share))
    if args.auto and args.scenario == "brownout" and gets + posts < args.min_requests:
        missed.append("only %d requests (target %d)" % (gets + posts, args.min_requests))
    if args.dns and args.scenario == "kill" and (
            dns_after_full is None or dns_after_full > DNS_AFTER_FULL_TARGET_S):
        missed.append("DNS not applied within %g s of 100%%" % DNS_AFTER_FULL_TARGET_S)
    if not missed:
        print("targets met: %s%s" % ({
            ("kill", False): "no failed GET, POST failures within 0.1%, evacuation within the "
                             "ramp",
            ("kill", True): "verdict within 15 s, 100% within 60 s, no failed GET, POST "
                            "failures within 0.01%",
            ("brownout", True): "verdict within 15 s, 100% within 60 s",
            ("two", True): "no evacuation, the multi-region alert seen",
            ("edge", True): "declared dead within 10 s, records out of DNS within 15 s, no "
                            "failed request issued after the kill + TTL + 15 s",
        }.get((args.scenario, args.auto),
              "evacuation within the ramp" if not args.auto else "no evacuation"),
            ", DNS applied within 5 s of 100%" if args.dns and args.scenario == "kill"
            else ""))
    return missed


def report_dns(args, result, monitor, fault):
    """Prints what DNS did (--dns, --kill-edge); returns the seconds from 100% evacuated to the
    records out (None if either did not happen)."""
    full = monitor.full.get(args.victim)
    dns_at = None if result.dns_s is None else fault + result.dns_s
    if args.scenario == "edge":
        print("dead edge: %s declared dead %s after its sluice was killed (audit, nodes that "
              "live)" % (args.victim, "never" if result.edge_dead_s is None else
                         "%.1f s" % result.edge_dead_s))
    print("DNS: %s's records out of %s %s after the fault" % (
        args.victim, DNS_NAME, "never" if dns_at is None else "%.1f s" % result.dns_s))
    after = None
    if full is not None and dns_at is not None:
        # 100% is seen by the once-a-second scrape, the DNS step in the audit log to the
        # millisecond: a step that came within that second reads as 0.
        after = max(0.0, dns_at - full)
        if args.scenario != "edge":
            print("DNS applied %.1f s after 100 %%" % after)
    threshold = fault + args.dns_ttl + FAILED_AFTER_TTL_GRACE_S
    print("failed requests issued after the fault + TTL (%d s) + %g s: %d%s" % (
        args.dns_ttl, FAILED_AFTER_TTL_GRACE_S, result.failed_after_ttl,
        " (the load ended before that, at %g s)" % args.duration
        if threshold >= args.duration else ""))
    with monitor.lock:
        answers = [monitor.answers[s] for s in sorted(monitor.answers)]
    if answers:
        print("%s answered at the end: %s" % (DNS_NAME, compact_answer(answers[-1])))
    return after


def plot(args, csv_path, columns, marks, detecting, verdict_at):
    """drill.png: what the clients saw and the evacuation; with detection, a second panel with
    the SPS the detector judged against what it expected. Dashed lines: the fault (red),
    sluicectl (blue), the first "sick" verdict (green)."""
    png = os.path.join(args.out, "drill.png")
    col = {name: columns.index(name) + 1 for name in columns}
    fault = marks.get("fault", args.fault_at)
    evac = marks.get("evacuate")
    arrows = 'set arrow from %g, graph 0 to %g, graph 1 nohead lc rgb "red" dt 2\n' % (
        fault, fault)
    if evac is not None:
        arrows += 'set arrow from %g, graph 0 to %g, graph 1 nohead lc rgb "blue" dt 2\n' % (
            evac, evac)
    if verdict_at is not None:
        arrows += 'set arrow from %g, graph 0 to %g, graph 1 nohead lc rgb "#009900" dt 2\n' % (
            verdict_at, verdict_at)
    colors = {"us-east-1": "#1f77b4", "us-west-2": "#ff7f0e", "eu-west-1": "#2ca02c"}
    fault_name = args.scenario + (" (%s)" % args.brownout if args.scenario == "brownout" else "")
    title = "drill: %s at %.1f s, %s" % (
        fault_name, fault, "evacuation by sluicectl from %.1f s" % evac if evac is not None
        else "the detector on its own (mode auto)")
    top = """
set title "%(title)s"
set xlabel "second"
set ylabel "requests/s"
set y2label "%(victim)s evacuated (%%)"
set y2range [0:105]
set ytics nomirror
set y2tics
set key outside bottom center horizontal
set grid
%(arrows)s
plot %(starts)s, \\
     "" using 1:%(failovers)d with lines lw 1 dt 3 lc rgb "gray40" title "failed over to a savior (Isthmus)", \\
     "" using 1:($%(gf)d+$%(pf)d) with impulses lw 3 lc rgb "red" title "failed requests", \\
     "" using 1:%(evac)d axes x1y2 with steps lw 2 lc rgb "black" title "evacuated %%"
""" % {"title": title, "victim": args.victim, "arrows": arrows,
       "starts": ", \\\n     ".join(
           '%s using 1:%d with lines lw 2 lc rgb "%s" title "starts served by %s"' % (
               '"%s"' % csv_path if i == 0 else '""', col["starts_" + r], colors[r], r)
           for i, r in enumerate(REGIONS)),
       "failovers": col["failovers"], "gf": col["get_failed"], "pf": col["post_failed"],
       "evac": col["evacuated_pct"]}
    bottom = ""
    if detecting:
        # What the detector judged against what it expected: the expected lines first, so the
        # measured ones are drawn over them.
        bottom = """
unset arrow
unset y2label
unset y2tics
set title "stream starts per second as the detector sees them (dashed: expected from history)"
set ylabel "SPS"
%(arrows)s
plot %(lines)s
""" % {"arrows": arrows, "lines": ", \\\n     ".join(
            ['%s using 1:%d with lines lw 4 dt 2 lc rgb "%s" title "%s expected"' % (
                '"%s"' % csv_path if i == 0 else '""', col["expected_" + r], colors[r], r)
             for i, r in enumerate(REGIONS)] +
            ['"" using 1:%d with lines lw 2 lc rgb "%s" title "%s SPS"' % (
                col["sps_" + r], colors[r], r) for r in REGIONS])}
    script = """
set datafile separator ","
set datafile missing ""
set terminal pngcairo size 1200,%(height)d noenhanced
set output "%(png)s"
%(layout)s
%(top)s
%(bottom)s
""" % {"png": png, "height": 1100 if detecting else 700,
       "layout": "set multiplot layout 2,1" if detecting else "", "top": top,
       "bottom": bottom + ("unset multiplot\n" if detecting else "")}
    result = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if result.returncode != 0:
        print("gnuplot failed: %s" % result.stderr.strip())
    else:
        print("wrote %s and %s" % (csv_path, png))


if __name__ == "__main__":
    main()
