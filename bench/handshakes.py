#!/usr/bin/env python3
"""TLS handshakes when a region is evacuated: what a full and a resumed handshake cost sluice, and
what a storm of reconnecting clients does to a savior's own traffic, with and without shared
session ticket keys.

Every proxy runs one worker pinned to CPU 0 (PROXY_CPU); the origin (nginx, "hello world"), the
load generators, the storm tool and this script itself run on CPU 1. The origin (all run long)
and the storms' steady client run under SCHED_FIFO (--rt-priority, where allowed): they stand
for machines of their own, and the storm tool (as busy as one core) no longer sets their
latency. Without it the calm p99 and the storm's were the client machine's: the steady client
waited behind the storm tool for its CPU (calm p99 1.5-2.2 ms here, 0.6-2.5 ms with it). Every
proxy terminates TLS with the same ECDSA P-256 certificate (signed by a test CA) and OpenSSL's
default groups (X25519 first).

Figures:
  full_us        proxy CPU per full TLS 1.3 handshake with one HTTP/1.1 request: h2load --h1
                 -n B -c B -m 1 (every connection new; --handshakes in batches of --batch),
                 sluice against nginx in interleaved rounds. Both issue one TLS 1.3 ticket per
                 handshake (nginx: ssl_conf_command
                 NumTickets 1; OpenSSL's default is two, sluice's one), checked with openssl
                 s_client before the rounds.
  resume_us      sluice CPU per resumed handshake with one request: sluice_handshake_storm
                 (bench/handshake_storm.cc) primes N clients against sluice, then reconnects
                 them to the same sluice (phase 2's CPU / N). The same tool without a prime
                 gives sluice's full handshake through the same client ("full via storm tool").
  the storm      a savior sluice B serves steady traffic over TLS (h2load: -c 20 --rps 50, HTTP/2
                 on established connections, 1,000 requests/s) while the storm tool moves C
                 clients from an evacuated sluice A (where each got a ticket) to B, their starts
                 spread over --spread-ms. Two runs: A and B given the same ticket_key_files
                 ("shared": the clients resume) and each its own ("own": full handshakes). From
                 h2load's --log-file: the steady traffic's p99 in the calm before the storm and
                 among the requests that started during it (the storm's first start to its last
                 reply; p50 and p90 beside), and its non-2xx or failed requests over the whole
                 run. The storm tool is one thread on CPU 1 (beside the origin and h2load), and
                 a client's handshake
                 costs it about what it costs the proxy: "tool busy %" near 100 says the client
                 set the storm's pace (it lasted longer than --spread-ms), not the savior. With
                 the origin and the steady client at real-time priority the tool gets what they
                 leave of CPU 1, so it may set the pace at well under 100 % too: compare "storm
                 ms" with "savior CPU s". A tool that slow can take longer than the savior's
                 timeouts.head_read (10 s from accept to the handshake's end): such clients are
                 reset, and counted as the storm's errors.

CPU is CPU 0's busy time from /proc/stat (user + system + irq + softirq), per BENCHMARKING.md:
a handshake's TCP work on loopback lands in softirq, which the process's own utime + stime
leave out. The process's figure is printed beside it; where CPU 0 is much busier than the
proxy, something else ran there (another build on the machine) and that round is noise.

Usage: bench/handshakes.py [--sluice build/proxy/sluice]
                           [--storm-tool build/bench/sluice_handshake_storm] [--rounds 3]
                           [--handshakes 2000] [--clients 10000] [--spread-ms 1000]
       bench/handshakes.py --storm-only [--keep]   (the storms alone; --keep keeps the logs)
       bench/handshakes.py --quick        (a short smoke run)
Ends with one line for machines:
  handshakes: full_us=F nginx_full_us=N resume_us=R storm_clients=C storm_p99_ratio=P
              storm_errors=E resumed_pct=X
(storm_*: the run with shared ticket keys; storm_errors: the steady traffic's failures plus the
storm clients' ones; resumed_pct: resumed among the storm's completed handshakes; --storm-only
prints the storm's fields alone.)
Needs: h2load (nghttp2-client), nginx, openssl, taskset, ss. Every process it starts is
stopped by its PID; every wait is bounded; ports are free ones.
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from http1_compare import LOAD_CPU, PROXY_CPU
from sluicetest.certs import Pki
from sluicetest.nginx import Nginx, hello_origin
from sluicetest.process import ROOT, Sluice, cpu_seconds, free_port, wait_for_port

SERVER_NAME = "localhost"
# The kernel's counters that say the savior's accept queue (or SYN queue) overflowed.
NETSTAT = ("ListenOverflows", "ListenDrops", "TCPReqQFullDrop", "TCPReqQFullDoCookies",
           "SyncookiesSent", "TCPAbortOnData", "TCPAbortOnClose")
SNMP = ("AttemptFails", "EstabResets", "OutRsts")


def raise_descriptor_limit():
    """The soft limit up to the hard one, for this process and its children (the storm tool
    holds a socket per client in flight, the savior one per connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu0_times():
    """CPU 0's seconds since boot: (busy: user + system + irq + softirq, irq + softirq), from
    /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%s " % PROXY_CPU):
                v = [int(x) / os.sysconf("SC_CLK_TCK") for x in line.split()[1:]]
                return v[0] + v[2] + v[5] + v[6], v[5] + v[6]
    raise RuntimeError("no cpu%s line in /proc/stat" % PROXY_CPU)


class Meter:
    """What the proxy's work costs CPU 0, read in one go: read() returns (cost, CPU 0 busy,
    process), in seconds since some point; differences of two reads are what counts.

    cost is the processes' own time (utime + stime) plus CPU 0's irq and softirq time: the
    kernel's share of their loopback TCP (processed on the CPU that sent the packet) without
    whatever else the machine runs on CPU 0. busy is CPU 0's whole busy time (BENCHMARKING.md),
    which on a shared machine also counts others' work there (a build: CPU 0 busy 1,970 us per
    handshake against nginx's 540 us of its own)."""

    def __init__(self, pids):
        self.pids = pids

    def read(self):
        busy, irq = cpu0_times()
        proc = cpu_seconds(self.pids)
        return (proc + irq, busy, proc)


