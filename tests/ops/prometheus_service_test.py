#!/usr/bin/env python3
"""PrometheusRealService: a real `quantd serve` scraped by a real Prometheus.

Starts `quantd serve` on ephemeral loopback ports (gRPC + --metrics-listen)
with a temp data dir, and Debian's `prometheus` scraping it every second
(temp TSDB). Through the gRPC API (Python stubs generated from proto/ at test
time) it uploads an ONNX model, a GGUF model and a truncated ONNX file, makes
one upload with a wrong sha256, runs four conversions that succeed (ONNX FP16,
INT8, INT4; GGUF Q4_K_M) and one that fails on purpose (the truncated model),
and downloads one artifact. Then it evaluates every PromQL query of deploy/grafana/quantd.json
through Prometheus' HTTP API and checks that each returns data and that the
numbers match what the test did. Last, it checks the JSON-lines log: one
line per job state change (submitted, started, finished) with the job id.

Environment: QUANTD_BIN, QUANTD_TESTDATA, QUANTD_SOURCE_DIR (from CTest).
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import promharness as ph

SRC = ph.SOURCE_DIR
QUANTD = os.environ["QUANTD_BIN"]
TESTDATA = os.environ.get("QUANTD_TESTDATA", os.path.join(SRC, "..", "shared", "testdata"))
MODEL = os.path.join(TESTDATA, "onnx", "genai-tiny-random-gpt2-fp32", "past.onnx")
GGUF_MODEL = os.path.join(TESTDATA, "gguf", "tiny-llama-f16.gguf")
CHUNK = 256 * 1024


def generate_stubs(out):
    """quantd.v1 and grpc.health.v1 Python stubs from the repo's protos.

    Debian's grpc_tools bundles protoc 3.5, too old for proto3 `optional`, so
    this uses Debian's protoc (3.21, as the C++ build) with grpc_python_plugin
    (both build dependencies in scripts/setup.sh)."""
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    plugin = shutil.which("grpc_python_plugin") or "/usr/bin/grpc_python_plugin"
    os.makedirs(out, exist_ok=True)
    for include, proto in ((os.path.join(SRC, "proto"), "quantd/v1/quantd.proto"),
                           (os.path.join(SRC, "proto", "grpc", "health", "v1"), "health.proto")):
        subprocess.run([protoc, f"-I{include}", f"--plugin=protoc-gen-grpc_python={plugin}",
                        f"--python_out={out}", f"--grpc_python_out={out}",
                        os.path.join(include, proto)], check=True)
    sys.path.insert(0, out)


class Service:
    """`quantd serve` on loopback with a temp data dir."""

    def __init__(self, tmp):
        self.grpc_port = ph.free_port()
        self.metrics_port = ph.free_port()
        self.data = os.path.join(tmp, "data")
        self.log_path = os.path.join(tmp, "quantd.log")
        self.proc = None

    def __enter__(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [QUANTD, "serve", "--listen", f"127.0.0.1:{self.grpc_port}", "--data-dir", self.data,
             "--workers", "2", "--metrics-listen", f"127.0.0.1:{self.metrics_port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def logs(self):
        with open(self.log_path) as f:
            return f.read()[-6000:]

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def upload(stub, pb, name, data, digest=None, fmt=None):
    header = pb.UploadHeader(upload_id=uuid.uuid4().hex,
                             files=[pb.FileInfo(name=name, size_bytes=len(data),
                                                sha256=digest or sha256(data))],
                             format=fmt or pb.MODEL_FORMAT_ONNX)

    def requests():
        yield pb.UploadRequest(header=header)
        for off in range(0, len(data), CHUNK):
            yield pb.UploadRequest(chunk=pb.UploadChunk(offset=off, data=data[off:off + CHUNK]))
        yield pb.UploadRequest(finish=pb.UploadFinish())

    return stub.UploadModel(requests(), timeout=60)


def wait_final(stub, pb, job_id):
    for ev in stub.WatchJob(pb.WatchJobRequest(job_id=job_id), timeout=120):
        if ev.final:
            return ev.job
    return stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=10)


def check_logs(path, jobs, pb):
    """quantd logs JSON lines; each job's state changes are logged with its id."""
    with open(path) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    for line in lines:
        assert {"ts", "level", "msg"} <= set(line), line
    for job in jobs:
        mine = [l for l in lines if l.get("job_id") == job.job_id]
        states = [l["msg"] for l in mine if l["msg"] != "job phase"]
        assert states[:3] == ["job submitted", "job started", "job finished"], (job.job_id, states)
        done = [l for l in mine if l["msg"] == "job finished"]
        assert done[0]["state"] == pb.JobState.Name(job.state), done
        assert float(done[0]["seconds"]) >= 0, done
        # One line per phase change, with the phase and the time into the job.
        phases = [l for l in mine if l["msg"] == "job phase"]
        assert phases, (job.job_id, "no phase lines")
        assert all(l["phase"] and float(l["seconds"]) >= 0 for l in phases), phases
        assert all("phase" in l for l in mine if l["msg"] in ("job started", "job finished")), mine


