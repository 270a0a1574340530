"""What sluice refuses or bounds, probed as an attacker would on loopback: an HTTP/2 head that
never ends, tunnel hop markers replayed or re-targeted, a fake peer region's health report,
admin requests that stall or come without a token, paths and credential fields that would make
an origin see something sluice did not authorise, connection floods, a second sluice on the same
ports, and the default retry of a request whose origin refused the connection.

Every process is stopped by its PID; every wait is bounded.
"""

import hashlib
import json
import os
import random
import shutil
import socket
import tempfile
import time
import unittest

from harness import ProxyTestCase, basic_config
from sluicetest.admin import call, metric
from sluicetest.process import Sluice, free_port
from sluicetest.secret_files import write_secrets

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
# HEADERS on stream 1 holding ":method GET" (HPACK index 2), without END_HEADERS: a header
# block that a CONTINUATION should finish, and none ever comes.
UNFINISHED_HEADERS = b"\x00\x00\x01\x01\x00\x00\x00\x00\x01\x82"

KEY = "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d"
READ_TOKEN = "5e0b7c2a9d4f6e1a8c3b7d2e9f4a6c1b"
API_KEY = "partner-key-7d2e9f4a6c1b5e0b7c2a"


class Http2Head(ProxyTestCase):
    def test_a_header_block_that_never_ends_meets_the_head_deadline(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config(
            [origin.port], extra="timeouts: {head_read: 1s, downstream_idle: 60s}\n"))
        clients = [self.client(proxy.port, timeout=10) for _ in range(5)]
        for c in clients:
            c.send(PREFACE + EMPTY_SETTINGS + UNFINISHED_HEADERS)
        started = time.monotonic()
        # Before, the stream counted as active and disarmed the only timer: open for good.
        for c in clients:
            self.assertTrue(c.closed_by_peer(timeout=10))
        self.assertLess(time.monotonic() - started, 9)
        self.assertEqual(origin.received(), [])