def per_unit_us(before, after, count):
    """(cost, busy, process) microseconds per unit between two Meter reads."""
    return tuple((b - a) / count * 1e6 for a, b in zip(before, after))


def tcp_counters():
    """The NETSTAT (TcpExt) and SNMP (Tcp) counters of this network namespace."""
    counters = {}
    for path, section, names in (("/proc/net/netstat", "TcpExt:", NETSTAT),
                                 ("/proc/net/snmp", "Tcp:", SNMP)):
        with open(path) as f:
            lines = [l.split() for l in f if l.startswith(section)]
        for header, values in zip(lines[0::2], lines[1::2]):
            for name, value in zip(header[1:], values[1:]):
                if name in names:
                    counters[name] = int(value)
    return counters


def accept_queue(port):
    """The listening socket's accept queue now (ss's Recv-Q), or None."""
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "ss", "-Hltn", "sport = :%d" % port],
                         capture_output=True, text=True, timeout=5).stdout.split()
    try:
        return int(out[1])
    except (IndexError, ValueError):
        return None


def realtime(priority):
    """The command prefix that runs a measuring process under SCHED_FIFO at priority (none for
    0): on LOAD_CPU it then runs the moment it is ready, ahead of the storm tool, as it would on
    a machine of its own."""
    return ["chrt", "-f", str(priority)] if priority else []


def make_realtime(pids, priority):
    """Moves running processes (the origin's) to SCHED_FIFO at priority. Returns False (with a
    warning) where this process may not (no CAP_SYS_NICE)."""
    for pid in pids:
        try:
            os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(priority))
        except PermissionError:
            print("warning: no real-time priority here (needs CAP_SYS_NICE): the storm tool's "
                  "CPU competes with the steady client and the origin", file=sys.stderr)
            return False
    return True


