"""The steering console (/ui/ on the admin listener) in a real browser: Debian's headless
Chromium driven by chromedriver (python3-selenium) against a three-region fleet on loopback (a
real etcd, three sluices). Checks what an engineer sees and does during an incident:

- the page loads with no console errors (a Content-Security-Policy violation is one), asks for a
  token, and then shows the regions, plans and fleet the API reports;
- an evacuation started from the page (preview, then confirm) changes the table, and the plan
  shows with its steps;
- a read token sees everything and acts on nothing: no action controls, and the API refuses a
  change sent from the page with it (403);
- a value with HTML in it (a token name, which the audit history shows as the actor) is shown as
  text, never as markup;
- a wrong token, an unreachable etcd and an unreachable admin listener each show a message;
- the page fits a phone-sized viewport without sideways scrolling.

Screenshots go to $SLUICE_TEST_ARTIFACTS (default: a temporary directory, printed).
"""

import os
import shutil
import tempfile
import time
import unittest
import urllib.request

from sluicetest.history import synthetic_history_csv
from sluicetest.process import free_port
from test_fleet import ADMIN_TOKEN, REGIONS, FleetTestCase

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    HAVE_SELENIUM = True
except ImportError:  # the suite installs python3-selenium; by hand it may be missing
    HAVE_SELENIUM = False

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
READ_TOKEN = "r" * 48
# A token name is the actor in the audit history: this one is markup, and must show as text.
HTML_NAME = "<b>ops</b><img/src=x/onerror=document.title='owned'>"


def artifacts_dir():
    path = os.environ.get("SLUICE_TEST_ARTIFACTS") or os.path.join(
        tempfile.gettempdir(), "sluice-console-screenshots")
    os.makedirs(path, exist_ok=True)
    return path


@unittest.skipUnless(HAVE_SELENIUM and os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER),
                     "needs chromium, chromium-driver and python3-selenium")