class OriginsSeeOnlyWhatWasAuthorised(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        digest = hashlib.sha256(API_KEY.encode()).hexdigest()
        self.proxy = self.start_sluice(basic_config([self.origin.port]).replace(
            "routes:\n  - cluster: app\n",
            "routes:\n  - path_prefix: /health\n    cluster: app\n"
            "  - cluster: app\n    filters:\n"
            "      - auth: {api_keys: [{name: partner, sha256: %s}]}\n" % digest))

    def status_of(self, head):
        c = self.client(self.proxy.port)
        c.send(head)
        status, _, _ = c.read_response()
        return status

    def test_a_dot_segment_with_parameters_never_reaches_the_origin(self):
        # Tomcat, Jetty and Spring read /health/..;/admin as /admin, past the public route.
        for path in ("/health/..;/admin", "/health/.;/admin", "/health/%2e%2e;x/admin"):
            self.assertEqual(self.status_of(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % path.encode()),
                             400, path)
        self.assertEqual(self.origin.received(), [])
        self.assertEqual(self.status_of(b"GET /health/x HTTP/1.1\r\nHost: h\r\n\r\n"), 200)

    def test_a_second_credential_is_refused(self):
        heads = [
            b"GET /api HTTP/1.1\r\nHost: h\r\nAuthorization: ApiKey %s\r\n"
            b"Authorization: Bearer forged\r\n\r\n" % API_KEY.encode(),
            b"GET /api HTTP/1.1\r\nHost: h\r\nx-api-key: %s\r\nx-api-key: forged\r\n\r\n"
            % API_KEY.encode(),
            b"GET /api HTTP/1.1\r\nHost: h\r\nx-api-key: %s\r\nAuthorization: Bearer forged\r\n\r\n"
            % API_KEY.encode(),
        ]
        self.assertEqual([self.status_of(h) for h in heads], [400, 401, 401])
        self.assertEqual(self.origin.received(), [])
        ok = b"GET /api HTTP/1.1\r\nHost: h\r\nx-api-key: %s\r\n\r\n" % API_KEY.encode()
        self.assertEqual(self.status_of(ok), 200)

    def test_where_a_client_says_it_came_from_is_not_passed_on(self):
        c = self.client(self.proxy.port)
        c.send(b"GET /health/headers HTTP/1.1\r\nHost: h\r\nX-Forwarded-Host: admin.internal\r\n"
               b"X-Forwarded-Port: 8443\r\nForwarded: for=10.0.0.1\r\nX-Real-IP: 10.0.0.1\r\n"
               b"X-Forwarded-For: 10.0.0.1\r\n\r\n")
        status, _, _ = c.read_response()
        self.assertEqual(status, 200)
        seen = self.origin.received()[-1]
        for name in ("x-forwarded-host", "x-forwarded-port", "forwarded", "x-real-ip"):
            self.assertIsNone(seen.header(name), name)
        self.assertEqual(seen.header("x-forwarded-for"), "127.0.0.1")

    def test_strict_field_names_and_connection_lists(self):
        names = ", ".join("x-%d" % i for i in range(17)).encode()
        self.assertEqual(self.status_of(b"GET /health HTTP/1.1\r\nHost: h\r\nConnection: %s\r\n"
                                        b"X-16: forged\r\n\r\n" % names), 400)
        self.assertEqual(self.status_of(b"GET /health HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n"), 400)
        self.assertEqual(self.origin.received(), [])


class ConnectionCaps(ProxyTestCase):
    def test_one_client_gets_its_share_only(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config(
            [origin.port], extra="limits: {max_connections_per_client: 2}\n"),
            admin_port=free_port())
        # This test's client has an address of its own: a connection from anyone else on the
        # machine (another test's probe of a port it used before) is another client.
        me = "127.%d.%d.%d" % (random.randrange(1, 255), random.randrange(0, 255),
                               random.randrange(1, 255))
        first, second = self.client(proxy.port, source=me), self.client(proxy.port, source=me)
        for c in (first, second):
            c.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
            self.assertEqual(c.read_response()[0], 200)
        third = self.client(proxy.port, source=me)
        self.assertTrue(third.closed_by_peer(timeout=5))
        # Someone else is not held to this client's share.
        other = self.client(proxy.port)
        other.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(other.read_response()[0], 200)
        first.close()
        # Its place is free again once the first has gone.
        def fourth_served():
            c = self.client(proxy.port, source=me)
            try:
                c.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
                return c.read_response()[0] == 200
            except (OSError, EOFError):
                return False
        self.wait_for(fourth_served, what="a connection after one closed")

    def test_the_node_cap_is_on_by_default(self):
        proxy = self.start_sluice(basic_config([free_port()]))
        self.assertTrue(proxy.wait_for_log("at most"), proxy.log_text())

    def test_a_second_sluice_on_the_same_port_is_refused(self):
        origin = self.start_origin()
        first = self.start_sluice(basic_config([origin.port]))
        second = Sluice(basic_config([origin.port]), port=first.port)
        self.addCleanup(shutil.rmtree, second.dir, True)
        second.start(wait=False)
        self.addCleanup(second.stop)
        self.assertEqual(second.proc.wait(timeout=20), 1)
        self.assertIn("a second sluice?", second.log_text())
        # The first still has every connection.
        c = self.client(first.port)
        c.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)


class DefaultRetries(ProxyTestCase):
    def test_a_refused_connection_is_tried_on_another_origin_for_any_method(self):
        origin = self.start_origin()
        dead = free_port()  # nothing listens there
        port = free_port()
        proxy = self.start_sluice(args=["--listen", "127.0.0.1:%d" % port, "--origin",
                                        "127.0.0.1:%d,127.0.0.1:%d" % (origin.port, dead)],
                                  port=port)
        statuses = []
        for i in range(24):
            c = self.client(proxy.port)
            method = b"POST" if i % 3 == 0 else b"GET"
            c.send(b"%s /r%d HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi" % (method, i))
            statuses.append(c.read_response()[0])
        self.assertEqual(statuses, [200] * 24)


