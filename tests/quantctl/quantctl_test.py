#!/usr/bin/env python3
"""quantctl and the Python client against a real `quantd serve`.

    quantctl_test.py GROUP      # Help, Quantize, Commands, ExitCodes, ...

Environment (set by CTest from ${QUANTD_TEST_ENV}):
  QUANTD_BIN       the quantd binary        QUANTCTL_BIN  the quantctl binary
  QUANTD_TESTDATA  shared test models       QUANTD_SOURCE_DIR  the checkout

Every quantctl run without a terminal is checked for control characters
(ESC, CR): non-TTY output must be plain lines.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

QUANTD = os.environ.get("QUANTD_BIN", "quantd")
QUANTCTL = os.environ.get("QUANTCTL_BIN", "quantctl")
TESTDATA = os.environ.get("QUANTD_TESTDATA", "/work/shared/testdata")
SOURCE = os.environ.get("QUANTD_SOURCE_DIR",
                        os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
PYTHON = os.environ.get("QUANTD_PYTHON", "/usr/bin/python3")

LLAMA = os.path.join(TESTDATA, "onnx", "genai-tiny-random-llama-fp16-extdata", "model.onnx")
LLAMA_DATA = LLAMA + ".data"
GPT2 = os.path.join(TESTDATA, "onnx", "genai-tiny-random-gpt2-fp32", "past.onnx")
LLAMA_CKPT = os.path.join(TESTDATA, "hf", "checkpoints", "llama-tiny-shared")

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but \t and \n


def read_text(path):
    with open(path) as f:
        return f.read()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_id_of(paths):
    identity = "quantd-model-v1\n"
    for p in paths:
        identity += f"{os.path.basename(p)}\n{os.path.getsize(p)}\n{sha256(p)}\n"
    return "sha256:" + hashlib.sha256(identity.encode()).hexdigest()


def make_matmul_model(path, n, layers):
    """A float32 chain of `layers` n x n MatMuls (INT4 search on it takes seconds)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        inits.append(numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"], name=f"mm{i}"))
        prev = f"h{i}"
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, n])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


