"""Processes on loopback: free ports, waiting for readiness, and the processes themselves.

Every process is started by Process (or Sluice, its sluice flavour) and stopped by its PID:
the stop signal, a bounded wait, then SIGKILL. Waits poll a predicate until it holds or the time
is up; the predicates here never raise while waiting, they return False until true.
"""

import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(ROOT, "build/proxy/sluice"))
SLUICECTL_BIN = os.environ.get("SLUICECTL_BIN", os.path.join(ROOT, "build/ctl/sluicectl"))

_given = set()  # ports free_port returned in this process: never twice


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A TCP port on 127.0.0.1 that nothing uses, for a process the caller starts next.

    Taken below the kernel's ephemeral range when one is free there: the kernel gives ephemeral
    ports to outgoing connections too, which could take the port before its process binds it.
    The fallback is a port the kernel picks (bind to port 0)."""
    low = _ephemeral_low()
    if low > 10000:
        for port in random.sample(range(10000, low), min(64, low - 10000)):
            if port not in _given and _bindable(port):
                _given.add(port)
                return port
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port


def port_open(port, timeout=0.5):
    """True if something accepts a connection on 127.0.0.1:port (the connection is closed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout, interval=0.02):
    """Calls predicate() until it returns something true or `timeout` seconds pass; returns its
    last value. The predicate is called at least once. A predicate that fails to connect (an
    OSError: refused, reset, timed out) counts as "not yet": a process that is still starting
    or restarting is what a wait is for. If the last call raised, that error is raised."""
    deadline = time.monotonic() + timeout
    while True:
        error = None
        try:
            value = predicate()
        except OSError as e:
            value, error = None, e
        if value or time.monotonic() >= deadline:
            if error is not None:
                raise error
            return value
        time.sleep(interval)


def wait_for_port(port, timeout=10.0, proc=None):
    """Waits until something listens on 127.0.0.1:port. Raises RuntimeError if `proc` (a
    subprocess.Popen) exits first, TimeoutError when the time is up."""
    def ready():
        if proc is not None and proc.poll() is not None:
            return "exited"
        return port_open(port)
    state = wait_until(ready, timeout)
    if state == "exited":
        raise RuntimeError("process exited with %s before listening" % proc.returncode)
    if not state:
        raise TimeoutError("nothing listens on port %d" % port)


def child_pids(pid):
    """The PIDs of the direct children of `pid` (nginx's workers, say)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def cpu_seconds(pids):
    """utime + stime of every thread of these processes, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def rss_kib(pids):
    """Resident memory from the page tables (smaps_rollup). VmRSS in /proc/<pid>/status lags
    behind for multi-threaded processes: threads batch their counter updates."""
    total = 0
    for pid in pids:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    total += int(line.split()[1])
    return total


class Process:
    """One command, its output in a log file (or discarded), stopped by its PID.

    cpu: pin it with taskset -c. stop_signal, stop_timeout: how stop() asks it to exit and how
    long it waits before SIGKILL. append: start() appends to the log instead of truncating it.
    start() may be called again after stop(). wrapper: a command the program runs under
    (["valgrind", "--tool=callgrind", ...]), after taskset."""

    # Programs that block or catch their stop signal from early on (sluice) are only sent it
    # once they do, so a stop right after start is their graceful stop, not the default action.
    waits_for_signal_handling = False

    def __init__(self, cmd, log_path=None, cpu=None, stop_signal=signal.SIGTERM,
                 stop_timeout=10.0, append=False):
        self.cmd = list(cmd)
        self.log_path = log_path
        self.cpu = cpu
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.append = append
        self.proc = None
        self.log = None
        self.wrapper = []

    def command(self):
        return self.cmd

    def start(self):
        prefix = ["taskset", "-c", self.cpu] if self.cpu is not None else []
        out, err = subprocess.DEVNULL, subprocess.DEVNULL
        if self.log_path:
            self.log = open(self.log_path, "ab" if self.append else "wb")
            out, err = self.log, subprocess.STDOUT
        self.proc = subprocess.Popen(prefix + self.wrapper + self.command(),
                                     stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=err)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum):
        if self.running():
            os.kill(self.proc.pid, signum)

    def stop(self, timeout=None):
        """The stop signal, a wait for the exit; SIGKILL if it does not come. Returns the exit
        code (None if it never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if self.waits_for_signal_handling:
                wait_until(lambda: self.handles_signal(self.stop_signal) or
                           self.proc.poll() is not None, 5.0, 0.01)
            os.kill(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.log:
            self.log.close()
        return self.proc.returncode

    def handles_signal(self, signum):
        """True once the process blocks or catches `signum` (its SigBlk or SigCgt in
        /proc/PID/status), False while it would die of it, or when it is gone."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            return False
        bit = 1 << (signum - 1)
        return any(int(fields.get(k, "0").strip(), 16) & bit for k in ("SigBlk", "SigCgt"))

    def worker_pids(self):
        """The process and its direct children: what CPU time and memory are counted over."""
        return [self.proc.pid] + child_pids(self.proc.pid)

    def rss_kib(self):
        return rss_kib([self.proc.pid])

    def log_text(self):
        if self.log and not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for_log(self, pattern, timeout=5.0):
        """True once the log matches the regular expression `pattern`, False after `timeout`."""
        return bool(wait_until(lambda: re.search(pattern, self.log_text()), timeout, 0.05))


class Sluice(Process):
    """A sluice process: on a YAML configuration written to <directory>/<name>.yaml (with
    "{port}" replaced by its port), or on command-line arguments; log in <directory>/<name>.log.

    port: the port start() waits for (a free one by default). workers: --workers N, added to
    command-line arguments that name none. admin: give it --admin 127.0.0.1:<admin_port> (a free
    port by default), unless the arguments already name one; False when the configuration names
    its own admin address or the binary should run with its defaults. directory: a new temporary
    one by default; the caller removes it."""

    waits_for_signal_handling = True

    def __init__(self, config_text=None, args=None, port=None, workers=1, admin=True,
                 admin_port=None, binary=None, directory=None, name="sluice", cpu=None,
                 stop_timeout=10.0):
        self.port = port or free_port()
        self.dir = directory or tempfile.mkdtemp(prefix="sluice-test-")
        self.config_path = os.path.join(self.dir, name + ".yaml")
        super().__init__([], os.path.join(self.dir, name + ".log"), cpu=cpu,
                         stop_timeout=stop_timeout)
        self.binary = binary or SLUICE_BIN
        if config_text is not None:
            self.write_config(config_text.replace("{port}", str(self.port)))
            self.args = ["--config", self.config_path]
        else:
            self.args = list(args or [])
        if workers is not None and config_text is None and "--workers" not in self.args:
            self.args += ["--workers", str(workers)]
        # Every sluice gets its own admin port: tests run in parallel, and 9901 is the default.
        self.admin_port = None
        if admin and "--admin" not in self.args:
            self.admin_port = admin_port or free_port()
            self.args += ["--admin", "127.0.0.1:%d" % self.admin_port]

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    def command(self):
        return [self.binary] + self.args

    def start(self, wait=True):
        super().start()
        if wait:
            # The admin socket is opened after the proxy's: wait for both.
            wait_for_port(self.port, proc=self.proc)
            if self.admin_port:
                wait_for_port(self.admin_port, proc=self.proc)
        return self
