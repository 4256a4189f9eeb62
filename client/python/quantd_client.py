"""A small Python client for the Quantd API, written from the proto alone.

Stubs come from `generate.sh OUT_DIR` (Debian's python3-grpc-tools); put
OUT_DIR on sys.path (or PYTHONPATH) before importing this module.

    from quantd_client import Client
    c = Client("127.0.0.1:7443")
    model = c.upload(["model.onnx", "model.onnx.data"])
    job = c.submit(model.model_id, precision="INT4", block_size=32)
    for job in c.watch(job.job_id):
        print(job.state, job.progress.phase)
    paths = c.download(job.job_id, "out/")

Uploads resume: the upload id is derived from the files' digests, so a second
call after a broken upload continues from the server's committed bytes.
Downloads resume from a `<file>.part` beside the target and are verified
against the server's sha256 before the atomic rename.
"""

import hashlib
import os

import grpc

from quantd.v1 import quantd_pb2 as pb
from quantd.v1 import quantd_pb2_grpc as pb_grpc
import health_pb2
import health_pb2_grpc

CHUNK = 1 << 20
FINAL_STATES = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def model_id_of(files):
    """The server's model id for [(name, size, sha256)]: see BlobStore."""
    identity = "quantd-model-v1\n"
    for name, size, digest in files:
        identity += f"{name}\n{size}\n{digest}\n"
    return "sha256:" + hashlib.sha256(identity.encode()).hexdigest()


class Client:
    """Thin wrapper over the generated stub. Not thread-safe per call stream."""

    def __init__(self, target, token=None, root_certificates=None, timeout=60):
        if root_certificates is not None:
            channel = grpc.secure_channel(
                target, grpc.ssl_channel_credentials(root_certificates=root_certificates))
        else:
            channel = grpc.insecure_channel(target)
        self.channel = channel
        self.stub = pb_grpc.QuantdStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        self.timeout = timeout

    # ------------------------------------------------------------ models
    def upload(self, paths, labels=None, on_progress=None, model_name=""):
        """Uploads the files (first: the model proper) and returns the Model.

        Skips the upload when the server already holds the same content.
        A Hugging Face checkpoint lists config.json first and needs
        `model_name`, the folder's name (see docs/api.md).
        """
        files = []
        for p in paths:
            files.append((os.path.basename(p), os.path.getsize(p), sha256_file(p)))
        model_id = model_id_of(files)
        try:
            return self.stub.GetModel(pb.GetModelRequest(model_id=model_id),
                                      metadata=self.metadata, timeout=self.timeout)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
        upload_id = "py-" + model_id[7:7 + 40]
        offset = 0
        try:
            status = self.stub.GetUploadStatus(pb.GetUploadStatusRequest(upload_id=upload_id),
                                               metadata=self.metadata, timeout=self.timeout)
            offset = status.committed_bytes
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
        header = pb.UploadHeader(upload_id=upload_id, labels=labels or {},
                                 model_name=model_name)
        for name, size, digest in files:
            header.files.add(name=name, size_bytes=size, sha256=digest)
        total = sum(f[1] for f in files)

        def requests():
            yield pb.UploadRequest(header=header)
            pos = 0
            for path, (_, size, _) in zip(paths, files):
                if pos + size <= offset:
                    pos += size
                    continue
                with open(path, "rb") as f:
                    skip = max(0, offset - pos)
                    f.seek(skip)
                    at = pos + skip
                    while True:
                        data = f.read(CHUNK)
                        if not data:
                            break
                        yield pb.UploadRequest(chunk=pb.UploadChunk(offset=at, data=data))
                        at += len(data)
                        if on_progress:
                            on_progress(at, total)
                pos += size
            yield pb.UploadRequest(finish=pb.UploadFinish(sha256=[f[2] for f in files]))

        return self.stub.UploadModel(requests(), metadata=self.metadata)

    # ------------------------------------------------------------ jobs
    def submit(self, model_id, preset="", labels=None, priority=0, idempotency_key="",
               **recipe_fields):
        """Submits a job. Recipe fields as in quantd.v1.Recipe; enum fields take
        their names without prefix, e.g. precision="INT4"."""
        recipe = pb.Recipe(preset=preset)
        for key, value in recipe_fields.items():
            if key == "precision":
                value = pb.Precision.Value("PRECISION_" + value.upper())
            elif key == "format":
                value = pb.ModelFormat.Value("MODEL_FORMAT_" + value.upper())
            setattr(recipe, key, value)
        req = pb.SubmitJobRequest(model_id=model_id, recipe=recipe, labels=labels or {},
                                  priority=priority, idempotency_key=idempotency_key)
        return self.stub.SubmitJob(req, metadata=self.metadata, timeout=self.timeout)

    def get(self, job_id):
        return self.stub.GetJob(pb.GetJobRequest(job_id=job_id), metadata=self.metadata,
                                timeout=self.timeout)

    def cancel(self, job_id):
        return self.stub.CancelJob(pb.CancelJobRequest(job_id=job_id), metadata=self.metadata,
                                   timeout=self.timeout)

    def watch(self, job_id):
        """Yields the Job at every event until it reaches a final state."""
        for event in self.stub.WatchJob(pb.WatchJobRequest(job_id=job_id),
                                        metadata=self.metadata):
            yield event.job
            if event.final or event.job.state in FINAL_STATES:
                return

    # ------------------------------------------------------------ artifacts
    def download(self, job_id, out_dir, on_progress=None):
        """Downloads every artifact file of a succeeded job into out_dir (under
        the artifact's names), resuming from `<name>.part`, verifying sha256,
        and renaming atomically. Returns the paths."""
        job = self.get(job_id)
        if job.state != pb.JOB_STATE_SUCCEEDED:
            raise RuntimeError(f"job {job_id} is {pb.JobState.Name(job.state)}")
        os.makedirs(out_dir, exist_ok=True)
        paths = []
        for info in job.artifact.files:
            final = os.path.join(out_dir, info.name)
            part = final + ".part"
            offset = os.path.getsize(part) if os.path.exists(part) else 0
            if offset > info.size_bytes:
                os.remove(part)
                offset = 0
            h = hashlib.sha256()
            if offset:
                with open(part, "rb") as f:
                    for block in iter(lambda: f.read(CHUNK), b""):
                        h.update(block)
            with open(part, "ab") as out:
                if offset < info.size_bytes:
                    req = pb.DownloadArtifactRequest(job_id=job_id, file_name=info.name,
                                                     offset=offset)
                    for chunk in self.stub.DownloadArtifact(req, metadata=self.metadata):
                        out.write(chunk.data)
                        h.update(chunk.data)
                        offset += len(chunk.data)
                        if on_progress:
                            on_progress(info.name, offset, info.size_bytes)
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != info.sha256:
                os.remove(part)
                raise IOError(f"{info.name}: sha256 mismatch; downloaded file discarded")
            os.replace(part, final)
            paths.append(final)
        return paths

    def healthy(self):
        resp = self.health.Check(health_pb2.HealthCheckRequest(service=""),
                                 metadata=self.metadata, timeout=self.timeout)
        return resp.status == health_pb2.HealthCheckResponse.SERVING
