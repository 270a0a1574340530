#!/usr/bin/env python3
"""Savior capacity side by side: one region evacuated twice under the same steady load, once to
its two saviors with equal fixed weights and once with `"saviors": "auto"`, and what each savior
carried, shed and answered at every step against what `POST /v1/plans:preview` predicted.

Three regions on loopback (us-east-1, us-west-2, eu-west-1) in a fleet (one etcd, one sluice
node per region, one worker each). Each region's origins are three nginx servers, two regular
and one hot standby (`standby: true`), and each origin can serve only so many requests per
second: nginx `limit_req` at that rate, with a queue of a quarter of a second (`burst`), so a
busy origin first gets slower and then answers 429 to what it cannot take (counted as shed).
Each node's `capacity.requests_per_second` is what its two regular origins serve together (a
standby adds its share once injected), so the capacity sluice plans with is the real one.

The load (sluice_drill_load, open loop, GETs of many members, each member entering through its
own region) is --base requests/s into us-west-2 and into eu-west-1, and --factor times that into
us-east-1, the region evacuated. The saviors' capacities, with their standbys in:
  us-west-2  (the larger savior):  base + 2 x spare    (defaults: 100 + 500 = 600 rps)
  eu-west-1  (the smaller savior): base + spare        (defaults: 100 + 250 = 350 rps)
so the smaller savior has half the headroom of the larger one. spare is chosen (--spare, by
default 2.5 x base) so that the equal split takes the smaller savior to about 114% at 100%
while the split by capacity keeps both near 84%.

The run, on one load:
  1. warm up until every node reports its load and every region's capacity;
  2. fixed: preview {us-west-2: 50, eu-west-1: 50}; POST /v1/plans without force (refused with
     409 when sluice predicts the overload: recorded), then with "force": true; the saviors'
     standbys must be injected on every savior node before us-east-1's fraction first goes
     above 0; once it has, a second evacuation (eu-west-1 to us-west-2, sent to us-east-1's
     node) must get 409 naming us-east-1; the ramp is held at 100% for --measure seconds.
     A forced plan still preparing STUCK_AFTER seconds after every savior node serves its
     standbys is a sluice bug (reported as a missed target): it is aborted and the same ramp
     is driven by hand (standbys injected with POST /v1/regions/R/standbys/*:inject, the
     fraction set with PUT /v1/steering/regions/us-east-1), so the overload is still measured;
  3. restore us-east-1 (a restore plan); the saviors' standbys must be taken out
     (injected_endpoints 0, the standby endpoints back; by hand after a ramp by hand); the
     saviors' load settles back to their own;
  4. auto: the same with "saviors": "auto" (expected to be accepted without force), then
     restored.
Ramps: 10, 25, 50, 100% holding --hold seconds (8); --quick: 10, 50, 100% holding 4 s, 6 s at
100%; a quick run takes about a minute, a full one under two.
Each step is measured per savior on its node, between --settle seconds after the step and the
next one: the requests its origins took per second (sluice_requests_total of the local
cluster, shed ones included), the shed rate (429s from the origins over those), the p99 at the
savior's sluice (sluice_request_duration_seconds, interpolated in its bucket), and the client
errors (requests the load generator saw fail, by the sluice-region that answered).

Targets (--quick: looser bounds, shorter steps):
  preview_error_pct <= 10 (quick 15): the largest |measured - predicted| / predicted of a
    savior's load at the last step, over both runs;
  auto: shed <= 0.5% (quick 1%) and every savior at most 100% utilized (measured; the preview
    too, and the plan accepted without force);
  fixed: the smaller savior past 100% (measured) and shedding (>= 2% of its requests at 100%);
  a second evacuation during each: 409 naming the region being evacuated;
  the fixed plan refused without force (409), and with force ramping by itself;
  standbys injected on every savior node before the first step, taken out by the restore,
  and the standby origins serving during the ramp.
The last line of the output is machine-readable, whatever happened:
  capacity: preview_error_pct=E shed_pct_auto=A shed_pct_fixed=F max_util_auto=U1
            max_util_fixed=U2 second_evacuation=S
(on one line; shed_pct: of the requests the saviors' origins took from the first step to the
end of the 100% hold; max_util: the busiest savior's measured load over its real capacity at
100%; S: the HTTP status of the second evacuation during the first (fixed) run; "-" for what
was not measured). The exit status is 0 when every target was met. --out DIR also writes the
report to DIR/capacity.txt and every step's figures to DIR/capacity.csv.

Usage: bench/capacity.py [--sluice build/proxy/sluice] [--sluicectl build/ctl/sluicectl]
                         [--load build/bench/sluice_drill_load] [--out DIR] [--quick]
                         [--base 100] [--factor 6] [--spare 250] [--hold 8] [--measure 10]
Needs etcd (etcd-server) and nginx (nginx-light). Loopback only, free ports, every process
stopped by its PID, the temporary directory removed (--keep keeps it, with the logs).
"""

import argparse
import collections
import http.client
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from sluicetest import admin, debian, metrics
from sluicetest.etcd import Etcd
from sluicetest.nginx import Nginx
from sluicetest.process import ROOT, Sluice, free_port, wait_for_port, wait_until
from sluicetest.secret_files import write_secrets

EVACUATED, LARGE, SMALL = "us-east-1", "us-west-2", "eu-west-1"
REGIONS = (EVACUATED, LARGE, SMALL)
SAVIORS = (LARGE, SMALL)
SHORT = {EVACUATED: "use1", LARGE: "usw2", SMALL: "euw1"}
PACKAGES = {"etcd": "etcd-server", "nginx": "nginx-light"}
TOKEN = secrets.token_hex(24)  # a fresh one each run
STANDBYS_PER_NODE = 1
FRACTION = re.compile(r"^([0-9.]+)%$")
# A forced plan that has not taken its first step this long after every savior node serves its
# standbys is stuck (the plan rechecks its saviors every second).
STUCK_AFTER = 5.0


class Targets:
    """The bounds a run must meet; --quick's are looser (shorter windows, more noise)."""

    def __init__(self, quick):
        self.preview_error_pct = 15.0 if quick else 10.0
        self.shed_pct_auto = 1.0 if quick else 0.5
        self.min_shed_pct_small_fixed = 2.0
        self.max_util_auto = 1.0
        self.min_util_fixed = 1.0


# ---------------------------------------------------------------------------------------------
# The topology


def origin_rates(args):
    """Requests per second one origin of each region serves (3 per region: 2 regular, 1
    standby): the evacuated region's regular origins alone carry its load with room to spare;
    the saviors' three carry base + 2 x spare (the larger) and base + spare (the smaller)."""
    return {EVACUATED: args.base * args.factor * 0.75,
            LARGE: (args.base + 2 * args.spare) / 3.0,
            SMALL: (args.base + args.spare) / 3.0}


def real_capacity(args, region, injected=True):
    """What a region's origins can serve, in requests/s (with or without its standby)."""
    return origin_rates(args)[region] * (3 if injected else 2)


