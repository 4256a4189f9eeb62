#!/usr/bin/env python3
"""Upload a model, submit a job, watch it and download the result.

    PYTHONPATH=STUBS:client/python python3 client/python/example.py \
        --server 127.0.0.1:7443 model.onnx OUT_DIR --precision INT4

External data files next to the model are passed as extra arguments:
    example.py model.onnx OUT --data model.onnx.data --preset mobile-int4
Prints one JSON object: the model id, job id, final state and output paths.
Exit status: 0 succeeded, 3 job failed/cancelled, 4 server unavailable.
"""

import argparse
import json
import os
import sys

import grpc

from quantd.v1 import quantd_pb2 as pb
from quantd_client import Client


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out_dir")
    ap.add_argument("--data", action="append", default=[], help="external data file")
    ap.add_argument("--server", default=os.environ.get("QUANTD_SERVER", "127.0.0.1:7443"))
    ap.add_argument("--token", default=os.environ.get("QUANTD_TOKEN"))
    ap.add_argument("--preset", default="")
    ap.add_argument("--precision", default=None, help="FP32, FP16, INT8, INT4")
    ap.add_argument("--block-size", type=int, default=None)
    args = ap.parse_args()

    client = Client(args.server, token=args.token)
    try:
        model = client.upload([args.model] + args.data,
                              on_progress=lambda done, total: None)
        print(f"uploaded {model.model_id} ({model.size_bytes} bytes)", file=sys.stderr)
        fields = {}
        if args.precision:
            fields["precision"] = args.precision
        if args.block_size:
            fields["block_size"] = args.block_size
        job = client.submit(model.model_id, preset=args.preset, labels={"client": "python"},
                            **fields)
        print(f"submitted {job.job_id}", file=sys.stderr)
        last = None
        for job in client.watch(job.job_id):
            key = (job.state, job.progress.phase)
            if key != last:
                print(f"{pb.JobState.Name(job.state)} {job.progress.phase} "
                      f"{job.progress.tensors_done}/{job.progress.tensors_total}",
                      file=sys.stderr)
                last = key
        result = {"model_id": model.model_id, "job_id": job.job_id,
                  "state": pb.JobState.Name(job.state), "files": []}
        if job.state != pb.JOB_STATE_SUCCEEDED:
            result["error"] = job.error.message
            print(json.dumps(result))
            return 3
        result["files"] = client.download(job.job_id, args.out_dir)
        print(json.dumps(result))
        return 0
    except grpc.RpcError as e:
        print(f"example: {e.code().name}: {e.details()}", file=sys.stderr)
        return 4 if e.code() == grpc.StatusCode.UNAVAILABLE else 1


if __name__ == "__main__":
    sys.exit(main())
