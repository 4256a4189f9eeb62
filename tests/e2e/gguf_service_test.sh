#!/usr/bin/env bash
# GGUF through the service: `quantd serve` + `quantctl quantize` turn the
# shared tiny-llama F32 model into Q4_K_M, and the downloaded file must be
# byte-identical to llama-quantize's (reference.json).
#
# Usage: gguf_service_test.sh QUANTCTL   (env: QUANTD_BIN, QUANTD_TESTDATA)
set -euo pipefail
quantctl="$1"
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
"$QUANTD_BIN" serve --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "$tmp/data" \
  > "$tmp/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "server did not start:"; cat "$tmp/serve.log"; exit 1; }
server="127.0.0.1:$(cat "$tmp/port")"
"$quantctl" --server "$server" quantize "$QUANTD_TESTDATA/gguf/tiny-llama-f32.gguf" \
  -o "$tmp/q4km.gguf" --gguf-type Q4_K_M
want=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
print([o['sha256'] for o in d['outputs'] if o['file']=='out-f32-Q4_K_M.gguf'][0])" \
  "$QUANTD_TESTDATA/gguf/reference.json")
got=$(sha256sum "$tmp/q4km.gguf" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "FAIL: service output sha256 $got, llama-quantize $want"
  exit 1
fi
echo "ok: GGUF job through quantd serve + quantctl is byte-identical to llama-quantize ($got)"