def origin(work, name, port, region, rate):
    """An nginx origin that serves `rate` requests/s: nginx's limit_req, with a queue (burst)
    of a quarter of a second of requests, 429 beyond it; /health and /nginx_status unlimited.
    The body is a static file, served in nginx's content phase (after limit_req: a `return`
    would answer before the limit is applied)."""
    www = os.path.join(work, name, "www")
    os.makedirs(www, exist_ok=True)
    os.chmod(www, 0o755)  # nginx's worker runs as nobody when started as root
    with open(os.path.join(www, "body.txt"), "w") as f:
        f.write(region + "\n")
    os.chmod(os.path.join(www, "body.txt"), 0o644)
    per_minute = max(1, int(round(rate * 60)))
    burst = max(5, int(round(rate / 4)))
    http = "limit_req_zone $server_port zone=capacity:1m rate=%dr/m;" % per_minute
    server = """
    listen 127.0.0.1:%(port)d reuseport;
    location = /health { return 200 "ok\\n"; }
    location = /nginx_status { stub_status; }
    location / {
      limit_req zone=capacity burst=%(burst)d;
      limit_req_status 429;
      add_header X-Origin-Region %(region)s always;
      root %(www)s;
      try_files /body.txt =404;
    }
  """ % {"port": port, "burst": burst, "region": region, "www": www}
    return Nginx(work, name, server, upstream=http, port=port, worker_connections=4096,
                 rlimit_nofile=None, error_level="crit").start()


def sluice_config(args, region, ports, origin_ports, admin_port, work, etcd_url):
    """One node: its region's three origins (the third a standby), the capacity its two regular
    origins serve, steering with equal default saviors, a fleet on `etcd_url`."""
    regions = "".join(
        "    %s:\n      tunnel: [127.0.0.1:%d]\n      saviors: {%s}\n" % (
            r, ports[r], ", ".join("%s: 50" % o for o in REGIONS if o != r)) for r in REGIONS)
    regular, standby = origin_ports[:2], origin_ports[2]
    return """
workers: 1
log_level: warn
listeners: [{address: 127.0.0.1:%(port)d}]
clusters:
  - name: app
    endpoints: [%(regular)s, {address: 127.0.0.1:%(standby)d, standby: true}]
    connect_timeout: 500ms
    health_check: {path: /health, interval: 1s, timeout: 500ms, rise: 2, fall: 2}
    # An origin at its capacity answers 429, which is no failure; nothing here should eject.
    outlier_detection: {consecutive_failures: 0}
routes:
  - cluster: app
proxy:
  trust_client_headers: true  # the clients here stand for the apps' own gateway
steering:
  local_region: %(region)s
  misrouted: serve_local
  member_id: [{header: x-member-id}]
  tunnel: {insecure: true, key_file: %(work)s/tunnel.key, http2: true}
  regions:
%(regions)s
admin:
  address: 127.0.0.1:%(admin)d
  tokens: [{name: capacity-bench, role: admin, token_file: %(work)s/admin.token}]
controller:
  state_file: %(work)s/%(region)s.state.json
  audit_log: %(work)s/%(region)s.audit.jsonl
  gates: {window: 10s, recheck: 1s, health_interval: 1s}
fleet:
  etcd: {endpoints: [%(etcd)s]}
  prefix: /sluice/capacity/
  node: capacity-%(region)s
  lease_ttl: 4s
  publish_interval: 500ms
capacity: {requests_per_second: %(capacity).3f, headroom: 1.0}
""" % {"port": ports[region], "regular": ", ".join("127.0.0.1:%d" % p for p in regular),
       "standby": standby, "region": region, "work": work, "regions": regions,
       "admin": admin_port, "etcd": etcd_url,
       "capacity": real_capacity(args, region, injected=False)}


# ---------------------------------------------------------------------------------------------
# What the nodes and the clients say


def fraction_of(text):
    """'12.5%' -> 12.5; anything else -> None."""
    m = FRACTION.match(str(text))
    return float(m.group(1)) if m else None


class Watch(threading.Thread):
    """Ten times a second: us-east-1's fraction as the evacuated region's node sees it (GET
    /v1/steering: its members enter there), and each savior node's capacity (GET /v1/health).
    Twice a second: every node's /metrics (the counters the report needs) and the standby origins'
    request counts (nginx stub_status). Times are seconds since the run started (`started`)."""

    def __init__(self, admin_ports, standby_ports, started):
        super().__init__(daemon=True)
        self.admin_ports = admin_ports
        self.standby_ports = standby_ports
        self.started = started
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.fractions = []  # (t, node, fraction %)
        self.capacity = []  # (t, node, the capacity object of /v1/health)
        self.samples = {r: [] for r in REGIONS}  # node -> [(t, Counter)]
        self.standby = {r: [] for r in SAVIORS}  # region -> [(t, requests at its standby)]
        self.errors = collections.Counter()
        self.first_moved = None  # (t, node): us-east-1's fraction above 0 seen first
        self.injected_seen = {}  # node -> first t it reported injected endpoints (this run)

    def now(self):
        return time.monotonic() - self.started

    def run(self):
        next_scrape = 0.0
        while not self.stopping.is_set():
            began = self.now()
            try:
                self.poll()
                if began >= next_scrape:
                    next_scrape = began + 0.5
                    self.scrape()
            except Exception as e:  # noqa: BLE001 - counted, never the end of the watch
                self.errors["watch: %s" % type(e).__name__] += 1
            self.stopping.wait(max(0.0, 0.1 - (self.now() - began)))

    def poll(self):
        # Savior capacity first: an injection seen in this round was seen before a fraction
        # seen in it.
        for node in SAVIORS:
            try:
                status, body = admin.call(self.admin_ports[node], "GET", "/v1/health", TOKEN,
                                          timeout=2)
            except (OSError, http.client.HTTPException):
                status, body = 0, None
            t = self.now()
            if status != 200 or not isinstance(body, dict):
                self.errors["health " + node] += 1
                continue
            cap = body.get("capacity") or {}
            with self.lock:
                self.capacity.append((t, node, cap))
                if cap.get("injected_endpoints", 0) > 0 and node not in self.injected_seen:
                    self.injected_seen[node] = t
        for node in (EVACUATED,):
            try:
                status, body = admin.call(self.admin_ports[node], "GET", "/v1/steering", TOKEN,
                                          timeout=2)
            except (OSError, http.client.HTTPException):
                status, body = 0, None
            t = self.now()
            if status != 200 or not isinstance(body, dict):
                self.errors["steering " + node] += 1
                continue
            f = fraction_of(((body.get("regions") or {}).get(EVACUATED) or {}).get("fraction"))
            if f is None:
                self.errors["fraction " + node] += 1
                continue
            with self.lock:
                self.fractions.append((t, node, f))
                if f > 0 and self.first_moved is None:
                    self.first_moved = (t, node)

    def scrape(self):
        for node, port in self.admin_ports.items():
            try:
                text = admin.scrape(port, timeout=2)
                sample = counters(text)
            except (OSError, ValueError, http.client.HTTPException):
                self.errors["metrics " + node] += 1
                continue
            with self.lock:
                self.samples[node].append((self.now(), sample))
        for region, port in self.standby_ports.items():
            try:
                n = stub_requests(port)
            except (OSError, ValueError, IndexError, http.client.HTTPException):
                self.errors["stub_status " + region] += 1
                continue
            with self.lock:
                self.standby[region].append((self.now(), n))

    def arm(self):
        """A new evacuation: forget the last one's first step and injections."""
        with self.lock:
            self.first_moved = None
            self.injected_seen = {}

    def latest_capacity(self, node):
        with self.lock:
            for t, n, cap in reversed(self.capacity):
                if n == node:
                    return t, cap
        return None, {}

    def fraction(self, node=EVACUATED):
        with self.lock:
            for t, n, f in reversed(self.fractions):
                if n == node:
                    return f
        return None

    def stop(self):
        self.stopping.set()
        self.join(10)


