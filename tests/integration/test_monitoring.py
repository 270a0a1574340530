"""The Prometheus rules and the Grafana dashboard shipped in monitoring/ (issue 23), against the
real tools:

- promtool checks the rules and the example scrape configuration, and runs the rules' unit
  tests (monitoring/sluice-rules.test.yml: every alert shown firing and not firing, the
  `offset 1d` / `offset 7d` baselines over a week of series);
- Debian's prometheus on loopback, with the rules loaded, scrapes three sluice regions in a
  fleet (a real etcd) while members start streams in every region and us-east-1 is half
  evacuated by a plan: every query of every panel of the dashboard returns data.

The rule for last week's data: a live Prometheus has none, so a panel query whose expression
holds an `offset` may come back empty, and then the same expression without its offsets must
return data (the query is right, only the past is missing). Every other query must return data.
"""

import json
import os
import re
import subprocess
import unittest

from sluicetest.process import ROOT
from sluicetest.prometheus import PROMTOOL_BIN, Prometheus
from test_detection import Starts
from test_fleet import REGIONS, FleetTestCase

MONITORING = os.path.join(ROOT, "monitoring")
RULES = os.path.join(MONITORING, "sluice-rules.yml")
DASHBOARD = os.path.join(MONITORING, "sluice-dashboard.json")

# Grafana's variables, as a dashboard with every region selected and a 1 s scrape interval
# would fill them in ($__rate_interval: at least four scrape intervals).
VARIABLES = (
    (re.compile(r"\$\{region(:[a-z]+)?\}|\$region\b"), "|".join(REGIONS)),
    (re.compile(r"\$\{?__rate_interval\}?"), "5s"),
    (re.compile(r"\$\{?__interval\}?"), "1s"),
    (re.compile(r"\$\{?__range\}?"), "1m"),
)
OFFSET = re.compile(r"\s+offset\s+-?[0-9]+[smhdwy]")


def promtool(*args):
    return subprocess.run([PROMTOOL_BIN] + list(args), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, cwd=MONITORING)


def panel_queries(dashboard):
    """(panel title, refId, expr) of every target of every panel, rows' nested panels too."""
    queries = []
    def walk(panels):
        for panel in panels:
            if panel.get("type") == "row":
                walk(panel.get("panels", []))
                continue
            targets = panel.get("targets", [])
            if not targets:
                raise AssertionError("panel %r has no query" % panel.get("title"))
            for target in targets:
                queries.append((panel["title"], target["refId"], target["expr"]))
    walk(dashboard["panels"])
    return queries


def concrete(expr):
    """The expression with Grafana's variables filled in."""
    for pattern, value in VARIABLES:
        expr = pattern.sub(value, expr)
    if "$" in expr:
        raise AssertionError("a Grafana variable the test does not know: " + expr)
    return expr


