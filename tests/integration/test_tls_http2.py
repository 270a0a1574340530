"""TLS and HTTP/2 end to end: the real sluice with certificates made by openssl, talked to by
curl, nghttp, h2load, openssl s_client and python3-h2 (for frames no polite client sends).
"""

import hashlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import h2.config
import h2.connection
import h2.events
import hyperframe.frame

from harness import ProxyTestCase, s_client
from sluicetest.admin import metric
from sluicetest.certs import Pki
from sluicetest.process import free_port, wait_for_port

ENHANCE_YOUR_CALM = 0xB


def tls_listener(port_name, pki, extra=""):
    return """
  - name: %s
    address: 127.0.0.1:{%s}
    tls:
      certificates:
        - {cert_file: %s, key_file: %s, ocsp_file: %s}
        - {cert_file: %s, key_file: %s}
        - {cert_file: %s, key_file: %s}
%s""" % (port_name, port_name, pki.path("server.crt"), pki.path("server.key"),
         pki.path("server.ocsp"), pki.path("a.crt"), pki.path("a.key"), pki.path("wild.crt"),
         pki.path("wild.key"), extra)


class H2Client:
    """A python3-h2 client on one socket (cleartext h2c with prior knowledge)."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.flush()
        self.events = []
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path="/", extra=(), end_stream=True, stream_id=None):
        stream_id = stream_id or self.conn.get_next_available_stream_id()
        headers = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"),
                   (":path", path)] + list(extra)
        self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        self.flush()
        return stream_id

    def pump(self, until, timeout=5.0):
        """Reads until `until(events)` is true or the peer closes; returns the events."""
        deadline = time.monotonic() + timeout
        while not until(self.events) and time.monotonic() < deadline and not self.closed:
            try:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            try:
                self.events += self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                pass
            try:
                self.flush()
            except OSError:
                pass
        return self.events

    def response(self, stream_id, timeout=5.0):
        """(status, body) of one stream."""
        def done(events):
            return any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and
                       e.stream_id == stream_id for e in events)
        self.pump(done, timeout)
        status, body = None, b""
        for e in self.events:
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id:
                status = int(dict(e.headers)[":status"])
            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id:
                body += e.data
                self.conn.acknowledge_received_data(e.flow_controlled_length, stream_id)
        self.flush()
        return status, body

    def raw_frames(self, timeout=5.0):
        """Every frame until the peer closes, undecoded: [(type, flags, stream id)]. (python3-h2
        refuses frames after a GOAWAY, though streams it covers may still finish.)"""
        data, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        frames = []
        while len(data) >= 9:
            length = int.from_bytes(data[:3], "big")
            frames.append((data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF))
            data = data[9 + length:]
        return frames

    def goaway(self):
        for e in self.events:
            if isinstance(e, h2.events.ConnectionTerminated):
                return e
        return None

    def close(self):
        self.sock.close()


class TlsHttp2(ProxyTestCase):
    def setUp(self):
        self.pki = Pki()
        self.addCleanup(self.pki.cleanup)
        self.pki.ca()
        self.pki.leaf("server")
        self.pki.leaf("a", sans=["DNS:a.test"])
        self.pki.leaf("wild", sans=["DNS:*.b.test"])
        self.pki.ocsp_response("server")

    def start(self, extra="", listener_extra="", origin_delay=0.0):
        self.origin = self.start_origin(delay=origin_delay)
        self.tls_port, self.plain_port = free_port(), free_port()
        config = """
workers: 2
log_level: debug
listeners:
%s
  - name: plain
    address: 127.0.0.1:{plain}
clusters:
  - name: app
    endpoints: [127.0.0.1:%d]
    response_timeout: 10s
routes:
  - cluster: app