def main():
    import grpc  # Debian python3-grpcio

    tmp = tempfile.mkdtemp(prefix="quantd-ops-")
    try:
        generate_stubs(os.path.join(tmp, "stubs"))
        from quantd.v1 import quantd_pb2 as pb, quantd_pb2_grpc as pbg
        import health_pb2, health_pb2_grpc

        with Service(tmp) as svc:
            channel = grpc.insecure_channel(f"127.0.0.1:{svc.grpc_port}")
            health = health_pb2_grpc.HealthStub(channel)

            def serving():
                if svc.proc.poll() is not None:
                    raise AssertionError(f"quantd exited {svc.proc.returncode}:\n{svc.logs()}")
                try:
                    r = health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                except grpc.RpcError:
                    return False
                return r.status == health_pb2.HealthCheckResponse.SERVING

            ph.wait_until("quantd serving", serving, 30)
            stub = pbg.QuantdStub(channel)

            with ph.Prometheus(f"127.0.0.1:{svc.metrics_port}") as prom:
                # Let Prometheus record every series at zero first.
                prom.wait_scraped()
                time.sleep(1.5)

                with open(MODEL, "rb") as f:
                    model_bytes = f.read()
                good = upload(stub, pb, "past.onnx", model_bytes)
                truncated = model_bytes[: len(model_bytes) // 3]
                bad = upload(stub, pb, "truncated.onnx", truncated)
                try:
                    upload(stub, pb, "wrong-digest.onnx", model_bytes, digest="0" * 64)
                    raise AssertionError("upload with a wrong sha256 succeeded")
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.DATA_LOSS, e
                with open(GGUF_MODEL, "rb") as f:
                    gguf_bytes = f.read()
                gguf = upload(stub, pb, "tiny-llama-f16.gguf", gguf_bytes, fmt=pb.MODEL_FORMAT_GGUF)
                uploaded = len(model_bytes) * 2 + len(truncated) + len(gguf_bytes)

                jobs = []
                for prec in (pb.PRECISION_FP16, pb.PRECISION_INT8, pb.PRECISION_INT4):
                    jobs.append(stub.SubmitJob(pb.SubmitJobRequest(
                        model_id=good.model_id,
                        recipe=pb.Recipe(format=pb.MODEL_FORMAT_ONNX, precision=prec)), timeout=30))
                jobs.append(stub.SubmitJob(pb.SubmitJobRequest(
                    model_id=gguf.model_id,
                    recipe=pb.Recipe(format=pb.MODEL_FORMAT_GGUF, gguf_type="Q4_K_M")), timeout=30))
                jobs.append(stub.SubmitJob(pb.SubmitJobRequest(
                    model_id=bad.model_id,
                    recipe=pb.Recipe(format=pb.MODEL_FORMAT_ONNX, precision=pb.PRECISION_INT4)),
                    timeout=30))
                final = [wait_final(stub, pb, j.job_id) for j in jobs]
                states = [pb.JobState.Name(j.state) for j in final]
                assert states == ["JOB_STATE_SUCCEEDED"] * 4 + ["JOB_STATE_FAILED"], (
                    states, [j.error.message for j in final])

                downloaded = 0
                for chunk in stub.DownloadArtifact(
                        pb.DownloadArtifactRequest(job_id=final[2].job_id), timeout=60):
                    downloaded += len(chunk.data)
                assert downloaded == final[2].artifact.files[0].size_bytes

                # Wait until a scrape after the work is in the TSDB.
                prom.wait_value("sum(quantd_jobs_finished_total)", 5)
                prom.wait_value("sum(quantd_uploads_total)", 4)
                prom.wait_value("sum(quantd_download_bytes_total)", downloaded)
                prom.wait_value("sum(quantd_jobs_running) + sum(quantd_uploads_in_progress)", 0)
                time.sleep(1.5)

                # Exact counters.
                assert prom.by("sum by (status) (quantd_jobs_finished_total)", "status") == {
                    "succeeded": 4, "failed": 1, "cancelled": 0}
                assert prom.by('sum by (format) (quantd_jobs_finished_total{status="succeeded"})',
                               "format") == {"onnx": 3, "gguf": 1, "mlx": 0, "other": 0}
                assert prom.value('quantd_jobs_finished_total{format="gguf",precision="q4_k_m",'
                                  'status="succeeded"}') == 1
                assert prom.value("sum(quantd_jobs_submitted_total)") == 5
                assert prom.value("sum(quantd_jobs_started_total)") == 5
                assert prom.value("sum(quantd_job_failures_total)") == 1
                assert prom.by("sum by (status) (quantd_uploads_total)", "status") == {
                    "succeeded": 3, "failed": 1}
                assert prom.value("sum(quantd_upload_failures_total)") == 1
                assert prom.value("sum(quantd_job_duration_seconds_count)") == 4
                assert prom.value("sum(quantd_job_queue_wait_seconds_count)") == 5
                assert prom.value("quantd_workers") == 2
                assert prom.value("quantd_disk_free_bytes") > 0
                assert prom.value("quantd_blob_store_bytes") > 0
                out_bytes = sum(j.artifact.size_bytes for j in final[:4])
                assert prom.value("sum(quantd_job_output_bytes_total)") == out_bytes, (
                    prom.value("sum(quantd_job_output_bytes_total)"), out_bytes)
                assert prom.value('quantd_grpc_requests_total{method="UploadModel",code="DATA_LOSS"}') == 1
                assert prom.value('sum(quantd_grpc_requests_total{method="SubmitJob"})') == 5
                version = subprocess.run([QUANTD, "version"], capture_output=True,
                                         text=True).stdout.split()[-1]

                assert prom.value('sum(quantd_job_input_bytes_total{format="onnx"})') == 3 * len(model_bytes)
                assert prom.value('sum(quantd_job_input_bytes_total{format="gguf"})') == len(gguf_bytes)
                assert prom.value("sum(quantd_upload_bytes_total)") == uploaded
                weights = prom.by("sum by (precision) (quantd_job_weights_quantized_total)",
                                  "precision")
                assert weights["int8"] > 0 and weights["int4"] == weights["int8"], weights
                assert weights["q4_k_m"] > 0, weights
                print("dashboard queries:")
                res = ph.check_every_dashboard_query(prom)

                finished = ph.grouped(ph.find_query(res, "increase(quantd_jobs_finished_total"),
                                      "status")
                assert finished == {
                    "succeeded": 4, "failed": 1, "cancelled": 0}, finished
                for frag in ('quantd_jobs_finished_total{status="succeeded"',
                             "quantd_job_input_bytes_total", "quantd_job_output_bytes_total",
                             "histogram_quantile(0.5, sum by (le, precision) (rate(quantd_job_duration",
                             "histogram_quantile(0.95, sum by (le, precision) (rate(quantd_job_duration",
                             "quantd_job_compression_ratio"):
                    got = ph.grouped(ph.find_query(res, frag), "precision")
                    assert set(got) == {"fp16", "int8", "int4", "q4_k_m"}, (frag, got)
                ratio = ph.grouped(ph.find_query(res, "quantd_job_compression_ratio"), "precision")
                assert 1.5 <= ratio["fp16"] <= 2.0, ratio
                assert sum(ph.grouped(ph.find_query(res, "quantd_job_failures_total"),
                                      "reason").values()) > 0
                assert set(ph.grouped(ph.find_query(res, "quantd_uploads_total"), "status")) == {
                    "succeeded", "failed"}
                errors = {(s["metric"]["method"], s["metric"]["code"])
                          for s in ph.find_query(res, 'code!="OK"')}
                assert ("UploadModel", "DATA_LOSS") in errors, errors
                failure_ratio = float(ph.find_query(res, 'status="failed"')[0]["value"][1])
                assert abs(failure_ratio - 0.2) < 1e-6, failure_ratio
                build = ph.grouped(ph.find_query(res, "count by (version) (quantd_build_info"),
                                   "version")
                assert build == {version: 1}, (build, version)
                check_logs(svc.log_path, final, pb)
                print("PASS: every dashboard query returns data; counts match the jobs run")
    except BaseException:
        try:
            print("--- quantd log ---\n" + svc.logs(), file=sys.stderr)
        except Exception:
            pass
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