def stub_requests(port):
    """The `requests` count of an nginx origin's stub_status."""
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/nginx_status" % port, timeout=2) as r:
        lines = r.read().decode().splitlines()
    return int(lines[2].split()[2])


def counters(text):
    """What the report needs from one node's /metrics: requests at its local origins by code
    class and decision, and the request duration buckets (summed over routes)."""
    out = collections.Counter()
    for name, labels, value in metrics.samples(text):
        labels = dict(labels)
        if name == "sluice_requests_total" and labels.get("cluster") == "app":
            out[("app", labels.get("code", ""), labels.get("decision", ""))] += value
        elif name == "sluice_request_duration_seconds_bucket":
            out[("le", labels["le"])] += value
        elif name == "sluice_steering_requests_total":
            out[("steering", labels.get("outcome", ""), labels.get("region", ""))] += value
    return out


def window(samples, start, end):
    """The first sample at or after `start` and the last at or before `end`: (t0, c0, t1, c1),
    or None when the window holds fewer than two."""
    inside = [(t, c) for t, c in samples if start <= t <= end]
    if len(inside) < 2:
        return None
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return t0, c0, t1, c1


def p99_ms(before, after):
    """The 99th percentile of the requests between two samples, from the duration histogram
    (interpolated linearly in its bucket); None without requests."""
    bounds = sorted(((float(key[1]) if key[1] != "+Inf" else math.inf),
                     after[key] - before.get(key, 0)) for key in after if key[0] == "le")
    if not bounds or bounds[-1][1] <= 0:
        return None
    total = bounds[-1][1]
    rank = 0.99 * total
    lower, below = 0.0, 0.0
    for bound, cumulative in bounds:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower * 1000
            share = (rank - below) / max(cumulative - below, 1e-9)
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, cumulative
    return lower * 1000


