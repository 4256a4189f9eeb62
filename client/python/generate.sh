#!/bin/sh
# Generates the Python gRPC stubs for the Quantd API from the proto alone,
# with Debian's packages (no PyPI):
#   client/python/generate.sh OUT_DIR
# then put OUT_DIR and client/python on PYTHONPATH. Stubs are build output:
# never committed.
#
# Uses protoc (protobuf-compiler 3.21) with grpc_python_plugin
# (protobuf-compiler-grpc) — they understand proto3 `optional`. Debian's
# python3-grpc-tools bundles a protoc too old for it, so it is only the
# fallback when protoc is missing.
set -eu
out=${1:?usage: generate.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
proto=${QUANTD_PROTO_DIR:-$here/../../proto}
python=${QUANTD_PYTHON:-/usr/bin/python3}
mkdir -p "$out"
# grpc.health.v1 is generated as top-level modules health_pb2(_grpc) so it does
# not shadow the grpc package itself.
gen() {  # gen INCLUDE_DIR FILE
  if command -v protoc >/dev/null && command -v grpc_python_plugin >/dev/null; then
    protoc -I "$1" --python_out="$out" --grpc_python_out="$out" \
      --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" "$2"
  else
    "$python" -m grpc_tools.protoc -I "$1" --python_out="$out" --grpc_python_out="$out" "$2"
  fi
}
gen "$proto" "$proto/quantd/v1/quantd.proto"
gen "$proto/grpc/health/v1" "$proto/grpc/health/v1/health.proto"
echo "stubs in $out"
