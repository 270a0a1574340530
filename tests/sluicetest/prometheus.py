"""Debian's prometheus on loopback, for the tests that need a real one (the detector's
Prometheus baselines, the shipped rules and dashboard).

Its configuration and log live in a temporary directory (its data too, unless a data directory
is given: a TSDB backfilled with promtool, say); it listens on a free port, is stopped by its
PID, and answers queries through its HTTP API.
"""

import http.client
import json
import os
import shutil
import tempfile
import urllib.parse

from sluicetest.process import Process, free_port, wait_until

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", shutil.which("prometheus") or
                                "/usr/bin/prometheus")
PROMTOOL_BIN = os.environ.get("PROMTOOL_BIN", shutil.which("promtool") or "/usr/bin/promtool")


class Prometheus:
    def __init__(self, config_text, data_dir=None, retention="30d"):
        self.dir = tempfile.mkdtemp(prefix="sluice-prometheus-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.retention = retention
        self.config_path = os.path.join(self.dir, "prometheus.yml")
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.process = None

    def start(self, timeout=90):
        """Starts it and waits until /-/ready answers 200 (a backfilled TSDB takes a while)."""
        if not os.path.exists(PROMETHEUS_BIN):
            raise AssertionError("prometheus is not installed (apt-get install prometheus; "
                                 "scripts/setup.sh test does it)")
        self.process = Process(
            [PROMETHEUS_BIN, "--config.file=" + self.config_path,
             "--storage.tsdb.path=" + self.data_dir,
             "--storage.tsdb.retention.time=" + self.retention,
             "--web.listen-address=127.0.0.1:%d" % self.port],
            os.path.join(self.dir, "prometheus.log"), stop_timeout=20).start()

        def ready():
            if not self.process.running():
                return "exited"
            try:
                return self._get("/-/ready")[0] == 200
            except (OSError, http.client.HTTPException):
                return False
        state = wait_until(ready, timeout, 0.05)
        if state == "exited" or not state:
            log = self.log_text()[-3000:]
            self.stop()
            raise AssertionError("prometheus %s:\n%s" % (
                "exited with %s" % self.process.proc.returncode if state == "exited"
                else "not ready within %d s" % timeout, log))
        return self

    def stop(self):
        if self.process:
            self.process.stop()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, True)

    def log_text(self):
        return self.process.log_text() if self.process else ""

    def _get(self, path, timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def api(self, path, **params):
        """GET /api/v1/<path>: (HTTP status, parsed JSON or None). Raises OSError and
        HTTPException when it cannot be reached."""
        query = ("?" + urllib.parse.urlencode(params, doseq=True)) if params else ""
        status, text = self._get("/api/v1/" + path + query)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, None

    def data(self, path, **params):
        """The `data` of a successful API answer; None when it fails or cannot be reached (never
        raises: for wait predicates)."""
        try:
            status, body = self.api(path, **params)
        except (OSError, http.client.HTTPException):
            return None
        if status != 200 or not isinstance(body, dict) or body.get("status") != "success":
            return None
        return body.get("data")

    def query(self, expr):
        """An instant query's samples; [] when it has none, fails or cannot be reached."""
        data = self.data("query", query=expr)
        return data["result"] if data and isinstance(data.get("result"), list) else []

    def targets_up(self):
        """The scrape targets' labels, for those whose last scrape succeeded."""
        data = self.data("targets", state="active")
        return [t["labels"] for t in (data or {}).get("activeTargets", []) if t["health"] == "up"]
