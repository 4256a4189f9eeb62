#!/usr/bin/env python3
"""Asks a running quantd for its services over gRPC server reflection
(grpc.reflection.v1alpha, raw bytes: no generated code needed) and checks
that quantd.v1.Quantd and grpc.health.v1.Health are listed.

usage: reflection_check.py HOST:PORT   (exit 0 when both are listed)
"""
import sys

import grpc


def main():
    channel = grpc.insecure_channel(sys.argv[1])
    call = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    # ServerReflectionRequest{list_services: ""}: field 7, length-delimited.
    responses = call(iter([b"\x3a\x00"]), timeout=10)
    raw = next(iter(responses))
    ok = b"quantd.v1.Quantd" in raw and b"grpc.health.v1.Health" in raw
    print("services listed" if ok else "missing services: %r" % raw)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
