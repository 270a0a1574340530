"""Strict parsing end to end: every ambiguous or malformed request is answered by sluice itself,
the connection closes, and the recording origin proves that nothing was forwarded."""

import time
import unittest

from harness import ProxyTestCase, basic_config

# (name, raw request bytes, expected status)
BAD_REQUESTS = [
    ("content_length_and_transfer_encoding",
     b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("transfer_encoding_and_content_length",
     b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400),
    ("duplicate_content_length",
     b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
    ("content_length_list", b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\nx", 400),
    ("content_length_not_numeric", b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1a\r\n\r\nx", 400),
    ("content_length_negative", b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    ("transfer_encoding_not_final_chunked",
     b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    ("transfer_encoding_identity", b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400),
    ("transfer_encoding_http10",
     b"POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("obs_fold", b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", 400),
    ("obs_fold_tab", b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n", 400),
    ("bare_lf", b"GET /x HTTP/1.1\nHost: a\n\n", 400),
    ("bare_lf_in_field", b"GET /x HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400),
    ("bare_cr", b"GET /x HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400),
    ("nul_in_value", b"GET /x HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
    ("control_in_value", b"GET /x HTTP/1.1\r\nHost: a\r\nX: a\x07b\r\n\r\n", 400),
    ("control_in_name", b"GET /x HTTP/1.1\r\nHost: a\r\nX\x01Y: b\r\n\r\n", 400),
    ("space_before_colon", b"GET /x HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400),
    ("double_space_request_line", b"GET  /x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("missing_host", b"GET /x HTTP/1.1\r\n\r\n", 400),
    ("duplicate_host", b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("invalid_host", b"GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("absolute_form_mismatch", b"GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad_chunk_size", b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400),
    ("chunk_size_overflow",
     b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400),
    ("chunk_without_crlf",
     b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
    ("encoded_slash", b"GET /a%2f..%2fadmin HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("encoded_nul", b"GET /a%00 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("http2_version_in_http1", b"GET /x HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ("unknown_method", b"BREW /x HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    ("connect", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405),
    ("expect_other", b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417),
    ("target_too_long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    ("head_too_large", b"GET /x HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 70000 + b"\r\n\r\n", 431),
    ("too_many_headers", b"GET /x HTTP/1.1\r\nHost: a\r\n" + b"X-N: 1\r\n" * 101 + b"\r\n", 431),
    ("body_over_limit", b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n", 413),
]


class BadInput(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.proxy = self.start_sluice(basic_config(
            [self.origin.port], extra="limits:\n  max_request_body_bytes: 1KiB\n"))

    def test_each_bad_request_is_refused_and_not_forwarded(self):
        for name, raw, expected in BAD_REQUESTS:
            with self.subTest(name):
                c = self.client(self.proxy.port)
                try:
                    c.send(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # refused before we finished sending
                status, headers, body = c.read_response()
                self.assertEqual(status, expected, body)
                self.assertEqual(headers.get("connection"), ["close"])
                self.assertTrue(c.closed_by_peer())
        self.assertEqual(self.origin.received(), [], "an ambiguous message was forwarded")

    def test_smuggling_attempt_after_a_valid_request_is_not_forwarded(self):
        # A valid request, then one with CL+TE on the same connection: the first is served,
        # the second refused, and the origin never sees the smuggled bytes.
        c = self.client(self.proxy.port)
        c.send(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
               b"POST /second HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)
        self.assertEqual(c.read_response()[0], 400)
        self.assertTrue(c.closed_by_peer())
        self.assertEqual([r.target for r in self.origin.received()], ["/first"])

    def test_bad_chunk_in_the_middle_of_a_body_aborts_the_upstream_request(self):
        c = self.client(self.proxy.port)
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n")
        time.sleep(0.2)
        c.send(b"zz\r\n")
        status, _, _ = c.read_response()
        self.assertEqual(status, 400)
        self.assertTrue(c.closed_by_peer())
        # The origin never got a complete request.
        self.assertEqual(self.origin.received(), [])

    def test_slow_head_gets_408(self):
        proxy = self.start_sluice(basic_config(
            [self.origin.port], extra="timeouts:\n  head_read: 300ms\n"))
        c = self.client(proxy.port)
        c.send(b"GET /x HTTP/1.1\r\nHo")
        started = time.monotonic()
        for _ in range(3):  # trickling bytes does not extend the head timeout
            time.sleep(0.1)
            try:
                c.send(b"s")
            except OSError:
                break
        status, _, _ = c.read_response()
        self.assertEqual(status, 408)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertTrue(c.closed_by_peer())

    def test_idle_keep_alive_connection_is_closed(self):
        proxy = self.start_sluice(basic_config(
            [self.origin.port], extra="timeouts:\n  downstream_idle: 300ms\n"))
        c = self.client(proxy.port)
        c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)
        self.assertTrue(c.closed_by_peer(timeout=3.0))

    def test_stalled_request_body_gets_408(self):
        proxy = self.start_sluice(basic_config(
            [self.origin.port], extra="timeouts:\n  body_idle: 300ms\n"))
        c = self.client(proxy.port)
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        status, _, _ = c.read_response()
        self.assertEqual(status, 408)
        self.assertTrue(c.closed_by_peer())


if __name__ == "__main__":
    unittest.main()