%s
""" % (tls_listener("tls", self.pki, listener_extra), self.origin.port, extra)
        config = config.replace("{tls}", str(self.tls_port)).replace("{plain}",
                                                                     str(self.plain_port))
        proxy = self.start_sluice(config, port=self.tls_port)
        wait_for_port(self.plain_port, proc=proxy.proc)
        return proxy

    def https(self, *args):
        return self.curl("--cacert", self.pki.path("ca.crt"), "-o", "/dev/null", "-w",
                         "%{http_code} %{http_version}", *args)

    def test_alpn_picks_h2_or_http1_and_only_modern_versions(self):
        self.start()
        url = "https://localhost:%d/x" % self.tls_port
        self.assertEqual(self.https("--http2", url).stdout, b"200 2")
        self.assertEqual(self.https("--http1.1", url).stdout, b"200 1.1")
        _, out = s_client(self.tls_port, "-alpn", "h2,http/1.1", "-servername", "localhost")
        self.assertIn("ALPN protocol: h2", out)
        _, out = s_client(self.tls_port, "-alpn", "http/1.1")
        self.assertIn("ALPN protocol: http/1.1", out)
        code, out = s_client(self.tls_port, "-tls1_1")
        self.assertNotEqual(code, 0, out)
        _, out = s_client(self.tls_port, "-tls1_2")
        self.assertIn("Protocol  : TLSv1.2", out)
        # nghttp (h2 over TLS) gets the origin's answer.
        result = subprocess.run(["nghttp", "-n", "-s", "https://127.0.0.1:%d/x" % self.tls_port],
                                capture_output=True, timeout=20)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.origin.received()[-1].header("x-forwarded-proto"), "https")

    def test_sni_picks_the_certificate(self):
        self.start()
        for name, subject in (("localhost", "CN = server"), ("a.test", "CN = a"),
                              ("x.b.test", "CN = wild"), ("unknown.test", "CN = server")):
            _, out = s_client(self.tls_port, "-servername", name)
            self.assertIn("subject=" + subject, out.replace("subject=/", "subject="), name)

    def test_session_resumption_with_tickets_and_ocsp_stapling(self):
        proxy = self.start()
        session = os.path.join(proxy.dir, "session.pem")
        request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for version in ("-tls1_2", "-tls1_3"):
            _, out = s_client(self.tls_port, version, "-sess_out", session, "-ign_eof",
                              stdin=request)
            self.assertIn("New,", out)
            _, out = s_client(self.tls_port, version, "-sess_in", session, "-ign_eof",
                              stdin=request)
            self.assertIn("Reused,", out, version)
        self.assertGreaterEqual(
            metric(proxy.admin_port, 'sluice_tls_handshakes_total{protocol="http/1.1",'
                   'resumed="true"}'), 2)
        _, out = s_client(self.tls_port, "-status", "-servername", "localhost")
        self.assertIn("OCSP Response Status: successful", out)

    def test_h2c_prior_knowledge_and_http1_share_a_port(self):
        self.start()
        url = "http://127.0.0.1:%d/y" % self.plain_port
        r = self.curl("-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                      "--http2-prior-knowledge", url)
        self.assertEqual(r.stdout, b"200 2")
        r = self.curl("-o", "/dev/null", "-w", "%{http_code} %{http_version}", url)
        self.assertEqual(r.stdout, b"200 1.1")
        # An h2c upgrade request is served as HTTP/1.1 and never reaches the origin as one.
        r = self.curl("-o", "/dev/null", "-w", "%{http_code} %{http_version}", "--http2", url)
        self.assertEqual(r.stdout, b"200 1.1")
        self.assertIsNone(self.origin.received()[-1].header("upgrade"))

    def test_a_burst_of_handshakes_waits_for_the_budget_and_every_one_completes(self):
        # A budget of 1 us: each loop iteration takes one handshake's first flight, the others
        # wait their turn (in arrival order) for the next iterations; the young connections'
        # requests and ends wait for it too.
        proxy = self.start(
            extra="limits: {tls_handshake_budget: 1us, tls_young_connection_age: 10s}\n")
        kept = H2Client(self.plain_port)  # established (h2c) on the same workers
        stream = kept.request("/before")
        self.assertEqual(kept.response(stream)[0], 200)
        burst = subprocess.Popen(["h2load", "-n", "100", "-c", "100", "-m", "1",
                                  "https://127.0.0.1:%d/" % self.tls_port],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # The established connection is served while the burst is on.
            stream = kept.request("/during")
            self.assertEqual(kept.response(stream, timeout=30)[0], 200)
            out, _ = burst.communicate(timeout=120)
        finally:
            if burst.poll() is None:
                burst.kill()
                burst.wait()
        out = out.decode()
        self.assertIn("100 succeeded, 0 failed, 0 errored", out, out)
        kept.close()
        self.assertGreater(metric(proxy.admin_port, "sluice_tls_handshakes_waited_total"), 0)

    def test_h2load_many_streams_and_large_bodies(self):
        self.start()
        for url in ("https://127.0.0.1:%d/" % self.tls_port,
                    "http://127.0.0.1:%d/" % self.plain_port):
            # The test origin is a small Python server: many streams, few at its door.
            result = subprocess.run(["h2load", "-n", "2000", "-c", "2", "-m", "10", url],
                                    capture_output=True, timeout=120)
            out = result.stdout.decode()
            self.assertIn("2000 succeeded, 0 failed, 0 errored", out, out)
        body = os.urandom(6 << 20)
        path = os.path.join(self.sluice.dir, "upload")
        with open(path, "wb") as f:
            f.write(body)
        r = self.curl("--cacert", self.pki.path("ca.crt"), "--http2", "--data-binary", "@" + path,
                      "https://localhost:%d/echo" % self.tls_port, timeout=60)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(body).hexdigest())

    def test_oversized_header_list_fails_only_its_stream(self):
        self.start("limits: {max_head_bytes: 4096, max_target_bytes: 2048}")
        client = H2Client(self.plain_port)
        self.addCleanup(client.close)
        big = client.request("/big", extra=[("x-pad", "a" * 5000)])
        self.assertEqual(client.response(big)[0], 431)
        ok = client.request("/fine")
        self.assertEqual(client.response(ok)[0], 200)

    def test_rapid_reset_closes_only_that_connection(self):
        proxy = self.start("http2: {max_early_resets: 50}", origin_delay=0.5)
        bystander = H2Client(self.plain_port)
        self.addCleanup(bystander.close)
        waiting = bystander.request("/slow")
        attacker = H2Client(self.plain_port)
        self.addCleanup(attacker.close)
        burst = b""
        for i in range(400):
            stream = attacker.conn.get_next_available_stream_id()
            attacker.request("/r", stream_id=stream)
            attacker.conn.reset_stream(stream)
            burst += attacker.conn.data_to_send()
        try:
            attacker.sock.sendall(burst)
        except OSError:
            pass
        attacker.pump(lambda events: False, timeout=5)
        self.assertTrue(attacker.closed, "the attacker's connection stayed open")
        goaway = attacker.goaway()
        self.assertIsNotNone(goaway)
        self.assertIn(goaway.error_code, (ENHANCE_YOUR_CALM, 0x2))  # ours, or nghttp2's limit
        self.assertEqual(bystander.response(waiting, timeout=10)[0], 200)
        attacker.close()  # sluice lingers until the client closes too
        deadline = time.monotonic() + 5
        while (metric(proxy.admin_port, "sluice_http2_connections_shed_total") < 1 and
               time.monotonic() < deadline):
            time.sleep(0.05)
        self.assertGreaterEqual(metric(proxy.admin_port, "sluice_http2_connections_shed_total"), 1)

    def test_continuation_flood_is_cut_off(self):
        self.start()
        sock = socket.create_connection(("127.0.0.1", self.plain_port), timeout=5)
        self.addCleanup(sock.close)
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + hyperframe.frame.SettingsFrame(0)
                     .serialize())
        # :method GET, :scheme http, :path /, then "x-pad: " and 4000 bytes of value (HPACK
        # literal, 7-bit prefix integer 127 + 3873), dribbled out 20 bytes per CONTINUATION.
        block = b"\x82\x86\x84" + b"\x00\x05x-pad\x7f\xa1\x1e" + b"a" * 4000
        headers = hyperframe.frame.HeadersFrame(1)
        headers.data = block[:20]
        frames = [headers.serialize()]
        for i in range(20, len(block), 20):
            continuation = hyperframe.frame.ContinuationFrame(1)
            continuation.data = block[i:i + 20]
            frames.append(continuation.serialize())
        try:
            sock.sendall(b"".join(frames))
        except OSError:
            pass
        data, deadline = b"", time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        self.assertLess(time.monotonic(), deadline, "the connection was not closed")
        types = []
        while len(data) >= 9:
            length = int.from_bytes(data[:3], "big")
            types.append(data[3])
            data = data[9 + length:]
        self.assertIn(7, types)  # a GOAWAY went out before the close
        self.assertNotIn(1, types)  # and no response: the request never got through

    def test_ping_flood_is_cut_off(self):
        proxy = self.start("http2: {max_control_frames: 100}")
        client = H2Client(self.plain_port)
        self.addCleanup(client.close)
        for i in range(300):
            client.conn.ping(b"%08d" % i)
        try:
            client.flush()
        except OSError:
            pass
        client.pump(lambda events: False, timeout=5)
        self.assertTrue(client.closed)
        self.assertEqual(client.goaway().error_code, ENHANCE_YOUR_CALM)
        self.assertTrue(proxy.wait_for_log("too many PING/SETTINGS/PRIORITY frames"))

    def test_drain_sends_goaway_and_finishes_streams(self):
        proxy = self.start(origin_delay=0.7)
        client = H2Client(self.plain_port)
        self.addCleanup(client.close)
        stream = client.request("/slow")
        time.sleep(0.2)
        proxy.signal(signal.SIGTERM)
        frames = [(t, f, s) for t, f, s in client.raw_frames(timeout=10) if t in (0, 1, 7)]
        # GOAWAY first (no new streams), then the stream in progress finishes: its HEADERS and
        # DATA with END_STREAM (flag 1); then the connection closes.
        self.assertEqual(frames[0][0], 7)
        self.assertIn((1, 4, stream), frames)
        self.assertEqual((frames[-1][0], frames[-1][1] & 1, frames[-1][2]), (0, 1, stream))
        # The drain ends the process by itself; the cleanup must not signal it again.
        self.assertEqual(proxy.proc.wait(15), 0)

    def test_certificate_reload_on_file_change_under_load(self):
        proxy = self.start()
        context = ssl.create_default_context(cafile=self.pki.path("ca.crt"))
        failures, done = [], threading.Event()

        def load():
            while not done.is_set():
                try:
                    conn = http.client.HTTPSConnection("localhost", self.tls_port, timeout=5,
                                                       context=context)
                    conn.request("GET", "/load")
                    if conn.getresponse().status != 200:
                        failures.append("status")
                    conn.close()
                except (OSError, http.client.HTTPException) as e:
                    failures.append(repr(e))

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            # A new key and certificate, each replaced atomically (rename): the cert first,
            # which alone does not load (the key does not match), then the key.
            self.pki.leaf("server2", cn="server2")
            for suffix in (".crt", ".key"):
                shutil.copy(self.pki.path("server2" + suffix), self.pki.path("next" + suffix))
                os.rename(self.pki.path("next" + suffix), self.pki.path("server" + suffix))
                time.sleep(1.5)
            self.assertTrue(proxy.wait_for_log("certificates reloaded", timeout=5))
            time.sleep(0.5)
        finally:
            done.set()
            for t in threads:
                t.join(10)
        self.assertEqual(failures, [])
        _, out = s_client(self.tls_port, "-servername", "localhost")
        self.assertIn("CN = server2", out)
        # A broken file is refused and the running certificate stays.
        with open(self.pki.path("server.crt"), "w") as f:
            f.write("not a certificate\n")
        self.assertTrue(proxy.wait_for_log("certificates do not load", timeout=5))
        self.assertEqual(self.https("https://localhost:%d/" % self.tls_port).stdout, b"200 2")


class Example(ProxyTestCase):
    def test_conf_tls_edge_yaml_works_with_its_certificate_script(self):
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
        work = tempfile.mkdtemp(prefix="sluice-tls-example-")
        self.addCleanup(shutil.rmtree, work, True)
        subprocess.run([os.path.join(root, "conf/tls/make-certs.sh"), os.path.join(work, "tls")],
                       check=True, capture_output=True, timeout=60)
        origin = self.start_origin()
        ports = {p: free_port() for p in ("8443", "8444", "8080")}
        with open(os.path.join(root, "conf/tls-edge.yaml")) as f:
            text = f.read().replace("127.0.0.1:9000", "127.0.0.1:%d" % origin.port)
        for old, new in ports.items():
            text = text.replace("127.0.0.1:%s" % old, "127.0.0.1:%d" % new)
        text = text.replace("tls/", os.path.join(work, "tls") + "/").replace("workers: 0",
                                                                            "workers: 1")
        proxy = self.start_sluice(text, port=ports["8443"])
        ca = os.path.join(work, "tls/ca.pem")
        r = self.curl("--cacert", ca, "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                      "https://localhost:%d/" % ports["8443"])
        self.assertEqual(r.stdout, b"200 2")
        wait_for_port(ports["8444"], proc=proxy.proc)
        r = self.curl("--cacert", ca, "https://localhost:%d/" % ports["8444"])
        self.assertNotEqual(r.returncode, 0)  # no client certificate
        r = self.curl("--cacert", ca, "--cert", os.path.join(work, "tls/client.pem"), "--key",
                      os.path.join(work, "tls/client.key"), "-o", "/dev/null", "-w",
                      "%{http_code}", "https://localhost:%d/" % ports["8444"])
        self.assertEqual(r.stdout, b"200")
        _, out = s_client(ports["8443"], "-status", "-servername", "localhost")
        self.assertIn("OCSP Response Status: successful", out)
        _, out = s_client(ports["8443"], "-servername", "api.example.test")
        self.assertIn("CN = example.test", out)


class UpstreamHttp2(ProxyTestCase):
    def start_nghttpd(self):
        """nghttpd (cleartext HTTP/2) serving a directory with one file, `reply`."""
        work = tempfile.mkdtemp(prefix="sluice-nghttpd-")
        self.addCleanup(shutil.rmtree, work, True)
        with open(os.path.join(work, "reply"), "wb") as f:
            f.write(b"\x00\x00\x00\x00\x02hi")
        port = free_port()
        nghttpd = subprocess.Popen(["nghttpd", "--no-tls", "--trailer=grpc-status: 0",
                                    "--trailer=grpc-message: fine", "-d", work, str(port)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        self.addCleanup(nghttpd.wait, 5)
        self.addCleanup(nghttpd.terminate)
        wait_for_port(port, proc=nghttpd)
        return port

    def test_an_upgrade_to_an_http2_cluster_is_a_502_and_the_proxy_goes_on(self):
        # An upgrade cannot pass over HTTP/2 to an origin: the stream refuses the head as it is
        # sent, inside the attempt that sends it.
        port = self.start_nghttpd()
        proxy = self.start_sluice("""
