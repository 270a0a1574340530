"""The process: command line, --check, SIGHUP reload (valid and invalid), SIGTERM drain."""

import os
import shutil
import tempfile
import signal
import subprocess
import time
import unittest

from harness import ProxyTestCase, basic_config
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
        with open("/proc/%d/status" % proxy.proc.pid) as f:
            uids = next(l for l in f if l.startswith("Uid:")).split()[1:]
        self.assertEqual(set(int(u) for u in uids), {nobody.pw_uid})
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
