"""HTTP/1.1 proxying end to end: the real sluice binary between real clients and an origin."""

import json
import re
import socket
import subprocess
import time
import unittest

from harness import ProxyTestCase, RawClient, basic_config


class KeepAliveAndMethods(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.proxy = self.start_sluice(basic_config([self.origin.port]))
        self.base = "http://127.0.0.1:%d" % self.proxy.port

    def test_keep_alive_reuses_both_connections(self):
        urls = [self.base + "/a%d" % i for i in range(5)]
        result = self.curl("-v", *urls)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.decode().count("ok /a"), 5)
        self.assertEqual(result.stderr.decode().count("Re-using existing connection"), 4)
        # One upstream connection served all five requests.
        self.assertEqual(self.origin.connections, 1)

    def test_head_204_304_have_no_body(self):
        c = self.client(self.proxy.port)
        c.send(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = c.read_response(head_request=True)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-length"], ["6"])  # the GET body's length
        for code in (204, 304):
            c.send(b"GET /status/%d HTTP/1.1\r\nHost: a\r\n\r\n" % code)
            status, headers, body = c.read_response()
            self.assertEqual(status, code)
            self.assertNotIn("transfer-encoding", headers)
        # The connection is still in step: one more request works.
        c.send(b"GET /last HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[2], b"ok /last\n")

    def test_http10_client(self):
        c = self.client(self.proxy.port)
        c.send(b"GET /old HTTP/1.0\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertEqual((status, body), (200, b"ok /old\n"))
        self.assertTrue(c.closed_by_peer())
        # HTTP/1.0 keep-alive is honoured, and a body of unknown length ends with the close.
        c = self.client(self.proxy.port)
        c.send(b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertEqual(headers["connection"], ["keep-alive"])
        c.send(b"GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertNotIn("transfer-encoding", headers)
        self.assertEqual(body, b"aaaaabbbbbccccc")

    def test_connection_close(self):
        c = self.client(self.proxy.port)
        c.send(b"GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertEqual(headers["connection"], ["close"])
        self.assertTrue(c.closed_by_peer())

    def test_pipelined_requests_answered_in_order(self):
        c = self.client(self.proxy.port)
        c.send(b"".join(b"GET /slow?ms=%d HTTP/1.1\r\nHost: a\r\n\r\n" % ms for ms in (300, 0))
               + b"GET /p3 HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\n"
               b"Content-Length: 4\r\n\r\nlast")
        bodies = [c.read_response()[2] for _ in range(4)]
        self.assertEqual(bodies, [b"slow\n", b"slow\n", b"ok /p3\n", b"last"])

    def test_half_close_after_pipelined_requests(self):
        c = self.client(self.proxy.port)
        c.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(c.read_response()[2], b"ok /1\n")
        self.assertEqual(c.read_response()[2], b"ok /2\n")
        self.assertTrue(c.closed_by_peer())

    def test_unknown_route_is_404(self):
        proxy = self.start_sluice(basic_config([self.origin.port]).replace(
            "  - cluster: app", "  - cluster: app\n    host: only.example.com"))
        c = self.client(proxy.port)
        c.send(b"GET / HTTP/1.1\r\nHost: other.example.com\r\n\r\n")
        self.assertEqual(c.read_response()[0], 404)
        c.send(b"GET / HTTP/1.1\r\nHost: ONLY.example.com:8080\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)


class Bodies(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.proxy = self.start_sluice(basic_config([self.origin.port]))
        self.base = "http://127.0.0.1:%d" % self.proxy.port

    def test_content_length_upload(self):
        data = bytes(range(256)) * 1000
        result = subprocess.run(["curl", "-sS", "--max-time", "20", "--data-binary", "@-",
                                 "-H", "Expect:", self.base + "/echo"], input=data,
                                capture_output=True, timeout=30)
        self.assertEqual(result.stdout, data)

    def test_chunked_upload_is_forwarded_chunked(self):
        data = b"0123456789" * 10000
        result = subprocess.run(["curl", "-sS", "--max-time", "20", "-T", "-", "-X", "POST",
                                 "-H", "Transfer-Encoding: chunked", "-H", "Expect:",
                                 self.base + "/echo"], input=data, capture_output=True, timeout=30)
        self.assertEqual(result.stdout, data)
        self.assertEqual(self.origin.received()[-1].header("transfer-encoding"), "chunked")

    def test_chunked_download(self):
        result = self.curl("-i", "--raw", self.base + "/chunked?n=4&size=3000")
        out = result.stdout
        self.assertIn(b"Transfer-Encoding: chunked", out)
        self.assertNotIn(b"X-Trailer", out)  # trailers are not forwarded over HTTP/1.1
        plain = self.curl(self.base + "/chunked?n=4&size=3000").stdout
        self.assertEqual(plain, b"a" * 3000 + b"b" * 3000 + b"c" * 3000 + b"d" * 3000)

    def test_response_until_close_is_rechunked(self):
        c = self.client(self.proxy.port)
        c.send(b"GET /until-close HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertEqual(headers["transfer-encoding"], ["chunked"])
        self.assertEqual(body, b"body until close")
        c.send(b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n")  # the client connection lives on
        self.assertEqual(c.read_response()[2], b"ok /again\n")

    def test_expect_100_continue(self):
        c = self.client(self.proxy.port)
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_until(b"\r\n\r\n")
        self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue"), interim)
        c.send(b"hello")
        status, headers, body = c.read_response()
        self.assertEqual((status, body), (200, b"hello"))
        # The origin never saw the Expect header: sluice answered it.
        self.assertIsNone(self.origin.received()[-1].header("expect"))

    def test_expect_with_curl(self):
        data = b"z" * 200000
        result = subprocess.run(["curl", "-sS", "-v", "--max-time", "20", "--data-binary", "@-",
                                 "-H", "Expect: 100-continue", "--expect100-timeout", "10",
                                 self.base + "/echo"], input=data, capture_output=True, timeout=30)
        self.assertEqual(result.stdout, data)
        self.assertIn(b"HTTP/1.1 100 Continue", result.stderr)


class ForwardedHeaders(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()

    def forwarded(self, proxy, raw_request):
        c = self.client(proxy.port)
        c.send(raw_request)
        status, headers, body = c.read_response()
        self.assertEqual(status, 200, body)
        return json.loads(body), headers

    def test_hop_by_hop_and_internal_headers_are_removed(self):
        proxy = self.start_sluice(basic_config([self.origin.port]))
        seen, response_headers = self.forwarded(proxy, (
            b"GET /headers HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, X-Drop\r\n"
            b"X-Drop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: x\r\n"
            b"Proxy-Connection: keep-alive\r\nSluice-Hop: forged\r\nsluice-region: us-east-1\r\n"
            b"Upgrade: h2c\r\nX-Keep: yes\r\n\r\n"))
        names = [n.lower() for n, _ in seen["headers"]]
        for gone in ("connection", "x-drop", "keep-alive", "te", "proxy-authorization",
                     "proxy-connection", "sluice-hop", "sluice-region", "upgrade"):
            self.assertNotIn(gone, names)
        self.assertIn("x-keep", names)
        self.assertIn("host", names)
        headers = dict((n.lower(), v) for n, v in seen["headers"])
        self.assertEqual(headers["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(headers["x-forwarded-proto"], "http")
        self.assertEqual(headers["via"], "1.1 sluice")
        self.assertRegex(headers["x-request-id"],
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertEqual(response_headers["via"], ["1.1 sluice"])

    def test_untrusted_forwarded_for_is_overwritten(self):
        proxy = self.start_sluice(basic_config([self.origin.port]))
        seen, _ = self.forwarded(proxy, b"GET /headers HTTP/1.1\r\nHost: a\r\n"
                                 b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
                                 b"X-Request-Id: keep-me\r\n\r\n")
        headers = dict((n.lower(), v) for n, v in seen["headers"])
        self.assertEqual(headers["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(headers["x-forwarded-proto"], "http")
        self.assertEqual(headers["x-request-id"], "keep-me")

    def test_trusted_proxy_appends(self):
        proxy = self.start_sluice(basic_config(
            [self.origin.port], extra="proxy:\n  trusted_proxies: [127.0.0.0/8]\n  via: edge1\n"))
        seen, _ = self.forwarded(proxy, b"GET /headers HTTP/1.1\r\nHost: a\r\n"
                                 b"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\r\n")
        headers = dict((n.lower(), v) for n, v in seen["headers"])
        self.assertEqual(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1")
        self.assertEqual(headers["x-forwarded-proto"], "https")
        self.assertEqual(headers["via"], "1.1 edge1")

    def test_proxy_protocol_gives_the_client_address(self):
        proxy = self.start_sluice(basic_config([self.origin.port]).replace(
            "    address: 127.0.0.1:{port}", "    address: 127.0.0.1:{port}\n    proxy_protocol: true"))
        seen, _ = self.forwarded(proxy, b"PROXY TCP4 198.51.100.7 10.0.0.1 40000 443\r\n"
                                 b"GET /headers HTTP/1.1\r\nHost: a\r\n\r\n")
        headers = dict((n.lower(), v) for n, v in seen["headers"])
        self.assertEqual(headers["x-forwarded-for"], "198.51.100.7")
        v2 = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([192, 0, 2, 44, 10, 0, 0, 1])
              + b"\x9c\x40\x01\xbb")
        seen, _ = self.forwarded(proxy, v2 + b"GET /headers HTTP/1.1\r\nHost: a\r\n\r\n")
        headers = dict((n.lower(), v) for n, v in seen["headers"])
        self.assertEqual(headers["x-forwarded-for"], "192.0.2.44")
        # Without the header the connection is refused.
        c = self.client(proxy.port)
        c.send(b"GET /headers HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertTrue(c.closed_by_peer())

    def test_path_is_normalized_before_routing_and_forwarded_normalized(self):
        proxy = self.start_sluice(basic_config([self.origin.port]).replace(
            "  - cluster: app", "  - cluster: app\n    path_prefix: /public"))
        c = self.client(proxy.port)
        c.send(b"GET /public/../admin HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 404)  # "/admin" has no route
        c.send(b"GET /public/./a/b/%2e%2E/c?q=%2F HTTP/1.1\r\nHost: a\r\n\r\n")
        status, _, body = c.read_response()
        self.assertEqual((status, body), (200, b"ok /public/a/c?q=%2F\n"))
        c.send(b"GET /public//x HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[2], b"ok /public/x\n")
        c.send(b"GET /public/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, _ = c.read_response()
        self.assertEqual(status, 400)
        self.assertEqual(headers["connection"], ["close"])  # a client error ends the connection

    def test_absolute_form_target(self):
        proxy = self.start_sluice(basic_config([self.origin.port]))
        c = self.client(proxy.port)
        c.send(b"GET http://a.example/abs?x=1 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response()[2], b"ok /abs?x=1\n")
        c = self.client(proxy.port)
        c.send(b"GET http://evil.example/abs HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response()[0], 400)


class Balancing(ProxyTestCase):
    def test_round_robin_spreads_requests(self):
        a = self.start_origin(name="a")
        b = self.start_origin(name="b")
        proxy = self.start_sluice(basic_config([a.port, b.port]))
        c = self.client(proxy.port)
        seen = []
        for _ in range(10):
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            seen.append(c.read_response()[1]["x-origin"][0])
        self.assertEqual(seen.count("a"), 5)
        self.assertEqual(seen.count("b"), 5)

    def test_least_outstanding_avoids_the_busy_endpoint(self):
        slow = self.start_origin(name="slow", delay=1.0)
        fast = self.start_origin(name="fast")
        proxy = self.start_sluice(basic_config([slow.port, fast.port], balancer="least_outstanding"))
        # Keep the slow endpoint busy, then see the rest go to the fast one.
        busy = [self.client(proxy.port) for _ in range(3)]
        for c in busy:
            c.send(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        c = self.client(proxy.port)
        seen = []
        for _ in range(10):
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            seen.append(c.read_response()[1]["x-origin"][0])
        self.assertGreaterEqual(seen.count("fast"), 9, seen)
        for b in busy:
            b.read_response()


if __name__ == "__main__":
    unittest.main()