class Clients:
    """The load generator's lines: per second, requests by served region and outcome, and the
    latency of the successful ones."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.defaultdict(collections.Counter)  # second -> (served, outcome)
        self.latency = {}  # second -> (p50, p99, max) ms
        self.totals = collections.Counter()
        self.offset = 0.0  # when the load started, in the run's seconds

    def read(self, stream):
        for line in stream:
            fields = line.decode().strip().split(",")
            with self.lock:
                if fields[0] == "c" and len(fields) == 7:
                    second, _, _, outcome, served, n = fields[1:]
                    self.counts[int(second)][(served, outcome)] += int(n)
                    self.totals[outcome] += int(n)
                elif fields[0] == "l" and len(fields) == 5:
                    self.latency[int(fields[1])] = tuple(float(x) for x in fields[2:5])

    def between(self, start, end):
        """(requests, failed) by served region over the load's whole seconds inside [start,
        end) (times of the run: `offset` is when the load started), and the worst per-second
        p99 of the successful ones."""
        total, failed = collections.Counter(), collections.Counter()
        p99 = 0.0
        start, end = start - self.offset, end - self.offset
        with self.lock:
            for second in range(int(math.ceil(start)), int(math.floor(end))):
                for (served, outcome), n in self.counts.get(second, {}).items():
                    total[served] += n
                    if outcome != "ok":
                        failed[served] += n
                p99 = max(p99, self.latency.get(second, (0, 0, 0))[1])
        return total, failed, p99


# ---------------------------------------------------------------------------------------------
# One evacuation


class Run:
    """One evacuation of us-east-1 and what was measured of it."""

    def __init__(self, name, saviors):
        self.name = name  # "fixed" or "auto"
        self.saviors = saviors  # the body's "saviors"
        self.preview = None
        self.unforced = None  # (status, body) of the POST without force
        self.forced = None  # (status, body) of the POST with force, when it was needed
        self.plan_id = None
        self.steps = []  # [(fraction %, start t, end t)]
        self.ramp_start = self.ramp_end = None
        self.injected_before_first_step = {}  # node -> (seen t, first step t) or None
        self.first_step = None
        self.started_at = None
        self.restored = None  # (ok, what the savior nodes said)
        self.second = None  # (status, body) of the second evacuation tried during it
        self.rows = []  # per step and savior: dict
        self.standby_rps = {}  # region -> requests/s its standby origin took at 100%
        self.stuck = None  # the forced plan's gate message when it never ramped (a sluice bug)
        self.by_hand = False  # the ramp was driven by hand (the fallback for a stuck plan)
        self.hand_error = None
        self.client_ramp = None  # (requests, failed, worst p99 ms) from the first step to the end

    def prediction(self, region):
        for s in (self.preview or {}).get("saviors", []):
            if s.get("region") == region:
                return s
        return {}


def plan_body(args, saviors, force=False):
    body = {"kind": "evacuate", "region": EVACUATED, "saviors": saviors,
            "ramp": ["%g%%" % s for s in args.steps], "hold": "%gs" % args.hold}
    if force:
        body["force"] = True
    return body


def api(port, method, path, body=None, timeout=10):
    try:
        return admin.call(port, method, path, TOKEN, body=body, timeout=timeout)
    except (OSError, http.client.HTTPException) as e:
        return 0, {"error": "no answer: %s" % e}


def evacuate(args, run, admin_ports, watch, clients, log):
    """Previews and starts the evacuation of `run`, watches its ramp, tries a second evacuation
    during it, holds 100% for --measure seconds, and measures each step.

    A plan started with force (past a savior's predicted capacity) that is still preparing
    once every savior node serves its standbys (no first step within STUCK_AFTER seconds) is
    recorded as stuck, aborted, and the same ramp is driven by hand (standbys injected through
    the region standbys endpoint, the fraction set step by step with PUT), so the overload is
    still measured."""
    node = admin_ports[LARGE]  # any node answers: plans go to the larger savior's
    body = plan_body(args, run.saviors)
    status, preview = api(node, "POST", "/v1/plans:preview", body)
    if status != 200 or not isinstance(preview, dict):
        raise RuntimeError("%s: preview answered %s: %s" % (run.name, status, preview))
    run.preview = preview
    log("%s: preview: max utilization %s (%s), would refuse: %s, weights %s" % (
        run.name, preview.get("max_utilization"), preview.get("busiest"),
        preview.get("would_refuse"), json.dumps(preview.get("saviors_weights"))))
    # What an operator sees of the same plan.
    to = "auto" if run.saviors == "auto" else ",".join(
        "%s=%s" % kv for kv in sorted(run.saviors.items()))
    code, said = sluicectl(args, node, "evacuate", EVACUATED, "--to", to, "--ramp",
                           ",".join("%g" % s for s in args.steps), "--hold",
                           "%gs" % args.hold, "--dry-run")
    log("%s: sluicectl evacuate %s --to %s --dry-run (exit %d):\n    %s" % (
        run.name, EVACUATED, to, code, "\n    ".join(said.splitlines())))
    watch.arm()
    status, answer = api(node, "POST", "/v1/plans", body)
    run.unforced = (status, answer)
    if status == 409:
        log("%s: refused without force: 409 %s" % (run.name, answer.get("error", answer)
                                                   if isinstance(answer, dict) else answer))
        status, answer = api(node, "POST", "/v1/plans", plan_body(args, run.saviors, True))
        run.forced = (status, answer)
        log("%s: started with force: %s" % (run.name, status))
    if status != 201 or not isinstance(answer, dict):
        raise RuntimeError("%s: POST /v1/plans answered %s: %s" % (run.name, status, answer))
    plan = answer.get("plan") or {}
    run.plan_id = plan.get("id")
    run.started_at = watch.now()
    log("%s: plan %s started (saviors %s, injected %s)" % (
        run.name, run.plan_id, json.dumps(plan.get("saviors")), plan.get("injected")))

    last = args.steps[-1]
    deadline = watch.now() + 45 + len(args.steps) * (args.hold + 5)
    second_tried = False
    by_hand = None
    checked = 0.0  # when the forced plan's state was last asked for
    while True:
        now = watch.now()
        if now > deadline:
            raise RuntimeError("%s: us-east-1 did not reach %g%% in time (at %s%%)" % (
                run.name, last, watch.fraction()))
        if watch.first_moved is not None and run.first_step is None:
            run.first_step = watch.first_moved[0]
        if run.first_step is not None and not second_tried:
            second_tried = True
            run.second = second_evacuation(admin_ports, run, log)
        f = watch.fraction()
        if f is not None and f >= last:
            break
        with watch.lock:
            all_in = len(watch.injected_seen) == len(SAVIORS) and \
                max(watch.injected_seen.values())
        if run.forced and by_hand is None and run.first_step is None and all_in and \
                now - all_in > STUCK_AFTER and now - checked >= 1.0:
            checked = now
            status, body = api(node, "GET", "/v1/plans/%s" % run.plan_id)
            p = (body or {}).get("plan") or {} if isinstance(body, dict) else {}
            if p.get("preparing") and p.get("step", -1) < 0:
                run.stuck = p.get("gate_message") or p.get("state")
                log("%s: SLUICE BUG: the forced plan %s still prepares %.1f s after every "
                    "savior node serves its standbys: %s %s" % (
                        run.name, run.plan_id, now - all_in, p.get("state"), run.stuck))
                by_hand = threading.Thread(target=ramp_by_hand,
                                           args=(args, run, admin_ports, watch, log),
                                           daemon=True)
                by_hand.start()
        if by_hand is not None and not by_hand.is_alive() and run.hand_error:
            raise RuntimeError("%s: the ramp by hand failed: %s" % (run.name, run.hand_error))
        time.sleep(0.05)
    reached = watch.now()
    time.sleep(args.measure)
    run.ramp_end = watch.now()
    with watch.lock:
        fractions = [(t, f) for t, n, f in watch.fractions if n == EVACUATED and
                     t >= run.started_at]
        seen = dict(watch.injected_seen)
    # The steps as the evacuated region's node applied them.
    steps = []
    for t, f in fractions:
        if f > 0 and (not steps or steps[-1][0] != f):
            steps.append([f, t, None])
    for i in range(len(steps) - 1):
        steps[i][2] = steps[i + 1][1]
    if steps:
        steps[-1][2] = run.ramp_end
    run.steps = [tuple(s) for s in steps]
    run.ramp_start = run.first_step
    for node in SAVIORS:
        run.injected_before_first_step[node] = (seen.get(node), run.first_step)
    log("%s: us-east-1 at %g%% %.1f s after the plan started%s; steps seen: %s" % (
        run.name, last, reached - run.started_at, " (by hand)" if by_hand else "",
        ", ".join("%g%% at %.1f s" % (f, t) for f, t, _ in run.steps)))
    measure(args, run, watch, clients)


def ramp_by_hand(args, run, admin_ports, watch, log):
    """The fallback for a forced plan that does not ramp: abort it, inject the saviors' standbys
    through the admin API, wait until every savior node serves them, then set us-east-1's
    fraction step by step (PUT /v1/steering/regions/us-east-1), holding --hold seconds each."""
    port = admin_ports[LARGE]
    try:
        run.by_hand = True
        status, body = api(port, "DELETE", "/v1/plans/%s" % run.plan_id)
        log("%s: plan %s aborted: %s" % (run.name, run.plan_id, status))
        watch.arm()
        for savior in SAVIORS:
            status, body = api(port, "POST", "/v1/regions/%s/standbys/*:inject" % savior)
            if status != 200:
                raise RuntimeError("inject %s: %s %s" % (savior, status, body))
        if not wait_until(lambda: len(watch.injected_seen) == len(SAVIORS), 20, 0.05):
            raise RuntimeError("the standbys injected by hand did not show on every savior node")
        log("%s: standbys injected by hand on every savior node" % run.name)
        for i, step in enumerate(args.steps):
            change = {"fraction": "%g%%" % step}
            if i == 0:
                change["saviors"] = run.saviors
            status, body = api(port, "PUT", "/v1/steering/regions/%s" % EVACUATED, change)
            if status != 200:
                raise RuntimeError("PUT %s: %s %s" % (change, status, body))
            if i + 1 < len(args.steps):
                time.sleep(args.hold)
    except RuntimeError as e:
        run.hand_error = str(e)


def second_evacuation(admin_ports, run, log):
    """Another region evacuated while us-east-1's plan runs: must be refused (409, naming
    us-east-1). Sent to another node than the one that started the plan, with a savior that has
    room, so only the one-region-at-a-time rule can refuse it. Aborted at once if it starts."""
    body = {"kind": "evacuate", "region": SMALL, "saviors": {LARGE: 100}, "ramp": ["10%"],
            "hold": "1s"}
    status, answer = api(admin_ports[EVACUATED], "POST", "/v1/plans", body)
    message = answer.get("error", "") if isinstance(answer, dict) else str(answer)
    log("%s: a second evacuation (%s) during it: %s %s" % (run.name, SMALL, status, message))
    if status == 201:
        plan = (answer.get("plan") or {}).get("id")
        api(admin_ports[EVACUATED], "DELETE", "/v1/plans/%s" % plan)
        api(admin_ports[EVACUATED], "POST", "/v1/plans",
            {"kind": "restore", "region": SMALL, "ramp": ["0%"], "hold": "0s", "force": True})
    return status, message


def add_client_figures(runs, clients):
    """The clients' view of each measured window (once the load has ended: its lines come once
    a second): requests answered by each savior, those that failed, the worst p99."""
    for r in runs:
        for row in r.rows:
            total, failed, p99 = clients.between(row["from"], row["to"])
            row["client_requests"] = total.get(row["savior"], 0)
            row["client_failed"] = failed.get(row["savior"], 0)
            row["client_p99_ms"] = p99
        if r.steps:
            total, failed, p99 = clients.between(r.steps[0][1], r.ramp_end)
            r.client_ramp = (sum(total.values()), sum(failed.values()), p99)


def measure(args, run, watch, clients):
    """Per step and savior: load, shed, p99 at the savior's sluice, client errors; the
    prediction of the preview beside them."""
    with watch.lock:
        samples = {n: list(s) for n, s in watch.samples.items()}
        standby = {r: list(s) for r, s in watch.standby.items()}
    for index, (fraction, start, end) in enumerate(run.steps):
        step_index = args.steps.index(fraction) if fraction in args.steps else None
        a, b = start + args.settle, end
        for node in SAVIORS:
            row = {"step": fraction, "savior": node, "from": a, "to": b}
            w = window(samples[node], a, b)
            if w is None:
                row["missing"] = True
                run.rows.append(row)
                continue
            t0, c0, t1, c1 = w
            span = t1 - t0
            served = {k: c1[k] - c0.get(k, 0) for k in c1 if k[0] == "app"}
            # What the evacuated region's node sent this savior (over its own window).
            wa = window(samples[EVACUATED], a, b)
            if wa is not None:
                ta0, ca0, ta1, ca1 = wa
                key = ("steering", "tunneled_out", node)
                row["sent_rps"] = (ca1.get(key, 0) - ca0.get(key, 0)) / (ta1 - ta0)
            requests = sum(served.values())
            shed = sum(v for k, v in served.items() if k[1] == "4xx")
            tunneled = sum(v for k, v in served.items() if k[2] == "tunneled_in")
            row.update({
                "span": span, "load_rps": requests / span, "in_rps": tunneled / span,
                "shed_rps": shed / span, "requests": requests, "shed": shed,
                "shed_pct": 100.0 * shed / requests if requests else 0.0,
                "p99_ms": p99_ms(c0, c1),
                "capacity_rps": real_capacity(args, node)})
            row["utilization"] = row["load_rps"] / row["capacity_rps"]
            p = run.prediction(node)
            if p and step_index is not None:
                extra = p.get("extra_rps") or []
                util = p.get("utilization") or []
                if step_index < len(extra) and extra[step_index] is not None:
                    row["predicted_rps"] = (p.get("load_rps") or 0) + extra[step_index]
                if step_index < len(util):
                    row["predicted_util"] = util[step_index]
            if "predicted_rps" in row and row["predicted_rps"] > 0:
                row["error_pct"] = 100.0 * abs(row["load_rps"] - row["predicted_rps"]) / \
                    row["predicted_rps"]
            run.rows.append(row)
    if run.steps:
        _, start, end = run.steps[-1]
        for region, series in standby.items():
            inside = [(t, n) for t, n in series if start + args.settle <= t <= end]
            if len(inside) >= 2:
                (t0, n0), (t1, n1) = inside[0], inside[-1]
                # Minus what the stub_status polls (2/s) and the health checks (1/s) asked.
                run.standby_rps[region] = max(0.0, (n1 - n0) / (t1 - t0) - 3.0)


def sluicectl(args, admin_port, *command):
    """sluicectl against one node: (exit status, what it printed)."""
    cmd = [args.sluicectl_bin, "--admin", "http://127.0.0.1:%d" % admin_port, "--token-file",
           args.token_file] + list(command)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    return result.returncode, (result.stdout + result.stderr).strip()


def restore(args, run, admin_ports, watch, log):
    """Restores us-east-1 as an operator would (sluicectl restore) and waits until the savior
    nodes no longer serve with their standbys: injected_endpoints 0 and the standby endpoints
    back. Sets run.restored."""
    command = ["restore", EVACUATED, "--ramp", "50,0", "--hold", "%gs" % args.restore_hold]
    code, said = sluicectl(args, admin_ports[LARGE], *command)
    if code != 0:
        # The evacuation's plan may still be active (holding 100% until its last hold ends).
        code, said = sluicectl(args, admin_ports[LARGE], *(command + ["--force"]))
    if code != 0:
        raise RuntimeError("%s: sluicectl restore exited %d: %s" % (run.name, code, said))
    log("%s: sluicectl %s: %s" % (run.name, " ".join(command), said.splitlines()[0]
                                  if said else "(nothing printed)"))
    if not wait_until(lambda: watch.fraction() == 0, 20 + 2 * args.restore_hold, 0.05):
        raise RuntimeError("%s: us-east-1 not back to 0%% after the restore" % run.name)
    back_at = watch.now()
    if run.by_hand:
        # The restore takes out the standbys of the evacuation plan that ramped; the ones
        # injected by hand come out by hand.
        for savior in SAVIORS:
            status, body = api(admin_ports[LARGE], "POST",
                               "/v1/regions/%s/standbys/*:uninject" % savior)
            if status != 200:
                raise RuntimeError("uninject %s: %s %s" % (savior, status, body))

    def out():
        said = {}
        for node in SAVIORS:
            t, cap = watch.latest_capacity(node)
            if t is None or t < back_at:
                return None
            said[node] = cap
        if all(c.get("injected_endpoints") == 0 and
               c.get("standby_endpoints") == STANDBYS_PER_NODE for c in said.values()):
            return said
        return None
    said = wait_until(out, 10, 0.1)
    if said:
        run.restored = (True, "by hand" if run.by_hand else "")
        log("%s: restored; standbys out on every savior node %.1f s after 0%%" % (
            run.name, watch.now() - back_at))
    else:
        last = {n: watch.latest_capacity(n)[1] for n in SAVIORS}
        run.restored = (False, "; ".join(
            "%s: injected_endpoints %s, standby_endpoints %s, standbys %s" % (
                n, c.get("injected_endpoints"), c.get("standby_endpoints"), c.get("standbys"))
            for n, c in last.items()))
        log("%s: restored, but the standbys are still in: %s" % (run.name, run.restored[1]))


def wait_settled(args, admin_ports, watch, log, what):
    """Waits until each savior's load_rps (a 5 s window) is back near its own load and every
    region's capacity is known, so the next preview starts from the steady state."""
    expected = {LARGE: args.base, SMALL: args.base}

    def settled():
        status, health = api(admin_ports[LARGE], "GET", "/v1/health")
        if status != 200:
            return False
        caps = health.get("regions_capacity") or {}
        if not all(caps.get(r, {}).get("capacity_rps") for r in REGIONS):
            return False
        return all(abs((caps[r].get("load_rps") or 0) - expected[r]) <= 0.1 * expected[r]
                   for r in SAVIORS)
    time.sleep(args.settle_after)
    if not wait_until(settled, 30, 0.25):
        status, health = api(admin_ports[LARGE], "GET", "/v1/health")
        raise RuntimeError("%s: the saviors' load did not settle: %s" % (
            what, json.dumps((health or {}).get("regions_capacity") if isinstance(
                health, dict) else health)))
    log("%s: steady (every region's capacity known, the saviors at their own load)" % what)