workers: 1
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - {name: app, endpoints: [127.0.0.1:%d], http2: true}
routes:
  - cluster: app
""" % port)
        url = "http://127.0.0.1:%d/reply" % proxy.port
        for _ in range(3):
            r = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Connection: Upgrade",
                          "-H", "Upgrade: websocket", url)
            self.assertEqual(r.stdout, b"502", r.stderr)
        r = self.curl("-o", "/dev/null", "-w", "%{http_code}", url)
        self.assertEqual(r.stdout, b"200", r.stderr)  # and it exits cleanly (the harness checks)

    def test_grpc_style_trailers_pass_end_to_end(self):
        port = self.start_nghttpd()
        proxy = self.start_sluice("""
workers: 1
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - {name: grpc, endpoints: [127.0.0.1:%d], http2: true}
routes:
  - cluster: grpc
""" % port)
        result = subprocess.run(["nghttp", "-v", "http://127.0.0.1:%d/reply" % proxy.port],
                                capture_output=True, timeout=20)
        out = result.stdout.decode()
        self.assertIn("grpc-status: 0", out)
        self.assertIn("grpc-message: fine", out)
        # The trailers came in their own HEADERS frame, with END_STREAM, after the data.
        self.assertRegex(out, r"recv DATA frame[^\n]*\n(.|\n)*grpc-status: 0")

    def test_http2_cluster_falls_back_to_an_http1_only_server(self):
        origin = self.start_origin()
        # An HTTP/1.1-only server in front of the origin: it answers the HTTP/2 preface with
        # an HTTP/1.1 error, as nginx or an older sluice would.
        old = self.start_sluice("""
