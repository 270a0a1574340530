"""scripts/check_layers.py: the repository passes, and a planted wrong-way include or a
dependency cycle fails with a message that names the file, the header and the rule."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "check_layers.py")
LIBRARY_FOLDERS = ("common", "filters", "steering", "proxy", "ctl")


def run(root):
    result = subprocess.run([sys.executable, SCRIPT, "--root", root], capture_output=True,
                            text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


class CheckLayers(unittest.TestCase):
    def setUp(self):
        self.tree = tempfile.mkdtemp(prefix="sluice-layers-")
        self.addCleanup(shutil.rmtree, self.tree, True)
        for folder in LIBRARY_FOLDERS:
            shutil.copytree(os.path.join(ROOT, folder), os.path.join(self.tree, folder))

    def append(self, path, text):
        with open(os.path.join(self.tree, path), "a") as f:
            f.write(text)

    def test_the_repository_passes(self):
        code, out = run(ROOT)
        self.assertEqual(code, 0, out)
        self.assertIn("every include goes down the graph", out)

    def test_a_copy_passes_until_an_include_goes_up(self):
        self.assertEqual(run(self.tree)[0], 0)
        # The event loop's timer reaching up into the worker: a layer below including one above.
        self.append("proxy/event/loop_timer.cc", '\n#include "proxy/worker/worker.h"\n')
        code, out = run(self.tree)
        self.assertEqual(code, 1, out)
        self.assertRegex(out, r'proxy/event/loop_timer\.cc:\d+: includes "proxy/worker/worker\.h" '
                              r'of sluice_worker, but sluice_event \(proxy/event/\) may use only: '
                              r'sluice_common')

    def test_a_sideways_include_fails_too(self):
        # fleet/ and worker/ are siblings: neither may use the other.
        self.append("proxy/fleet/fleet.h", '\n#include "proxy/worker/listener.h"\n')
        code, out = run(self.tree)
        self.assertEqual(code, 1, out)
        self.assertIn('proxy/fleet/fleet.h', out)
        self.assertIn('of sluice_worker, but sluice_fleet', out)

    def test_filters_may_not_reach_into_proxy(self):
        self.append("filters/registry.cc", '\n#include "proxy/config/config.h"\n')
        code, out = run(self.tree)
        self.assertEqual(code, 1, out)
        self.assertIn('of sluice_config, but sluice_filters (filters/)', out)

    def test_a_link_line_that_closes_a_cycle_fails(self):
        path = os.path.join(self.tree, "proxy/event/CMakeLists.txt")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("PUBLIC sluice_common", "PUBLIC sluice_common sluice_worker"))
        code, out = run(self.tree)
        self.assertEqual(code, 1, out)
        self.assertIn("dependency cycle", out)


if __name__ == "__main__":
    unittest.main()
