"""bench/wan.py --quick: two regions on loopback, the tunnel through sluice_wan_relay at 30 ms,
a 10 MiB download both ways, 50 members' requests local and tunneled, and a first request after
a reset. The figures themselves come from full runs (README); here the run must finish and its
line must parse with sane values."""
import os
import re
import subprocess
import sys
import unittest

from sluicetest.process import ROOT, SLUICE_BIN
from sluicetest.wan_relay import WAN_RELAY_BIN

LINE = re.compile(
    r"^wan: rtt_ms=(?P<rtt_ms>[\d.]+) loss_pct=(?P<loss_pct>[\d.]+) "
    r"tunnel_mbps=(?P<tunnel_mbps>[\d.]+) tcp_mbps=(?P<tcp_mbps>[\d.]+) "
    r"ratio=(?P<ratio>[\d.]+) added_p50_ms=(?P<added_p50_ms>-?[\d.]+) "
    r"added_p99_ms=(?P<added_p99_ms>-?[\d.]+) "
    r"first_after_idle_extra_rtts=(?P<first_after_idle_extra_rtts>-?[\d.]+)$", re.M)


class WanSmoke(unittest.TestCase):
    def test_quick_run_prints_a_line_that_parses(self):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "bench/wan.py"), "--quick",
                                 "--sluice", SLUICE_BIN, "--relay", WAN_RELAY_BIN],
                                capture_output=True, text=True, timeout=300,
                                stdin=subprocess.DEVNULL)
        report = result.stdout[-4000:] + result.stderr[-2000:]
        self.assertEqual(result.returncode, 0, report)
        lines = LINE.findall(result.stdout)
        self.assertEqual(len(lines), 1, report)
        values = {k: float(v) for k, v in LINE.search(result.stdout).groupdict().items()}
        self.assertEqual((values["rtt_ms"], values["loss_pct"]), (30, 0))
        self.assertGreater(values["tunnel_mbps"], 0, report)
        self.assertGreater(values["tcp_mbps"], 0, report)
        self.assertGreater(values["ratio"], 0, report)
        self.assertAlmostEqual(values["ratio"], values["tunnel_mbps"] / values["tcp_mbps"],
                               delta=0.01)
        # A tunneled request crosses the path at least once: about one RTT more, never less
        # than most of it.
        self.assertGreaterEqual(values["added_p50_ms"], 0, report)
        self.assertGreater(values["added_p50_ms"], 30 * 0.8, report)
        # The warm tunnel connections were replaced 100 ms after the reset: the first request
        # 0.5 s later pays no handshake (a new connection would cost one RTT or more: the
        # relay emulates TCP's handshake).
        self.assertLess(values["first_after_idle_extra_rtts"], 0.5, report)
        self.assertIn("rtt ms", result.stdout)


if __name__ == "__main__":
    unittest.main()
