"""The tunnel through an emulated WAN path (sluice_wan_relay at 40 ms RTT): its windows grow
past what a fixed 256 KiB window allows, and a path that stalls mid-download ends in the body
timeout, not a hang; the tunnel serves again once the path is back."""
import http.client
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest

from sluicetest import admin
from sluicetest.process import ROOT, SLUICE_BIN, Sluice, free_port
from sluicetest.secret_files import write_secrets
from sluicetest.wan_relay import WanRelay

sys.path.insert(0, os.path.join(ROOT, "bench"))
import wan  # noqa: E402  (bench/wan.py: its origin, files and configuration)

RTT_MS = 40
SIZE = 16 << 20
FIXED_WINDOW = 256 << 10
# What a fixed 256 KiB window allows at 40 ms: one window per round trip.
FIXED_LIMIT_MBPS = FIXED_WINDOW * 8 / (RTT_MS / 1000) / 1e6
BODY_IDLE_S = 2


class WanTunnel(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="sluice-wan-tunnel-")
        self.addCleanup(shutil.rmtree, self.work, True)
        os.chmod(self.work, 0o755)  # nginx's worker reads the file
        self.key_file = write_secrets(self.work, (("tunnel.key", secrets.token_hex(32)),))[
            "tunnel.key"]
        files = os.path.join(self.work, "files")
        wan.write_files(files, {SIZE})
        self.origins = {}
        for region in (wan.REGION_A, wan.REGION_B):
            node = wan.origin(self.work, region + "-origin", free_port(), files)
            self.addCleanup(node.stop)
            self.origins[region] = node

    def start(self, tunnel_extra, extra="", rtt_ms=RTT_MS):
        """Region B behind a relay, region A's tunnel to it through the relay."""
        port_a, port_b = free_port(), free_port()
        self.relay = WanRelay(port_b, os.path.join(self.work, "relay.log"),
                              delay_ms=rtt_ms / 2).start()
        self.addCleanup(self.relay.stop)
        tunnels = {wan.REGION_A: "127.0.0.1:%d" % port_a,
                   wan.REGION_B: "127.0.0.1:%d" % self.relay.port}
        for region, port in ((wan.REGION_B, port_b), (wan.REGION_A, port_a)):
            config = wan.sluice_config(region, port, self.origins[region].port, tunnels,
                                       self.key_file)
            config = config.replace("http2: true}", "http2: true%s}" % tunnel_extra)
            config += "timeouts: {body_idle: %ds}\n" % BODY_IDLE_S + extra
            node = Sluice(config, port=port, binary=SLUICE_BIN, directory=self.work,
                          name=region)
            node.start()
            self.addCleanup(node.stop)
        self.port_a, self.node_a = port_a, node

    def window_bytes(self):
        """Region A's window growth held from limits.upstream_window_memory."""
        return admin.metric(self.node_a.admin_port, "sluice_upstream_window_bytes")

    def download(self):
        """(Mbit/s, bytes, sluice-region) of the file through the tunnel."""
        mbps, got, region, _ = wan.download(
            "http://127.0.0.1:%d/%d" % (self.port_a, SIZE),
            {"x-member-id": "m", "x-home-region": wan.REGION_B}, 60)
        return mbps, got, region

    def test_windows_grow_past_a_fixed_window(self):
        self.start("")
        mbps, got, region = self.download()
        self.assertEqual((got, region), (SIZE, wan.REGION_B))
        # A fixed window holds it to ~52 Mbit/s; grown windows let TCP's own window lead.
        self.assertGreater(mbps, 2 * FIXED_LIMIT_MBPS,
                           "%.1f Mbit/s: the windows did not grow" % mbps)
        # The growth is held from the node's budget (256 MiB by default) while the warm
        # connection that grew lives.
        self.assertGreater(self.window_bytes(), 0)
        self.assertLessEqual(self.window_bytes(), 256 << 20)

    def test_window_growth_stays_within_the_node_budget(self):
        # A 6 MiB budget: the connection grows by at most that, whatever the path would take.
        # At 200 ms the first growth beyond the connection's own 4 MiB (a 4 MiB stream window,
        # after the 1 MiB one held the sender back) needs 28 Mbit/s, well within what a loaded
        # machine carries (at 40 ms it would take 140).
        self.start("", "limits: {upstream_window_memory: 6MiB}\n", rtt_ms=200)
        mbps, got, region = self.download()
        self.assertEqual((got, region), (SIZE, wan.REGION_B))
        self.assertGreater(self.window_bytes(), 0, "%.1f Mbit/s and no growth" % mbps)
        self.assertLessEqual(self.window_bytes(), 6 << 20)
        self.assertEqual(admin.metric(self.node_a.admin_port,
                                      "sluice_upstream_window_limit_bytes"), 6 << 20)

    def test_a_fixed_window_is_one_window_per_round_trip(self):
        # The same path with the growth turned off: the limit the test above must beat.
        self.start(", window: 256KiB, max_window: 256KiB")
        mbps, got, region = self.download()
        self.assertEqual((got, region), (SIZE, wan.REGION_B))
        self.assertLess(mbps, 1.1 * FIXED_LIMIT_MBPS)
        self.assertEqual(self.window_bytes(), 0)

    def test_a_path_that_stalls_mid_download_ends_in_the_body_timeout(self):
        self.start(", window: 256KiB, max_window: 256KiB")  # slow: ~2.5 s for the file
        conn = http.client.HTTPConnection("127.0.0.1", self.port_a, timeout=30)
        self.addCleanup(conn.close)
        conn.request("GET", "/%d" % SIZE, headers={"x-member-id": "m",
                                                   "x-home-region": wan.REGION_B})
        response = conn.getresponse()
        self.assertEqual(response.status, 200)
        got = len(response.read(256 << 10))  # the body has started to cross
        self.relay.signal(signal.SIGUSR2)  # the path stalls: nothing more arrives
        stalled_at = time.monotonic()
        ended = None
        try:
            while got < SIZE:
                chunk = response.read(64 << 10)
                if not chunk:
                    break
                got += len(chunk)
        except (http.client.IncompleteRead, ConnectionError, socket.timeout) as e:
            ended = e
        ended_after = time.monotonic() - stalled_at
        self.assertLess(got, SIZE, "the whole file crossed a stalled path")
        self.assertNotIsInstance(ended, socket.timeout, "the client waited in vain")
        # What was in flight arrives, then sluice's body timeout ends the response.
        self.assertLess(ended_after, BODY_IDLE_S + 10)
        # The path comes back: the tunnel serves again.
        self.relay.signal(signal.SIGUSR2)
        mbps, got, region = self.download()
        self.assertEqual((got, region), (SIZE, wan.REGION_B))


if __name__ == "__main__":
    unittest.main()