class ConsoleTestCase(FleetTestCase):
    def setUp(self):
        super().setUp()
        with open(os.path.join(self.dir, "read.token"), "w") as f:
            f.write(READ_TOKEN + "\n")
        os.chmod(os.path.join(self.dir, "read.token"), 0o600)

    def config(self, local, regions=REGIONS):
        text = super().config(local, regions)
        old = "    - {name: ops-%s, role: admin, token_file: %s/admin.token}\n" % (local, self.dir)
        self.assertIn(old, text)
        return text.replace(old, (
            "    - {name: \"%s\", role: admin, token_file: %s/admin.token}\n"
            "    - {name: dash, role: read, token_file: %s/read.token}\n"
            "  hosts: [console.test]\n") % (HTML_NAME.replace("\\", "\\\\"), self.dir, self.dir))

    def browser(self, width=1280, height=800):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        profile = tempfile.mkdtemp(prefix="sluice-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    "--user-data-dir=" + profile, "--window-size=%d,%d" % (width, height)):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=CHROMEDRIVER, port=free_port())
        driver = webdriver.Chrome(service=service, options=options)
        # quit() ends chromium and stops chromedriver by its PID (selenium's Service.stop).
        self.addCleanup(driver.quit)
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(30)
        self.driver = driver
        self.viewport(width, height)
        return driver

    def viewport(self, width, height, mobile=False):
        """The page's own size (a window's includes the browser's frame)."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def open_console(self, region="us-east-1", token=ADMIN_TOKEN):
        d = self.driver
        d.get("http://127.0.0.1:%d/ui/" % self.admin_ports[region])
        self.wait_for(lambda: "Enter a read or admin token" in self.text("messages"),
                      what="the page asks for a token")
        if token is not None:
            self.enter_token(token)
        return d

    def enter_token(self, token):
        field = self.driver.find_element(By.ID, "token")
        field.clear()
        field.send_keys(token)
        self.driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()

    # Predicates for wait_for never raise: a page between two draws is just "not yet".
    def text(self, element_id):
        try:
            return self.driver.find_element(By.ID, element_id).text
        except Exception:  # noqa: BLE001 - not there (yet)
            return ""

    def js(self, script, *args):
        try:
            return self.driver.execute_script(script, *args)
        except Exception:  # noqa: BLE001 - a page being replaced
            return None

    def page_regions(self):
        """{region: fraction} as the regions table shows them."""
        rows = self.js("""
            return Array.from(document.querySelectorAll('#regions tbody tr')).map(
              (tr) => [tr.dataset.region, tr.querySelector('.fraction').textContent]);""")
        return dict(rows or [])

    def console_errors(self, expected=()):
        """Errors in the browser's console, but for refusals the test asked for (`expected`:
        "path - ... status of N" fragments; the browser logs every 4xx fetch)."""
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE" and
                not any(x in e.get("message", "") for x in expected)]

    def screenshot(self, name):
        path = os.path.join(artifacts_dir(), name)
        self.driver.save_screenshot(path)
        print("screenshot:", path)
        return path

    def wait_context(self):
        extra = ""
        if getattr(self, "driver", None) is not None:
            try:
                extra = "\n--- page messages: %s\n--- browser log: %s" % (
                    self.text("messages"), self.driver.get_log("browser"))
            except Exception as e:  # noqa: BLE001
                extra = "\n--- browser: %s" % e
        return super().wait_context() + extra


class Console(ConsoleTestCase):
    def test_shows_the_api_and_evacuates_with_a_preview(self):
        self.start_fleet()
        # A day of history on the node the console asks: every chart has its lines.
        csv = synthetic_history_csv(int(time.time()), REGIONS, days=8)
        req = urllib.request.Request(
            "http://127.0.0.1:%d/v1/history" % self.admin_ports["us-east-1"], data=csv.encode(),
            method="POST", headers={"Authorization": "Bearer " + ADMIN_TOKEN})
        with urllib.request.urlopen(req, timeout=60) as r:
            self.assertEqual(r.status, 200)
        self.browser()
        self.open_console()
        steering = self.steering("us-east-1")
        want = {r: steering["regions"][r]["fraction"] for r in steering["region_order"]}
        self.wait_for(lambda: self.page_regions() == want, what="the regions the API reports")
        self.wait_for(lambda: self.js("return document.querySelectorAll('#nodes tbody tr').length")
                      == 3, what="the fleet's three nodes")
        self.assertIn("admin", self.text("role"))
        # Each region's chart draws the observed, expected, yesterday's and last week's lines.
        for region in REGIONS:
            for line in ("l-now", "l-expected", "l-day", "l-week"):
                self.wait_for(lambda: len(self.js(
                    "return document.querySelector('.chart[data-region=\"%s\"] path.%s')"
                    ".getAttribute('d')" % (region, line)) or "") > 100,
                    what="the %s line of %s" % (line, region))
        # The load time, as the browser measured it (printed: a figure, not a timed test), on
        # this first load and on a reload (the token stays in the tab's sessionStorage).
        first_ms = self.js("return performance.getEntriesByType('navigation')[0].duration") or 0
        self.driver.refresh()
        self.wait_for(lambda: self.page_regions() == want, what="the regions after a reload")
        print("console load: first %.0f ms, reload %.0f ms (navigation to load event)" % (
            first_ms,
            self.js("return performance.getEntriesByType('navigation')[0].duration") or 0))
        self.screenshot("console-1280x800.png")

        # Evacuate eu-west-1 from the page: the preview first, then confirm.
        self.driver.find_element(
            By.CSS_SELECTOR, "tr[data-region=eu-west-1] button[data-action=evacuate]").click()
        self.wait_for(lambda: "Evacuate eu-west-1" in self.text("action-title"),
                      what="the evacuation form")
        confirm = self.driver.find_element(By.ID, "confirm")
        self.assertFalse(confirm.is_enabled(), "confirm before a preview")
        saviors = self.driver.find_element(By.CSS_SELECTOR, "#action-form input[name=saviors]")
        saviors.clear()
        saviors.send_keys("us-east-1=100")
        ramp = self.driver.find_element(By.CSS_SELECTOR, "#action-form input[name=ramp]")
        ramp.send_keys("10, 50, 100")
        hold = self.driver.find_element(By.CSS_SELECTOR, "#action-form input[name=hold]")
        hold.send_keys("1s")
        self.driver.find_element(By.ID, "preview-button").click()
        self.wait_for(lambda: "us-east-1" in self.text("preview-result"), what="the preview")
        self.assertEqual(self.steering("us-east-1")["regions"]["eu-west-1"]["fraction"], "0%",
                         "a preview changed the table")
        self.wait_for(lambda: self.js("const b = document.getElementById('confirm');"
                                      "return !!b && !b.disabled") is True,
                      what="confirm enabled after the preview")
        self.screenshot("console-preview.png")
        self.driver.find_element(By.ID, "confirm").click()

        self.wait_for(lambda: self.steering("us-west-2")["regions"]["eu-west-1"]["fraction"]
                      != "0%", what="the evacuation in the table")
        self.wait_for(lambda: self.page_regions().get("eu-west-1") not in (None, "0%"),
                      what="the page showing it")
        self.wait_for(lambda: self.js("return document.querySelectorAll("
                                      "'.plan[data-plan] .step').length") == 3,
                      what="the plan with its three steps")
        self.wait_for(lambda: self.page_regions().get("eu-west-1") == "100%", timeout=30,
                      what="the ramp reaching 100% on the page")
        # The audit history shows the plan, by the token's name as text.
        self.wait_for(lambda: "plan" in self.text("audit"), what="the plan in the history")
        self.screenshot("console-evacuated.png")
        self.assertEqual(self.console_errors(), [])

    def test_read_token_and_markup_and_failures(self):
        self.start_fleet()
        self.browser()
        # A wrong token: a message, no data.
        self.open_console(token="x" * 48)
        self.wait_for(lambda: "token was refused" in self.text("messages"),
                      what="the refusal shown")
        self.assertFalse(self.driver.find_element(By.ID, "main").is_displayed())

        # The admin token whose name is markup: shown as text wherever it appears.
        self.enter_token(ADMIN_TOKEN)
        self.wait_for(lambda: HTML_NAME in self.text("role"), what="the token's name as text")
        self.driver.find_element(By.CSS_SELECTOR, "#detection-mode option[value=alert]").click()
        self.driver.find_element(By.ID, "detection-apply").click()
        self.wait_for(lambda: self.api("us-west-2", "GET", "/v1/detection")[1]["mode"] == "alert",
                      what="the mode set from the page")
        self.wait_for(lambda: HTML_NAME in self.text("audit"), what="the actor in the history")
        self.assertEqual(self.js("return document.querySelectorAll('main b, main img, #role b, "
                                 "#role img').length"), 0)
        self.assertNotEqual(self.driver.title, "owned")
        self.assertEqual(self.console_errors(expected=(
            "/v1/whoami - Failed to load resource: the server responded with a status of 401",)),
            [])

        # A read token: everything shown, nothing to act with, and the API refuses.
        self.enter_token(READ_TOKEN)
        self.wait_for(lambda: "read only" in self.text("role"), what="the read role")
        self.wait_for(lambda: len(self.page_regions()) == 3, what="the regions")
        visible = self.js("""return Array.from(document.querySelectorAll('.admin-only'))
                               .filter((e) => e.offsetParent !== null).length""")
        self.assertEqual(visible, 0, "action controls shown to a read token")
        status = self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch('/v1/plans', {method: 'POST', headers: {
                'Authorization': 'Bearer ' + sessionStorage.getItem('sluice.console.token'),
                'Content-Type': 'application/json'},
              body: JSON.stringify({kind: 'evacuate', region: 'eu-west-1',
                                    saviors: {'us-east-1': 100}})})
              .then((r) => done(r.status), (e) => done(String(e)));""")
        self.assertEqual(status, 403)
        self.assertEqual(self.steering("us-east-1")["regions"]["eu-west-1"]["fraction"], "0%")

        # The phone-sized viewport: nothing wider than the screen.
        self.viewport(390, 844, mobile=True)
        self.wait_for(lambda: self.js("return document.documentElement.scrollWidth <= "
                                      "window.innerWidth") is True, what="no sideways scrolling")
        self.screenshot("console-phone.png")

        # etcd stops: the page says changes are refused.
        self.etcd.stop()
        self.wait_for(lambda: "unreachable" in self.text("messages"), timeout=30,
                      what="the store's loss shown")
        # The admin listener goes away: the page says so and keeps what it showed.
        self.stop_node(self.nodes["us-east-1"])
        self.nodes["us-east-1"].killed = True
        self.wait_for(lambda: "does not answer" in self.text("messages"), what="the loss shown")
        self.assertTrue(self.driver.find_element(By.ID, "main").is_displayed())


