"""The process: command line, --check, SIGHUP reload (valid and invalid), SIGTERM drain."""

import http.client
import os
import re
import shutil
import tempfile
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import ProxyTestCase, basic_config
from sluicetest import admin
from sluicetest.process import SLUICE_BIN, Sluice, free_port, wait_for_port


def run_sluice(*args, timeout=10):
    return subprocess.run([SLUICE_BIN] + list(args), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class CommandLine(ProxyTestCase):
    def test_check_accepts_the_shipped_configurations(self):
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
        # The demo's secrets are made where it runs (none is in git): a copy with its own.
        regions = tempfile.mkdtemp(prefix="sluice-regions-")
        self.addCleanup(shutil.rmtree, regions, True)
        for name in ("us-east-1.yaml", "us-west-2.yaml", "eu-west-1.yaml"):
            shutil.copy(os.path.join(root, "conf/regions", name), regions)
        subprocess.run([os.path.join(root, "conf/regions/make-secrets.sh"), regions], check=True)
        for name in ("conf/sluice.yaml", "conf/edge.yaml", regions + "/us-east-1.yaml",
                     regions + "/us-west-2.yaml", regions + "/eu-west-1.yaml"):
            result = run_sluice("--check", "--config", os.path.join(root, name))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(b"is valid", result.stdout)

    def test_check_names_file_line_and_key(self):
        proxy = Sluice(basic_config([1]).replace("balancer: round_robin", "balancer: random"))
        self.addCleanup(shutil.rmtree, proxy.dir, True)
        result = run_sluice("--check", "--config", proxy.config_path)
        self.assertEqual(result.returncode, 1)
        self.assertRegex(result.stderr.decode(),
                         r"sluice\.yaml:9: clusters\[0\]\.balancer: must be round_robin or least_outstanding")

    def test_bad_arguments(self):
        self.assertEqual(run_sluice("--frobnicate").returncode, 2)
        result = run_sluice("--listen", "127.0.0.1:1")
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"--origin", result.stderr)
        self.assertEqual(run_sluice("--config", "/nonexistent.yaml").returncode, 1)

    def test_quick_start(self):
        origin = self.start_origin()
        port = free_port()
        proxy = self.start_sluice(args=["--listen", "127.0.0.1:%d" % port, "--origin",
                                        "127.0.0.1:%d" % origin.port, "--workers", "2"], port=port)
        c = self.client(proxy.port)
        c.send(b"GET /quick HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[2], b"ok /quick\n")
        # The workers answer before the main thread has logged that they started.
        self.assertTrue(proxy.wait_for_log("with 2 workers"), proxy.log_text())

    def test_listen_conflict_is_reported(self):
        busy = free_port()
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", busy))
        s.listen(1)
        self.addCleanup(s.close)
        result = run_sluice("--listen", "127.0.0.1:%d" % busy, "--origin", "127.0.0.1:1")
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"cannot listen on 127.0.0.1:%d" % busy, result.stderr)


class Privileges(ProxyTestCase):
    def test_file_limit_is_raised_to_the_hard_limit(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port]))
        with open("/proc/%d/limits" % proxy.proc.pid) as f:
            line = next(l for l in f if l.startswith("Max open files"))
        soft, hard = line.split()[3:5]
        self.assertEqual(soft, hard)

    @unittest.skipIf(os.geteuid() != 0, "needs root to switch users")
    def test_drops_to_the_configured_user_after_binding(self):
        import pwd
        nobody = pwd.getpwnam("nobody")
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port], extra="user: nobody\n"))
        # The sockets listen before the switch (privileged ports need root): wait for sluice
        # to say it switched, then every thread (the workers start after it) must be nobody.
        self.assertTrue(proxy.wait_for_log("running as user nobody"), proxy.log_text())
        self.assertTrue(proxy.wait_for_log("sluice listening on"), proxy.log_text())
        tasks = os.listdir("/proc/%d/task" % proxy.proc.pid)
        self.assertGreater(len(tasks), 1)  # the main thread and the worker
        for task in tasks:
            with open("/proc/%d/task/%s/status" % (proxy.proc.pid, task)) as f:
                uids = next(l for l in f if l.startswith("Uid:")).split()[1:]
            self.assertEqual(set(int(u) for u in uids), {nobody.pw_uid}, "thread " + task)
        c = self.client(proxy.port)
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)


