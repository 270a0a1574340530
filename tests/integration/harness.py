"""The unittest layer of the integration tests: ProxyTestCase starts the real sluice binary and
test origins on loopback for each test (with the sluicetest package) and checks that every
sluice drains and exits 0 with nothing from the sanitizers; RawClient and s_client talk to it.

Every process a test starts is stopped by its PID. Every wait is bounded.
"""

import os
import shutil
import socket
import subprocess
import unittest

from sluicetest.origins import Origin
from sluicetest.process import Sluice, wait_until

SANITIZED = os.environ.get("SLUICE_SANITIZED") == "1"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "AddressSanitizer:DEADLYSIGNAL")


def basic_config(origin_ports, extra="", balancer="round_robin", route_extra=""):
    endpoints = ", ".join("127.0.0.1:%d" % p for p in origin_ports)
    return """
workers: 1
log_level: debug
listeners:
  - name: test
    address: 127.0.0.1:{port}
clusters:
  - name: app
    balancer: %s
    endpoints: [%s]
    connect_timeout: 1s
    response_timeout: 2s
routes:
  - cluster: app
%s
%s
""" % (balancer, endpoints, route_extra, extra)


class RawClient:
    """A plain TCP client for byte-exact requests."""

    def __init__(self, port, timeout=5.0, source=None):
        # source: a loopback address of the client's own (127.x.y.z), so that a limit per
        # client address counts this test's connections only.
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_until(self, marker):
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head_request=False):
        """Returns (status, headers dict lower-case -> list, body bytes)."""
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        if status < 200 and status != 101:
            return self.read_response(head_request)
        if head_request or status in (101, 204, 304):
            return status, headers, b""
        if "content-length" in headers:
            body = self.read_exact(int(headers["content-length"][0]))
        elif headers.get("transfer-encoding", [""])[0].lower() == "chunked":
            body = b""
            while True:
                size = int(self.read_until(b"\r\n")[:-2].split(b";")[0], 16)
                if size == 0:
                    self.read_until(b"\r\n")
                    break
                body += self.read_exact(size)
                self.read_exact(2)
        else:
            body = self.read_all()
        return status, headers, body

    def read_all(self):
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except ConnectionResetError:
            pass
        out, self.buf = self.buf, b""
        return out

    def closed_by_peer(self, timeout=3.0):
        """True if the peer closes (EOF or reset) within timeout, after any pending bytes."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class ProxyTestCase(unittest.TestCase):
    """Starts origins and a sluice per test; stops them afterwards."""

    WAIT_INTERVAL = 0.05  # seconds between two looks of wait_for

    def start_origin(self, **kwargs):
        origin = Origin(**kwargs).start()
        self.addCleanup(origin.stop)
        return origin

    def start_sluice(self, config_text=None, args=None, **kwargs):
        """A started Sluice (see sluicetest.process.Sluice for the arguments)."""
        proxy = Sluice(config_text, args, **kwargs)
        # Cleanups run last-in first-out: the process stops (and its log is
        # checked) before its directory goes.
        self.addCleanup(shutil.rmtree, proxy.dir, True)
        try:
            proxy.start()
        except Exception:
            proxy.stop()  # it may run without listening where expected: stopped by its PID
            raise
        self.addCleanup(self._stop_and_check, proxy)
        self.sluice = proxy
        return proxy

    def _stop_and_check(self, proxy):
        """Every sluice a test starts must drain and exit 0 with nothing from the sanitizers."""
        code = proxy.stop()
        log = proxy.log_text()
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, log, "sanitizer report in the sluice log:\n" + log[-4000:])
        self.assertEqual(code, 0, "sluice exited with %s:\n%s" % (code, log[-4000:]))

    def wait_for(self, predicate, timeout=15.0, what="condition"):
        """predicate()'s first true value; fails the test if none comes within `timeout`."""
        value = wait_until(predicate, timeout, self.WAIT_INTERVAL)
        if value:
            return value
        self.fail("timed out waiting for " + what + self.wait_context())

    def wait_context(self):
        """What a failed wait_for adds to its message."""
        return ""

    def client(self, port, timeout=5.0, source=None):
        c = RawClient(port, timeout, source)
        self.addCleanup(c.close)
        return c

    def curl(self, *args, timeout=20):
        result = subprocess.run(["curl", "-sS", "--max-time", str(timeout)] + list(args),
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 5)
        return result


def s_client(port, *args, stdin=b"", timeout=10):
    """openssl s_client against 127.0.0.1:port; returns (exit code, stdout + stderr text)."""
    result = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                            input=stdin, capture_output=True, timeout=timeout)
    return result.returncode, (result.stdout + result.stderr).decode("utf-8", "replace")
