"""Integration test harness: starts the real sluice binary and test origins on loopback.

Every process a test starts is stopped by its PID. Every wait is bounded.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from origin import Origin  # noqa: E402

SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(HERE, "../../build/proxy/sluice"))
SLUICECTL_BIN = os.environ.get("SLUICECTL_BIN", os.path.join(HERE, "../../build/ctl/sluicectl"))
SANITIZED = os.environ.get("SLUICE_SANITIZED") == "1"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "AddressSanitizer:DEADLYSIGNAL")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("nothing listens on port %d" % port)


class Sluice:
    """A running sluice process with a YAML config written to a temporary file."""

    def __init__(self, config_text=None, args=None, port=None, workers=1):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="sluice-test-")
        self.log_path = os.path.join(self.dir, "sluice.log")
        self.config_path = os.path.join(self.dir, "sluice.yaml")
        if config_text is not None:
            self.write_config(config_text.replace("{port}", str(self.port)))
            self.args = ["--config", self.config_path]
        else:
            self.args = list(args or [])
        if workers is not None and config_text is None and "--workers" not in self.args:
            self.args += ["--workers", str(workers)]
        # Every sluice gets its own admin port: tests run in parallel, and 9901 is the default.
        self.admin_port = None
        if "--admin" not in self.args:
            self.admin_port = free_port()
            self.args += ["--admin", "127.0.0.1:%d" % self.admin_port]
        self.proc = None

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, wait=True):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([SLUICE_BIN] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            wait_for_port(self.port, proc=self.proc)
        return self

    def signal(self, signum):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def stop(self, timeout=10.0):
        """SIGTERM, wait for the drain; SIGKILL if it does not exit. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for_log(self, pattern, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log_text()):
                return True
            time.sleep(0.05)
        return False

    def rss_kib(self):
        """Resident memory from the page tables; VmRSS lags for multi-threaded processes."""
        with open("/proc/%d/smaps_rollup" % self.proc.pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    return int(line.split()[1])
        return 0


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

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
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

    def start_origin(self, **kwargs):
        origin = Origin(**kwargs).start()
        self.addCleanup(origin.stop)
        return origin

    def start_sluice(self, config_text=None, args=None, **kwargs):
        proxy = Sluice(config_text, args, **kwargs)
        # Cleanups run last-in first-out: the process stops (and its log is
        # checked) before its directory goes.
        self.addCleanup(shutil.rmtree, proxy.dir, True)
        proxy.start()
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

    def client(self, port, timeout=5.0):
        c = RawClient(port, timeout)
        self.addCleanup(c.close)
        return c

    def curl(self, *args, timeout=20):
        result = subprocess.run(["curl", "-sS", "--max-time", str(timeout)] + list(args),
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 5)
        return result


ETCD_BIN = os.environ.get("ETCD_BIN", shutil.which("etcd") or "/usr/bin/etcd")


class Etcd:
    """One etcd member on loopback (Debian's etcd-server), with its data in a temporary
    directory; stopped by its PID. restart() keeps the data and the ports."""

    def __init__(self, tls=False):
        self.dir = tempfile.mkdtemp(prefix="sluice-etcd-")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.tls = tls
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.client_port)
        self.proc = None
        self.log = None
        self.token = None  # set once authentication is on
        if tls:
            self.make_certificates()

    def make_certificates(self):
        """A CA, etcd's certificate (127.0.0.1 and localhost; etcd's gateway also presents it
        as a client to etcd's own gRPC port) and a client certificate for sluice, all ECDSA
        P-256, with the openssl command line."""
        def run(*args):
            subprocess.run(["openssl"] + list(args), cwd=self.dir, check=True,
                           stdin=subprocess.DEVNULL, capture_output=True)
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=sluice test CA")
        for name, extension in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                            "extendedKeyUsage=serverAuth,clientAuth"),
                                ("client", "extendedKeyUsage=clientAuth")):
            with open(os.path.join(self.dir, name + ".ext"), "w") as f:
                f.write(extension + "\n")
            run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr",
                # etcd 3.4's gateway refuses a client certificate with a CommonName once
                # authentication is on: sluice's carries an organization only.
                "-subj", "/CN=" + name if name == "server" else "/O=sluice edge")
            run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self):
        if not os.path.exists(ETCD_BIN):
            raise AssertionError("etcd is not installed (apt-get install etcd-server; "
                                 "scripts/setup.sh test does it)")
        peer = "http://127.0.0.1:%d" % self.peer_port
        self.log = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            [ETCD_BIN, "--name", "test", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "test=" + peer, "--log-level", "warn"] +
            (["--cert-file", self.path("server.pem"), "--key-file", self.path("server.key"),
              "--trusted-ca-file", self.path("ca.pem"), "--client-cert-auth"] if self.tls else []),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("etcd exited with %s" % self.proc.returncode)
            try:
                if self.call("/v3/maintenance/status", {}) is not None:
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise TimeoutError("etcd did not answer on %s" % self.url)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.log:
            self.log.close()
            self.log = None

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, True)

    def call(self, path, body):
        """One JSON gateway call; the parsed reply."""
        import http.client
        import json
        if self.tls:
            import ssl
            context = ssl.create_default_context(cafile=self.path("ca.pem"))
            context.load_cert_chain(self.path("client.pem"), self.path("client.key"))
            conn = http.client.HTTPSConnection("127.0.0.1", self.client_port, timeout=5,
                                               context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=5)
        try:
            headers = {"Authorization": self.token} if self.token else {}
            conn.request("POST", path, body=json.dumps(body), headers=headers)
            response = conn.getresponse()
            return json.loads(response.read().decode())
        finally:
            conn.close()

    def enable_auth(self, user, password, prefix):
        """etcd's authentication on, with `user` allowed to read and write `prefix` only."""
        import base64

        def b64(text):
            return base64.b64encode(text.encode()).decode()
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        for path, body in (("/v3/auth/user/add", {"name": "root", "password": "root-pw"}),
                           ("/v3/auth/role/add", {"name": "root"}),
                           ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                           ("/v3/auth/user/add", {"name": user, "password": password}),
                           ("/v3/auth/role/add", {"name": "edge"}),
                           ("/v3/auth/role/grant", {"name": "edge", "perm": {
                               "permType": "READWRITE", "key": b64(prefix),
                               "range_end": b64(end)}}),
                           ("/v3/auth/user/grant", {"user": user, "role": "edge"}),
                           ("/v3/auth/enable", {})):
            reply = self.call(path, body)
            if "error" in reply:
                raise AssertionError("%s: %s" % (path, reply))
        self.token = self.call("/v3/auth/authenticate",
                               {"name": "root", "password": "root-pw"})["token"]

    def history(self, key):
        """Every value `key` had, oldest first: [(mod_revision, value)]."""
        import base64
        encoded = base64.b64encode(key.encode()).decode()
        head = int(self.call("/v3/kv/range", {"key": encoded})["header"]["revision"])
        values, seen = [], set()
        for revision in range(1, head + 1):
            reply = self.call("/v3/kv/range", {"key": encoded, "revision": str(revision)})
            for kv in reply.get("kvs", []):
                mod = int(kv["mod_revision"])
                if mod not in seen:
                    seen.add(mod)
                    values.append((mod, base64.b64decode(kv.get("value", "")).decode()))
        return values