class Reload(ProxyTestCase):
    def test_sighup_applies_a_valid_config_and_keeps_connections(self):
        a = self.start_origin(name="a")
        b = self.start_origin(name="b")
        proxy = self.start_sluice(basic_config([a.port]))
        c = self.client(proxy.port)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response()[1]["x-origin"], ["a"])
        proxy.write_config(basic_config([b.port]).replace("{port}", str(proxy.port)))
        proxy.signal(signal.SIGHUP)
        self.assertTrue(proxy.wait_for_log("configuration reloaded"))
        # The same client connection now reaches the new cluster.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            if c.read_response()[1]["x-origin"] == ["b"]:
                break
            time.sleep(0.05)
        else:
            self.fail("reload did not reach the worker")

    def test_sighup_with_an_invalid_config_keeps_the_running_one(self):
        a = self.start_origin(name="a")
        proxy = self.start_sluice(basic_config([a.port]))
        proxy.write_config("listeners: [\n")
        proxy.signal(signal.SIGHUP)
        self.assertTrue(proxy.wait_for_log(r"reload refused, keeping the running configuration: .*sluice\.yaml:2"))
        c = self.client(proxy.port)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)

    def test_sighup_adds_and_removes_listeners(self):
        a = self.start_origin(name="a")
        proxy = self.start_sluice(basic_config([a.port]))
        second = free_port()
        config = basic_config([a.port]).replace("{port}", str(proxy.port)).replace(
            "listeners:\n", "listeners:\n  - name: second\n    address: 127.0.0.1:%d\n" % second)
        proxy.write_config(config)
        proxy.signal(signal.SIGHUP)
        wait_for_port(second)
        c = self.client(second)
        c.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response()[2], b"ok /second\n")


class Drain(ProxyTestCase):
    def test_sigterm_finishes_in_flight_requests_then_exits_0(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port]))
        c = self.client(proxy.port)
        c.send(b"GET /slow?ms=700 HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.2)
        proxy.signal(signal.SIGTERM)
        status, headers, body = c.read_response()
        self.assertEqual((status, body), (200, b"slow\n"))
        self.assertEqual(headers["connection"], ["close"])
        proxy.proc.wait(10)
        self.assertEqual(proxy.proc.returncode, 0)
        self.assertIn("draining", proxy.log_text())

    def test_a_connection_that_has_not_sent_its_request_yet_is_answered(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port]))
        fresh = self.client(proxy.port)      # connected, nothing sent yet
        silent = self.client(proxy.port)     # connected, never sends
        busy = self.client(proxy.port)
        busy.send(b"GET /slow?ms=1500 HTTP/1.1\r\nHost: a\r\n\r\n")  # keeps the drain going
        # All three accepted by the worker (a connection still in the kernel's queue when the
        # listener closes is reset by the kernel, drain or not).
        self.wait_for(lambda: admin.metric(proxy.admin_port, "sluice_downstream_connections")
                      == 3, 10, "three open connections")
        proxy.signal(signal.SIGTERM)
        self.assertTrue(proxy.wait_for_log("draining"))
        fresh.send(b"GET /late HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = fresh.read_response()
        self.assertEqual((status, body), (200, b"ok /late\n"))
        self.assertEqual(headers["connection"], ["close"])
        # The silent one is closed once its grace is over, long before the drain timeout.
        started = time.monotonic()
        silent.sock.settimeout(10)
        self.assertEqual(silent.sock.recv(1), b"")
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(busy.read_response()[0], 200)
        proxy.proc.wait(10)
        self.assertEqual(proxy.proc.returncode, 0)

    def test_sigterm_while_starting_is_a_graceful_stop(self):
        # From main's first line SIGTERM waits (blocked) until the handlers are in. The
        # configuration is read from a FIFO, so the process stays in its start-up for as long
        # as the test wants: SIGTERM sent there stops it with 0 once it has started, it does
        # not kill it.
        origin = self.start_origin()
        directory = tempfile.mkdtemp(prefix="sluice-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        fifo = os.path.join(directory, "sluice.yaml")
        os.mkfifo(fifo)
        proxy = Sluice(args=["--config", fifo], workers=None, directory=directory)
        self.addCleanup(proxy.stop)
        proxy.start(wait=False)
        self.wait_for(lambda: proxy.handles_signal(signal.SIGTERM) or not proxy.running(), 10,
                      "SIGTERM held while the configuration is read")
        proxy.signal(signal.SIGTERM)
        with open(fifo, "w") as f:  # opens once sluice opened it for reading
            f.write(basic_config([origin.port]).replace("{port}", str(proxy.port)))
        proxy.proc.wait(10)
        self.assertEqual(proxy.proc.returncode, 0, proxy.log_text())
        self.assertIn("SIGTERM", proxy.log_text())

    def test_drain_timeout_closes_what_is_left(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port], extra="timeouts:\n  drain: 300ms\n"))
        c = self.client(proxy.port)
        c.send(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.2)
        started = time.monotonic()
        proxy.signal(signal.SIGTERM)
        proxy.proc.wait(10)
        self.assertEqual(proxy.proc.returncode, 0)
        self.assertLess(time.monotonic() - started, 3.0)