class AdminListener(ProxyTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-hardening-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "read.token"), "w") as f:
            f.write(READ_TOKEN + "\n")
        self.origin = self.start_origin()
        self.proxy = self.start_sluice(
            basic_config([self.origin.port], extra="admin:\n  tokens: [{name: dash, role: read, "
                         "token_file: %s/read.token}]\n" % self.dir),
            admin_port=free_port())

    def admin(self, timeout=5):
        return self.client(self.proxy.admin_port, timeout=timeout)

    def test_no_body_is_read_before_the_token_is_checked(self):
        c = self.admin()
        c.send(b"PUT /v1/steering/regions/us-east-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Length: 1000000\r\n\r\n")
        status, _, _ = c.read_response()  # at once: the megabyte is never waited for
        self.assertEqual(status, 401)
        self.assertTrue(c.closed_by_peer(timeout=5))
        self.assertTrue(self.proxy.wait_for_log("refused: no token"), self.proxy.log_text())
        c = self.admin()
        c.send(b"PUT /v1/steering/regions/us-east-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Authorization: Bearer %s\r\nContent-Length: 1000000\r\n\r\n" % READ_TOKEN.encode())
        self.assertEqual(c.read_response()[0], 403)  # a read-only token, told on the head

    @staticmethod
    def closed_count(clients):
        """How many of `clients` the server has closed (EOF or reset), without blocking."""
        closed = 0
        for c in clients:
            try:
                c.sock.setblocking(False)
                closed += c.sock.recv(65536, socket.MSG_PEEK) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return closed

    def test_connections_are_capped(self):
        # Heads that never finish hold their places (until the 10 s head deadline): at most 64.
        held = [self.admin() for _ in range(72)]
        for c in held:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = self.wait_for(lambda: self.closed_count(held) >= 8 and self.closed_count(held),
                               timeout=10, what="the connections over the cap closed")
        # The start's probe of the port may still have held one place.
        self.assertLessEqual(closed, 9)

    def test_idle_connections_make_room(self):
        # Keep-alive connections that wait for nothing give their places to new ones.
        held = []
        for _ in range(72):
            c = self.admin()
            c.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertEqual(c.read_response()[0], 200)  # every one is served
            held.append(c)
        self.wait_for(lambda: self.closed_count(held) >= 8, what="idle connections closed")

    def test_the_admin_port_is_not_shared(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with self.assertRaises(OSError):
            s.bind(("127.0.0.1", self.proxy.admin_port))

    def test_metrics_answer_addresses_not_names(self):
        c = self.admin()
        c.send(b"GET /metrics HTTP/1.1\r\nHost: rebound.example\r\n\r\n")
        self.assertEqual(c.read_response()[0], 421)
        self.assertEqual(call(self.proxy.admin_port, "GET", "/healthz")[0], 200)
        self.assertGreater(metric(self.proxy.admin_port, "sluice_requests_total"), -1)


class Regions(ProxyTestCase):
    """Two regions: us-east-1 evacuated to us-west-2, whose sluice serves what is tunneled."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-hardening-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_secrets(self.dir, (("tunnel.key", KEY), ("read.token", READ_TOKEN)))

    def config(self, local, origin_port, east_port, west_tunnel):
        return """
workers: 1
log_level: debug
listeners: [{address: 127.0.0.1:{port}}]
clusters: [{name: app, endpoints: [127.0.0.1:%(origin)d]}]
routes: [{cluster: app}]
steering:
  local_region: %(local)s
  member_id: [claim]
  tunnel: {insecure: true, key_file: %(dir)s/tunnel.key, http2: false}
  regions:
    us-east-1: {tunnel: [127.0.0.1:%(east)d], evacuate: 100%%, saviors: {us-west-2: 100}}
    us-west-2: {tunnel: [127.0.0.1:%(west)d]}
controller: {gates: {health_interval: 200ms}}
admin:
  tokens: [{name: dash, role: read, token_file: %(dir)s/read.token}]
""" % {"local": local, "origin": origin_port, "east": east_port, "west": west_tunnel,
       "dir": self.dir}

    def test_a_marker_is_good_once_and_only_for_its_request(self):
        # A recording stand-in for us-west-2 captures what us-east-1 sends through the tunnel.
        capture = self.start_origin(name="capture")
        east_port = free_port()
        east = self.start_sluice(self.config("us-east-1", free_port(), east_port, capture.port),
                                 port=east_port)
        for i in range(3):
            c = self.client(east.port)
            c.send(b"POST /play/%d HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 4\r\n\r\n"
                   b"body" % i)
            self.assertEqual(c.read_response()[0], 200)
        captured = [r for r in capture.received() if r.method == "POST"]  # not the health polls
        self.assertEqual(len(captured), 3)
        west_origin = self.start_origin(name="west-origin")
        west = self.start_sluice(self.config("us-west-2", west_origin.port, east_port, free_port()),
                                 admin_port=free_port())

        def replay(req, host=None, forwarded_for=None, body=b"body"):
            head = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (
                req.target.encode(), (host or req.header("host")).encode(), len(body))
            head += b"X-Forwarded-For: %s\r\n" % (forwarded_for or req.header("x-forwarded-for")
                                                   ).encode()
            head += b"sluice-hop: %s\r\n\r\n" % req.header("sluice-hop").encode()
            c = self.client(west.port)
            c.send(head + body)
            return c.read_response()[0]

        def rejected(reason):
            return metric(west.admin_port,
                          'sluice_steering_hop_rejected_total{reason="%s"}' % reason)

        self.assertEqual(replay(captured[0]), 200)  # delivered once: believed
        self.assertEqual(metric(west.admin_port,
                                'sluice_steering_requests_total{outcome="tunneled_in"}'), 1)
        self.assertEqual(replay(captured[0]), 200)  # again: served, but not as a tunnel
        self.assertEqual(rejected("replayed"), 1)
        seen = west_origin.received()[-1]
        self.assertEqual(seen.header("x-forwarded-for"), "127.0.0.1")  # the sender, not a claim
        # Re-targeted at another Host, a forged address put first, another body length.
        self.assertEqual(replay(captured[1], host="admin.example"), 200)
        self.assertEqual(replay(captured[2], forwarded_for="198.51.100.1, 127.0.0.1"), 200)
        self.assertEqual(replay(captured[2], body=b"longer body"), 200)
        self.assertEqual(rejected("bad_mac"), 3)
        self.assertEqual(metric(west.admin_port,
                                'sluice_steering_requests_total{outcome="tunneled_in"}'), 1)
        forged = [r for r in west_origin.received() if "198.51.100.1" in
                  (r.header("x-forwarded-for") or "")]
        self.assertEqual(forged, [])  # an untrusted client's X-Forwarded-For is overwritten

    def test_a_peer_report_that_is_not_signed_is_not_believed(self):
        fake = self.start_origin(name="fake-west")  # answers /v1/health with error_rate 0.99
        east_port = free_port()
        east = self.start_sluice(self.config("us-east-1", free_port(), east_port, fake.port),
                                 port=east_port, admin_port=free_port())

        def west_view():
            status, body = call(east.admin_port, "GET", "/v1/health", READ_TOKEN)
            if status != 200:
                return None
            view = body.get("peers", {}).get("us-west-2", {})
            return view if "not signed" in view.get("error", "") else None
        view = self.wait_for(west_view, what="the fake report refused")
        self.assertFalse(view.get("reachable"))
        self.assertTrue(any(r.target == "/v1/health" for r in fake.received()))


if __name__ == "__main__":
    unittest.main()