def sluice_config(port, origin_port, cert, key, ticket_files=(), extra=""):
    tickets = ", ticket_key_files: [%s]" % ", ".join(ticket_files) if ticket_files else ""
    return """
workers: 1
log_level: warn
admin: {address: "off"}
listeners:
  - address: 127.0.0.1:%d
    tls: {cert_file: %s, key_file: %s%s}
clusters:
  - name: origin
    endpoints: [127.0.0.1:%d]
    pool: {max_idle: 1024, max_requests: 0}
routes: [{cluster: origin}]
%s
""" % (port, cert, key, tickets, origin_port, extra)


def start_sluice(args, work, name, origin_port, cert, key, ticket_files=()):
    """A sluice (args.sluice, with args.sluice_extra in its configuration) on PROXY_CPU,
    listening."""
    port = free_port()
    return Sluice(sluice_config(port, origin_port, cert, key, ticket_files, args.sluice_extra),
                  port=port, admin=False, binary=args.sluice, directory=work, name=name,
                  cpu=PROXY_CPU, stop_timeout=15).start()


def start_nginx(work, origin_port, cert, key):
    port = free_port()
    # NumTickets 1: one TLS 1.3 ticket per handshake, as sluice issues (OpenSSL's default: 2).
    proxy = Nginx(work, "proxy",
                  "listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s; "
                  "ssl_protocols TLSv1.2 TLSv1.3; ssl_conf_command NumTickets 1; "
                  "location / { proxy_pass http://origin; proxy_http_version 1.1; "
                  "proxy_set_header Connection \"\"; }" % (port, cert, key),
                  PROXY_CPU, port=port,
                  upstream="upstream origin { server 127.0.0.1:%d; keepalive 1024; }" % origin_port)
    proxy.start()
    wait_for_port(port, proc=proxy.proc)
    return proxy


def tickets_issued(port, ca):
    """How many TLS 1.3 tickets one full handshake (with one request) gets from the server."""
    result = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", SERVER_NAME,
         "-CAfile", ca, "-tls1_3", "-msg", "-ign_eof"],
        input="GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        capture_output=True, text=True, timeout=20)
    return len(re.findall(r"^<<< TLS 1.3, Handshake \[length [0-9a-f]+\], NewSessionTicket",
                          result.stdout, re.M))


def h2load_summary(out):
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    if not done:
        raise RuntimeError("h2load printed no summary: %s" % out[-500:])
    return dict(zip(("total", "started", "done", "succeeded", "failed", "errored", "timeout"),
                    (int(g) for g in done.groups())))


def full_handshakes(port, meter, count, per_batch):
    """`count` new connections with one HTTP/1.1 request each, `per_batch` at a time; returns
    (cost, busy, process) us per handshake that succeeded (see Meter)."""
    before, done = meter.read(), 0
    for _ in range(max(1, count // per_batch)):
        out = subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "--h1", "-n", str(per_batch),
                              "-c", str(per_batch), "-m", "1",
                              "https://127.0.0.1:%d/" % port],
                             capture_output=True, text=True, timeout=180).stdout
        done += h2load_summary(out)["succeeded"]
    after = meter.read()
    if done == 0:
        raise RuntimeError("no handshake succeeded on port %d" % port)
    return per_unit_us(before, after, done)


LABELS = {"nginx_full": "nginx full (h2load --h1)", "sluice_full": "sluice full (h2load --h1)",
          "tool_full": "sluice full (storm tool)", "resume": "sluice resumed (storm tool)"}


def format_us(us):
    return "cost %5.0f us  CPU 0 busy %5.0f us  process %5.0f us" % us


def parse_fields(line, prefix):
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in line[len(prefix):].split())}


