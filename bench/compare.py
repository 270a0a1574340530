#!/usr/bin/env python3
"""Side by side, one run: sluice against nginx, HAProxy and nghttpx, plus the origin alone.

One fast origin (nginx, one worker) and the load generators share CPU 1; each proxy runs one
worker (or thread) pinned to CPU 0, keeps its connections to the origin alive, and listens on
a cleartext port (HTTP/1.1) and a TLS port (HTTP/2 by ALPN, one ECDSA P-256 certificate made
here). sluice appears twice: with its defaults, and "sluice-full" with the whole filter chain
(JWT auth with an HS256 token, adaptive shedding, a rate limit, header rules) and steering (two
regions, every member served locally, so each request pays for the decision). Rows are
measured in interleaved rounds, so ratios compare like with like on a shared machine.

Table:
  - HTTP/1.1, wrk -t1 -c50, 12-byte response: requests/s, p50, p99, vs nginx, vs the origin;
  - proxy CPU time per request at a fixed offered rate below saturation;
  - user-space instructions per request (callgrind): each proxy started twice more, fresh,
    under valgrind --tool=callgrind (nginx and nghttpx with --trace-children=yes, their
    workers' files summed), serving exactly 2,000 and then 12,000 requests (h2load --h1 -c 10);
    (Ir of the big run - Ir of the small one) / 10,000 leaves start-up and shutdown out
    (bench/instructions.py);
  - system calls per request (strace -c -f while h2load --h1 sends N requests);
  - resident memory per idle keep-alive connection: downstream (10,000 connections, one
    request each, from 127.0.0.x source addresses in turn, so more than one address's ephemeral
    ports allow), and per idle pooled upstream connection (1,000 more clients send a request
    at once to the origin's rate-limited /slow, so the proxy opens up to 1,000 origin
    connections, which then wait in its pool; 1,100 clients did the same before, so that
    caches of request state are full; sluice and nginx keep up to 4,096 idle origin
    connections here, so both bursts' stay pooled); bench/http1_compare.py idle_memory. For
    sluice also in live heap allocations (sluice_heap_allocated_bytes), which the allocator's
    free memory after the burst is not. The count is capped by the descriptor limits (this
    process's hard limit, the proxy's), and a line says so when fewer connections were
    measured than asked for;
  - HTTP/2 over TLS, h2load 50 connections x 10 streams: requests/s, mean, vs nginx;
  - proxy CPU time per full TLS 1.3 handshake (ECDHE X25519 + ECDSA P-256), each on a new
    connection carrying one HTTP/2 request, 500 at a time (bench/h2_compare.py handshakes).

With --baseline BINARY, an older sluice (the build before a change) runs side by side as two
more rows, "baseline" and "baseline-full", on the same configurations, and a compare_baseline:
line gives the new build's ratios to it (instr_ratio: of instructions per request): a
refactor shows there that nothing got slower.

The last line is for machines: "compare:" and key=value pairs, per row (nginx, haproxy,
nghttpx, sluice, full = sluice-full, baseline, baseline_full): <row>_instr (instructions per
request), <row>_allocs (calls to malloc, calloc and realloc per request in the same callgrind
runs, every thread of the workers counted), <row>_idle_kib (KiB per idle downstream
connection), <row>_upstream_idle_kib (KiB per idle pooled upstream connection),
<row>_idle_heap_kib and <row>_upstream_idle_heap_kib (the same in sluice's live heap
allocations, nan for the other proxies), <row>_handshake_us (CPU per full TLS handshake); then
idle_connections and upstream_idle_connections (what sluice's figures were measured over:
clients, and origin connections it opened). A figure not measured is "nan".

Usage: bench/compare.py [--sluice build/proxy/sluice] [--duration 10] [--rounds 3]
                        [--baseline OLD_BINARY] [--instr-requests 2000,12000]
                        [--idle-connections 10000] [--upstream-idle 1000]
       bench/compare.py --quick          (a short smoke run; what the test suite runs)
       bench/compare.py --install        (apt-get install what is missing first; root)
Needs: wrk, h2load (nghttp2-client), nginx (nginx-light), haproxy, nghttpx (nghttp2-proxy),
strace, openssl, taskset, valgrind; loopback only, every process stopped by its PID.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from h2_compare import h2load, handshakes, proxy_process
from http1_compare import LOAD_CPU, PROXY_CPU, idle_memory, syscalls_per_request, wrk
from instructions import allocation_calls, instructions_per_request
from sluicetest import admin, debian, metrics
from sluicetest.certs import Pki
from sluicetest.nginx import Nginx, hello_origin
from sluicetest.process import ROOT, Sluice, cpu_seconds, free_port, wait_for_port

PACKAGES = {"wrk": "wrk", "h2load": "nghttp2-client", "nginx": "nginx-light",
            "haproxy": "haproxy", "nghttpx": "nghttp2-proxy", "strace": "strace",
            "openssl": "openssl", "taskset": "util-linux", "valgrind": "valgrind"}
PROXIES = ["nginx", "haproxy", "nghttpx", "sluice", "sluice-full"]
ROW_KEYS = {"nginx": "nginx", "haproxy": "haproxy", "nghttpx": "nghttpx", "sluice": "sluice",
            "sluice-full": "full", "baseline": "baseline", "baseline-full": "baseline_full"}
COUNTED = ("sluice_rejected_requests_total", "sluice_steering_requests_total",
           "sluice_upstream_connections_total")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(secret, claims):
    header = b64url(json.dumps({"alg": "HS256", "kid": "bench"}).encode())
    payload = b64url(json.dumps(claims).encode())
    mac = hmac.new(secret, ("%s.%s" % (header, payload)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (header, payload, b64url(mac))


def sluice_config(work, port, tls_port, origin_port, cert, key, full):
    """sluice's configuration and its admin port; `full` adds the filter chain and steering
    (their files are written to `work`, where the configuration goes too)."""
    filters, steering, clusters = "", "", ""
    if full:
        secret = b"sluice-bench-secret-0123456789abcdef"
        with open(os.path.join(work, "jwks.json"), "w") as f:
            json.dump({"keys": [{"kty": "oct", "kid": "bench", "alg": "HS256",
                                 "k": b64url(secret)}]}, f)
        with open(os.path.join(work, "tunnel.key"), "w") as f:
            f.write("3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d\n")
        filters = """
    filters:
      - auth: {jwks_file: jwks.json, issuer: bench, claims: {member: sub, tier: tier}}
      - shed:
          partition: bulk
          classify: [{claim: tier, value: gold, partition: critical}]
      - rate_limit: {key: member, rate: 1000000/s, burst: 1000000}
      - headers:
          request: {set: {X-Edge: sluice}, remove: [X-Debug]}
          response: {set: {Cache-Control: no-store}}"""
        clusters = """
    concurrency:
      algorithm: gradient2
      initial_limit: 1000
      min_limit: 1000           # computed per request, never below the offered concurrency
      max_limit: 5000
      partitions: [{name: critical, share: 0.9}, {name: bulk, share: 0.1}]"""
        steering = """
