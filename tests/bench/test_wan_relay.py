"""sluice_wan_relay (bench/wan_relay.cc) against its model, through Python servers on loopback
(threads of this process): an echo server for round trips, a source that sends N bytes for
throughput. What is checked is what bench/wan.py relies on: the delay (to well under a
millisecond), the shared bandwidth, the window cap (throughput = window / RTT), loss that slows
a transfer down without breaking it, a reset and a stall by signal, a half-close delivered in
order, and bad arguments refused."""
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from sluicetest.wan_relay import WAN_RELAY_BIN, WanRelay


class Servers:
    """An echo server and a source (reads "N\\n", sends N bytes, closes) on ports the OS
    picks, one thread per connection; close() ends them: their listening sockets and every
    connection they accepted."""

    def __init__(self):
        self.sockets = []
        self.lock = threading.Lock()
        self.echo_port = self.listen(self.echo)
        self.source_port = self.listen(self.source)

    def listen(self, handler):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.sockets.append(listener)
        threading.Thread(target=self.accept, args=(listener, handler), daemon=True).start()
        return listener.getsockname()[1]

    def accept(self, listener, handler):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                self.sockets.append(conn)
            threading.Thread(target=self.serve, args=(conn, handler), daemon=True).start()

    @staticmethod
    def serve(conn, handler):
        try:
            handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def echo(conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)

    @staticmethod
    def source(conn):
        line = b""
        while not line.endswith(b"\n") and len(line) < 32:
            data = conn.recv(32 - len(line))
            if not data:
                return
            line += data
        remaining = int(line)
        block = b"x" * 262144
        while remaining > 0:
            sent = conn.send(block[:remaining])
            remaining -= sent
        conn.shutdown(socket.SHUT_WR)

    def close(self):
        """shutdown() first: on Linux it wakes a thread blocked in accept() or recv() on the
        socket, which close() alone does not."""
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # not connected (any more)
                s.close()


def receive_all(port, size, timeout, times=None):
    """Asks the source behind port for `size` bytes; returns (bytes received, Mbit/s from the
    first read to the last). Bounded by `timeout` seconds. times: a list to append (first
    read, last read, bytes after the first read) to."""
    buffer = bytearray(1 << 20)
    received, counted, first, last = 0, 0, None, None
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(b"%d\n" % size)
        while received < size and time.monotonic() < deadline:
            n = conn.recv_into(buffer)
            if n == 0:
                break
            last = time.monotonic()
            received += n
            # The first read's bytes came with the first arrival: the rate counts the rest.
            counted += n if first is not None else 0
            first = first or last
    seconds = (last - first) if first and last else 0.0
    if times is not None:
        times.append((first, last, counted))
    return received, counted * 8 / seconds / 1e6 if seconds > 0 else 0.0


def peak_rss_kib(pid):
    """The process's peak resident memory (VmHWM), KiB."""
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M).group(1))


def report(text):
    """The measured figure, on stderr for the test log."""
    sys.stderr.write("  %s\n" % text)