# ---------------------------------------------------------------------------------------------
# The whole run


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=os.path.join(ROOT, "build/proxy/sluice"))
    parser.add_argument("--sluicectl", default=os.path.join(ROOT, "build/ctl/sluicectl"))
    parser.add_argument("--load", default=os.path.join(ROOT, "build/bench/sluice_drill_load"))
    parser.add_argument("--out", default=None, help="also write the report to DIR/capacity.txt")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~1-2 min)")
    parser.add_argument("--base", type=float, default=100,
                        help="requests/s entering each savior region (100)")
    parser.add_argument("--factor", type=float, default=6,
                        help="the evacuated region's load, in multiples of --base (6)")
    parser.add_argument("--spare", type=float, default=None,
                        help="the smaller savior's headroom in requests/s (2.5 x --base)")
    parser.add_argument("--hold", type=float, default=None, help="seconds per step (8; quick 4)")
    parser.add_argument("--measure", type=float, default=None,
                        help="seconds held at 100%% before the restore (10; quick 6)")
    parser.add_argument("--members", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--install", action="store_true", help="apt-get install what is missing")
    args = parser.parse_args()
    if args.spare is None:
        args.spare = 2.5 * args.base
    if args.hold is None:
        args.hold = 4.0 if args.quick else 8.0
    if args.measure is None:
        args.measure = 6.0 if args.quick else 10.0
    args.steps = [10.0, 50.0, 100.0] if args.quick else [10.0, 25.0, 50.0, 100.0]
    args.settle = 1.5 if args.quick else 2.0  # seconds of a step not measured (the change)
    args.settle_after = 5.5  # the load window (5 s) after a restore
    args.restore_hold = 1.0
    args.warmup = 6.0 if args.quick else 8.0
    if args.hold <= args.settle + 1:
        parser.error("--hold must be more than %g s" % (args.settle + 1))
    return args


class Report:
    """What is printed: kept too, for --out."""

    def __init__(self):
        self.lines = []
        self.started = time.monotonic()
        self.runs = []  # the evacuations, for the CSV

    def __call__(self, text):
        line = "[%6.1f s] %s" % (time.monotonic() - self.started, text)
        self.lines.append(line)
        print(line, flush=True)

    def out(self, text=""):
        self.lines.append(text)
        print(text, flush=True)


def snapshot_binaries(args, work, log):
    """Copies the three binaries into `work` (a rebuild beside the run cannot change them under
    it), waiting up to 3 minutes for one that is missing or being written."""
    copies = {}
    for name in ("sluice", "sluicectl", "load"):
        path = os.path.abspath(getattr(args, name))
        target = os.path.join(work, "bin", os.path.basename(path))
        os.makedirs(os.path.dirname(target), exist_ok=True)

        def copied():
            if not os.access(path, os.X_OK):
                return False
            before = os.stat(path)
            if time.time() - before.st_mtime < 2:
                return False  # still being linked
            shutil.copy2(path, target)
            after = os.stat(path)
            return (before.st_mtime, before.st_size) == (after.st_mtime, after.st_size)
        if not wait_until(copied, 180, 1.0):
            raise SystemExit("%s is not built (or keeps changing)" % path)
        copies[name] = target
    check = subprocess.run([copies["sluice"], "--version"], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
    if check.returncode != 0:
        log("note: %s --version exited %d" % (copies["sluice"], check.returncode))
    return copies


def main():
    args = parse_args()
    report = Report()
    result = {"preview_error_pct": None, "shed_pct_auto": None, "shed_pct_fixed": None,
              "max_util_auto": None, "max_util_fixed": None, "second_evacuation": None}
    code = 1
    try:
        code = run(args, report, result)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        report.out("capacity run failed: %s" % e)
    except Exception:  # a bug here: still the last line
        report.out(traceback.format_exc().rstrip())
    except SystemExit as e:
        if e.code not in (None, 0):
            report.out(e.code if isinstance(e.code, str) else "failed (exit %s)" % e.code)
    report.out(last_line(result))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "capacity.txt"), "w") as f:
            f.write("\n".join(report.lines) + "\n")
        write_csv(os.path.join(args.out, "capacity.csv"), report.runs)
    sys.exit(code)


