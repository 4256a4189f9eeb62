"""Helpers for the ops tests: a real Prometheus on loopback and the Grafana
dashboard's queries.

Standard library only (plus Debian's `prometheus` binary). Used by
dashboard_fixture_test.py and prometheus_service_test.py.
"""
import json
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SOURCE_DIR = os.environ.get(
    "QUANTD_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
DASHBOARD = os.path.join(SOURCE_DIR, "deploy", "grafana", "quantd.json")

# What the test substitutes for Grafana's variables. The rate window spans the
# whole test (a few tens of seconds of 1 s scrapes), so rate() sees the series
# at zero before the test's work and after it.
GRAFANA_VARS = {
    "$__rate_interval": "2m",
    "$__interval": "15s",
    "$__range": "10m",
    "$instance": ".*",
}


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_until(what, fn, timeout, interval=0.25):
    """Polls fn() until it returns a truthy value; raises after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, urllib.error.URLError, ValueError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Prometheus:
    """Debian's prometheus on a loopback port, scraping `target` every 1 s,
    with its TSDB in a temp dir. Use as a context manager."""

    def __init__(self, target, binary=None, job="quantd"):
        self.target = target
        self.job = job
        self.binary = binary or shutil.which("prometheus") or "/usr/bin/prometheus"
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="quantd-prom-")
        self.proc = None
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "  evaluation_interval: 1s\n"
                f"scrape_configs:\n  - job_name: {self.job}\n"
                f"    static_configs:\n      - targets: ['{self.target}']\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={cfg}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_until("prometheus ready", lambda: self._ready(), 30)
        except AssertionError:
            self.__exit__(None, None, None, keep=True)
            raise
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.logs()}")
        return "Ready" in http_get(self.url + "/-/ready")

    def logs(self):
        try:
            with open(os.path.join(self.dir, "prometheus.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def __exit__(self, *exc, keep=False):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, expr, at=None):
        """Instant query at `at` (unix seconds, default now); returns the
        result vector (list of {"metric": {...}, "value": [t, "v"]}). Raises
        on a PromQL error."""
        params = {"query": expr}
        if at is not None:
            params["time"] = at
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode(params)
        try:
            body = json.loads(http_get(url, timeout=10))
        except urllib.error.HTTPError as e:
            raise AssertionError(f"query failed ({e.code}): {expr}\n{e.read().decode()}")
        if body.get("status") != "success":
            raise AssertionError(f"query failed: {expr}\n{body}")
        if body["data"]["resultType"] == "scalar":
            return [{"metric": {}, "value": body["data"]["result"]}]
        return body["data"]["result"]

    def value(self, expr):
        """The single value of `expr`, or None when it returns nothing."""
        r = self.query(expr)
        if not r:
            return None
        assert len(r) == 1, f"{expr}: expected one series, got {r}"
        return float(r[0]["value"][1])

    def by(self, expr, label):
        """{label value: float} for an expression grouped by `label`."""
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in self.query(expr)}

    def wait_scraped(self, timeout=30):
        """Waits until the target is up and its metrics are in the TSDB."""
        wait_until(f"{self.target} scraped",
                   lambda: self.value(f'up{{job="{self.job}"}}') == 1 and
                   self.value(f'count(quantd_build_info{{job="{self.job}"}})') == 1, timeout)

    def last_scrape(self):
        """Timestamp of the latest scrape of the target. Evaluating at a
        scrape's timestamp keeps rate()/increase() from extrapolating past
        the last sample, so increase() of a counter that starts at 0 is
        exact."""
        return self.value(f'timestamp(up{{job="{self.job}"}})')

    def wait_value(self, expr, want, timeout=30):
        """Waits until `expr` (one series) equals `want`."""
        wait_until(f"{expr} == {want}", lambda: self.value(expr) == want, timeout)


def dashboard_queries(path=DASHBOARD):
    """Every (panel title, PromQL expression) in the dashboard, including
    template-variable queries' metric names (as a `count(...)` probe)."""
    with open(path) as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", ""), t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and isinstance(q, str):
            m = re.match(r"label_values\((\w+),\s*(\w+)\)", q)
            assert m, f"variable {v['name']}: unsupported query {q}"
            out.append((f"variable {v['name']}", f"count by ({m.group(2)}) ({m.group(1)})"))
    return out


def substitute(expr):
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(k, GRAFANA_VARS[k])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def metric_names(expr):
    """Metric names (quantd_*) an expression refers to, without histogram
    suffixes."""
    names = set(re.findall(r"\bquantd_[a-z0-9_]+", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def check_every_dashboard_query(prom, at=None):
    """Evaluates every dashboard query at `at` (default: the last scrape);
    each must return at least one series with a finite value. Returns
    {expr: result} for further checks."""
    if at is None:
        at = prom.last_scrape()
    results = {}
    failures = []
    for title, expr in dashboard_queries():
        q = substitute(expr)
        r = prom.query(q, at=at)
        finite = [s for s in r if math.isfinite(float(s["value"][1]))]
        print(f"  [{'ok' if finite else 'NO DATA'}] {title}: {len(r)} series  {q}")
        if not finite:
            failures.append(f"{title}: {q} -> {r}")
        results[expr] = r
    assert not failures, "dashboard queries without data:\n" + "\n".join(failures)
    return results


def find_query(results, *fragments):
    """The result of the one dashboard query containing every fragment."""
    hits = [e for e in results if all(f in e for f in fragments)]
    assert len(hits) == 1, f"{fragments}: {len(hits)} dashboard queries match"
    return results[hits[0]]


def grouped(result, label):
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in result}