class StormTool:
    """One run of sluice_handshake_storm on LOAD_CPU. Its phase marks on stderr call
    on_mark(phase, fields) from a reader thread as they come."""

    def __init__(self, binary, args, log_path, on_mark=None):
        self.cmd = ["taskset", "-c", LOAD_CPU, binary] + args
        self.log_path = log_path
        self.on_mark = on_mark or (lambda phase, fields: None)
        self.marks = {}
        self.proc = None

    def _read_marks(self, stream, log):
        for raw in stream:
            line = raw.decode(errors="replace")
            log.write(line)
            m = re.match(r"handshake_storm: (\w+) (mono=.*)$", line)
            if m:
                fields = parse_fields(m.group(2), "")
                self.marks[m.group(1)] = fields
                self.on_mark(m.group(1), fields)

    def _read_lines(self, stream, lines):
        for raw in stream:
            lines.append(raw.decode(errors="replace"))

    def run(self, timeout):
        """Runs it to its end (killed after `timeout` s); returns the fields of its "storm:",
        "prime:" and "storm_client:" lines by their names."""
        out = []
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            readers = [threading.Thread(target=self._read_marks, args=(self.proc.stderr, log),
                                        daemon=True),
                       threading.Thread(target=self._read_lines, args=(self.proc.stdout, out),
                                        daemon=True)]
            for reader in readers:
                reader.start()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                raise RuntimeError("the storm tool did not finish in %.0f s: killed" % timeout)
            finally:
                for reader in readers:
                    reader.join(10)
            log.writelines(out)
        if self.proc.returncode != 0:
            with open(self.log_path) as f:
                raise RuntimeError("the storm tool exited with %d: %s" % (
                    self.proc.returncode, f.read()[-1000:]))
        lines = {}
        for line in out:
            for prefix in ("storm: ", "prime: ", "storm_client: "):
                if line.startswith(prefix):
                    lines[prefix[:-2]] = parse_fields(line.strip(), prefix)
        if "storm" not in lines:
            raise RuntimeError("the storm tool printed no storm line")
        return lines

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def storm_tool_handshakes(tool, ca, port, meter, clients, log_path, prime):
    """The storm tool against one sluice: `clients` new connections spread over a second, each
    resuming a session from a prime against the same sluice (prime=True) or not. Returns
    ((cost, busy, process) us per storm client (see Meter), the tool's figures)."""
    window = {}

    def on_mark(phase, fields):
        if phase in ("storm_begin", "storm_end"):
            window[phase] = meter.read()
    args = ["--ca", ca, "--server-name", SERVER_NAME, "--clients", str(clients),
            "--storm", "127.0.0.1:%d" % port, "--spread-ms", "1000", "--timeout", "20"]
    if prime:
        # The gap lets the prime's last connections close before the measured window opens.
        args += ["--prime", "127.0.0.1:%d" % port, "--gap-ms", "300"]
    figures = StormTool(tool, args, log_path, on_mark).run(120 + clients / 50)
    storm = figures["storm"]
    if storm["ok"] == 0 or "storm_end" not in window:
        raise RuntimeError("the storm tool's clients all failed: see %s" % log_path)
    return per_unit_us(window["storm_begin"], window["storm_end"], clients), storm


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(len(values) * p / 100.0 + 0.999999) - 1))]


def steady_log(path):
    """h2load's --log-file rows: (start, unix seconds; status; duration, ms)."""
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3:
                rows.append((int(parts[0]) / 1e6, int(parts[1]), int(parts[2]) / 1000.0))
    return rows