class Promtool(unittest.TestCase):
    def test_the_rules_are_valid(self):
        result = promtool("check", "rules", RULES)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("SUCCESS", result.stdout)

    def test_the_rules_unit_tests_pass(self):
        result = promtool("test", "rules", os.path.join(MONITORING, "sluice-rules.test.yml"))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("SUCCESS", result.stdout)

    def test_every_alert_is_unit_tested_firing_and_not_firing(self):
        with open(RULES) as f:
            alerts = set(re.findall(r"^\s*- alert: (\w+)", f.read(), re.M))
        with open(os.path.join(MONITORING, "sluice-rules.test.yml")) as f:
            tests = f.read()
        self.assertTrue(alerts)
        for alert in sorted(alerts):
            cases = re.findall(r"- alertname: %s\n\s*eval_time: \S+.*\n\s*exp_alerts:(.*)"
                               % alert, tests)
            self.assertIn(" []", cases, "%s is never tested not firing" % alert)
            self.assertIn("", cases, "%s is never tested firing" % alert)

    def test_the_example_scrape_configuration_is_valid(self):
        result = promtool("check", "config", os.path.join(MONITORING, "prometheus.yml"))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class Dashboard(FleetTestCase):
    def config(self, local, regions=REGIONS):
        text = super().config(local, regions)
        # us-east-1 can be evacuated to us-west-2; stream starts are POST /start.
        east = "    us-east-1:\n      tunnel: [127.0.0.1:%d]\n" % self.ports["us-east-1"]
        text = text.replace(east, east + "      saviors: {us-west-2: 100}\n")
        return text + """metrics:
  stream_starts: [{method: POST, path_prefix: /start, status: 2xx}]
detection:
  mode: alert
"""

    def start_prometheus(self):
        targets = "".join("      - targets: ['127.0.0.1:%d']\n        labels: {local_region: %s}\n"
                          % (self.admin_ports[r], r) for r in REGIONS)
        prom = Prometheus("""global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: ['%s']
scrape_configs:
  - job_name: sluice
    static_configs:
%s""" % (RULES, targets))
        self.addCleanup(prom.cleanup)
        return prom.start()

    def test_every_panel_query_returns_data(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        queries = panel_queries(dashboard)
        self.assertGreaterEqual(len(queries), 20)

        self.start_fleet()
        starts = Starts(self.ports, per_second=10, limit_s=120).start()
        self.addCleanup(starts.stop)
        prom = self.start_prometheus()
        self.prom = prom
        # us-east-1 half evacuated to us-west-2, the plan holding 10 minutes before its last
        # step: tunnels, the "evacuated" decision and an active plan.
        status, body = self.api("us-west-2", "POST", "/v1/plans",
                                {"kind": "evacuate", "region": "us-east-1",
                                 "saviors": {"us-west-2": 100}, "ramp": [50, 100],
                                 "hold": "10m"})
        self.assertEqual(status, 201, body)
        self.wait_for(lambda: all(self.steering(r)["regions"]["us-east-1"]["evacuated_bp"] == 5000
                                  for r in REGIONS), what="us-east-1 at 50% on every node")

        def scraped():
            up = prom.targets_up()
            return sorted(t.get("local_region") for t in up) == sorted(REGIONS)
        self.wait_for(scraped, what="prometheus scraping the three regions")

        answers = prom.query  # [] while it has no data or Prometheus does not answer

        def with_data(expr):
            return lambda: answers(expr)

        empty_with_offset = []
        for title, ref, expr in queries:
            query = concrete(expr)
            if OFFSET.search(query):
                # Last week's data does not exist here: empty is fine, if the same query on
                # today's data returns some.
                if not answers(query):
                    empty_with_offset.append((title, ref))
                    query = OFFSET.sub("", query)
            self.wait_for(with_data(query), timeout=30,
                          what="data for panel %r query %s: %s" % (title, ref, query))
        # The panels that compare with the day and week before do have such queries.
        self.assertTrue(empty_with_offset)

        # The data says what the panels are for.
        def regions_of(expr, label="region"):
            return {s["metric"].get(label) for s in answers(concrete(expr))}
        self.wait_for(lambda: regions_of(
            'sum by (region) (rate(sluice_entry_stream_starts_total[$__rate_interval]))') ==
            set(REGIONS), what="stream starts per second of every region")
        evacuated = answers('max by (region) (sluice_steering_evacuated_ratio{region="us-east-1"})')
        self.assertEqual(float(evacuated[0]["value"][1]), 0.5)
        tunnels = self.wait_for(lambda: regions_of(
            'sum by (local_region, region) (rate(sluice_steering_requests_total'
            '{outcome="tunneled_out"}[$__rate_interval])) > 0', "local_region"),
            what="us-east-1 tunneling to us-west-2")
        self.assertEqual(tunnels, {"us-east-1"})
        held = answers("max by (plan, region, kind) (sluice_steering_plan_held_seconds)")
        self.assertEqual([(s["metric"]["region"], s["metric"]["kind"]) for s in held],
                         [("us-east-1", "evacuate")])
        self.assertEqual(regions_of("max by (region, state) (sluice_detection_edge_state) == 1"),
                         set(REGIONS))

        # The region variable (label_values(sluice_entry_stream_starts_total, region)).
        values = prom.data("label/region/values", **{"match[]": "sluice_entry_stream_starts_total"})
        self.assertEqual(set(values or []), set(REGIONS))

        # The rules load and evaluate; the SPS recording rule has every region; a healthy fleet
        # mid-evacuation raises no alert.
        def evaluated():
            data = prom.data("rules") or {}
            rules = [r for g in data.get("groups", []) for r in g.get("rules", [])]
            # Go's zero time until a rule's first evaluation.
            if rules and all(not r.get("lastEvaluation", "0001").startswith("0001")
                             for r in rules):
                return rules
            return None
        rules = self.wait_for(evaluated, what="every rule evaluated")
        self.assertEqual([r["name"] for r in rules if r["health"] != "ok"], [],
                         [r.get("lastError") for r in rules])
        self.wait_for(lambda: regions_of("region:sluice_entry_stream_starts:rate1m") ==
                      set(REGIONS), what="the SPS recording rule for every region")
        alerts = prom.data("alerts")
        self.assertIsNotNone(alerts)
        self.assertEqual(alerts["alerts"], [])

    def wait_context(self):
        text = super().wait_context()
        prom = getattr(self, "prom", None)
        return text + ("\n--- prometheus\n" + prom.log_text()[-3000:] if prom else "")


if __name__ == "__main__":
    unittest.main()
