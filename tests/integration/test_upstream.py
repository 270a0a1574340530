"""Upstream behaviour: pooled connections, errors as 502/504, a stale pooled connection retried
transparently, responses validated like requests, and WebSocket upgrades relayed."""

import socket
import time
import unittest

from harness import SANITIZED, ProxyTestCase, basic_config
from sluicetest.process import free_port


class UpstreamErrors(ProxyTestCase):
    def test_connect_refused_is_502_with_a_log_line(self):
        dead = free_port()  # nothing listens here
        proxy = self.start_sluice(basic_config([dead]))
        c = self.client(proxy.port)
        c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        status, _, body = c.read_response()
        self.assertEqual(status, 502)
        self.assertIn(b"Bad Gateway", body)
        self.assertTrue(proxy.wait_for_log(r"502 GET a/x upstream 127\.0\.0\.1:%d: connect failed" % dead))
        # The client connection survives an upstream failure.
        c.send(b"GET /y HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 502)

    def test_response_timeout_is_504(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port]).replace("response_timeout: 2s",
                                                                      "response_timeout: 300ms"))
        c = self.client(proxy.port)
        started = time.monotonic()
        c.send(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 504)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertTrue(proxy.wait_for_log(r"504 GET a/hang .*response timed out"))

    def test_connect_timeout_is_504(self):
        # A listening socket whose backlog is full never completes the handshake... on Linux
        # SYNs to a full backlog are dropped, which is exactly a connect timeout.
        blackhole = socket.socket()
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(0)
        self.addCleanup(blackhole.close)
        port = blackhole.getsockname()[1]
        fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        self.addCleanup(lambda: [s.close() for s in fillers])
        proxy = self.start_sluice(basic_config([port]).replace("connect_timeout: 1s",
                                                               "connect_timeout: 300ms"))
        c = self.client(proxy.port)
        c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 504)

    def test_invalid_responses_are_502(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port]))
        for path in (b"/garbage", b"/reset"):
            c = self.client(proxy.port)
            c.send(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(c.read_response()[0], 502, path)

    def test_truncated_response_body_is_not_completed(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port]))
        c = self.client(proxy.port)
        c.send(b"GET /half-body HTTP/1.1\r\nHost: a\r\n\r\n")
        head = c.read_until(b"\r\n\r\n")
        self.assertIn(b"Content-Length: 100", head)
        rest = c.read_all()
        self.assertLess(len(rest), 100)  # the client sees a short body and a closed connection

    def test_stale_pooled_connection_is_retried_transparently(self):
        # The origin closes every connection after one response, without saying so.
        origin = self.start_origin(close_after=1)
        proxy = self.start_sluice(basic_config([origin.port]))
        c = self.client(proxy.port)
        for i in range(20):
            c.send(b"GET /n%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
            status, _, body = c.read_response()
            self.assertEqual((status, body), (200, b"ok /n%d\n" % i))
        self.assertEqual(len(origin.received()), 20)  # each request reached the origin once

    def test_request_on_a_connection_the_origin_just_closed_is_replayed_once(self):
        # Every request on a reused connection meets a close before any response byte: the
        # race between an origin's keep-alive timeout and a new request.
        origin = self.start_origin(drop_reused=True)
        proxy = self.start_sluice(basic_config([origin.port]))
        c = self.client(proxy.port)
        for i in range(5):
            c.send(b"GET /r%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
            self.assertEqual(c.read_response()[2], b"ok /r%d\n" % i)
        targets = [r.target for r in origin.received()]
        for i in range(5):  # once on the stale connection at most, once on a fresh one
            self.assertIn(targets.count("/r%d" % i), (1, 2))
        self.assertTrue(proxy.wait_for_log("pooled connection was closed .* retrying"))

    def test_post_meeting_a_closed_connection_is_not_replayed(self):
        origin = self.start_origin(drop_reused=True)
        proxy = self.start_sluice(basic_config([origin.port]))
        c = self.client(proxy.port)
        c.send(b"GET /warm HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
        self.assertEqual(c.read_response()[0], 502)
        self.assertEqual([r.target for r in origin.received()].count("/echo"), 1)
        # With an Idempotency-Key the same request may be replayed.
        c.send(b"GET /warm2 HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nIdempotency-Key: k1\r\n"
               b"Content-Length: 2\r\n\r\nhi")
        status, _, body = c.read_response()
        self.assertEqual((status, body), (200, b"hi"))

    def test_post_on_a_stale_connection_is_not_replayed(self):
        # Non-idempotent requests are never sent twice: either it works or the client sees 502.
        origin = self.start_origin(close_after=1)
        proxy = self.start_sluice(basic_config([origin.port]))
        c = self.client(proxy.port)
        outcomes = []
        for i in range(10):
            c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
            outcomes.append(c.read_response()[0])
            time.sleep(0.05)
        self.assertEqual(len(origin.received()), outcomes.count(200))


class WebSocket(ProxyTestCase):
    def test_upgrade_relays_bytes_both_ways(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port]))
        c = self.client(proxy.port)
        c.send(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        status, headers, _ = c.read_response()
        self.assertEqual(status, 101)
        self.assertEqual(headers["upgrade"], ["websocket"])
        self.assertEqual(headers["connection"], ["upgrade"])
        for message in (b"first", b"second" * 10000):
            c.send(message)
            self.assertEqual(c.read_exact(len(message)), message)
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c.closed_by_peer())
        self.assertEqual(origin.received()[-1].header("upgrade"), "websocket")

    def test_refused_upgrade_keeps_http(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port]))
        c = self.client(proxy.port)
        c.send(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: something\r\n\r\n")
        self.assertEqual(c.read_response()[0], 426)
        c.send(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[2], b"ok /after\n")


if __name__ == "__main__":
    unittest.main()


class SlowClients(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.proxy = self.start_sluice(basic_config(
            [self.origin.port], extra="timeouts:\n  body_idle: 500ms\n"))

    def small_buffer_client(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.connect(("127.0.0.1", self.proxy.port))
        self.addCleanup(s.close)
        return s

    @unittest.skipIf(SANITIZED, "timing-dependent")
    def test_slow_reader_that_keeps_reading_is_served(self):
        size = 8 << 20
        s = self.small_buffer_client()
        s.sendall(b"GET /bytes?n=%d HTTP/1.1\r\nHost: a\r\n\r\n" % size)
        got = 0
        deadline = time.monotonic() + 30
        s.settimeout(5)
        while got < size and time.monotonic() < deadline:
            chunk = s.recv(2 << 20)
            if not chunk:
                break
            got += len(chunk)
            time.sleep(0.02)  # slower than the proxy could send, but never idle for 500ms
        self.assertGreater(got, size)  # the body plus the response head arrived in full

    def test_reader_that_stops_is_cut_off(self):
        s = self.small_buffer_client()
        s.sendall(b"GET /bytes?n=%d HTTP/1.1\r\nHost: a\r\n\r\n" % (512 << 20))
        time.sleep(2.0)  # read nothing for four idle timeouts
        s.settimeout(10)
        got = 0
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        except ConnectionResetError:
            pass
        self.assertLess(got, 512 << 20)  # the connection ended before the body did