CSV_COLUMNS = ("run", "step", "savior", "from", "to", "load_rps", "predicted_rps", "error_pct",
               "utilization", "predicted_util", "capacity_rps", "in_rps", "sent_rps", "shed_rps",
               "shed_pct",
               "p99_ms", "client_requests", "client_failed", "client_p99_ms")


def write_csv(path, runs):
    """One line per run, step and savior: what the table shows, unrounded."""
    with open(path, "w") as f:
        f.write(",".join(CSV_COLUMNS) + "\n")
        for r in runs:
            for row in r.rows:
                values = dict(row, run=r.name)
                f.write(",".join("" if values.get(c) is None else
                                 ("%.4f" % values[c] if isinstance(values[c], float)
                                  else str(values[c])) for c in CSV_COLUMNS) + "\n")


def last_line(result):
    def fmt(key, spec):
        v = result[key]
        return "-" if v is None else spec % v
    return ("capacity: preview_error_pct=%s shed_pct_auto=%s shed_pct_fixed=%s max_util_auto=%s "
            "max_util_fixed=%s second_evacuation=%s" % (
                fmt("preview_error_pct", "%.1f"), fmt("shed_pct_auto", "%.2f"),
                fmt("shed_pct_fixed", "%.2f"), fmt("max_util_auto", "%.2f"),
                fmt("max_util_fixed", "%.2f"), fmt("second_evacuation", "%d")))


