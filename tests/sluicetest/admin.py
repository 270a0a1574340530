"""sluice's admin API on 127.0.0.1: JSON calls with a bearer token, and /metrics (no token)."""

import http.client
import json
import urllib.request

from sluicetest import metrics as prometheus


def call(port, method, path, token=None, body=None, timeout=10):
    """One admin request: (status, parsed JSON, or the text when it is not JSON). body: a dict
    (sent as JSON) or a string (sent as it is)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, str) else json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text
    finally:
        conn.close()


def scrape(port, timeout=5):
    """The text of /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=timeout) as r:
        return r.read().decode()


def metrics(port, timeout=5):
    """/metrics parsed: ({(name, frozenset(labels)): value}, {family: type})."""
    return prometheus.parse(scrape(port, timeout))


def metric(port, selector):
    """The sum of a metric's samples on /metrics; see metrics.total for the selector."""
    return prometheus.total(scrape(port), selector)
