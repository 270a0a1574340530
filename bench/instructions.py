"""User-space instructions per request, counted by callgrind (no hardware counters needed).

A proxy runs twice, each time a fresh instance under valgrind --tool=callgrind, and serves a
fixed number of requests (h2load --h1, the same connections both times); the difference of the
two totals divided by the difference in requests leaves out start-up, shutdown and the
connections' set-up. Multi-process proxies (nginx's master and worker, nghttpx's) run with
--trace-children=yes, one output file per process (%p); the figure is the sum over the
master's descendants (its workers), or the process itself when it has none.
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile

from sluicetest.process import child_pids, wait_for_port, wait_until

LOAD_CPU = "1"


def callgrind_total(path):
    """The Ir total of one callgrind output file (its `totals:` line, else `summary:`)."""
    totals = summary = None
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                totals = int(line.split()[1])
            elif line.startswith("summary:"):
                summary = int(line.split()[1])
    if totals is None and summary is None:
        raise ValueError("%s has no totals: or summary: line (did the process exit?)" % path)
    return totals if totals is not None else summary


def allocation_calls(path):
    """Calls to malloc, calloc and realloc recorded in one callgrind output file (operator new
    and OpenSSL's allocations end there too). Function names are compressed after their first
    mention ("cfn=(12) malloc", then "cfn=(12)"), so ids are resolved as the file goes."""
    names, callee, calls = {}, None, 0
    with open(path) as f:
        for line in f:
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2).strip()
                callee = names.get(m.group(1)) if line.startswith("cfn=") else None
                continue
            if callee in ("malloc", "calloc", "realloc") and line.startswith("calls="):
                calls += int(line.split("=", 1)[1].split()[0])
    return calls


def callgrind_wrapper(out_prefix, children):
    # nghttpx runs fetch-ocsp-response (Python) at start: not a worker, and slow under valgrind.
    return ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.%%p" % out_prefix,
            "--trace-children=%s" % ("yes" if children else "no"),
            "--trace-children-skip=*python*,*fetch-ocsp-response*", "--quiet"]


def worker_total(out_prefix, top_pid):
    """The instructions of the workers: every file but the top process's when there are
    others (nginx's master only starts and reaps), else the top process's."""
    workers = worker_files(out_prefix, top_pid)
    if not workers:
        raise ValueError("callgrind wrote nothing to %s.*" % out_prefix)
    return sum(callgrind_total(p) for p in workers)


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        children = child_pids(todo.pop())
        found += children
        todo += children
    return found


def exited(pid):
    """True once `pid` is gone or a zombie (its callgrind file is written by then)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def fixed_requests(port, requests, connections, extra=()):
    """h2load --h1 sends exactly `requests` requests; raises unless every one succeeded."""
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "--h1", "-n", str(requests),
                          "-c", str(connections)] + list(extra) +
                         ["http://127.0.0.1:%d/" % port],
                         capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not m or int(m.group(2)) != requests:
        raise RuntimeError("h2load: not every request succeeded on port %d:\n%s" % (port, out))


def worker_files(out_prefix, top_pid):
    files = {int(p.rsplit(".", 1)[1]): p for p in glob.glob(out_prefix + ".*")
             if re.search(r"\.\d+$", p)}
    return [p for pid, p in files.items() if pid != top_pid] or list(files.values())


def inclusive_costs(path, patterns):
    """Inclusive instructions of the functions whose names (demangled, as callgrind_annotate
    prints them) match one of the regular expressions `patterns` from their start, summed per
    pattern over every source file the function's code came from (inlined header code is
    listed apart): {pattern: Ir}."""
    # From "/": in a source tree it lists a function again under a relative file name.
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                          "--auto=no", os.path.abspath(path)], cwd="/",
                         capture_output=True, text=True, timeout=300).stdout
    compiled = [(p, re.compile(p)) for p in patterns]
    costs = dict.fromkeys(patterns, 0)
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?[^\s:]*:(\S.*?)(?: \[[^\]]*\])?$",
                     line)
        if not m:
            continue
        for pattern, regex in compiled:
            if regex.match(m.group(2)):
                costs[pattern] += int(m.group(1).replace(",", ""))
    return costs


def instructions_per_request(start, tag, counts, connections=10, extra=(), children=False,
                             inspect=None):
    """Instructions per request of the proxy `start(wrapper, tag)` starts: a function that
    starts a fresh instance under `wrapper` and returns (process, port). counts: (small, big)
    requests. inspect: called with the workers' output files of the small run and of the big
    one before they are removed. Returns (per request, (small total, big total))."""
    # Workers that drop privileges (nginx's run as nobody) write their files here too.
    out_dir = tempfile.mkdtemp(prefix="sluice-callgrind-")
    os.chmod(out_dir, 0o1777)
    totals, files = [], []
    try:
        for n in counts:
            out_prefix = os.path.join(out_dir, "%s-%d" % (tag, n))
            proc, port = start(callgrind_wrapper(out_prefix, children), "%s-%d" % (tag, n))
            workers = []
            try:
                try:
                    wait_for_port(port, timeout=120, proc=proc.proc)
                except (RuntimeError, TimeoutError) as e:
                    log = proc.log_text()[-1500:] if proc.log_path else ""
                    raise RuntimeError("%s: %s\n%s" % (tag, e, log)) from e
                fixed_requests(port, n, connections, extra)
                workers = descendants(proc.pid)
            finally:
                proc.stop(timeout=60)
            # A worker may outlive its master (nghttpx's notices the master gone, then exits).
            if not wait_until(lambda: all(exited(p) for p in workers), 60, 0.1):
                raise RuntimeError("%s: workers %s still run after the stop" % (tag, workers))
            totals.append(worker_total(out_prefix, proc.pid))
            files.append(worker_files(out_prefix, proc.pid))
        if inspect:
            inspect(*files)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    small, big = counts
    return (totals[1] - totals[0]) / (big - small), tuple(totals)
