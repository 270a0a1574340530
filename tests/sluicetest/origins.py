"""The tests' origin: raw HTTP/1.1 handling and a record of every request it received.

Paths select behaviour (see Handler.respond). Runs in a background thread of the test process,
or standalone: PYTHONPATH=tests python3 -m sluicetest.origins PORT [NAME]
"""

import json
import socket
import socketserver
import sys
import threading
import time
import urllib.parse


class Request:
    def __init__(self, method, target, version, headers, raw_head):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value)
        self.raw_head = raw_head
        self.body = b""
        self.body_length = 0

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.buf = b""
        self.server.origin._track(self.request, True)
        self.served = 0

    def finish(self):
        self.server.origin._track(self.request, False)

    def fill(self):
        chunk = self.request.recv(1 << 20)
        if not chunk:
            raise EOFError()
        self.buf += chunk

    def read_until(self, marker):
        while marker not in self.buf:
            self.fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_body(self, req, store):
        length = req.header("content-length")
        chunked = (req.header("transfer-encoding") or "").lower() == "chunked"
        parts = []
        total = 0
        if chunked:
            while True:
                size = int(self.read_until(b"\r\n")[:-2].split(b";")[0], 16)
                if size == 0:
                    self.read_until(b"\r\n")
                    break
                while len(self.buf) < size + 2:
                    self.fill()
                if store:
                    parts.append(self.buf[:size])
                total += size
                self.buf = self.buf[size + 2:]
        elif length is not None:
            remaining = int(length)
            while remaining > 0:
                if not self.buf:
                    self.fill()
                take = min(remaining, len(self.buf))
                if store:
                    parts.append(self.buf[:take])
                total += take
                self.buf = self.buf[take:]
                remaining -= take
        req.body = b"".join(parts)
        req.body_length = total

    def handle(self):
        origin = self.server.origin
        try:
            while True:
                head = self.read_until(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = []
                for line in lines[1:]:
                    if line:
                        name, value = line.split(":", 1)
                        headers.append((name, value.strip()))
                req = Request(method, target, version, headers, head)
                path = urllib.parse.urlsplit(target).path
                self.read_body(req, store=not path.startswith("/sink"))
                origin._record(req)
                if origin.reset_all:
                    return  # as an origin that dies with the request in hand
                if origin.drop_reused and self.served > 0:
                    return  # as if it had closed this idle connection just as the request came
                self.served += 1
                if not self.respond(req, path):
                    return
                if (req.header("connection") or "").lower() == "close":
                    return
                if origin.close_after and self.served >= origin.close_after:
                    return  # close silently: a pooled connection goes stale
        except (EOFError, ConnectionResetError, BrokenPipeError, OSError):
            return

    def send(self, data):
        self.request.sendall(data)

    def simple(self, status, body, extra=b"", reason=b"OK"):
        self.send(b"HTTP/1.1 %d %s\r\nx-origin: %s\r\nContent-Length: %d\r\n%s\r\n" %
                  (status, reason, self.server.origin.name.encode(), len(body), extra) + body)

    def respond(self, req, path):
        """Sends the response; returns False to close the connection afterwards."""
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(req.target).query))
        origin = self.server.origin
        if origin.delay:
            time.sleep(origin.delay)
        if origin.slots is not None:
            with origin.slots:
                time.sleep(origin.service_ms / 1000.0)
        if path == "/health":
            status = origin.health_status
            self.simple(status, b"health %d\n" % status, reason=b"X")
        elif path == "/v1/health":
            # A fake peer region's report, unsigned: what a man in the middle would answer.
            body = json.dumps({"ready": True, "local": {"error_rate": 0.99, "shed_rate": 0.0,
                                                        "p99_ms": 1.0, "requests": 1000}})
            self.simple(200, body.encode(), b"Content-Type: application/json\r\n")
        elif path == "/flaky":
            # Every other hit fails (503), whichever request it is: an origin failing half of
            # what it is sent, retries included.
            with origin._lock:
                origin.flaky_hits += 1
                fail = origin.flaky_hits % 2 == 1
            self.simple(503 if fail else 200, b"flaky\n")
        elif path == "/echo":
            self.simple(200, req.body)
        elif path == "/sink":
            self.simple(200, str(req.body_length).encode())
        elif path == "/headers":
            body = json.dumps({"target": req.target, "headers": req.headers}).encode()
            self.simple(200, body, b"Content-Type: application/json\r\n")
        elif path.startswith("/status/"):
            status = int(path.split("/")[2])
            if status in (204, 304):
                self.send(b"HTTP/1.1 %d X\r\nx-origin: %s\r\n\r\n" % (status, origin.name.encode()))
            else:
                self.simple(status, b"status %d\n" % status, reason=b"X")
        elif path == "/chunked":
            n, size = int(query.get("n", "3")), int(query.get("size", "5"))
            out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
            for i in range(n):
                out.append(b"%x\r\n%s\r\n" % (size, bytes([97 + i % 26]) * size))
            out.append(b"0\r\nX-Trailer: t\r\n\r\n")
            self.send(b"".join(out))
        elif path == "/until-close":
            self.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close")
            return False
        elif path == "/bytes":
            n = int(query.get("n", "0"))
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            block = b"x" * (1 << 20)
            while n > 0:
                piece = block if n >= len(block) else block[:n]
                self.send(piece)
                n -= len(piece)
        elif path == "/slow":
            time.sleep(int(query.get("ms", "500")) / 1000.0)
            self.simple(200, b"slow\n")
        elif path == "/hang":
            try:
                while self.request.recv(65536):
                    pass
            except OSError:
                pass
            return False
        elif path == "/reset":
            return False
        elif path == "/garbage":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello")
            return False
        elif path == "/half-body":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
            return False
        elif path == "/ws":
            if (req.header("upgrade") or "").lower() != "websocket":
                self.simple(426, b"upgrade required\n", reason=b"Upgrade Required")
                return True
            self.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            data = self.buf
            self.buf = b""
            while True:
                if data:
                    self.send(data)
                data = self.request.recv(65536)
                if not data:
                    return False
        else:
            self.simple(200, b"ok %s\n" % req.target.encode())
        return True


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # a burst of connections from the proxy queues instead of retrying


class Origin:
    def __init__(self, port=0, name="origin", close_after=0, delay=0.0, drop_reused=False,
                 capacity=0, service_ms=0):
        # capacity/service_ms: a server that works on `capacity` requests at a time, each for
        # `service_ms`; the rest queue, so latency grows with load like a real saturated origin.
        self.slots = threading.Semaphore(capacity) if capacity else None
        self.service_ms = service_ms
        self.health_status = 200
        self.name = name
        self.close_after = close_after
        self.drop_reused = drop_reused
        self.delay = delay
        self.reset_all = False  # close every connection once a request has come, never answer
        self.requests = []
        self.connections = 0
        self.flaky_hits = 0
        self._lock = threading.Lock()
        self._sockets = set()
        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.origin = self
        self.port = self._server.server_address[1]

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for s in list(self._sockets):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _record(self, req):
        with self._lock:
            self.requests.append(req)

    def _track(self, sock, add):
        with self._lock:
            if add:
                self._sockets.add(sock)
                self.connections += 1
            else:
                self._sockets.discard(sock)

    def received(self):
        with self._lock:
            return list(self.requests)


if __name__ == "__main__":
    origin = Origin(port=int(sys.argv[1]), name=sys.argv[2] if len(sys.argv) > 2 else "origin")
    origin.start()
    print("origin listening on %d" % origin.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        origin.stop()
