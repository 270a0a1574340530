"""sluice_wan_relay (bench/wan_relay.cc), the emulated WAN path of bench/wan.py, on loopback:
started on a port the OS picks (it prints "listening HOST:PORT"), signalled and stopped by its
PID, and its totals read from the line it prints when it stops."""

import os
import re

from sluicetest.process import SLUICE_BIN, Process, wait_until

WAN_RELAY_BIN = os.environ.get(
    "WAN_RELAY_BIN",
    os.path.join(os.path.dirname(os.path.dirname(SLUICE_BIN)), "bench/sluice_wan_relay"))

LISTENING = re.compile(r"^listening 127\.0\.0\.1:(\d+)$", re.M)
TOTALS = re.compile(r"^wan_relay: connections=(?P<connections>\d+) bytes_up=(?P<bytes_up>\d+) "
                    r"bytes_down=(?P<bytes_down>\d+) loss_events=(?P<loss_events>\d+) "
                    r"resets=(?P<resets>\d+)$", re.M)


class WanRelay(Process):
    """One relay from 127.0.0.1:<port> (port: known once start() returns) to 127.0.0.1:to_port,
    its output in log_path. delay_ms is one way; window None: the relay's default (the kernel's
    tcp_rmem maximum)."""

    def __init__(self, to_port, log_path, delay_ms=0.0, bandwidth_mbps=0.0, loss_pct=0.0,
                 window=None, seed=1, binary=None, cpu=None):
        cmd = [binary or WAN_RELAY_BIN, "--listen", "127.0.0.1:0", "--to",
               "127.0.0.1:%d" % to_port, "--delay-ms", "%g" % delay_ms,
               "--bandwidth-mbps", "%g" % bandwidth_mbps, "--loss-pct", "%g" % loss_pct,
               "--seed", str(seed)]
        if window is not None:
            cmd += ["--window", str(window)]
        super().__init__(cmd, log_path, cpu=cpu)
        self.port = None

    def start(self, timeout=5.0):
        super().start()
        found = wait_until(lambda: LISTENING.search(self.log_text()) or not self.running(),
                           timeout, 0.01)
        if not found or not self.running():
            text = self.log_text()
            self.stop()
            raise RuntimeError("sluice_wan_relay did not start: %s" % text.strip())
        self.port = int(found.group(1))
        return self

    def totals(self):
        """The counters of the line it printed on its way out (after stop()), as ints; None if
        it printed none."""
        found = TOTALS.search(self.log_text())
        return found and {k: int(v) for k, v in found.groupdict().items()}
