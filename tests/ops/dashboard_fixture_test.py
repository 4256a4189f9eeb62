#!/usr/bin/env python3
"""DashboardQueriesOnFixture: every PromQL query of deploy/grafana/quantd.json,
evaluated by a real Prometheus (Debian's `prometheus`, loopback, 1 s scrapes)
against quantd's real Metrics object served by tests/ops/metrics_fixture,
which replays a known script (4 jobs, 1 failing; 3 uploads, 1 failing; ...).
Checks that each query returns data and that the numbers match the script.

Independent of the service; prometheus_service_test.py does the same against
a real `quantd serve`.

usage: dashboard_fixture_test.py PATH/TO/metrics_fixture
"""
import math
import subprocess
import sys

import promharness as ph


def main():
    fixture = subprocess.Popen([sys.argv[1], "127.0.0.1:0"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        port = int(fixture.stdout.readline().split()[1])
        with ph.Prometheus(f"127.0.0.1:{port}") as prom:
            prom.wait_scraped()
            fixture.stdin.write("run\n")
            fixture.stdin.flush()
            assert fixture.stdout.readline().strip() == "done"
            prom.wait_value("sum(quantd_jobs_finished_total)", 4)
            prom.wait_value("sum(quantd_uploads_total)", 3)
            prom.wait_value("sum(quantd_grpc_requests_total)", 13)

            # Exact counters first.
            assert prom.by("sum by (status) (quantd_jobs_finished_total)", "status") == {
                "succeeded": 3, "failed": 1, "cancelled": 0}
            assert prom.value('quantd_job_failures_total{reason="invalid_model"}') == 1

            print("dashboard queries:")
            res = ph.check_every_dashboard_query(prom)

            finished = ph.grouped(ph.find_query(res, "increase(quantd_jobs_finished_total"), "status")
            assert finished == {
                "succeeded": 3, "failed": 1, "cancelled": 0}, finished
            ok = {"fp16", "int8", "int4"}
            for frag in ("quantd_jobs_finished_total{status=\"succeeded\"",
                         "quantd_job_input_bytes_total", "quantd_job_output_bytes_total",
                         "quantd_job_weights_quantized_total",
                         "histogram_quantile(0.5, sum by (le, precision) (rate(quantd_job_duration",
                         "histogram_quantile(0.95, sum by (le, precision) (rate(quantd_job_duration",
                         "quantd_job_compression_ratio"):
                got = ph.grouped(ph.find_query(res, frag), "precision")
                assert set(got) == ok, (frag, got)
            # Jobs/min: three successes inside the 2 m window -> ~1.5/min in total
            # (rate() extrapolates, so allow slack).
            per_min = sum(ph.grouped(ph.find_query(res, "quantd_jobs_finished_total{status=\"succeeded\""),
                                     "precision").values())
            assert 1.0 < per_min < 3.0, per_min
            assert set(ph.grouped(ph.find_query(res, "quantd_job_failures_total"), "reason")) == {
                "invalid_model"}
            assert set(ph.grouped(ph.find_query(res, "quantd_upload_failures_total"), "reason")) == {
                "digest_mismatch"}
            assert ph.grouped(ph.find_query(res, "quantd_uploads_total"), "status").keys() == {
                "succeeded", "failed"}
            errors = {(s["metric"]["method"], s["metric"]["code"])
                      for s in ph.find_query(res, 'code!="OK"')}
            assert errors == {("UploadModel", "DATA_LOSS"), ("GetJob", "NOT_FOUND")}, errors
            ratio = ph.grouped(ph.find_query(res, "quantd_job_compression_ratio"), "precision")
            assert 1.5 <= ratio["fp16"] <= 2.0 and 5 <= ratio["int4"] <= 7, ratio
            failure_ratio = ph.find_query(res, 'status="failed"')[0]["value"][1]
            assert math.isclose(float(failure_ratio), 0.25, rel_tol=1e-6), failure_ratio
            build = ph.grouped(ph.find_query(res, "count by (version) (quantd_build_info"), "version")
            assert build == {"fixture": 1}, build
            assert prom.value("quantd_disk_free_bytes") == 50e9
            assert prom.value("quantd_workers") == 2
            print("PASS: every dashboard query returns data; counts match the script")
    finally:
        fixture.stdin.close()
        fixture.wait(10)


if __name__ == "__main__":
    main()