class StormRun:
    """One storm: an evacuated sluice A and a savior B (shared or own ticket keys), B's steady
    traffic, the storm tool moving the clients from A to B."""

    def __init__(self, args, work, name, origin_port, cert, key, ca, shared):
        self.args = args
        self.work = work
        self.name = name
        self.origin_port = origin_port
        self.cert, self.key, self.ca = cert, key, ca
        self.shared = shared
        self.procs = []
        self.steady = None
        self.marks = {}
        self.queue_peak = 0
        self.sampling = threading.Event()
        self.stopped = threading.Event()

    def key_file(self, name):
        path = os.path.join(self.work, "%s-%s.key" % (self.name, name))
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(os.urandom(80))  # what `openssl rand 80` makes
        return path

    def start_steady(self):
        """B's own traffic, from the end of the prime until after the storm."""
        a = self.args
        duration = int(a.gap_ms / 1000.0 + a.spread_ms / 1000.0 + a.tail + 0.999)  # whole s
        self.steady_log_path = os.path.join(self.work, "%s-steady.log" % self.name)
        self.steady_duration = duration
        self.steady = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU] + realtime(a.rt_priority) +
            ["h2load", "-c", str(a.steady_connections), "-t", "1",
             "-m", "100", "--rps", str(a.steady_rps), "-D", str(duration),
             "--log-file", self.steady_log_path, "https://127.0.0.1:%d/" % self.savior.port],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def on_mark(self, phase, fields):
        self.marks[phase] = (fields, self.meter.read(), tcp_counters())
        if phase == "gap_begin":
            self.start_steady()
        elif phase == "storm_begin":
            self.sampling.set()
        elif phase == "storm_end":
            self.sampling.clear()
            self.stopped.set()

    def sample_queue(self):
        """The savior's accept queue every 100 ms while the storm lasts (ss, on LOAD_CPU)."""
        deadline = time.monotonic() + 600
        while not self.stopped.is_set() and time.monotonic() < deadline:
            if self.sampling.wait(0.1):
                depth = accept_queue(self.savior.port)
                if depth is not None:
                    self.queue_peak = max(self.queue_peak, depth)
                time.sleep(0.1)

    def run(self):
        a = self.args
        key_a = self.key_file("a")
        key_b = key_a if self.shared else self.key_file("b")
        evacuated = start_sluice(a, self.work, self.name + "-a", self.origin_port,
                                 self.cert, self.key, [key_a])
        self.procs.append(evacuated)
        self.savior = start_sluice(a, self.work, self.name + "-b", self.origin_port,
                                   self.cert, self.key, [key_b])
        self.procs.append(self.savior)
        self.meter = Meter(self.savior.worker_pids())
        sampler = threading.Thread(target=self.sample_queue, daemon=True)
        sampler.start()
        tool = StormTool(a.storm_tool, [
            "--ca", self.ca, "--server-name", SERVER_NAME, "--clients", str(a.clients),
            "--prime", "127.0.0.1:%d" % evacuated.port, "--storm", "127.0.0.1:%d" % self.savior.port,
            "--prime-concurrency", "200", "--spread-ms", str(a.spread_ms),
            "--gap-ms", str(a.gap_ms), "--timeout", "20"],
            os.path.join(self.work, "%s-storm.log" % self.name), self.on_mark)
        try:
            figures = tool.run(300 + a.clients / 20)
        finally:
            tool.stop()
            self.stopped.set()
            sampler.join(5)
        if self.steady is None:
            raise RuntimeError("the storm tool never reached its gap: no steady traffic")
        try:
            steady_out = self.steady.communicate(timeout=self.steady_duration + 60)[0]
        except subprocess.TimeoutExpired:
            self.steady.kill()
            steady_out = self.steady.communicate(timeout=10)[0]
        steady_out = steady_out.decode(errors="replace")
        if not os.path.exists(self.steady_log_path):
            raise RuntimeError("h2load (the steady traffic) wrote no log: %s" % steady_out[-500:])
        return self.result(figures, steady_out)

    def result(self, figures, steady_out):
        storm = figures["storm"]
        gap, begin, end = (self.marks[p] for p in ("gap_begin", "storm_begin", "storm_end"))
        rows = steady_log(self.steady_log_path)
        # The calm: after the steady connections are up (1 s), until the storm begins.
        calm = [d for t, s, d in rows if gap[0]["unix"] + 1.0 <= t < begin[0]["unix"] and
                200 <= s < 300]
        during = [d for t, s, d in rows if begin[0]["unix"] <= t <= end[0]["unix"] and
                  200 <= s < 300]
        bad = sum(1 for _, s, _ in rows if not 200 <= s < 300)
        last = max((t for t, _, _ in rows), default=0)
        done = storm["resumed"] + storm["full"]
        counters = {k: end[2].get(k, 0) - begin[2].get(k, 0) for k in NETSTAT + SNMP}
        return {
            "keys": "shared" if self.shared else "own",
            "clients": int(storm["clients"]), "ok": int(storm["ok"]),
            "errors": int(storm["errors"]), "resumed": int(storm["resumed"]),
            "full": int(storm["full"]),
            "resumed_pct": 100.0 * storm["resumed"] / done if done else 0.0,
            "p50_ms": storm["p50_ms"], "p99_ms": storm["p99_ms"], "max_ms": storm["max_ms"],
            "elapsed_ms": storm["elapsed_ms"],
            "prime_ok": int(figures.get("prime", {}).get("ok", 0)),
            "steady_calm_n": len(calm), "steady_storm_n": len(during),
            "calm_p50_ms": percentile(calm, 50), "calm_p99_ms": percentile(calm, 99),
            "storm_p50_ms": percentile(during, 50), "storm_p90_ms": percentile(during, 90),
            "storm_p99_ms": percentile(during, 99),
            "storm_max_ms": max(during, default=float("nan")),
            "p99_ratio": percentile(during, 99) / percentile(calm, 99) if calm and during
            else float("nan"),
            "steady_errors": bad,
            "steady_failed": h2load_summary(steady_out)["failed"] if "requests:" in steady_out
            else None,
            # The steady load ended before the storm did: its storm window is cut short.
            "steady_cut": last < end[0]["unix"] - 1.0,
            # The savior's CPU over the storm (see Meter: cost, CPU 0 busy, process).
            "savior_cpu_s": end[1][0] - begin[1][0], "savior_busy_s": end[1][1] - begin[1][1],
            "queue_peak": self.queue_peak,
            "tool_cpu_s": figures["storm_client"]["cpu_s"],
            # Near 100: the storm tool (one thread on LOAD_CPU) set the storm's pace, not B.
            "tool_busy_pct": 100.0 * figures["storm_client"]["cpu_s"] /
            max(storm["elapsed_ms"] / 1000.0, 1e-3),
            "late_max_ms": figures["storm_client"]["late_max_ms"],
            "in_flight_max": int(figures["storm_client"]["max_in_flight"]),
            "counters": counters,
        }

    def cleanup(self):
        if self.steady is not None and self.steady.poll() is None:
            self.steady.kill()
            self.steady.wait(10)
        for proc in self.procs:
            proc.stop()