class ConsoleServing(ConsoleTestCase):
    """What the listener answers for /ui/, without a browser."""

    def test_headers_host_and_methods(self):
        import http.client
        self.start_node("us-east-1")
        port = self.admin_ports["us-east-1"]

        def get(path, host="127.0.0.1", method="GET", headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest(method, path, skip_host=True)
            conn.putheader("Host", host)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            body = r.read()
            conn.close()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body

        status, headers, body = get("/ui/")
        self.assertEqual(status, 200)
        self.assertIn(b"console.js", body)
        self.assertIn("script-src 'self'", headers["content-security-policy"])
        self.assertEqual(headers["x-frame-options"], "DENY")
        status, _, _ = get("/ui/console.js", headers={"If-None-Match": headers.get("etag", "")})
        self.assertEqual(status, 200)  # another file, another tag
        status, js_headers, _ = get("/ui/console.js")
        status, _, body = get("/ui/console.js", headers={"If-None-Match": js_headers["etag"]})
        self.assertEqual((status, body), (304, b""))
        status, headers, _ = get("/ui")
        self.assertEqual((status, headers["location"]), (308, "/ui/"))
        self.assertEqual(get("/ui/", host="console.test:%d" % port)[0], 200)  # admin.hosts
        self.assertEqual(get("/ui/", host="evil.example")[0], 421)  # DNS rebinding
        self.assertEqual(get("/ui/", method="POST")[0], 405)
        self.assertEqual(get("/ui/nothing")[0], 404)
        # The API behind it still wants a token; whoami says which.
        status, body = self.api("us-east-1", "GET", "/v1/whoami")
        self.assertEqual((status, body), (200, {"token": HTML_NAME, "admin": True}))
        status, body = self.api("us-east-1", "GET", "/v1/history/chart?window=3600")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["window_seconds"], 3600)
        status, body = self.api("us-east-1", "GET", "/v1/history/chart?window=10")
        self.assertEqual(status, 400, body)


if __name__ == "__main__":
    unittest.main()