class WanRelayTest(unittest.TestCase):
    def setUp(self):
        self.servers = Servers()
        self.addCleanup(self.servers.close)
        self.dir = tempfile.mkdtemp(prefix="sluice-wan-relay-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)  # last: after the relays stopped

    def relay(self, to_port, **model):
        relay = WanRelay(to_port, os.path.join(self.dir, "relay%d.log" % len(os.listdir(
            self.dir))), **model).start()
        self.addCleanup(relay.stop)
        return relay

    def echo_connection(self, relay):
        conn = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.addCleanup(conn.close)
        return conn

    def round_trip(self, conn):
        started = time.monotonic()
        conn.sendall(b"x")
        self.assertEqual(conn.recv(1), b"x")
        return (time.monotonic() - started) * 1000

    def test_round_trip_is_twice_the_delay(self):
        relay = self.relay(self.servers.echo_port, delay_ms=40)
        conn = self.echo_connection(relay)
        # The first one includes the emulated handshake: two more one-way delays.
        first = self.round_trip(conn)
        self.assertGreater(first, 160 - 0.2)
        median = statistics.median(self.round_trip(conn) for _ in range(20))
        report("round trip: first %.2f ms, median %.2f ms at 40 ms each way" % (first, median))
        self.assertGreater(median, 80 - 0.2)
        self.assertLess(median, 80 + 1.0)

    def test_bandwidth_is_the_link_rate(self):
        relay = self.relay(self.servers.source_port, delay_ms=5, bandwidth_mbps=200)
        size = 25 * 1000 * 1000
        received, rate = receive_all(relay.port, size, timeout=20)
        report("bandwidth: %.1f Mbit/s through a 200 Mbit/s link" % rate)
        self.assertEqual(received, size)
        self.assertAlmostEqual(rate, 200, delta=200 * 0.05, msg="%.1f Mbit/s" % rate)

    def test_bandwidth_is_shared_by_the_connections(self):
        relay = self.relay(self.servers.source_port, delay_ms=5, bandwidth_mbps=200)
        times, size = [], 20 * 1000 * 1000
        threads = [threading.Thread(target=receive_all, args=(relay.port, size, 20, times))
                   for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(len(times), 2)
        # Together, from the first arrival to the last: the link's rate, not twice it.
        seconds = max(t[1] for t in times) - min(t[0] for t in times)
        rate = sum(t[2] for t in times) * 8 / seconds / 1e6
        report("bandwidth: %.1f Mbit/s for two connections through a 200 Mbit/s link" % rate)
        self.assertAlmostEqual(rate, 200, delta=200 * 0.05)

    def test_window_caps_throughput_at_window_per_rtt(self):
        window, rtt = 262144, 0.050
        relay = self.relay(self.servers.source_port, delay_ms=25, window=window)
        received, rate = receive_all(relay.port, 8 * 1000 * 1000, timeout=20)
        expected = window * 8 / rtt / 1e6
        report("window: %.1f Mbit/s, window/RTT %.1f" % (rate, expected))
        self.assertEqual(received, 8 * 1000 * 1000)
        self.assertAlmostEqual(rate, expected, delta=expected * 0.15,
                               msg="%.1f Mbit/s, window/RTT %.1f" % (rate, expected))

    def test_loss_slows_a_transfer_down_and_is_counted(self):
        size, rates = 4 * 1000 * 1000, {}
        for loss in (0, 1):
            relay = self.relay(self.servers.source_port, delay_ms=5, bandwidth_mbps=200,
                               loss_pct=loss)
            received, rates[loss] = receive_all(relay.port, size, timeout=30)
            self.assertEqual(received, size, "loss %g" % loss)
            self.assertEqual(relay.stop(), 0)
            totals = relay.totals()
            self.assertIsNotNone(totals, relay.log_text())
            self.assertEqual(totals["bytes_down"], size)
            self.assertEqual(totals["loss_events"] > 0, loss > 0, totals)
            report("loss %g%%: %.1f Mbit/s, %d loss events" % (loss, rates[loss],
                                                               totals["loss_events"]))
        self.assertLess(rates[1], rates[0] * 0.8, rates)

    def test_a_receiver_that_stops_reading_keeps_the_relay_within_its_window(self):
        window = 1 << 20
        relay = self.relay(self.servers.source_port, delay_ms=1, window=window)
        before = peak_rss_kib(relay.pid)
        size = 48 * 1000 * 1000
        with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            conn.sendall(b"%d\n" % size)
            # The scenario: a receiver that reads nothing for half a second while the source
            # could send it all. Unbounded, the relay would take in most of the 48 MB.
            select.select([], [], [], 0.5)
            received = 0
            while received < size:
                data = conn.recv(1 << 20)
                if not data:
                    break
                received += len(data)
        self.assertEqual(received, size)
        grown = peak_rss_kib(relay.pid) - before
        report("peak memory grew by %d KiB with a 1 MiB window" % grown)
        self.assertLess(grown, 4 * window // 1024)

    def test_half_close_arrives_after_the_bytes_before_it(self):
        relay = self.relay(self.servers.echo_port, delay_ms=5)
        conn = self.echo_connection(relay)
        conn.sendall(b"hello")
        conn.shutdown(socket.SHUT_WR)
        data = b""
        for _ in range(10):
            chunk = conn.recv(100)
            if not chunk:
                break
            data += chunk
        self.assertEqual(data, b"hello")

    def test_sigusr1_resets_open_connections(self):
        relay = self.relay(self.servers.echo_port, delay_ms=5)
        conn = self.echo_connection(relay)
        self.round_trip(conn)
        started = time.monotonic()
        relay.signal(signal.SIGUSR1)
        try:
            data = conn.recv(1)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(relay.stop(), 0)
        self.assertEqual(relay.totals()["resets"], 1)

    def test_sigusr2_stalls_and_resumes(self):
        # The delay is longer than the signal takes: the byte is still on its way when it does.
        relay = self.relay(self.servers.echo_port, delay_ms=20)
        conn = self.echo_connection(relay)
        self.round_trip(conn)
        relay.signal(signal.SIGUSR2)
        conn.sendall(b"y")
        ready, _, _ = select.select([conn], [], [], 0.3)
        self.assertEqual(ready, [], "an echo came back while stalled")
        relay.signal(signal.SIGUSR2)
        ready, _, _ = select.select([conn], [], [], 2.0)
        self.assertEqual(ready, [conn])
        self.assertEqual(conn.recv(1), b"y")
        self.assertLess(self.round_trip(conn), 40 + 5)

    def test_failed_connect_resets_the_accepted_connection(self):
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            closed_port = unused.getsockname()[1]  # bound, not listening: refuses
            relay = self.relay(closed_port)
            conn = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
            with conn:
                try:
                    data = conn.recv(1)
                except ConnectionResetError:
                    data = b""
                self.assertEqual(data, b"")

    def test_bad_arguments_exit_2(self):
        for args in ([], ["--listen", "127.0.0.1:0"], ["--listen", "nowhere", "--to", "1:1"],
                     ["--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--delay-ms", "soon"],
                     ["--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--loss-pct", "101"],
                     ["--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--frobnicate", "1"]):
            result = subprocess.run([WAN_RELAY_BIN] + args, capture_output=True, text=True,
                                    timeout=10, stdin=subprocess.DEVNULL)
            self.assertEqual(result.returncode, 2, args)
            self.assertIn("sluice_wan_relay: ", result.stderr)
            self.assertEqual(result.stdout, "")


if __name__ == "__main__":
    unittest.main()