if __name__ == "__main__":
    unittest.main()


def process_gone(pid):
    """True once `pid` has exited (a zombie nobody reaped counts as exited)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class Load:
    """Steady GETs until stopped (bounded by count and time): `fresh` threads open a connection
    per request, `kept` threads reuse one. Counts successes and failures; a request on a reused
    connection the server had just closed is sent again on a new one, as every HTTP client
    does, and counted apart (a fresh connection that fails is a failure)."""

    def __init__(self, port, fresh=2, kept=2, limit=200000, seconds=120):
        self.port = port
        self.ok = 0
        self.failed = []
        self.stale = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.deadline = time.monotonic() + seconds
        self.limit = limit
        self.threads = [threading.Thread(target=self.run, args=(False,)) for _ in range(fresh)]
        self.threads += [threading.Thread(target=self.run, args=(True,)) for _ in range(kept)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def get(self, conn):
        conn.request("GET", "/load")
        response = conn.getresponse()
        response.read()
        return response.status

    def run(self, keep):
        conn = self.loop(keep)
        if conn is not None:
            conn.close()

    def loop(self, keep):
        """Sends requests until told to stop; returns the connection still open, if any."""
        conn = None
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.ok + len(self.failed) >= self.limit:
                    return conn
            # Reused: a socket from an earlier request (after "Connection: close" there is none,
            # and http.client opens a new one).
            reused = conn is not None and conn.sock is not None
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                status = self.get(conn)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                conn = None
                if not reused:
                    with self.lock:
                        self.failed.append(repr(e))
                    continue
                with self.lock:
                    self.stale += 1
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                try:
                    status = self.get(conn)
                except OSError as e2:
                    with self.lock:
                        self.failed.append("again after a stale connection: " + repr(e2))
                    conn.close()
                    conn = None
                    continue
            except OSError as e:
                with self.lock:
                    self.failed.append(repr(e))
                conn.close()
                conn = None
                continue
            with self.lock:
                if status == 200:
                    self.ok += 1
                else:
                    self.failed.append("status %d" % status)
            if not keep:
                conn.close()
                conn = None
        return conn

    def count(self):
        with self.lock:
            return self.ok + len(self.failed)


class Upgrade(ProxyTestCase):
    """SIGUSR2: the binary at the same path starts with the listening sockets handed over; the
    old process drains once the new one serves. Under a steady load, not one request fails."""

    def config(self, origin):
        return basic_config([origin.port]).replace("workers: 1", "workers: 2").replace(
            "log_level: debug", "log_level: info")

    def serving_pids(self, proxy):
        return [int(p) for p in
                re.findall(r"sluice listening on .* \(pid (\d+),", proxy.log_text())]

    def stop_pid(self, pid):
        if not process_gone(pid):
            os.kill(pid, signal.SIGTERM)
        self.wait_for(lambda: process_gone(pid), 20, "process %d to exit" % pid)

    def upgrade(self, proxy, pid, generation):
        """Sends SIGUSR2 to `pid`; returns the new process's pid once the old one has gone."""
        os.kill(pid, signal.SIGUSR2)
        self.wait_for(lambda: len(self.serving_pids(proxy)) > generation, 30,
                      "the new process to serve")
        new = self.serving_pids(proxy)[generation]
        self.addCleanup(self.stop_pid, new)
        self.wait_for(lambda: process_gone(pid), 30, "the old process %d to drain and exit" % pid)
        return new

    def notify_socket(self):
        """A datagram socket standing for systemd's, named in NOTIFY_SOCKET while sluice starts."""
        directory = tempfile.mkdtemp(prefix="sluice-notify-")
        self.addCleanup(shutil.rmtree, directory, True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(os.path.join(directory, "notify"))
        self.addCleanup(sock.close)
        return sock

    def notifications(self, sock):
        messages = []
        sock.setblocking(False)
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except BlockingIOError:
                return messages

    def test_sigusr2_swaps_the_binary_under_load_without_a_failed_request(self):
        origin = self.start_origin()
        notify = self.notify_socket()
        os.environ["NOTIFY_SOCKET"] = notify.getsockname()
        try:
            proxy = self.start_sluice(self.config(origin), admin=True)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        load = Load(proxy.port).start()
        try:
            self.wait_for(lambda: load.count() >= 300, 30, "load under way")
            first = self.upgrade(proxy, proxy.pid, 1)
            self.assertEqual(proxy.proc.wait(10), 0)  # the original drained and exited 0
            before = load.count()
            self.wait_for(lambda: load.count() >= before + 300, 30, "load on the new process")
            # The new process hands over in turn (the sockets it inherited).
            second = self.upgrade(proxy, first, 2)
            before = load.count()
            self.wait_for(lambda: load.count() >= before + 300, 30, "load after two upgrades")
        finally:
            load.finish()
        print("\n%d requests over two binary upgrades: %d failed, %d sent again after a reused "
              "connection closed" % (load.count(), len(load.failed), load.stale))
        self.assertEqual(load.failed, [])
        log = proxy.log_text()
        self.assertIn("upgrade: the new process %d serves on the same sockets" % first, log)
        self.assertIn("upgrade: serving on the sockets the old process handed over", log)
        # systemd (Type=notify, NotifyAccess=all) follows the new process: each one says it is
        # ready and is the main process; the old ones never say they stop.
        ready = [m for m in self.notifications(notify) if m.startswith("READY=1\nMAINPID=")]
        self.assertEqual([int(m.split("MAINPID=")[1].split("\n")[0]) for m in ready],
                         [proxy.pid, first, second])
        # The admin API moved with it.
        self.assertIn(b"ready", subprocess.run(
            ["curl", "-s", "http://127.0.0.1:%d/readyz" % proxy.admin_port],
            capture_output=True, timeout=10).stdout)
        self.stop_pid(second)

    def sluice_then_replaced_by(self, script):
        """A sluice started from a copy of the binary, whose file is then replaced (as a package
        upgrade does) by the shell `script`: what SIGUSR2 will start."""
        origin = self.start_origin()
        work = tempfile.mkdtemp(prefix="sluice-upgrade-")
        self.addCleanup(shutil.rmtree, work, True)
        binary = os.path.join(work, "sluice")
        shutil.copy(SLUICE_BIN, binary)
        proxy = self.start_sluice(self.config(origin), binary=binary)
        os.unlink(binary)
        with open(binary, "w") as f:
            f.write("#!/bin/sh\n" + script)
        os.chmod(binary, 0o755)
        return proxy

    def test_a_stop_during_an_upgrade_stops_the_new_process_too(self):
        # The new binary never reports that it serves.
        proxy = self.sluice_then_replaced_by("exec sleep 60\n")
        proxy.signal(signal.SIGUSR2)
        self.assertTrue(proxy.wait_for_log(r"started .* as process \d+"), proxy.log_text())
        child = int(re.search(r"started .* as process (\d+)", proxy.log_text()).group(1))
        self.addCleanup(self.stop_pid, child)
        # A reload now would bind what the new process does not get: refused, and said so.
        proxy.signal(signal.SIGHUP)
        self.assertTrue(proxy.wait_for_log("a binary upgrade is under way; not reloading"))
        proxy.signal(signal.SIGTERM)
        self.assertEqual(proxy.proc.wait(15), 0)
        self.assertIn("asked to stop meanwhile; the new one was stopped too", proxy.log_text())
        self.wait_for(lambda: process_gone(child), 10, "the new process stopped")

    def test_a_new_binary_that_fails_leaves_the_old_one_serving(self):
        proxy = self.sluice_then_replaced_by("echo 'broken build' >&2\nexit 3\n")
        proxy.signal(signal.SIGUSR2)
        self.assertTrue(proxy.wait_for_log(
            r"upgrade failed: the new process exited with status 3 before it served"),
            proxy.log_text())
        self.assertTrue(proxy.running())
        c = self.client(proxy.port)
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)