workers: 1
listeners: [{address: 127.0.0.1:{port}, http2: false}]
clusters: [{name: app, endpoints: [127.0.0.1:%d]}]
routes: [{cluster: app}]
""" % origin.port)
        proxy = self.start_sluice("""
workers: 1
log_level: debug
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - {name: app, endpoints: [127.0.0.1:%d], http2: true}
routes:
  - cluster: app
""" % old.port)
        for _ in range(5):
            r = self.curl("-X", "POST", "--data", "x=1", "http://127.0.0.1:%d/p" % proxy.port)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([q.method for q in origin.received()], ["POST"] * 5)
        self.assertTrue(proxy.wait_for_log("HTTP/1.1 from now on"))


class Tunnel(ProxyTestCase):
    """Two regions whose sluices tunnel over HTTP/2 with mutual TLS."""

    def start_regions(self, west_http2=True):
        self.pki = Pki()
        self.addCleanup(self.pki.cleanup)
        self.pki.ca("region")
        self.pki.leaf("west", ca="region", usage="serverAuth")
        self.pki.leaf("east-client", sans=(), ca="region", usage="clientAuth")
        self.pki.ca("rogue")
        self.pki.leaf("rogue-client", sans=(), ca="rogue", usage="clientAuth")
        key = os.path.join(self.pki.dir, "tunnel.key")
        with open(key, "w") as f:
            f.write("3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d\n")
        self.origins = {r: self.start_origin(name=r) for r in ("east", "west")}
        east_port, west_port, west_tunnel = free_port(), free_port(), free_port()
        steering = """