def storm_table(runs):
    columns = (("ticket keys", "keys", "s"), ("clients", "clients", "d"), ("ok", "ok", "d"),
               ("errors", "errors", "d"), ("resumed", "resumed", "d"), ("full", "full", "d"),
               ("resumed %", "resumed_pct", ".1f"), ("p50 ms", "p50_ms", ".1f"),
               ("p99 ms", "p99_ms", ".1f"), ("max ms", "max_ms", ".1f"),
               ("storm ms", "elapsed_ms", ".0f"), ("calm p50 ms", "calm_p50_ms", ".2f"),
               ("calm p99 ms", "calm_p99_ms", ".2f"), ("storm p50 ms", "storm_p50_ms", ".2f"),
               ("storm p90 ms", "storm_p90_ms", ".2f"), ("storm p99 ms", "storm_p99_ms", ".1f"),
               ("p99 ratio", "p99_ratio", ".1f"),
               ("steady max ms", "storm_max_ms", ".0f"), ("steady errors", "steady_errors", "d"),
               ("savior CPU s", "savior_cpu_s", ".2f"), ("accept q peak", "queue_peak", "d"),
               ("tool CPU s", "tool_cpu_s", ".2f"), ("tool busy %", "tool_busy_pct", ".0f"),
               ("late max ms", "late_max_ms", ".0f"))
    cells = [[h for h, _, _ in columns]] + [[format(r[k], spec) for _, k, spec in columns]
                                            for r in runs]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    for r in runs:
        print("%s keys: kernel counters over the storm: %s; steady requests: %d calm, %d in "
              "the storm%s; prime ok %d; storm clients in flight at most %d" % (
                  r["keys"], " ".join("%s=%d" % kv for kv in r["counters"].items()),
                  r["steady_calm_n"], r["steady_storm_n"],
                  " (the steady load ended before the storm: window cut short)"
                  if r["steady_cut"] else "", r["prime_ok"], r["in_flight_max"]))