class Pki:
    """Certificates made with the openssl command line, ECDSA P-256, in a temporary directory:
    a CA, leaf certificates it signs (server names as SAN DNS or IP entries), OCSP responses."""

    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="sluice-pki-")
        self.cas = {}

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args, stdin=None):
        return subprocess.run(["openssl"] + list(args), cwd=self.dir, check=True,
                              input=stdin, capture_output=True)

    def ca(self, name="ca"):
        self.run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".crt", "-days", "2",
                 "-subj", "/CN=sluice test %s" % name)
        with open(self.path(name + ".index"), "w"):
            pass
        return self.path(name + ".crt")

    def leaf(self, name, sans=("IP:127.0.0.1", "DNS:localhost"), ca="ca", usage="serverAuth",
             cn=None):
        """Returns (cert, key) paths. sans: subjectAltName entries ("DNS:x", "IP:y")."""
        with open(self.path(name + ".ext"), "w") as f:
            if sans:
                f.write("subjectAltName=%s\n" % ",".join(sans))
            f.write("extendedKeyUsage=%s\n" % usage)
        self.run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=%s" % (cn or name))
        self.run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                 "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext")
        return self.path(name + ".crt"), self.path(name + ".key")

    def ocsp_response(self, name, ca="ca"):
        """A signed 'good' OCSP response for the leaf `name`, as DER; returns its path."""
        self.run("ocsp", "-issuer", ca + ".crt", "-cert", name + ".crt", "-reqout", name + ".oreq",
                 "-no_nonce")
        self.run("ocsp", "-index", ca + ".index", "-rsigner", ca + ".crt", "-rkey", ca + ".key",
                 "-CA", ca + ".crt", "-reqin", name + ".oreq", "-respout", name + ".ocsp",
                 "-ndays", "1")
        return self.path(name + ".ocsp")

    def cleanup(self):
        shutil.rmtree(self.dir, True)


def s_client(port, *args, stdin=b"", timeout=10):
    """openssl s_client against 127.0.0.1:port; returns (exit code, stdout + stderr text)."""
    result = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                            input=stdin, capture_output=True, timeout=timeout)
    return result.returncode, (result.stdout + result.stderr).decode("utf-8", "replace")


def metric(admin_port, selector):
    """The sum of a metric's samples from the admin endpoint. `selector` is a name, optionally
    with labels that must all match: 'sluice_x_total{protocol="h2"}'."""
    import urllib.request
    name, _, wanted = selector.partition("{")
    wanted = [w for w in wanted.rstrip("}").split(",") if w]
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=5).read()
    total = 0.0
    for line in text.decode().splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        sample_name, _, labels = sample.partition("{")
        if sample_name != name:
            continue
        have = labels.rstrip("}").split(",")
        if all(w in have for w in wanted):
            total += float(value)
    return total