class Server:
    """`quantd serve` on 127.0.0.1:<ephemeral> with a temporary data dir."""

    def __init__(self, work, *extra):
        self.dir = tempfile.mkdtemp(prefix="server-", dir=work)
        self.extra = extra
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.start("127.0.0.1:0")

    def start(self, listen):
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.proc = subprocess.Popen(
            [QUANTD, "serve", "--listen", listen, "--port-file", port_file,
             "--data-dir", os.path.join(self.dir, "data"), "--workers", "2",
             "--min-free-bytes", "0", "--shutdown-grace-seconds", "1", *self.extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(port_file) and read_text(port_file).strip():
                break
            if self.proc.poll() is not None:
                raise RuntimeError("quantd serve exited: " + self.read_log())
            time.sleep(0.05)
        else:
            raise RuntimeError("quantd serve did not start: " + self.read_log())
        self.address = "127.0.0.1:" + read_text(port_file).strip()

    def kill9_and_restart(self, down_seconds):
        """kill -9, wait, start again on the same port with the same data."""
        self.proc.kill()
        self.proc.wait()
        time.sleep(down_seconds)
        self.start(self.address)

    def read_log(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_and_wait_for(test, args, env, prefix, timeout=60):
    """Starts quantctl, returns once a stderr line starts with `prefix`."""
    p = subprocess.Popen([QUANTCTL, *args], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(prefix):
            return p
    p.kill()
    p.wait()
    test.fail(f"no '{prefix}' line from quantctl {' '.join(args)}: {''.join(seen)}")


def kill(p):
    p.kill()
    p.wait()
    p.stderr.close()


class QuantctlCase(unittest.TestCase):
    """Starts one server per class (unless SERVER_ARGS is None)."""

    SERVER_ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="quantctl-test-")
        cls.server = Server(cls.work, *cls.SERVER_ARGS) if cls.SERVER_ARGS is not None else None

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def env(self, **extra):
        env = dict(os.environ)
        for key in ("QUANTD_SERVER", "QUANTD_TOKEN", "QUANTD_TLS_CA", "QUANTCTL_PROGRESS"):
            env.pop(key, None)
        if self.server is not None:
            env["QUANTD_SERVER"] = self.server.address
        env.update(extra)
        return env

    def quantctl(self, *args, rc=0, env=None, timeout=120, cwd=None):
        """Runs quantctl without a terminal; checks the exit code and that the
        output has no control characters. Returns the CompletedProcess."""
        p = subprocess.run([QUANTCTL, *args], capture_output=True, text=True, timeout=timeout,
                           env=env or self.env(), cwd=cwd or self.work)
        where = f"quantctl {' '.join(args)}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"
        if rc is not None:
            self.assertEqual(p.returncode, rc, where)
        self.assertIsNone(CONTROL.search(p.stdout), "control character in stdout: " + where)
        self.assertIsNone(CONTROL.search(p.stderr), "control character in stderr: " + where)
        return p

    def quantctl_json(self, *args, rc=0, env=None, timeout=120):
        p = self.quantctl("--json", *args, rc=rc, env=env, timeout=timeout)
        lines = [l for l in p.stdout.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"expected one JSON line on stdout:\n{p.stdout}")
        return json.loads(lines[0])

    def path(self, *parts):
        return os.path.join(self.work, *parts)


# ---------------------------------------------------------------------------


class Help(QuantctlCase):
    SERVER_ARGS = None
    COMMANDS = ["quantize", "upload", "submit", "watch", "status", "list", "cancel", "download",
                "report", "delete", "presets", "health", "version"]

    def testMainHelp(self):
        out = self.quantctl("--help").stdout
        for c in self.COMMANDS:
            self.assertIn(f"  {c} ", out)
        for needle in ("Exit codes", "130", "QUANTD_SERVER", "QUANTD_TOKEN", "--preset mobile-int4",
                       "--preset iot-int4", "--preset aipc-int8", "--precision fp16", "--json"):
            self.assertIn(needle, out)
        self.assertEqual(self.quantctl("help").stdout, out)

    def testEveryCommandHasHelpWithExamples(self):
        for c in self.COMMANDS:
            out = self.quantctl(c, "--help").stdout
            self.assertIn(f"usage: quantctl {c}", out, c)
            self.assertRegex(out, r"Examples?:", c)
            self.assertIn("Exit codes", out, c)
            self.assertIn("--server HOST:PORT", out, c)
            self.assertEqual(self.quantctl("help", c).stdout, out)
        for c in ("quantize", "submit"):
            out = self.quantctl(c, "--help").stdout
            for flag in ("--preset NAME", "--precision", "--block-size", "--lm-head", "--gguf-type"):
                self.assertIn(flag, out, c)

    def testUsageErrors(self):
        self.quantctl(rc=2)
        self.quantctl("frobnicate", rc=2)
        self.quantctl("quantize", LLAMA, rc=2)                           # no -o
        self.quantctl("quantize", LLAMA, "-o", "x.onnx", "--precision", "int3", rc=2)
        self.quantctl("quantize", LLAMA, "-o", "x.onnx", "--precision", "int4",
                      "--block-size", "7", rc=2)
        self.quantctl("quantize", LLAMA, "-o", "x.onnx", "--preset", "nope", rc=2)
        self.quantctl("list", "--state", "sleeping", rc=2)
        self.quantctl("submit", "sha256:00", "--label", "novalue", "--precision", "int4", rc=2)
        self.quantctl("status", rc=2)
        self.quantctl("--server", rc=2)
        err = self.quantctl_json("quantize", LLAMA, rc=2)
        self.assertEqual(err["error"]["exit_code"], 2)
        self.assertEqual(err["error"]["code"], "INVALID_ARGUMENT")

    def testVersionAndPresets(self):
        v = self.quantctl_json("version")
        self.assertRegex(v["quantctl"], r"^\d+\.\d+\.\d+")
        self.assertEqual(v["api"], "quantd.v1")
        self.assertIn("quantctl ", self.quantctl("version").stdout)
        presets = {p["name"]: p for p in self.quantctl_json("presets")["presets"]}
        for name in ("mobile-int4", "iot-int4", "aipc-int8", "aipc-fp16", "gguf-q4km"):
            self.assertIn(name, presets)
        self.assertIn("int4", presets["mobile-int4"]["flags"])
        self.assertIn("mobile-int4", self.quantctl("presets").stdout)


class Quantize(QuantctlCase):

    def testExternalDataModelToInt4(self):
        out = self.path("phone", "llama-int4.onnx")
        r = self.quantctl_json("quantize", LLAMA, "-o", out, "--preset", "mobile-int4",
                               "--label", "target=phone", "--report", self.path("report.json"))
        self.assertEqual(r["job"]["state"], "JOB_STATE_SUCCEEDED")
        self.assertEqual(r["job"]["labels"], {"target": "phone"})
        self.assertEqual(r["job"]["recipe"]["preset"], "mobile-int4")
        self.assertEqual(r["job"]["recipe"]["precision"], "PRECISION_INT4")
        self.assertEqual([f["name"] for f in r["model"]["files"]], ["model.onnx", "model.onnx.data"])
        self.assertEqual(r["model"]["model_id"], model_id_of([LLAMA, LLAMA_DATA]))
        self.assertEqual(r["output_files"], [out, out + ".data"])
        artifact = {f["name"]: f for f in r["job"]["artifact"]["files"]}
        # The data file is the artifact's, byte for byte; the model now points at it.
        self.assertEqual(sha256(out + ".data"), artifact["model.onnx.data"]["sha256"])
        import onnx
        m = onnx.load(out, load_external_data=False)
        locations = {kv.value for t in m.graph.initializer for kv in t.external_data
                     if kv.key == "location"}
        self.assertEqual(locations, {"llama-int4.onnx.data"})
        onnx.load(out)  # external data resolves
        self.assertFalse([f for f in os.listdir(self.path("phone")) if f.endswith(".part")])
        report = json.loads(read_text(self.path("report.json")))
        self.assertGreater(int(report["tensors_converted"]), 0)
        self.ortCompare(LLAMA, out, 0.9)

        # The same model again: the upload is skipped; same recipe: same job.
        again = self.quantctl_json("quantize", LLAMA, "-o", self.path("again.onnx"),
                                   "--preset", "mobile-int4")
        self.assertTrue(again["upload_skipped"])
        self.assertEqual(again["job"]["job_id"], r["job"]["job_id"])

    def testSingleFileToFp16AndInt8(self):
        out = self.path("aipc", "gpt2-fp16.onnx")
        p = self.quantctl("quantize", GPT2, "-o", out, "--precision", "fp16")
        self.assertIn("wrote " + out, p.stdout)
        self.assertTrue(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".data"))
        self.ortCompare(GPT2, out, 0.99)
        out8 = self.path("aipc", "gpt2-int8.onnx")
        r = self.quantctl_json("quantize", GPT2, "-o", out8, "--preset", "aipc-int8")
        self.assertEqual(r["job"]["recipe"]["int8_mode"], "INT8_MODE_DYNAMIC")
        self.assertEqual(sha256(out8), r["job"]["artifact"]["files"][0]["sha256"])
        self.ortCompare(GPT2, out8, 0.9)

    def testGgufMatchesLlamaQuantize(self):
        refs = json.loads(read_text(os.path.join(TESTDATA, "gguf", "reference.json")))["outputs"]
        want = {(o["input"], o["type"]): o for o in refs if not o["flags"]}
        src = os.path.join(TESTDATA, "gguf", "tiny-llama-f16.gguf")
        out = self.path("llama", "q4km.gguf")
        r = self.quantctl_json("quantize", src, "-o", out, "--preset", "gguf-q4km")
        self.assertEqual(r["job"]["recipe"]["gguf_type"], "Q4_K_M")
        self.assertEqual(r["model"]["format"], "MODEL_FORMAT_GGUF")
        self.assertEqual(r["output_files"], [out])
        self.assertEqual(sha256(out), want[("tiny-llama-f16.gguf", "Q4_K_M")]["sha256"])

    def testQuietPrintsNothingButTheResult(self):
        p = self.quantctl("--quiet", "quantize", GPT2, "-o", self.path("q.onnx"), "--precision", "fp32")
        self.assertEqual(p.stderr, "")
        self.assertEqual(p.stdout, "")

    def ortCompare(self, ref, test, min_cosine):
        script = os.path.join(SOURCE, "tests", "e2e", "ort_compare.mjs")
        node = shutil.which("node")
        if not node or not os.path.isdir(os.path.join(SOURCE, "tests", "e2e", "node_modules")):
            print("skipping the ONNX Runtime comparison: node or onnxruntime-node missing")
            return
        p = subprocess.run([node, script, "--ref", ref, "--test", test, "--min-cosine",
                            str(min_cosine)], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class Commands(QuantctlCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.big = os.path.join(cls.work, "chain.onnx")
        make_matmul_model(cls.big, 1024, 8)

    def testUploadSubmitWatchStatusListReportDownloadDelete(self):
        model_id = self.quantctl("upload", LLAMA, "--label", "origin=test").stdout.strip()
        self.assertEqual(model_id, model_id_of([LLAMA, LLAMA_DATA]))
        up = self.quantctl_json("upload", LLAMA)
        self.assertTrue(up["upload_skipped"])
        self.assertEqual(up["model"]["model_id"], model_id)

        job_id = self.quantctl("submit", model_id, "--precision", "int4", "--block-size", "16",
                               "--label", "team=ml", "--label", "build=7").stdout.strip()
        self.assertRegex(job_id, r"^job_[0-9a-f]{20}$")
        again = self.quantctl_json("submit", model_id, "--precision", "int4", "--block-size", "16")
        self.assertEqual(again["job_id"], job_id)  # same model + recipe: the same job

        final = self.quantctl_json("watch", job_id)
        self.assertEqual(final["state"], "JOB_STATE_SUCCEEDED")
        self.assertIn("SUCCEEDED", self.quantctl("watch", job_id).stdout)

        status = self.quantctl_json("status", job_id)
        self.assertEqual(status["job_id"], job_id)
        self.assertEqual(status["labels"], {"team": "ml", "build": "7"})
        text = self.quantctl("status", job_id).stdout
        self.assertRegex(text, r"state:\s+SUCCEEDED")
        self.assertIn("artifact:", text)

        listed = self.quantctl_json("list")
        self.assertIn(job_id, [j["job_id"] for j in listed["jobs"]])
        filtered = self.quantctl_json("list", "--state", "succeeded", "--label", "team=ml")
        self.assertEqual([j["job_id"] for j in filtered["jobs"]], [job_id])
        self.assertEqual(self.quantctl_json("list", "--state", "failed,cancelled",
                                            "--label", "team=ml")["jobs"], [])
        by_model = self.quantctl_json("list", "--model", model_id, "--limit", "0")
        self.assertIn(job_id, [j["job_id"] for j in by_model["jobs"]])
        self.assertTrue(all(j["model_id"] == model_id for j in by_model["jobs"]))
        table = self.quantctl("list", "--label", "build=7").stdout
        self.assertIn("JOB", table.splitlines()[0])
        self.assertIn(job_id, table)

        report = self.quantctl_json("report", job_id)
        self.assertEqual(report["precision"], "int4")
        self.assertGreater(int(report["tensors_converted"]), 0)
        self.assertGreater(len(report["tensors"]), 0)
        self.assertIn("sqnr_db", report["tensors"][0])
        table = self.quantctl("report", job_id, "--tensors", "3").stdout
        self.assertIn("TENSOR", table)
        self.assertIn("SQNR", table)
        self.assertIn("tensors:", table)

        out = self.path("dl", "llama-int4.onnx")
        dl = self.quantctl_json("download", job_id, "-o", out)
        self.assertEqual(dl["output_files"], [out, out + ".data"])
        files = {f["name"]: f for f in status["artifact"]["files"]}
        self.assertEqual(sha256(out + ".data"), files["model.onnx.data"]["sha256"])
        import onnx
        onnx.load(out)
        # Into a directory: the artifact's own names.
        d = self.quantctl_json("download", job_id, "-o", self.path("dl2") + "/")
        self.assertEqual(d["output_files"], [self.path("dl2", "model.onnx"),
                                             self.path("dl2", "model.onnx.data")])
        onnx.load(self.path("dl2", "model.onnx"))

        # submit straight from a file, then delete the finished job.
        job2 = self.quantctl("submit", GPT2, "--precision", "fp16").stdout.strip()
        self.quantctl("watch", job2)
        self.assertIn("deleted", self.quantctl("delete", job2).stdout)
        self.quantctl("status", job2, rc=2)

    def testCancel(self):
        job_id = self.quantctl("submit", self.big, "--precision", "int4", "--algorithm", "search",
                               "--block-size", "16").stdout.strip()
        cancelled = self.quantctl_json("cancel", job_id)
        self.assertEqual(cancelled["state"], "JOB_STATE_CANCELLED")
        self.quantctl("watch", job_id, rc=3)
        self.quantctl("download", job_id, "-o", self.path("never.onnx"), rc=3)
        # Cancelling a finished job leaves it as it is.
        done = self.quantctl("submit", GPT2, "--precision", "fp32").stdout.strip()
        self.quantctl("watch", done)
        self.assertEqual(self.quantctl_json("cancel", done)["state"], "JOB_STATE_SUCCEEDED")

    def testHealth(self):
        h = self.quantctl_json("health")
        self.assertEqual(h["status"], "SERVING")
        self.assertEqual(h["server"], self.server.address)
        self.assertIn("SERVING", self.quantctl("health").stdout)
        self.assertEqual(self.quantctl("--quiet", "health").stdout, "")


class ExitCodes(QuantctlCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tokens = os.path.join(cls.work, "tokens")
        with open(cls.tokens, "w") as f:
            f.write("# test tokens\ns3cret-token\n")
        cls.auth_server = Server(cls.work, "--auth-tokens", cls.tokens)

    @classmethod
    def tearDownClass(cls):
        cls.auth_server.stop()
        super().tearDownClass()

    def testUnavailableIs4(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        env = self.env(QUANTD_SERVER=f"127.0.0.1:{port}")
        self.quantctl("health", rc=4, env=env)
        self.quantctl("status", "job_00000000000000000000", rc=4, env=env)
        self.quantctl("quantize", GPT2, "-o", self.path("x.onnx"), "--precision", "fp16", rc=4,
                      env=env)
        err = self.quantctl_json("list", rc=4, env=env)
        self.assertEqual(err["error"]["code"], "UNAVAILABLE")
        self.assertEqual(err["error"]["exit_code"], 4)

    def testAuthenticationIs5(self):
        env = self.env(QUANTD_SERVER=self.auth_server.address)
        self.quantctl("list", rc=5, env=env)
        self.quantctl("--token", "wrong", "list", rc=5, env=env)
        err = self.quantctl_json("--token", "wrong", "upload", GPT2, rc=5, env=env)
        self.assertEqual(err["error"]["code"], "UNAUTHENTICATED")
        self.quantctl("--token", "s3cret-token", "list", env=env)
        env["QUANTD_TOKEN"] = "s3cret-token"
        r = self.quantctl_json("quantize", GPT2, "-o", self.path("auth.onnx"), "--precision",
                               "fp16", env=env)
        self.assertEqual(r["job"]["state"], "JOB_STATE_SUCCEEDED")

    def testJobFailedIs3(self):
        bad = self.path("corrupt.onnx")
        with open(bad, "wb") as f:
            f.write(os.urandom(4096))
        r = self.quantctl_json("quantize", bad, "-o", self.path("y.onnx"), "--precision", "int4",
                               rc=3)
        self.assertEqual(r["job"]["state"], "JOB_STATE_FAILED")
        self.assertTrue(r["job"]["error"]["message"])
        job_id = r["job"]["job_id"]
        self.quantctl("watch", job_id, rc=3)
        self.quantctl("report", job_id, rc=3)
        self.quantctl("download", job_id, "-o", self.path("z.onnx"), rc=3)
        self.assertEqual(self.quantctl_json("status", job_id)["state"], "JOB_STATE_FAILED")

    def testDataErrorIs6(self):
        # An ONNX model whose external data file is not next to it.
        lonely = self.path("lonely")
        os.makedirs(lonely)
        shutil.copy(LLAMA, lonely)
        err = self.quantctl_json("quantize", os.path.join(lonely, "model.onnx"), "-o",
                                 self.path("w.onnx"), "--precision", "fp16", rc=6)
        self.assertEqual(err["error"]["exit_code"], 6)
        # An output that cannot be written.
        blocker = self.path("not-a-dir")
        open(blocker, "w").close()
        self.quantctl("quantize", GPT2, "-o", os.path.join(blocker, "out.onnx"), "--precision",
                      "fp16", rc=6)

    def testUnknownJobIs2(self):
        self.quantctl("status", "job_00000000000000000000", rc=2)
        self.quantctl("status", "not-a-job", rc=2)
        self.quantctl("upload", self.path("missing.onnx"), rc=2)


def make_certificates(d):
    """CA, server (localhost, 127.0.0.1) and client certificates in `d`."""
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    script = (
        f"set -e; cd {d}; "
        f"openssl req -x509 {key} -keyout ca.key -out ca.pem -days 2 -subj /CN=quantctl-test-ca; "
        f"openssl req {key} -keyout server.key -out server.csr -subj /CN=localhost; "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile server.ext; "
        f"openssl req {key} -keyout client.key -out client.csr -subj /CN=quantctl-test-client; "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out client.pem -days 2")
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)


class Tls(QuantctlCase):
    """Mutual TLS: the server requires a client certificate from the test CA."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("the openssl command is missing")
        cls.work = tempfile.mkdtemp(prefix="quantctl-test-")
        cls.certs = os.path.join(cls.work, "certs")
        os.makedirs(cls.certs)
        make_certificates(cls.certs)
        c = lambda name: os.path.join(cls.certs, name)
        cls.server = Server(cls.work, "--tls-cert", c("server.pem"), "--tls-key", c("server.key"),
                            "--tls-client-ca", c("ca.pem"))
        cls.tls = ["--tls-ca", c("ca.pem"), "--tls-cert", c("client.pem"), "--tls-key",
                   c("client.key")]

    def testMutualTlsWorksEndToEnd(self):
        self.assertEqual(self.quantctl_json(*self.tls, "health")["status"], "SERVING")
        r = self.quantctl_json(*self.tls, "quantize", GPT2, "-o", self.path("tls.onnx"),
                               "--precision", "fp16")
        self.assertEqual(r["job"]["state"], "JOB_STATE_SUCCEEDED")
        self.assertEqual(sha256(self.path("tls.onnx")), r["job"]["artifact"]["files"][0]["sha256"])
        # The CA from the environment.
        env = self.env(QUANTD_TLS_CA=os.path.join(self.certs, "ca.pem"))
        self.quantctl(*self.tls[2:], "list", env=env)

    def testHandshakeFailuresAreUnavailable(self):
        ca = os.path.join(self.certs, "ca.pem")
        self.quantctl("health", rc=4)                          # plaintext to a TLS port
        self.quantctl("--tls", "health", rc=4)                 # unknown CA
        err = self.quantctl_json("--tls-ca", ca, "health", rc=4)   # no client certificate
        self.assertEqual(err["error"]["code"], "UNAVAILABLE")
        self.quantctl("--tls-ca", ca, "--tls-cert", os.path.join(self.certs, "client.pem"),
                      "health", rc=2)                          # --tls-cert without --tls-key
        self.quantctl("--tls-ca", self.path("missing.pem"), "health", rc=2)


class PlainOutput(QuantctlCase):

    def testQuantizeLogsOneLinePerPhase(self):
        p = self.quantctl("quantize", LLAMA, "-o", self.path("plain.onnx"), "--precision", "int4")
        lines = p.stderr.splitlines()
        self.assertTrue(any(l.startswith("upload: ") for l in lines), p.stderr)
        self.assertTrue(any(l.startswith("submitted job ") for l in lines), p.stderr)
        # The final state keeps the conversion's tensor counts.
        self.assertTrue(any(re.search(r": SUCCEEDED( \d+/\d+ tensors)?$", l) for l in lines),
                        p.stderr)
        self.assertTrue(any(l.startswith("download: ") and "sha256 verified" in l for l in lines))
        job_lines = [l for l in lines if l.startswith("job ")]
        for a, b in zip(job_lines, job_lines[1:]):
            self.assertNotEqual(a, b, "a repeated progress line")
        self.assertIn("wrote ", p.stdout)

    def testForcedTtyModeIsHonouredAndPlainIsDefault(self):
        # QUANTCTL_PROGRESS=plain and no terminal give the same plain output.
        p = self.quantctl("quantize", GPT2, "-o", self.path("p2.onnx"), "--precision", "fp16",
                          env=self.env(QUANTCTL_PROGRESS="plain"))
        self.assertIn("download: ", p.stderr)
        q = subprocess.run([QUANTCTL, "quantize", GPT2, "-o", self.path("p3.onnx"), "--precision",
                            "fp16"], capture_output=True, text=True,
                           env=self.env(QUANTCTL_PROGRESS="tty"), timeout=60)
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertIn("\x1b[K", q.stderr)


class TtyRendering(QuantctlCase):
    """Runs quantctl under a pseudo-terminal with `script`."""

    def script(self, args, rc=0):
        if not shutil.which("script"):
            self.skipTest("script (util-linux) missing")
        cmd = " ".join([QUANTCTL] + [f"'{a}'" for a in args]) + "; echo EXIT=$?"
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                           env=self.env(TERM="xterm"), timeout=120, cwd=self.work)
        out = p.stdout.decode(errors="replace")
        self.assertIn(f"EXIT={rc}", out, out)
        return out

    def testLiveBars(self):
        out = self.script(["quantize", LLAMA, "-o", self.path("tty.onnx"), "--precision", "int4",
                           "--limit-rate", "2M"])
        self.assertIn("\r", out)
        self.assertIn("\x1b[K", out)
        self.assertRegex(out, r"upload\s+\[[#.]{24}\]\s+\d+%.*/s\s+ETA")
        self.assertRegex(out, r"job\s+\[[#.]{24}\]\s+\d+%\s+(QUEUED|RUNNING|SUCCEEDED)")
        self.assertRegex(out, r"download[^\r\n]*\[[#.]{24}\]")
        self.assertIn("100%", out)
        self.assertIn("wrote ", out)

    def testQuietAndJsonUnderATerminal(self):
        out = self.script(["--quiet", "quantize", GPT2, "-o", self.path("q.onnx"), "--precision",
                           "fp16"])
        self.assertNotIn("\x1b", out)
        out = self.script(["--json", "--quiet", "health"])
        self.assertIn('"status":"SERVING"', out)


class UploadResume(QuantctlCase):

    def testUploadReadsOnceUnlessHashFirst(self):
        blob = self.path("once.gguf")
        with open(blob, "wb") as f:
            f.write(b"GGUF" + os.urandom((3 << 20) - 4))
        # Default: no separate hashing pass; the digest goes in the finish
        # message and the model id is the content's all the same.
        p = self.quantctl("upload", blob)
        self.assertEqual(p.stdout.strip(), model_id_of([blob]))
        self.assertNotIn("hash:", p.stderr)
        self.assertIn("upload: done", p.stderr)
        # The same unchanged file again: found by its upload id, not re-sent.
        self.assertIn("skipped", self.quantctl("upload", blob).stderr)
        # --hash-first: hashes up front; the server has the model: skipped.
        p = self.quantctl("--hash-first", "upload", blob)
        self.assertIn("hash: 1 file(s)", p.stderr)
        self.assertIn("skipped", p.stderr)
        self.assertEqual(p.stdout.strip(), model_id_of([blob]))
        # --hash-first on new content: hashed, uploaded with the header digest.
        other = self.path("once2.gguf")
        with open(other, "wb") as f:
            f.write(b"GGUF" + os.urandom((1 << 20) - 4))
        p = self.quantctl("upload", other, "--hash-first")
        self.assertIn("hash: 1 file(s)", p.stderr)
        self.assertIn("upload: done", p.stderr)
        self.assertEqual(p.stdout.strip(), model_id_of([other]))

    def testChangedFileIsUploadedAgain(self):
        # Same name and size, new content: a new upload (the upload id
        # follows the file's identity and times), never the old model.
        blob = self.path("changing.gguf")
        with open(blob, "wb") as f:
            f.write(b"GGUF" + os.urandom((1 << 20) - 4))
        first = self.quantctl("upload", blob).stdout.strip()
        st = os.stat(blob)
        with open(blob, "r+b") as f:
            f.seek(100)
            f.write(os.urandom(16))
        os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime
        p = self.quantctl("upload", blob)
        self.assertNotIn("skipped", p.stderr)
        self.assertEqual(p.stdout.strip(), model_id_of([blob]))
        self.assertNotEqual(p.stdout.strip(), first)

    def testKilledUploadResumes(self):
        blob = self.path("blob.gguf")
        with open(blob, "wb") as f:
            f.write(b"GGUF" + os.urandom((6 << 20) - 4))
        p = start_and_wait_for(self, ["upload", blob, "--limit-rate", "1M"], self.env(), "upload: ")
        time.sleep(1.5)  # ~1.5 MiB of 6 MiB
        kill(p)
        p = self.quantctl("upload", blob)
        self.assertEqual(p.stdout.strip(), model_id_of([blob]))
        m = re.search(r"resuming at ([\d.]+) (KiB|MiB)", p.stderr)
        self.assertTrue(m, p.stderr)
        resumed = float(m.group(1)) * (1 << (10 if m.group(2) == "KiB" else 20))
        self.assertGreater(resumed, 256 << 10)
        self.assertLess(resumed, 6 << 20)
        # Now complete: a third run skips the upload.
        self.assertIn("skipped", self.quantctl("upload", blob).stderr)

    def testCtrlCDuringUploadExits130AndResumes(self):
        blob = self.path("blob2.gguf")
        with open(blob, "wb") as f:
            f.write(b"GGUF" + os.urandom((4 << 20) - 4))
        p = start_and_wait_for(self, ["upload", blob, "--limit-rate", "1M"], self.env(), "upload: ")
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        err = p.stderr.read()
        p.wait(30)
        p.stderr.close()
        self.assertEqual(p.returncode, 130, err)
        self.assertIn("run the same command again to resume the upload", err)
        p = self.quantctl("upload", blob)
        self.assertIn("resuming at", p.stderr)
        self.assertEqual(p.stdout.strip(), model_id_of([blob]))


class DownloadResume(QuantctlCase):

    def testKilledDownloadResumes(self):
        big = self.path("chain.onnx")
        make_matmul_model(big, 1024, 4)  # 16 MiB float32 -> 8 MiB fp16
        job_id = self.quantctl("submit", big, "--precision", "fp16").stdout.strip()
        self.quantctl("watch", job_id)
        out = self.path("dl", "chain-fp16.onnx")
        p = start_and_wait_for(self, ["download", job_id, "-o", out, "--limit-rate", "2M"],
                               self.env(), "download ")
        time.sleep(1.5)  # ~3 MiB of 8 MiB
        kill(p)
        self.assertFalse(os.path.exists(out))
        part = out + ".part"
        self.assertTrue(os.path.exists(part))
        partial = os.path.getsize(part)
        self.assertGreater(partial, 0)
        d = self.quantctl("download", job_id, "-o", out)
        self.assertIn("resuming at", d.stderr)
        self.assertFalse(os.path.exists(part))
        status = self.quantctl_json("status", job_id)
        self.assertEqual(sha256(out), status["artifact"]["files"][0]["sha256"])

    def testCorruptPartFileIsDetectedAndRedownloaded(self):
        job_id = self.quantctl("submit", GPT2, "--precision", "fp16").stdout.strip()
        self.quantctl("watch", job_id)
        out = self.path("c", "gpt2.onnx")
        os.makedirs(self.path("c"))
        with open(out + ".part", "wb") as f:
            f.write(b"\0" * 1000)  # a stale prefix that does not match
        self.quantctl("download", job_id, "-o", out, rc=6)
        self.assertFalse(os.path.exists(out + ".part"))
        self.quantctl("download", job_id, "-o", out)
        self.assertEqual(sha256(out),
                         self.quantctl_json("status", job_id)["artifact"]["files"][0]["sha256"])


class CtrlCCancels(QuantctlCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.big = os.path.join(cls.work, "chain.onnx")
        make_matmul_model(cls.big, 1024, 8)

    def startQuantize(self, *extra):
        p = subprocess.Popen([QUANTCTL, "quantize", self.big, "-o", self.path("c.onnx"),
                              "--precision", "int4", "--algorithm", "search", *extra],
                             env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        lines = []
        deadline = time.time() + 60
        job_id = None
        while time.time() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.match(r"submitted job (job_[0-9a-f]+)", line)
            if m:
                job_id = m.group(1)
            if job_id and ("RUNNING" in line or "QUEUED" in line):
                return p, job_id, lines
        p.kill()
        self.fail("the job did not start: " + "".join(lines))

    def testInterruptCancelsTheJob(self):
        p, job_id, lines = self.startQuantize("--block-size", "16")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        err = "".join(lines) + err
        self.assertEqual(p.returncode, 3, err)
        self.assertIn("cancelling job " + job_id, err)
        self.assertEqual(self.quantctl_json("status", job_id)["state"], "JOB_STATE_CANCELLED")
        self.assertFalse(os.path.exists(self.path("c.onnx")))

    def testDetachLeavesTheJobRunning(self):
        p, job_id, lines = self.startQuantize("--block-size", "32", "--detach")
        p.send_signal(signal.SIGINT)
        interrupted = time.time()
        out, err = p.communicate(timeout=60)
        self.assertLess(time.time() - interrupted, 5, "quantctl waited for the job")
        self.assertEqual(p.returncode, 130, "".join(lines) + err)
        self.assertIn("detached", err)
        state = self.quantctl_json("status", job_id)["state"]
        self.assertIn(state, ("JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"))
        self.quantctl("cancel", job_id)  # do not keep burning CPU


class ServerRestart(QuantctlCase):

    def testWatchSurvivesKill9AndRestart(self):
        big = self.path("chain.onnx")
        make_matmul_model(big, 1024, 8)
        job_id = self.quantctl("submit", big, "--precision", "int4", "--algorithm", "search",
                               "--block-size", "16").stdout.strip()
        watch = start_and_wait_for(self, ["watch", job_id], self.env(), f"job {job_id}: RUNNING")
        self.server.kill9_and_restart(1)
        rest = watch.stderr.read()
        watch.wait(120)
        watch.stderr.close()
        self.assertEqual(watch.returncode, 0, rest + self.server.read_log())
        self.assertIn("SUCCEEDED", rest)
        job = self.quantctl_json("status", job_id)
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED")
        # Re-run after the kill: the kill is not charged to the job (only the
        # run that finished is), but counted as an interruption while it ran alone.
        self.assertEqual(job["attempts"], 1)
        self.assertEqual(job.get("interruptions", 0), 1)
        self.quantctl("download", job_id, "-o", self.path("after-restart.onnx"))


class CheckpointFolder(QuantctlCase):
    """Hugging Face checkpoint folders: `quantctl quantize DIR` through the
    server gives the converter's bytes (reference.json), and files a
    conversion does not read are skipped and listed."""

    CHECKPOINTS = ("phi3-tiny-shared", "llama-tiny-shared")

    def copy(self, name):
        """A writable copy of a shared checkpoint (same folder name) with a
        model card and a PyTorch duplicate of the weights beside it."""
        dst = self.path("copies", name)
        shutil.copytree(os.path.join(TESTDATA, "hf", "checkpoints", name), dst)
        for f in os.listdir(dst):
            os.chmod(os.path.join(dst, f), 0o644)
        with open(os.path.join(dst, "README.md"), "w") as f:
            f.write("---\nlicense: mit\n---\n# card\n")
        with open(os.path.join(dst, "pytorch_model.bin"), "wb") as f:
            f.write(os.urandom(4096))
        return dst

    def testFoldersGiveTheConvertersBytesAndSkipWhatIsNotRead(self):
        with open(os.path.join(TESTDATA, "hf", "reference.json")) as f:
            ref = json.load(f)["checkpoints"]
        for name in self.CHECKPOINTS:
            folder = self.copy(name)
            for outtype in ("f16", "q8_0"):
                out = self.path("out", f"{name}-{outtype}.gguf")
                p = self.quantctl("quantize", folder, "-o", out, "--gguf-type", outtype.upper())
                self.assertIn("upload: skipping 2 file(s) a conversion does not read: "
                              "README.md, pytorch_model.bin", p.stderr)
                self.assertEqual(sha256(out), ref[name]["gguf"][outtype]["sha256"],
                                 f"{name} {outtype}\n{p.stderr}")
        # The skip list and the name in JSON; the job's final progress has
        # the tensor counts.
        folder = self.path("copies", "phi3-tiny-shared")
        up = self.quantctl_json("upload", folder)
        self.assertEqual(up["skipped_files"], ["README.md", "pytorch_model.bin"])
        self.assertEqual(up["model"]["format"], "MODEL_FORMAT_HF_CHECKPOINT")
        self.assertEqual(up["model"]["model_name"], "phi3-tiny-shared")
        self.assertEqual([f["name"] for f in up["model"]["files"]][0], "config.json")
        self.assertNotIn("README.md", [f["name"] for f in up["model"]["files"]])
        job = self.quantctl("submit", up["model"]["model_id"], "--gguf-type", "Q8_0").stdout.strip()
        done = self.quantctl_json("watch", job)
        self.assertEqual(done["state"], "JOB_STATE_SUCCEEDED")
        self.assertEqual(done["recipe"]["model_name"], "phi3-tiny-shared")
        total = int(done["progress"]["tensors_total"])
        self.assertGreater(total, 0)
        self.assertEqual(int(done["progress"]["tensors_done"]), total)

    def testModelNameOverridesTheFolderName(self):
        folder = self.path("copies", "phi3-tiny-shared")
        if not os.path.isdir(folder):
            folder = self.copy("phi3-tiny-shared")
        out = self.path("out", "renamed.gguf")
        self.quantctl("quantize", folder, "-o", out, "--gguf-type", "F16",
                      "--model-name", "Phi-3.5-mini-instruct")
        with open(out, "rb") as f:
            head = f.read(1 << 16)
        self.assertIn(b"Phi 3.5", head)  # general.name from the override
        self.assertNotIn(b"Phi3 Tiny Shared", head)
        # A missing shard is refused before anything is uploaded (exit 2).
        llama = self.copy("llama-tiny-shared") if not os.path.isdir(
            self.path("copies", "llama-tiny-shared")) else self.path("copies", "llama-tiny-shared")
        broken = self.path("broken", "llama-tiny-shared")
        shutil.copytree(llama, broken)
        os.remove(os.path.join(broken, "model-00002-of-00002.safetensors"))
        p = self.quantctl("upload", broken, rc=2)
        self.assertIn("model-00002-of-00002.safetensors, which is missing", p.stderr)


class PythonClient(QuantctlCase):
    """The proof that another language can use the API from the proto alone."""

    def testExampleUploadsSubmitsWatchesDownloads(self):
        stubs = self.path("stubs")
        gen = subprocess.run(["sh", os.path.join(SOURCE, "client", "python", "generate.sh"), stubs],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(gen.returncode, 0, gen.stdout + gen.stderr)
        env = self.env(PYTHONPATH=stubs + os.pathsep + os.path.join(SOURCE, "client", "python"))
        example = os.path.join(SOURCE, "client", "python", "example.py")
        out_dir = self.path("py-out")
        p = subprocess.run([PYTHON, example, LLAMA, out_dir, "--data", LLAMA_DATA,
                            "--server", self.server.address, "--precision", "INT4",
                            "--block-size", "32"],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        result = json.loads(p.stdout)
        self.assertEqual(result["state"], "JOB_STATE_SUCCEEDED")
        self.assertEqual(result["model_id"], model_id_of([LLAMA, LLAMA_DATA]))
        self.assertEqual([os.path.basename(f) for f in result["files"]],
                         ["model.onnx", "model.onnx.data"])
        # quantctl sees the Python client's job, with the same artifact.
        status = self.quantctl_json("status", result["job_id"])
        self.assertEqual(status["labels"], {"client": "python"})
        for f in status["artifact"]["files"]:
            self.assertEqual(sha256(os.path.join(out_dir, f["name"])), f["sha256"])
        import onnx
        onnx.load(os.path.join(out_dir, "model.onnx"))

        # A failing job is reported as such (exit 3).
        bad = self.path("bad.onnx")
        with open(bad, "wb") as f:
            f.write(os.urandom(1000))
        p = subprocess.run([PYTHON, example, bad, self.path("py-bad"), "--server",
                            self.server.address, "--precision", "FP16"],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertEqual(json.loads(p.stdout)["state"], "JOB_STATE_FAILED")


class Mlx(QuantctlCase):
    """An MLX folder through the service equals `quantd quantize`'s, byte for byte."""

    def folder(self, d):
        return {name: read_bytes(os.path.join(d, name)) for name in sorted(os.listdir(d))}

    def testServedFolderEqualsOfflineQuantize(self):
        recipe = ["--format", "mlx", "--mlx-recipe", "mixed_3_6", "--group-size", "32"]
        offline = self.path("offline-mlx")
        p = subprocess.run([QUANTD, "quantize", LLAMA_CKPT, "-o", offline + "/", "--quiet",
                            *recipe], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        # The checkpoint folder as one model.
        out = self.path("served", "mlx")
        r = self.quantctl_json("quantize", LLAMA_CKPT, "-o", out + "/", *recipe)
        job = r["job"]
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED")
        self.assertEqual(job["recipe"]["format"], "MODEL_FORMAT_MLX")
        self.assertTrue(job["artifact"]["folder"])
        self.assertEqual(job["report"]["format"], "mlx")
        self.assertEqual(job["report"]["precision"], "mixed_3_6")
        self.assertTrue(any("sqnr_db" in t for t in job["report"]["tensors"]))
        served = self.folder(out)
        self.assertEqual(sorted(served), sorted(self.folder(offline)))
        for name, data_bytes in self.folder(offline).items():
            self.assertTrue(served[name] == data_bytes, name)
        self.assertIn("model.safetensors", served)
        self.assertIn("tokenizer.json", served)
        self.assertEqual(sorted(r["output_files"]), sorted(os.path.join(out, n) for n in served))
        self.assertFalse(os.path.exists(out + ".download"))

        # `download` writes the folder again; a folder in the way is refused
        # and left alone.
        again = self.path("again")
        self.quantctl("download", job["job_id"], "-o", again)
        self.assertEqual(self.folder(again), served)
        p = self.quantctl("download", job["job_id"], "-o", again, rc=None)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not an empty folder", p.stderr)
        self.assertEqual(self.folder(again), served)

    def testNonCheckpointModelIsRefusedAtSubmit(self):
        r = self.quantctl_json("quantize", GPT2, "-o", self.path("gpt2-mlx"), "--format", "mlx",
                               rc=2)
        self.assertIn("format mlx converts a Hugging Face checkpoint", json.dumps(r))
        self.assertFalse(os.path.exists(self.path("gpt2-mlx")))

class Genai(QuantctlCase):
    """An ONNX Runtime GenAI folder through the service equals `quantd quantize`'s."""

    def folder(self, d):
        return {name: read_bytes(os.path.join(d, name)) for name in sorted(os.listdir(d))}

    def testServedFolderEqualsOfflineQuantize(self):
        for recipe in (["--format", "onnx", "--precision", "int4"], ["--preset", "mobile-int4"]):
            tag = recipe[-1]
            offline = self.path("offline-" + tag)
            p = subprocess.run([QUANTD, "quantize", LLAMA_CKPT, "-o", offline + "/", "--quiet",
                                *recipe], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            out = self.path("served", tag)
            r = self.quantctl_json("quantize", LLAMA_CKPT, "-o", out + "/", *recipe)
            job = r["job"]
            self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED", json.dumps(job))
            self.assertTrue(job["artifact"]["folder"])
            self.assertEqual(job["report"]["format"], "onnx")
            self.assertEqual(job["report"]["precision"], "int4")
            served = self.folder(out)
            self.assertEqual(sorted(served), sorted(self.folder(offline)))
            for name, data_bytes in self.folder(offline).items():
                self.assertTrue(served[name] == data_bytes, name)
            for name in ("model.onnx", "model.onnx.data", "genai_config.json", "tokenizer.json",
                         "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
                self.assertIn(name, served)
            for f in job["artifact"]["files"]:
                self.assertEqual(sha256(os.path.join(out, f["name"])), f["sha256"])
            config = json.loads(served["genai_config.json"])
            self.assertEqual(config["model"]["type"], "llama")
            import onnx
            model = onnx.load(os.path.join(out, "model.onnx"), load_external_data=False)
            ops = {n.op_type for n in model.graph.node}
            self.assertIn("MatMulNBits", ops)
            self.assertIn("GroupQueryAttention", ops)

    def testCheckpointWithoutTargetIsRefusedAtSubmit(self):
        r = self.quantctl_json("quantize", LLAMA_CKPT, "-o", self.path("nothing"), rc=2)
        self.assertIn("no target", json.dumps(r))
        self.assertFalse(os.path.exists(self.path("nothing")))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    unittest.main(argv=[sys.argv[0], "-v", sys.argv[1]])