def cost_rounds(args, work, origin_port, cert, key, ca, procs, results):
    """The handshake cost rounds: nginx and sluice full handshakes by h2load, then sluice's full
    and resumed ones by the storm tool; each round's (cost, busy, process) us into results."""
    nginx = start_nginx(work, origin_port, cert, key)
    procs.append(nginx)
    sluice = start_sluice(args, work, "sluice", origin_port, cert, key)
    procs.append(sluice)
    tickets = {"nginx": tickets_issued(nginx.port, ca), "sluice": tickets_issued(sluice.port, ca)}
    print("TLS 1.3 tickets per full handshake: nginx %(nginx)d, sluice %(sluice)d" % tickets,
          flush=True)
    if tickets["nginx"] != tickets["sluice"]:
        print("warning: the proxies issue different numbers of tickets", file=sys.stderr)
    nginx_meter, sluice_meter = Meter(nginx.worker_pids()), Meter(sluice.worker_pids())
    for r in range(args.rounds):
        for kind, proxy, meter in (("nginx_full", nginx, nginx_meter),
                                   ("sluice_full", sluice, sluice_meter)):
            us = full_handshakes(proxy.port, meter, args.handshakes, args.batch)
            results[kind].append(us)
            print("round %d %-40s %s" % (r + 1, LABELS[kind], format_us(us)), flush=True)
        for kind, prime in (("tool_full", False), ("resume", True)):
            us, storm = storm_tool_handshakes(
                args.storm_tool, ca, sluice.port, sluice_meter, args.handshakes,
                os.path.join(work, "%s-%d.log" % (kind, r)), prime)
            results[kind].append(us)
            print("round %d %-40s %s  (%d resumed, %d full, %d errors)" % (
                r + 1, LABELS[kind], format_us(us), storm["resumed"], storm["full"],
                storm["errors"]), flush=True)
    for proc in (nginx, sluice):
        proc.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=os.path.join(ROOT, "build/proxy/sluice"))
    parser.add_argument("--storm-tool",
                        default=os.path.join(ROOT, "build/bench/sluice_handshake_storm"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--handshakes", type=int, default=2000,
                        help="full or resumed handshakes per proxy per round (2000)")
    parser.add_argument("--batch", type=int, default=500, help="h2load connections at once (500)")
    parser.add_argument("--clients", type=int, default=10000, help="storm clients (10000)")
    parser.add_argument("--spread-ms", type=int, default=1000,
                        help="the storm clients' starts spread over this (1000)")
    parser.add_argument("--gap-ms", type=int, default=5000,
                        help="the calm between the prime and the storm (5000)")
    parser.add_argument("--tail", type=float, default=15,
                        help="seconds of steady traffic after the spread (15)")
    parser.add_argument("--steady-connections", type=int, default=20)
    parser.add_argument("--steady-rps", type=int, default=50, help="per connection (50)")
    parser.add_argument("--sluice-extra", default="",
                        help="YAML appended to every sluice's configuration (a top-level key, "
                        "such as \"limits: {max_connections: 0}\")")
    parser.add_argument("--rt-priority", type=int, default=50,
                        help="SCHED_FIFO priority of the steady client and the origin on LOAD_CPU "
                        "(50; 0: none, as the storm tool)")
    parser.add_argument("--storm-only", action="store_true",
                        help="only the storms, not the handshake cost rounds")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs: the steady client's per request, "
                        "the storm tool's marks) and print its path")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.handshakes, args.batch = 1, 300, 300
        args.clients, args.spread_ms, args.gap_ms, args.tail = 300, 300, 2500, 4
    if args.gap_ms < 2000:
        sys.exit("--gap-ms: at least 2000 (the steady traffic's calm starts 1 s into the gap)")
    args.sluice = os.path.abspath(args.sluice)
    args.storm_tool = os.path.abspath(args.storm_tool)
    for binary, target in ((args.sluice, "sluice"), (args.storm_tool, "sluice_handshake_storm")):
        if not os.access(binary, os.X_OK):
            sys.exit("no executable %s: build it first (make %s)" % (binary, target))
    if os.cpu_count() < 2:
        sys.exit("needs two CPUs: the proxies on one, clients and origin on the other")
    highest = os.sched_get_priority_max(os.SCHED_FIFO)
    if not 0 <= args.rt_priority <= highest:
        sys.exit("--rt-priority: 0 (none) or 1..%d" % highest)
    tools = ("h2load", "nginx", "openssl", "taskset", "ss")
    if args.rt_priority:
        tools += ("chrt",)
    for tool in tools:
        if not shutil.which(tool):
            sys.exit("missing %s (apt-get install nghttp2-client nginx-light openssl util-linux "
                     "iproute2)" % tool)
    # This script's own work (its threads, the processes it starts before they pin themselves:
    # taskset, ss) stays off the proxies' CPU: sampling the accept queue every 100 ms otherwise
    # spent tens of ms of CPU 0 per storm in taskset's start-up, in the savior's way.
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    limit = raise_descriptor_limit()
    if limit < args.clients + 1024:
        print("warning: the descriptor limit is %d; %d storm clients may want as many" % (
            limit, args.clients), file=sys.stderr)

    work = tempfile.mkdtemp(prefix="sluice-handshakes-")
    pki = Pki(work)
    ca = pki.ca()
    cert, key = pki.leaf("server")
    origin_port = free_port()
    origin = hello_origin(work, origin_port, LOAD_CPU)
    procs = [origin]
    # Per kind of handshake, one (cost, busy, process) us per round.
    results = {k: [] for k in ("nginx_full", "sluice_full", "tool_full", "resume")}
    runs = []
    try:
        wait_for_port(origin_port)
        # The master first: a worker it forks after that is real-time too.
        if args.rt_priority and not (make_realtime([origin.proc.pid], args.rt_priority) and
                                     make_realtime(origin.worker_pids(), args.rt_priority)):
            args.rt_priority = 0
        if not args.storm_only:
            cost_rounds(args, work, origin_port, cert, key, ca, procs, results)
        for shared in (True, False):
            run = StormRun(args, work, "shared" if shared else "own", origin_port, cert, key, ca,
                           shared)
            try:
                runs.append(run.run())
            finally:
                run.cleanup()
            print("storm with %s keys done: %d ok, %d errors, %.0f%% resumed" % (
                runs[-1]["keys"], runs[-1]["ok"], runs[-1]["errors"], runs[-1]["resumed_pct"]),
                flush=True)
    finally:
        for proc in procs:
            proc.stop()
        if args.keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, True)

    med = statistics.median
    if not args.storm_only:
        cost = {k: med(u[0] for u in v) for k, v in results.items()}
        print("\nHandshakes with one request each, %d per proxy per round, %d rounds (medians, us "
              "of CPU per handshake; cost: the process plus CPU 0's irq and softirq, see Meter)" % (
                  args.handshakes, args.rounds))
        print("| handshake | cost us | CPU 0 busy us | process us | handshakes/s per core |")
        print("|---|---|---|---|---|")
        for kind in ("nginx_full", "sluice_full", "tool_full", "resume"):
            print("| %s | %.0f | %.0f | %.0f | %.0f |" % (
                LABELS[kind], cost[kind], med(u[1] for u in results[kind]),
                med(u[2] for u in results[kind]), 1e6 / cost[kind]))
    print("\nThe storm: %d clients from A to the savior B within %d ms, while B serves %d "
          "steady requests/s (h2load -c %d --rps %d, HTTP/2 over TLS%s)" % (
              args.clients, args.spread_ms, args.steady_connections * args.steady_rps,
              args.steady_connections, args.steady_rps,
              "; it and the origin at SCHED_FIFO %d" % args.rt_priority if args.rt_priority
              else ""))
    storm_table(runs)
    shared = runs[0]
    storm = "storm_clients=%d storm_p99_ratio=%.1f storm_errors=%d resumed_pct=%.1f" % (
        args.clients, shared["p99_ratio"], shared["steady_errors"] + shared["errors"],
        shared["resumed_pct"])
    if args.storm_only:
        print("handshakes: " + storm)
    else:
        print("handshakes: full_us=%.0f nginx_full_us=%.0f resume_us=%.0f %s" % (
            cost["sluice_full"], cost["nginx_full"], cost["resume"], storm))


if __name__ == "__main__":
    main()
