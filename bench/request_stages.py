#!/usr/bin/env python3
"""Where a proxied request's instructions go: the stages of bench/request_stages_bench.cc
(parse, normalise, route, filters, steering, serialise) against the whole request.

Each stage benchmark runs twice under callgrind with a fixed iteration count
(SLUICE_STAGE_ITERATIONS; libbenchmark 1.7 has no --benchmark_min_time=Nx), and the difference
of the two totals over the difference in iterations is its instructions per request, set-up
and start-up left out. The serialise stage's copy of the parsed fields (its "copy_only" twin)
is subtracted. The whole request is bench/compare.py's figure for the same configuration: a
fresh sluice under callgrind serving two fixed numbers of requests from h2load --h1 -c 10
(bench/instructions.py), "sluice" (the quick start's: no filter, no steering) and
"sluice-full" (its filter chain with a bearer token, and steering).

What is compared: sum = the stages measured alone, whole = everything the process does per
request, so whole - sum ("rest") is what no stage covers: the event loop, the socket system
calls' user-space side, buffers, timers, the forwarder's glue, the upstream pool, metrics.
ratio = sum / whole. The 20 % check is per stage: the same stage's public entry points inside
the running sluice-full (inclusive instructions from callgrind_annotate, the same two-run
difference), against the stage alone; a stage more than 20 % off is marked, as the micro
benchmark then does not measure what a real request does. (The in-process serialise counts
the request side and the response's Prepare and status line; the codec writes the response
fields inside a function that also sends, so those are in "rest".)

Usage: bench/request_stages.py [--bench build/bench/sluice_bench] [--sluice build/proxy/sluice]
                               [--iterations 2000,12000] [--requests 2000,12000] [--quick]
Prints a table and two lines for machines (instructions per request):
  stages: parse=.. normalise=.. route=.. filters=.. steering=.. serialise=.. sum=.. whole=..
          ratio=..        (sluice-full: the full chain and steering)
  stages_default: ...     (sluice: no filter, no steering)
Needs: valgrind, h2load, nginx, taskset.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import compare
from http1_compare import LOAD_CPU, PROXY_CPU
from instructions import callgrind_total, inclusive_costs, instructions_per_request
from sluicetest.certs import Pki
from sluicetest.nginx import hello_origin
from sluicetest.process import ROOT, free_port, wait_for_port

# Stage: the benchmarks whose figures add up to it (a "-" prefix subtracts).
STAGES = {
    "parse": ["BM_Stage_Parse"],
    "normalise": ["BM_Stage_Normalise"],
    "route": ["BM_Stage_Route"],
    "filters": {"default": ["BM_Stage_Filters/full:0"], "full": ["BM_Stage_Filters/full:1"]},
    "steering": {"default": [], "full": ["BM_Stage_Steering"]},
    "serialise": ["BM_Stage_Serialise/copy_only:0", "-BM_Stage_Serialise/copy_only:1"],
}

# Stage: the public entry points that do its work inside sluice (inclusive costs; regular
# expressions over demangled names), and what runs inside them but belongs elsewhere: the
# parser calls its handler (the codec, the upstream connection) from Execute, and the whole
# forwarding of a request happens in that call.
ENTRY_POINTS = {
    "parse": [r"sluice::Http1Parser::Execute\("],
    "normalise": [r"sluice::NormalizeRequest\("],
    "route": [r"sluice::Router::Match\("],
    "filters": [r"sluice::FilterRun::(Start|RunRequestHead|RunResponseHead|Complete)\("],
    "steering": [r"sluice::ReadSteeringInputs\(", r"sluice::Decide\("],
    "serialise": [r"sluice::(PrepareUpstreamRequest|SerializeUpstreamRequest|"
                  r"PrepareDownstreamResponse|AppendStatusLine)\("],
}
NESTED = {"parse": [r"sluice::(?!Http1Parser::)\w+::On(Head|Body|MessageComplete)\("]}


def bench_instructions(binary, name, counts):
    """Instructions per iteration of one benchmark: two callgrind runs, the difference."""
    out_dir = tempfile.mkdtemp(prefix="sluice-stages-")
    totals = []
    try:
        for n in counts:
            out = os.path.join(out_dir, "stage-%d" % n)
            env = dict(os.environ, SLUICE_STAGE_ITERATIONS=str(n))
            result = subprocess.run(
                ["taskset", "-c", PROXY_CPU, "valgrind", "--tool=callgrind", "--quiet",
                 "--callgrind-out-file=" + out, binary,
                 "--benchmark_filter=^%s(/iterations:[0-9]+)?$" % name],
                env=env, capture_output=True, text=True, timeout=600)
            if result.returncode != 0 or "ERROR OCCURRED" in result.stdout:
                raise RuntimeError("%s failed:\n%s%s" % (name, result.stdout[-2000:],
                                                          result.stderr[-2000:]))
            if name.split("/")[0] not in result.stdout:
                raise RuntimeError("%s: no such benchmark in %s" % (name, binary))
            totals.append(callgrind_total(out))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return (totals[1] - totals[0]) / (counts[1] - counts[0])


def whole_request(sluice, counts):
    """Instructions per request of sluice and sluice-full (compare.py's configurations)."""
    work = tempfile.mkdtemp(prefix="sluice-stages-")
    cert, key = Pki(work).self_signed("server")
    origin_port = free_port()
    origin = hello_origin(work, origin_port, LOAD_CPU)
    token = compare.hs256_token(b"sluice-bench-secret-0123456789abcdef",
                                {"sub": "member-42", "iss": "bench", "tier": "gold",
                                 "exp": int(time.time()) + 86400})
    whole, inside = {}, {}
    patterns = [p for table in (ENTRY_POINTS, NESTED) for entries in table.values()
                for p in entries]

    def attribute(small, big):
        costs = [inclusive_costs(files[0], patterns) for files in (small, big)]
        delta = {p: (costs[1][p] - costs[0][p]) / (counts[1] - counts[0]) for p in patterns}
        for stage, entries in ENTRY_POINTS.items():
            inside[stage] = (sum(delta[p] for p in entries) -
                             sum(delta[p] for p in NESTED.get(stage, [])))
    try:
        wait_for_port(origin_port)
        for row in ("sluice", "sluice-full"):
            whole[row], _ = instructions_per_request(
                lambda wrapper, tag, row=row: compare.fresh_proxy(
                    row, wrapper, tag, work, origin_port, cert, key, sluice),
                row, counts, extra=["-H", "Authorization: Bearer " + token],
                inspect=attribute if row == "sluice-full" else None)
    finally:
        origin.stop()
        shutil.rmtree(work, ignore_errors=True)
    return whole, inside


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", default=os.path.join(ROOT, "build/bench/sluice_bench"))
    parser.add_argument("--sluice", default=os.path.join(ROOT, "build/proxy/sluice"))
    parser.add_argument("--iterations", default="2000,12000",
                        help="the two iteration counts of each stage benchmark")
    parser.add_argument("--requests", default="2000,12000",
                        help="the two request counts of the whole-request runs")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.requests = "100,1100", "200,1200"
    iterations = tuple(int(n) for n in args.iterations.split(","))
    requests = tuple(int(n) for n in args.requests.split(","))
    for counts in (iterations, requests):
        if len(counts) != 2 or not 0 < counts[0] < counts[1]:
            sys.exit("two counts, the smaller first (e.g. 2000,12000)")
    for tool in ("valgrind", "h2load", "nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit("missing %s (apt-get install valgrind nghttp2-client nginx-light)" % tool)
    for path in (args.bench, args.sluice):
        if not os.access(path, os.X_OK):
            sys.exit("no executable %s: build it first (make sluice sluice_bench)" % path)

    measured = {}
    for parts in STAGES.values():
        for names in (parts.values() if isinstance(parts, dict) else [parts]):
            for name in names:
                name = name.lstrip("-")
                if name not in measured:
                    measured[name] = bench_instructions(args.bench, name, iterations)
                    print("%-34s %8.0f instructions per iteration" % (name, measured[name]),
                          flush=True)
    whole, inside = whole_request(args.sluice, requests)

    stages = {"default": {}, "full": {}}
    for stage, parts in STAGES.items():
        for config in stages:
            names = parts[config] if isinstance(parts, dict) else parts
            stages[config][stage] = sum(-measured[n[1:]] if n.startswith("-") else measured[n]
                                        for n in names)
    rows = {"default": "sluice", "full": "sluice-full"}
    print("\ninstructions per request (stages: %d - %d iterations alone; whole: %d - %d requests "
          "through the proxy, h2load --h1 -c 10)" % (iterations[1], iterations[0], requests[1],
                                                     requests[0]))
    print("| stage | sluice | sluice-full | inside sluice-full | alone / inside |")
    print("|---|---|---|---|---|")
    off = []
    for stage in STAGES:
        alone, real = stages["full"][stage], inside[stage]
        ratio = alone / real if real > 0 else float("nan")
        if not 0.8 <= ratio <= 1.2:
            off.append(stage)
        print("| %s | %.0f | %.0f | %.0f | %.2f%s |" % (
            stage, stages["default"][stage], alone, real, ratio,
            "" if 0.8 <= ratio <= 1.2 else " (over 20 % off)"))
    sums = {config: sum(stages[config].values()) for config in stages}
    print("| sum of stages | %.0f | %.0f | %.0f | %.2f |" % (
        sums["default"], sums["full"], sum(inside.values()),
        sums["full"] / max(sum(inside.values()), 1)))
    print("| rest: loop, socket I/O, glue | %.0f | %.0f | | |" % (
        whole["sluice"] - sums["default"], whole["sluice-full"] - sums["full"]))
    print("| whole request | %.0f | %.0f | | |" % (whole["sluice"], whole["sluice-full"]))
    print("(stages more than 20 %% off their cost inside sluice: %s)" % (", ".join(off) or
                                                                        "none"))
    print("stages_inside: %s sum=%.0f" % (" ".join("%s=%.0f" % kv for kv in inside.items()),
                                           sum(inside.values())))
    for config, prefix in (("default", "stages_default"), ("full", "stages")):
        print("%s: %s sum=%.0f whole=%.0f ratio=%.3f" % (
            prefix, " ".join("%s=%.0f" % (k, v) for k, v in stages[config].items()),
            sums[config], whole[rows[config]], sums[config] / whole[rows[config]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