proxy:
  trust_client_headers: true  # the clients here stand for the apps' own gateway
steering:
  local_region: %s
  member_id: [{header: x-member-id}]
  home_region: [{header: x-home-region}]
  tunnel:
    key_file: %s
    tls: {ca_file: %s, cert_file: %s, key_file: %s}
  regions:
    east: {tunnel: [127.0.0.1:%d]}
    west: {tunnel: [127.0.0.1:%d]}
"""
        common = """
workers: 1
log_level: debug
listeners:
  - address: 127.0.0.1:{port}
%s
clusters:
  - {name: app, endpoints: [127.0.0.1:%d]}
routes:
  - cluster: app
"""
        tunnel_files = (self.pki.path("region.crt"), self.pki.path("east-client.crt"),
                        self.pki.path("east-client.key"))
        west_listener = """  - address: 127.0.0.1:%d
    http2: %s
    tls:
      cert_file: %s
      key_file: %s
      client_ca_file: %s""" % (west_tunnel, "true" if west_http2 else "false",
                               self.pki.path("west.crt"), self.pki.path("west.key"),
                               self.pki.path("region.crt"))
        self.west = self.start_sluice(
            common % (west_listener, self.origins["west"].port) +
            steering % (("west", key) + tunnel_files + (east_port, west_tunnel)), port=west_port)
        wait_for_port(west_tunnel, proc=self.west.proc)
        self.east = self.start_sluice(
            common % ("", self.origins["east"].port) +
            steering % (("east", key) + tunnel_files + (east_port, west_tunnel)), port=east_port)
        self.west_tunnel = west_tunnel

    def get(self, port, member, home):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/t", headers={"x-member-id": member, "x-home-region": home})
        r = conn.getresponse()
        r.read()
        conn.close()
        return r.status, r.getheader("sluice-region")

    def test_tunnel_over_http2_with_mutual_tls(self):
        self.start_regions()
        results = set()
        for i in range(60):
            results.add(self.get(self.east.port, "m%d" % i, "west"))
        self.assertEqual(results, {(200, "west")})
        self.assertEqual(len(self.origins["west"].received()), 60)
        self.assertEqual(self.origins["east"].received(), [])
        # Multiplexed: a handful of handshakes for sixty requests, all h2.
        h2 = metric(self.west.admin_port, 'sluice_tls_handshakes_total{protocol="h2",'
                    'resumed="false"}')
        self.assertGreaterEqual(h2, 1)
        self.assertLessEqual(metric(self.west.admin_port, "sluice_tls_handshakes_total"), 4)
        # Without the region's client certificate there is no way in.
        url = "https://127.0.0.1:%d/t" % self.west_tunnel
        r = self.curl("--cacert", self.pki.path("region.crt"), url)
        self.assertNotEqual(r.returncode, 0)
        r = self.curl("--cacert", self.pki.path("region.crt"), "--cert",
                      self.pki.path("rogue-client.crt"), "--key", self.pki.path("rogue-client.key"),
                      url)
        self.assertNotEqual(r.returncode, 0)
        r = self.curl("--cacert", self.pki.path("region.crt"), "--cert",
                      self.pki.path("east-client.crt"), "--key", self.pki.path("east-client.key"),
                      "-o", "/dev/null", "-w", "%{http_code}", url)
        self.assertEqual(r.stdout, b"200")
        self.assertGreaterEqual(metric(self.west.admin_port, "sluice_tls_handshake_failures_total"),
                                2)

    def test_tunnel_falls_back_to_http1_peer(self):
        self.start_regions(west_http2=False)
        for i in range(10):
            self.assertEqual(self.get(self.east.port, "m%d" % i, "west"), (200, "west"))
        self.assertTrue(self.east.wait_for_log("no h2 by ALPN"))
        self.assertGreaterEqual(
            metric(self.west.admin_port, 'sluice_tls_handshakes_total{protocol="http/1.1"}'), 1)


if __name__ == "__main__":
    unittest.main()
