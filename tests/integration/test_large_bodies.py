"""Bodies stream both ways with backpressure: 1 GiB up and 1 GiB down pass through sluice while
its resident memory grows by only a few MiB. Memory is not meaningful under sanitizers, so these
run in the normal build only."""

import subprocess
import threading
import time
import unittest

from harness import SANITIZED, ProxyTestCase, basic_config

GIB = 1 << 30
MAX_GROWTH_KIB = 8 * 1024


class RssSampler:
    def __init__(self, proxy):
        self.proxy = proxy
        self.peak = proxy.rss_kib()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.proxy.rss_kib())
            except (OSError, ValueError):
                return

    def finish(self):
        self.stop.set()
        self.thread.join(5)
        return self.peak


@unittest.skipIf(SANITIZED, "memory growth is not meaningful under sanitizers")
class LargeBodies(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.proxy = self.start_sluice(basic_config([self.origin.port]).replace(
            "response_timeout: 2s", "response_timeout: 60s"))
        self.base = "http://127.0.0.1:%d" % self.proxy.port
        # Warm up: buffers and pools that exist after the first requests are not growth.
        for _ in range(3):
            self.curl("-o", "/dev/null", self.base + "/bytes?n=%d" % (8 << 20))
        self.baseline = self.proxy.rss_kib()

    def test_one_gib_download(self):
        sampler = RssSampler(self.proxy)
        result = self.curl("-o", "/dev/null", "-w", "%{size_download}",
                           self.base + "/bytes?n=%d" % GIB, timeout=120)
        peak = sampler.finish()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(int(result.stdout), GIB)
        growth = peak - self.baseline
        print("\n1 GiB download: RSS %d KiB -> peak %d KiB (+%d KiB)" % (self.baseline, peak, growth))
        self.assertLess(growth, MAX_GROWTH_KIB)

    def test_one_gib_chunked_upload(self):
        sampler = RssSampler(self.proxy)
        producer = subprocess.Popen(["head", "-c", str(GIB), "/dev/zero"], stdout=subprocess.PIPE)
        result = subprocess.run(["curl", "-sS", "--max-time", "120", "-T", "-", "-X", "POST",
                                 "-H", "Expect:", self.base + "/sink"], stdin=producer.stdout,
                                capture_output=True, timeout=150)
        producer.stdout.close()
        producer.wait(10)
        peak = sampler.finish()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(int(result.stdout), GIB)
        growth = peak - self.baseline
        print("\n1 GiB upload: RSS %d KiB -> peak %d KiB (+%d KiB)" % (self.baseline, peak, growth))
        self.assertLess(growth, MAX_GROWTH_KIB)


if __name__ == "__main__":
    unittest.main()