steering:
  local_region: us-east-1
  member_id: [claim]
  tunnel: {insecure: true, key_file: tunnel.key}
  regions:
    us-east-1: {tunnel: [127.0.0.1:%d]}
    us-west-2: {tunnel: [127.0.0.1:%d]}
controller: {gates: {health_interval: 60s}}
""" % (port, free_port())
    admin_port = free_port()
    config = """
workers: 1
log_level: warn
admin: {address: 127.0.0.1:%d}
limits: {max_connections: 0}
listeners:
  - {name: plain, address: 127.0.0.1:%d}
  - name: tls
    address: 127.0.0.1:%d
    tls: {cert_file: %s, key_file: %s}
clusters:
  - name: origin
    endpoints: [127.0.0.1:%d]
    pool: {max_idle: 4096, max_requests: 0}%s
routes:
  - cluster: origin%s
%s""" % (admin_port, port, tls_port, cert, key, origin_port, clusters, filters, steering)
    return config, admin_port


def sluice_counters(admin_port):
    """What sluice-full's chain and steering did, from its /metrics: rejections by filter,
    steering decisions by outcome (so a table row is known to have paid for both) and upstream
    connections opened (so the row is known to have kept its origin connections alive)."""
    counts = {}
    for name, labels, value in metrics.samples(admin.scrape(admin_port)):
        if name in COUNTED and labels:
            key = "%s{%s}" % (name.replace("sluice_", "").replace("_total", ""),
                              metrics.format_labels(labels))
            counts[key] = counts.get(key, 0) + value
    return counts


def heap_bytes(admin_port):
    """sluice's bytes in live heap allocations (sluice_heap_allocated_bytes); nan where it has
    no such count (an older build, or a sanitizer's allocator)."""
    values = [value for name, _, value in metrics.samples(admin.scrape(admin_port))
              if name == "sluice_heap_allocated_bytes"]
    return values[0] if values else float("nan")


def fd_limit(wrapper=()):
    """The descriptors a proxy may ask for: the hard limit; under valgrind (the instruction
    counts, a few connections) 4,096: valgrind refuses a program's setrlimit above the hard
    limit less what it keeps for itself, and HAProxy's start-up grows with its maxconn."""
    return 4096 if wrapper else resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def haproxy_maxconn(wrapper=()):
    # HAProxy reserves two sockets per connection (client and server) under its descriptor limit,
    # which cannot exceed the hard limit this process was given.
    return fd_limit(wrapper) // 2 - 50


def start_haproxy(work, port, tls_port, origin_port, cert, key, tag="haproxy", wrapper=()):
    pem = os.path.join(work, "haproxy.pem")
    with open(pem, "w") as out:
        for part in (cert, key):
            with open(part) as f:
                out.write(f.read())
    cfg = os.path.join(work, tag + ".cfg")
    with open(cfg, "w") as f:
        f.write("""
global
  nbthread 1
  maxconn %d
  ulimit-n %d
  tune.ssl.default-dh-param 2048
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  http-reuse always
frontend fe
  bind 127.0.0.1:%d
  bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1
  default_backend be
backend be
  server origin 127.0.0.1:%d
""" % (haproxy_maxconn(wrapper), fd_limit(wrapper), port, tls_port, pem, origin_port))
    return proxy_process(["haproxy", "-db", "-f", cfg], os.path.join(work, tag + ".log"),
                         wrapper)


def start_nghttpx(work, port, tls_port, origin_port, cert, key, tag="nghttpx", wrapper=()):
    return proxy_process(["nghttpx", "--frontend=127.0.0.1,%d;no-tls" % port,
                          "--frontend=127.0.0.1,%d" % tls_port,
                          "--backend=127.0.0.1,%d" % origin_port, "--workers=1",
                          "--log-level=WARN", "--rlimit-nofile=%d" % fd_limit(wrapper),
                          "--backend-keep-alive-timeout=300s",
                          "--frontend-keep-alive-timeout=300s", "--errorlog-file=/dev/stderr",
                          "--accesslog-file=/dev/null", "--conf=/dev/null", key, cert],
                         os.path.join(work, tag + ".log"), wrapper)


def start_proxy(name, work, port, tls_port, origin_port, cert, key, binary, tag=None,
                wrapper=()):
    """One row's proxy, one worker pinned to PROXY_CPU, started (not waited for); `tag` names
    its files (default: the row's name), `wrapper` is a command it runs under. Returns the
    process and, for sluice rows, its admin port."""
    tag = tag or name
    if name == "nginx":
        proc = Nginx(work, tag, "listen 127.0.0.1:%d; listen 127.0.0.1:%d ssl http2; "
                     "ssl_certificate %s; ssl_certificate_key %s; ssl_protocols TLSv1.2 TLSv1.3; "
                     "location / { proxy_pass http://origin; "
                     "proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
                     % (port, tls_port, cert, key), PROXY_CPU,
                     upstream="upstream origin { server 127.0.0.1:%d; keepalive 4096; }"
                     % origin_port)
        proc.wrapper = list(wrapper)
        return proc.start(), None
    if name == "haproxy":
        return start_haproxy(work, port, tls_port, origin_port, cert, key, tag, wrapper), None
    if name == "nghttpx":
        return start_nghttpx(work, port, tls_port, origin_port, cert, key, tag, wrapper), None
    config, admin_port = sluice_config(work, port, tls_port, origin_port, cert, key,
                                       name.endswith("-full"))
    proc = Sluice(config, port=port, admin=False, binary=binary, directory=work, name=tag,
                  cpu=PROXY_CPU, stop_timeout=15)
    proc.wrapper = list(wrapper)
    return proc.start(wait=False), admin_port


def fresh_proxy(name, wrapper, tag, work, origin_port, cert, key, binary):
    """A new instance of row `name` on new ports, under `wrapper`: (process, its plain port)."""
    port = free_port()
    proc, _ = start_proxy(name, work, port, free_port(), origin_port, cert, key, binary,
                          tag="cg-" + tag, wrapper=wrapper)
    return proc, port


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=os.path.join(ROOT, "build/proxy/sluice"))
    parser.add_argument("--baseline", help="an older sluice binary measured side by side as the "
                        "rows baseline and baseline-full")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-connections", type=int, default=10000)
    parser.add_argument("--upstream-idle", type=int, default=1000,
                        help="clients that make the proxy open origin connections at once")
    parser.add_argument("--upstream-warm", type=int, default=1100,
                        help="clients sending a request at once before that, so that the "
                        "proxies' caches of request state are full (sluice: 1,024 request "
                        "heads per worker)")
    parser.add_argument("--syscall-requests", type=int, default=50000)
    parser.add_argument("--handshake-batches", type=int, default=4,
                        help="per round and proxy: batches of 500 full TLS handshakes")
    parser.add_argument("--instr-requests", default="2000,12000",
                        help="the two request counts whose callgrind totals are subtracted")
    parser.add_argument("--install", action="store_true", help="apt-get install what is missing")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.idle_connections, args.syscall_requests = 1, 1, 200, 2000
        args.upstream_idle, args.upstream_warm, args.instr_requests = 50, 20, "200,1200"
    instr_counts = tuple(int(n) for n in args.instr_requests.split(","))
    if len(instr_counts) != 2 or not 0 < instr_counts[0] < instr_counts[1]:
        sys.exit("--instr-requests: two counts, the smaller first (e.g. 2000,12000)")
    if args.install:
        debian.install_missing(PACKAGES)
    debian.require(PACKAGES)
    if os.cpu_count() < 2:
        sys.exit("needs two CPUs: the proxies on one, load and origin on the other")

    proxies = PROXIES + (["baseline", "baseline-full"] if args.baseline else [])
    binaries = {"sluice": args.sluice, "sluice-full": args.sluice, "baseline": args.baseline,
                "baseline-full": args.baseline}
    work = tempfile.mkdtemp(prefix="sluice-compare-")
    cert, key = Pki(work).self_signed("server")
    origin_port = free_port()
    plain = {name: free_port() for name in proxies}
    tls = {name: free_port() for name in proxies}
    token = hs256_token(b"sluice-bench-secret-0123456789abcdef",
                        {"sub": "member-42", "iss": "bench", "tier": "gold",
                         "exp": int(time.time()) + 86400})
    auth = ["-H", "Authorization: Bearer " + token]
    delay_script = os.path.join(work, "delay.lua")
    with open(delay_script, "w") as f:
        f.write("function delay() return 5 end\n")  # ~50 connections / 5 ms: below saturation

    origin = hello_origin(work, origin_port, LOAD_CPU)
    procs, admin_ports = {}, {}
    try:
        for name in proxies:
            procs[name], admin_ports[name] = start_proxy(
                name, work, plain[name], tls[name], origin_port, cert, key, binaries.get(name),
                tag="proxy" if name == "nginx" else name)
        wait_for_port(origin_port)
        for name in proxies:
            for port in (plain[name], tls[name]):
                try:
                    wait_for_port(port)
                except TimeoutError:
                    sys.exit("%s does not listen on %d; its log is in %s" % (name, port, work))
        # Every row gets the same request (the bearer token too), so each proxy parses and
        # forwards the same bytes; only sluice-full verifies the token.
        rows = ["origin"] + proxies
        headers = {name: auth for name in rows}
        ports = dict(plain, origin=origin_port)
        results = {name: {"rps": [], "p50": [], "p99": [], "cpu": [], "rate": [], "h2": [],
                          "h2_mean": [], "hs": []} for name in rows}
        for name in proxies:  # warm pools and caches; a refusal shows here, not in a table
            w = wrk(plain[name], 1, 50, extra=headers[name])
            if w["errors"]:
                sys.exit("%s answered errors during warm-up (see %s)" % (name, work))
        for r in range(args.rounds):
            for name in rows:
                w = wrk(ports[name], args.duration, 50, extra=headers[name])
                for k in ("rps", "p50", "p99"):
                    results[name][k].append(w[k])
                print("round %d %-12s h1 %9.0f req/s  p50 %.3f ms  p99 %.3f ms%s" % (
                    r + 1, name, w["rps"], w["p50"], w["p99"], "  ERRORS" if w["errors"] else ""),
                    flush=True)
            for name in proxies:
                pids = procs[name].worker_pids()
                before = cpu_seconds(pids)
                w = wrk(plain[name], args.duration, 50, script=delay_script, extra=headers[name])
                cpu = (cpu_seconds(pids) - before) / max(w["requests"], 1) * 1e6
                results[name]["cpu"].append(cpu)
                results[name]["rate"].append(w["rps"])
                h = h2load(["-c", "50", "-m", "10", "-D", str(args.duration)] + headers[name] +
                           ["https://127.0.0.1:%d/" % tls[name]], args.duration + 60)
                results[name]["h2"].append(h["rps"])
                results[name]["h2_mean"].append(h["mean_ms"])
                # Full TLS 1.3 handshakes, one request each, 500 at a time: CPU per handshake.
                _, hs = handshakes(tls[name], pids, 1 if args.quick else args.handshake_batches,
                                   extra=headers[name])
                results[name]["hs"].append(hs)
                print("round %d %-12s %.2f us CPU/req at %.0f req/s; h2 over TLS %.0f req/s; "
                      "%.0f us CPU/handshake%s" % (
                    r + 1, name, cpu, w["rps"], h["rps"], hs,
                    "" if h["succeeded"] == h["total"] else "  FAILED %d (4xx %d, 5xx %d)" %
                    (h["total"] - h["succeeded"], h["4xx"], h["5xx"])), flush=True)
        # What sluice-full counted under load, before the idle burst (which its shedding may
        # trim) adds to it.
        counters = sluice_counters(admin_ports["sluice-full"])
        # System calls of every proxy first, then idle memory: a proxy still closing another's
        # 10,000 idle connections would share CPU 0 with the one being counted.
        syscalls, idle = {}, {}
        for name in proxies:
            try:
                syscalls[name], _ = syscalls_per_request(plain[name], procs[name].worker_pids(),
                                                         args.syscall_requests,
                                                         extra=headers[name])
            except (OSError, ValueError, IndexError, subprocess.SubprocessError) as e:
                # strace needs ptrace, which some containers do not allow
                print("system calls of %s not counted: %s" % (name, e), flush=True)
        for name in proxies:
            try:
                heap = (lambda port=admin_ports[name]: heap_bytes(port)) if admin_ports.get(
                    name) else None
                idle[name] = idle_memory(plain[name], procs[name].worker_pids(),
                                         args.idle_connections, args.upstream_idle, origin_port,
                                         extra=headers[name],
                                         cap=haproxy_maxconn() if name == "haproxy" else None,
                                         warm=args.upstream_warm, heap=heap)
            except (OSError, RuntimeError) as e:
                print("idle memory of %s not measured: %s" % (name, e), flush=True)
                continue
            print("idle %-12s %.0f B per downstream connection (%d), %.0f B per pooled upstream "
                  "connection (%d opened for %d clients)%s%s" % (
                      name, idle[name]["down"], idle[name]["count"], idle[name]["up"],
                      idle[name]["pooled"], idle[name]["up_count"],
                      "; live heap %.0f B and %.0f B" % (idle[name]["down_heap"],
                                                         idle[name]["up_heap"])
                      if idle[name]["down_heap"] == idle[name]["down_heap"] else "",
                      "; " + idle[name]["note"] if idle[name]["note"] else ""), flush=True)
            time.sleep(0 if args.quick else 2)  # let the closes settle before the next proxy
        # Fresh instances under callgrind, one at a time; the running ones stay idle.
        instr, allocs = {}, {}
        for name in proxies:
            def count_allocations(small, big, name=name):
                allocs[name] = ((sum(allocation_calls(p) for p in big) -
                                 sum(allocation_calls(p) for p in small)) /
                                (instr_counts[1] - instr_counts[0]))
            try:
                instr[name], totals = instructions_per_request(
                    lambda wrapper, tag, name=name: fresh_proxy(
                        name, wrapper, tag, work, origin_port, cert, key, binaries.get(name)),
                    name, instr_counts, extra=headers[name],
                    children=name in ("nginx", "nghttpx"), inspect=count_allocations)
                print("instructions %-12s %.0f per request (Ir %d after %d requests, %d after %d), "
                      "%.3f heap allocations per request"
                      % (name, instr[name], totals[0], instr_counts[0], totals[1],
                         instr_counts[1], allocs.get(name, float("nan"))), flush=True)
            except (OSError, ValueError, RuntimeError, TimeoutError,
                    subprocess.SubprocessError) as e:
                print("instructions of %s not counted: %s" % (name, e), flush=True)
    finally:
        for proc in procs.values():
            proc.stop()
        origin.stop()

    nan = float("nan")
    med = lambda xs: statistics.median(xs) if xs else nan  # noqa: E731
    nginx_rps, origin_rps = med(results["nginx"]["rps"]), med(results["origin"]["rps"])
    nginx_cpu, nginx_h2 = med(results["nginx"]["cpu"]), med(results["nginx"]["h2"])
    print("\n| | h1 req/s | vs nginx | vs origin | p50 ms | p99 ms | CPU us/req | vs nginx | "
          "instr/req | syscalls/req | idle B/conn | upstream idle B/conn | h2+TLS req/s | "
          "vs nginx | h2 mean ms | CPU us/handshake | vs nginx |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    nginx_hs = med(results["nginx"]["hs"])
    for name in rows:
        r = results[name]
        proxy = name != "origin"
        cell = lambda fmt, v: (fmt % v) if proxy else "-"  # noqa: E731
        print("| %s | %.0f | %.2f | %.2f | %.3f | %.3f | %s | %s | %s | %s | %s | %s | %s | %s "
              "| %s | %s | %s |" % (
                  name, med(r["rps"]), med(r["rps"]) / nginx_rps, med(r["rps"]) / origin_rps,
                  med(r["p50"]), med(r["p99"]), cell("%.2f", med(r["cpu"])),
                  cell("%.2f", med(r["cpu"]) / nginx_cpu),
                  cell("%s", "%.0f" % instr[name] if name in instr else "n/a"),
                  cell("%s", "%.2f" % syscalls[name] if name in syscalls else "n/a"),
                  cell("%.0f", idle[name]["down"] if name in idle else nan),
                  cell("%.0f", idle[name]["up"] if name in idle else nan),
                  cell("%.0f", med(r["h2"])), cell("%.2f", med(r["h2"]) / nginx_h2),
                  cell("%.3f", med(r["h2_mean"])), cell("%.0f", med(r["hs"])),
                  cell("%.2f", med(r["hs"]) / nginx_hs)))
    print("\n(%d rounds of %d s; CPU per request at about %.0f req/s offered; instructions from "
          "callgrind over %d - %d requests; system calls over %d requests; idle memory over %d "
          "downstream connections and the origin connections %d clients made the proxy open)"
          % (args.rounds, args.duration, med(results["sluice"]["rate"]), instr_counts[1],
             instr_counts[0], args.syscall_requests, args.idle_connections, args.upstream_idle))
    for name in proxies:
        if idle.get(name, {}).get("note"):
            print("(%s: %s)" % (name, idle[name]["note"]))
    print("sluice-full counted: %s" % ", ".join(
        "%s %d" % (k, v) for k, v in sorted(counters.items())))
    if args.baseline:
        ratio = lambda new, old, k: med(results[new][k]) / med(results[old][k])  # noqa: E731
        instr_ratio = lambda new, old: instr.get(new, nan) / instr.get(old, nan)  # noqa: E731
        print("compare_baseline: cpu_ratio=%.3f cpu_ratio_full=%.3f rps_ratio=%.3f "
              "rps_ratio_full=%.3f h2_ratio=%.3f h2_ratio_full=%.3f instr_ratio=%.3f "
              "instr_ratio_full=%.3f" % (
                  ratio("sluice", "baseline", "cpu"), ratio("sluice-full", "baseline-full", "cpu"),
                  ratio("sluice", "baseline", "rps"), ratio("sluice-full", "baseline-full", "rps"),
                  ratio("sluice", "baseline", "h2"), ratio("sluice-full", "baseline-full", "h2"),
                  instr_ratio("sluice", "baseline"), instr_ratio("sluice-full", "baseline-full")))
    pairs = []
    for name in proxies:
        key = ROW_KEYS[name]
        pairs += ["%s_instr=%.0f" % (key, instr.get(name, nan)),
                  "%s_allocs=%.3f" % (key, allocs.get(name, nan)),
                  "%s_idle_kib=%.2f" % (key, idle[name]["down"] / 1024 if name in idle else nan),
                  "%s_upstream_idle_kib=%.2f" % (key, idle[name]["up"] / 1024 if name in idle
                                                 else nan),
                  "%s_idle_heap_kib=%.2f" % (key, idle[name]["down_heap"] / 1024
                                             if name in idle else nan),
                  "%s_upstream_idle_heap_kib=%.2f" % (key, idle[name]["up_heap"] / 1024
                                                      if name in idle else nan),
                  "%s_handshake_us=%.0f" % (key, med(results[name]["hs"]))]
    pairs += ["idle_connections=%d" % idle.get("sluice", {}).get("count", 0),
              "upstream_idle_connections=%d" % idle.get("sluice", {}).get("pooled", 0)]
    print("compare: " + " ".join(pairs))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