def run(args, log, result):
    if args.install:
        debian.install_missing(PACKAGES, recommends=False)
    debian.require(PACKAGES)
    work = tempfile.mkdtemp(prefix="sluice-capacity-")
    # Others may pass through (nginx's workers reach their files); the secrets are 0600.
    os.chmod(work, 0o711)
    write_secrets(work, (("admin.token", TOKEN), ("tunnel.key", secrets.token_hex(32))))
    etcd = None
    origins = {r: [] for r in REGIONS}
    nodes = {}
    load = watch = reader = None
    clients = Clients()
    runs = log.runs
    ok = False
    try:
        binaries = snapshot_binaries(args, work, log)
        args.sluicectl_bin = binaries["sluicectl"]
        args.token_file = os.path.join(work, "admin.token")
        etcd = Etcd().start()
        rates = origin_rates(args)
        log("capacities (requests/s, regular + standby origins): %s" % ", ".join(
            "%s %.0f + %.0f" % (r, real_capacity(args, r, False),
                                real_capacity(args, r) - real_capacity(args, r, False))
            for r in REGIONS))
        log("load (requests/s entering): %s %.0f, %s %.0f, %s %.0f" % (
            EVACUATED, args.base * args.factor, LARGE, args.base, SMALL, args.base))
        ports = {r: free_port() for r in REGIONS}
        admin_ports = {r: free_port() for r in REGIONS}
        for region in REGIONS:
            for i in range(3):
                origins[region].append(origin(
                    work, "%s-%s" % (region, "standby" if i == 2 else "origin-%d" % i),
                    free_port(), region, rates[region]))
        for region in REGIONS:
            for o in origins[region]:
                wait_for_port(o.port)
        for region in REGIONS:
            nodes[region] = Sluice(
                sluice_config(args, region, ports, [o.port for o in origins[region]],
                              admin_ports[region], work, etcd.url),
                port=ports[region], admin=False, binary=binaries["sluice"], directory=work,
                name=region).start()
        for region in REGIONS:
            wait_for_port(admin_ports[region], proc=nodes[region].proc)

        def fleet_formed():
            status, fleet = api(admin_ports[LARGE], "GET", "/v1/fleet")
            return status == 200 and isinstance(fleet, dict) and fleet.get("leader") and \
                len(fleet.get("nodes") or []) == len(REGIONS)
        if not wait_until(fleet_formed, 20, 0.2):
            raise RuntimeError("the fleet did not form: %s" % (api(admin_ports[LARGE], "GET",
                                                                   "/v1/fleet"),))
        time.sleep(2.5)  # health checks rise (2 x 1 s) before the load starts

        duration = 60 + 2 * (args.warmup + 60 + len(args.steps) * args.hold + args.measure)
        load = subprocess.Popen(
            [binaries["load"], "--rate", "%g" % (3 * args.base), "--duration", "%g" % duration,
             "--members", str(args.members), "--post-percent", "0", "--timeout", "5",
             "--seed", str(args.seed), "--change", "0:%g:%s" % (args.factor, EVACUATED)] +
            sum((["--entry", "%s=127.0.0.1:%d" % (r, ports[r])] for r in REGIONS), []),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        clients.offset = time.monotonic() - log.started
        reader = threading.Thread(target=clients.read, args=(load.stdout,), daemon=True)
        reader.start()
        watch = Watch(admin_ports, {r: origins[r][2].port for r in SAVIORS}, log.started)
        watch.start()
        log("load started (open loop, %d members, GETs only)" % args.members)
        time.sleep(args.warmup)
        wait_settled(args, admin_ports, watch, log, "warm-up")
        status, health = api(admin_ports[LARGE], "GET", "/v1/health")
        caps = health.get("regions_capacity") or {}
        log("regions_capacity before: %s" % "; ".join(
            "%s capacity %s (%s with standbys), load %s, standby endpoints %s" % (
                r, caps[r].get("capacity_rps"), caps[r].get("standby_capacity_rps"),
                caps[r].get("load_rps"), caps[r].get("standby_endpoints")) for r in REGIONS))

        fixed = Run("fixed", {LARGE: 50, SMALL: 50})
        runs.append(fixed)
        evacuate(args, fixed, admin_ports, watch, clients, log)
        restore(args, fixed, admin_ports, watch, log)
        wait_settled(args, admin_ports, watch, log, "after the fixed run")

        auto = Run("auto", "auto")
        runs.append(auto)
        evacuate(args, auto, admin_ports, watch, clients, log)
        restore(args, auto, admin_ports, watch, log)
        time.sleep(1.5)  # the load's lines of the last window (written once a second)
        ok = True
    finally:
        if watch:
            watch.stop()
        if load and load.poll() is None:
            load.terminate()
            try:
                load.wait(5)
            except subprocess.TimeoutExpired:
                load.kill()
                load.wait(5)
        if reader:
            reader.join(5)
        add_client_figures(runs, clients)
        for node in nodes.values():
            node.stop()
        for region in REGIONS:
            for o in origins[region]:
                o.stop()
        if etcd:
            etcd.cleanup()
        if watch and watch.errors:
            log("unanswered polls: %s" % dict(watch.errors))
        if not ok:
            for region, node in nodes.items():
                try:
                    tail = node.log_text().strip().splitlines()[-8:]
                except OSError:
                    tail = []
                if tail:
                    log("%s's log (last lines):\n    %s" % (region, "\n    ".join(tail)))
        if args.keep or not ok:
            if args.keep:
                log("kept %s" % work)
            else:
                shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    missed = summarize(args, runs, log, result)
    if missed:
        log.out("TARGETS MISSED: " + "; ".join(missed))
        return 1
    log.out("targets met: preview within %g%%, auto sheds nothing and stays within capacity, "
            "equal weights overload %s, second evacuation 409, standbys in before the first "
            "step and out after the restore" % (Targets(args.quick).preview_error_pct, SMALL))
    return 0


# ---------------------------------------------------------------------------------------------
# The report


def summarize(args, runs, log, result):
    """Prints the per-step table and the side-by-side one; fills `result`; returns the targets
    missed."""
    targets = Targets(args.quick)
    missed = []
    by_name = {r.name: r for r in runs}
    log.out("")
    log.out("per step (measured at each savior's node from %g s after the step; predicted: the "
            "preview's load + extra)" % args.settle)
    log.out("(load/s: what its origins took, shed included; in/s: of that, tunneled in; sent/s: "
            "what %s's node sent it; cl.fail: requests it answered that the clients saw fail, "
            "in the window's whole seconds)" % EVACUATED)
    log.out("%-5s %5s %-9s %9s %9s %6s %8s %8s %6s %8s %8s %8s %8s" % (
        "run", "step", "savior", "load/s", "predicted", "err%", "util", "pred.ut", "shed%",
        "p99 ms", "in/s", "sent/s", "cl.fail"))
    for r in runs:
        for row in r.rows:
            if row.get("missing"):
                log.out("%-5s %4g%% %-9s (no samples)" % (r.name, row["step"], row["savior"]))
                continue
            log.out("%-5s %4g%% %-9s %9.1f %9s %6s %7.0f%% %8s %6.2f %8s %8.1f %8s %8d" % (
                r.name, row["step"], row["savior"], row["load_rps"],
                "%.1f" % row["predicted_rps"] if "predicted_rps" in row else "-",
                "%.1f" % row["error_pct"] if "error_pct" in row else "-",
                100 * row["utilization"],
                "%.0f%%" % (100 * row["predicted_util"]) if row.get("predicted_util")
                is not None else "-",
                row["shed_pct"], "%.1f" % row["p99_ms"] if row["p99_ms"] is not None else "-",
                row["in_rps"], "%.1f" % row["sent_rps"] if "sent_rps" in row else "-",
                row["client_failed"]))

    def last_rows(r):
        if not r or not r.steps:
            return []
        last = r.steps[-1][0]
        return [row for row in r.rows if row["step"] == last and not row.get("missing")]

    def ramp_shed(r):
        rows = [row for row in r.rows if not row.get("missing")]
        requests = sum(row["requests"] for row in rows)
        return 100.0 * sum(row["shed"] for row in rows) / requests if requests else None

    columns = {}
    for name in ("auto", "fixed"):
        r = by_name.get(name)
        rows = last_rows(r)
        col = {}
        if r and rows:
            col["weights"] = ", ".join("%s %s" % (SHORT.get(k, k), v) for k, v in sorted(
                ((r.preview or {}).get("saviors_weights") or {}).items()))
            col["refused"] = "%s" % (r.unforced[0] if r.unforced else "-")
            col["ramped_by"] = "hand (bug)" if r.by_hand else \
                "forced plan" if r.forced else "plan"
            col["pred_max_util"] = (r.preview or {}).get("max_utilization")
            col["max_util"] = max(row["utilization"] for row in rows)
            col["busiest"] = max(rows, key=lambda row: row["utilization"])["savior"]
            col["shed_pct"] = ramp_shed(r)
            col["last_shed"] = {row["savior"]: row["shed_pct"] for row in rows}
            col["util"] = {row["savior"]: row["utilization"] for row in rows}
            col["p99"] = {row["savior"]: row["p99_ms"] for row in rows}
            if r.client_ramp:
                col["client_requests"], col["client_failed"], col["client_p99"] = r.client_ramp
                col["client_failed_pct"] = 100.0 * r.client_ramp[1] / max(r.client_ramp[0], 1)
            errors = [row["error_pct"] for row in rows if "error_pct" in row]
            col["preview_error"] = max(errors) if len(errors) == len(SAVIORS) else None
        columns[name] = col

    def cell(name, key, spec, sub=None):
        v = columns[name].get(key)
        if sub is not None:
            v = (v or {}).get(sub)
        return "-" if v is None else spec % v

    log.out("")
    log.out("side by side (us-east-1 evacuated; at 100%% unless said: %s the larger savior, %s "
            "the smaller)" % (LARGE, SMALL))
    table = [
        ("savior weights", "weights", "%s", None),
        ("POST without force", "refused", "%s", None),
        ("ramped by", "ramped_by", "%s", None),
        ("predicted max utilization", "pred_max_util", "%.2f", None),
        ("measured max utilization", "max_util", "%.2f", None),
        ("  %s utilization" % LARGE, "util", "%.2f", LARGE),
        ("  %s utilization" % SMALL, "util", "%.2f", SMALL),
        ("  %s shed %%" % LARGE, "last_shed", "%.2f", LARGE),
        ("  %s shed %%" % SMALL, "last_shed", "%.2f", SMALL),
        ("  %s p99 ms (its sluice)" % LARGE, "p99", "%.1f", LARGE),
        ("  %s p99 ms (its sluice)" % SMALL, "p99", "%.1f", SMALL),
        ("shed % over the ramp (saviors)", "shed_pct", "%.2f", None),
        ("client requests over the ramp", "client_requests", "%d", None),
        ("client errors over the ramp", "client_failed", "%d", None),
        ("client errors %", "client_failed_pct", "%.2f", None),
        ("client p99 ms (worst second)", "client_p99", "%.1f", None),
        ("preview error % (last step)", "preview_error", "%.1f", None),
    ]
    log.out("%-32s %14s %14s" % ("", "auto", "fixed"))
    for label, key, spec, sub in table:
        log.out("%-32s %14s %14s" % (label, cell("auto", key, spec, sub),
                                      cell("fixed", key, spec, sub)))
    log.out("")

    auto, fixed = by_name.get("auto"), by_name.get("fixed")
    errors = [c["preview_error"] for c in columns.values() if c.get("preview_error") is not None]
    result["preview_error_pct"] = max(errors) if errors else None
    result["shed_pct_auto"] = columns["auto"].get("shed_pct")
    result["shed_pct_fixed"] = columns["fixed"].get("shed_pct")
    result["max_util_auto"] = columns["auto"].get("max_util")
    result["max_util_fixed"] = columns["fixed"].get("max_util")
    if fixed and fixed.second:
        result["second_evacuation"] = fixed.second[0]

    for r in runs:
        for node, (seen, first) in sorted(r.injected_before_first_step.items()):
            log.out("%s: %s's node reported injected standbys at %s; us-east-1 first above 0%% "
                    "at %s" % (r.name, node, "-" if seen is None else "%.2f s" % seen,
                               "-" if first is None else "%.2f s" % first))
        if r.standby_rps:
            log.out("%s: the standby origins served at 100%%: %s" % (r.name, ", ".join(
                "%s %.0f req/s" % kv for kv in sorted(r.standby_rps.items()))))
        if r.second is not None:
            log.out("%s: a second evacuation during it: %s %s" % (r.name, r.second[0],
                                                                 r.second[1]))
        if r.restored is not None:
            log.out("%s: restore took the standbys out: %s" % (
                r.name, ("yes" + (" (by hand)" if r.restored[1] else "")) if r.restored[0]
                else "no (%s)" % r.restored[1]))

    # The targets.
    if len(runs) < 2 or any(not r.rows for r in runs):
        missed.append("not every run finished (%s)" % ", ".join(
            "%s: %d rows" % (r.name, len(r.rows)) for r in runs) if runs else "none started")
    if result["preview_error_pct"] is None or \
            result["preview_error_pct"] > targets.preview_error_pct:
        missed.append("preview error %s%% (target %g%%)" % (
            "-" if result["preview_error_pct"] is None else "%.1f" % result["preview_error_pct"],
            targets.preview_error_pct))
    if auto:
        if result["shed_pct_auto"] is None or result["shed_pct_auto"] > targets.shed_pct_auto:
            missed.append("auto shed %s%% (target <= %g%%)" % (
                result["shed_pct_auto"], targets.shed_pct_auto))
        if result["max_util_auto"] is None or result["max_util_auto"] > targets.max_util_auto:
            missed.append("auto utilization %s (target <= %g)" % (
                result["max_util_auto"], targets.max_util_auto))
        if auto.unforced is None or auto.unforced[0] != 201:
            missed.append("auto was not accepted without force (%s)" % (
                auto.unforced[0] if auto.unforced else "-"))
        pred = (auto.preview or {}).get("max_utilization")
        if pred is None or pred > 1.0:
            missed.append("the auto preview predicts %s utilization" % pred)
    if fixed:
        util = columns["fixed"].get("util", {}).get(SMALL)
        shed = columns["fixed"].get("last_shed", {}).get(SMALL)
        if util is None or util <= targets.min_util_fixed:
            missed.append("equal weights did not take %s past its capacity (utilization %s)" % (
                SMALL, util))
        if shed is None or shed < targets.min_shed_pct_small_fixed:
            missed.append("%s shed %s%% at 100%% with equal weights (target >= %g%%)" % (
                SMALL, shed, targets.min_shed_pct_small_fixed))
        if not (fixed.preview or {}).get("would_refuse") or \
                (fixed.preview or {}).get("busiest") != SMALL:
            missed.append("the fixed preview did not predict %s's overload (busiest %s, would "
                          "refuse %s)" % (SMALL, (fixed.preview or {}).get("busiest"),
                                          (fixed.preview or {}).get("would_refuse")))
        if not fixed.unforced or fixed.unforced[0] != 409:
            missed.append("the fixed plan without force answered %s, not 409" % (
                fixed.unforced[0] if fixed.unforced else "-"))
        if fixed.stuck is not None:
            missed.append("the forced fixed plan never took a step (sluice bug: it waits for "
                          "a capacity that force was to override): %s; measured with the ramp "
                          "driven by hand instead" % fixed.stuck)
    for r in runs:
        if not r.second or r.second[0] != 409 or EVACUATED not in r.second[1]:
            missed.append("%s: the second evacuation answered %s, not 409 naming %s" % (
                r.name, r.second, EVACUATED))
        for node, (seen, first) in r.injected_before_first_step.items():
            if seen is None or first is None or seen >= first:
                missed.append("%s: %s's node did not report injected standbys before the first "
                              "step" % (r.name, node))
        for node in SAVIORS:
            if r.steps and r.standby_rps.get(node, 0) <= 0:
                missed.append("%s: %s's standby origin served nothing at 100%%" % (r.name, node))
        if r.restored is None or not r.restored[0]:
            missed.append("%s: the restore did not take the standbys out%s" % (
                r.name, "" if r.restored is None else " (%s)" % r.restored[1]))
    return missed


if __name__ == "__main__":
    main()
