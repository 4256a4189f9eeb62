#!/usr/bin/env bash
# GGUF importance matrices and split models through the service (`quantd
# serve` + quantctl):
#  1. quantctl quantize --imatrix FILE: the matrix travels with the model's
#     upload as a named extra file; the downloaded Q4_K_M is byte-identical to
#     llama-quantize --imatrix (gguf-imatrix/reference.json).
#  2. quantctl submit MODEL_ID --imatrix FILE: the model is stored already,
#     the matrix goes up as its own blob (recipe imatrix "model:<id>"); the
#     IQ4_XS result is byte-identical too.
#  3. IQ2_XXS-class types without a matrix are refused by the job.
#  4. A split model (3 parts, uploaded together) with --keep-split comes back
#     as 3 parts named after -o, and they are the parts quantd writes offline.
#  5. quantctl quantize --dry-run (IQ3_M with the matrix, a --tensor-type
#     override): the served plan is the plan `quantd quantize --dry-run`
#     prints, its size is the size of the real job's file, nothing is written.
#
# Usage: gguf_imatrix_service_test.sh QUANTCTL   (env: QUANTD_BIN, QUANTD_TESTDATA)
set -euo pipefail
quantctl="$1"
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
data="$QUANTD_TESTDATA/gguf-imatrix"
ref="$data/reference.json"
"$QUANTD_BIN" serve --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "$tmp/data" \
  > "$tmp/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "server did not start:"; cat "$tmp/serve.log"; exit 1; }
q() { "$quantctl" --server "127.0.0.1:$(cat "$tmp/port")" "$@"; }
want() {
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['runs'][sys.argv[2]]['sha256'])" \
    "$ref" "$1"
}

q quantize "$data/imatrix-tiny-f32.gguf" -o "$tmp/q4km.gguf" --gguf-type Q4_K_M \
  --imatrix "$data/imatrix-tiny.dat"
got=$(sha256sum "$tmp/q4km.gguf" | cut -d' ' -f1)
[ "$got" = "$(want Q4_K_M)" ] || { echo "FAIL: Q4_K_M with imatrix: $got"; exit 1; }
echo "ok: Q4_K_M --imatrix through the service is byte-identical to llama-quantize"

model=$(q upload "$data/imatrix-tiny-f32.gguf" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['model']['model_id'])")
job=$(q submit "$model" --gguf-type IQ4_XS --imatrix "$data/imatrix-tiny.dat" --json \
  | python3 -c "import json,sys; print(json.load(sys.stdin)['job_id'])")
q watch "$job" > /dev/null
q download "$job" -o "$tmp/iq4xs.gguf" > /dev/null
got=$(sha256sum "$tmp/iq4xs.gguf" | cut -d' ' -f1)
[ "$got" = "$(want IQ4_XS)" ] || { echo "FAIL: IQ4_XS with a separately uploaded imatrix: $got"; exit 1; }
echo "ok: IQ4_XS with the matrix as its own blob (model:<id>) is byte-identical"

if q quantize "$data/imatrix-tiny-f32.gguf" -o "$tmp/x.gguf" --gguf-type IQ2_XXS 2>"$tmp/err"; then
  echo "FAIL: IQ2_XXS without an importance matrix was accepted"; exit 1
fi
grep -q "importance matrix" "$tmp/err"
echo "ok: IQ2_XXS without a matrix refused: $(head -c 160 "$tmp/err")"

"$QUANTD_BIN" quantize "$QUANTD_TESTDATA/gguf/tiny-llama-f32.gguf" -o "$tmp/parts.gguf" \
  --gguf-type F32 --split-max-size 6M -q
"$QUANTD_BIN" quantize "$tmp/parts-00001-of-00003.gguf" -o "$tmp/local.gguf" --gguf-type Q4_K_M \
  --keep-split -q
q quantize "$tmp/parts-00001-of-00003.gguf" -o "$tmp/svc.gguf" --gguf-type Q4_K_M --keep-split
for i in 1 2 3; do
  cmp "$tmp/local-0000$i-of-00003.gguf" "$tmp/svc-0000$i-of-00003.gguf"
done
echo "ok: a 3-part split model through the service with --keep-split gives the 3 parts quantd writes"

plan_args=(--gguf-type IQ3_M --imatrix "$data/imatrix-tiny.dat" --tensor-type 'ffn_down=q6_k')
"$QUANTD_BIN" quantize "$data/imatrix-tiny-f32.gguf" -o "$tmp/plan.gguf" "${plan_args[@]}" --dry-run \
  > "$tmp/plan-local.txt"
q quantize "$data/imatrix-tiny-f32.gguf" "${plan_args[@]}" --dry-run > "$tmp/plan-svc.txt"
[ ! -e "$tmp/plan.gguf" ] || { echo "FAIL: the offline dry run wrote a file"; exit 1; }
# Every line but the last (which names the output) is the per-tensor plan.
diff <(head -n -1 "$tmp/plan-local.txt") <(head -n -1 "$tmp/plan-svc.txt") \
  || { echo "FAIL: the served plan differs from the offline plan"; exit 1; }
grep -q "+imatrix" "$tmp/plan-svc.txt"
grep -q "tensor_type\[0\]" "$tmp/plan-svc.txt"
planned=$(q quantize "$data/imatrix-tiny-f32.gguf" "${plan_args[@]}" --dry-run --json \
  | python3 -c "import json,sys; r=json.load(sys.stdin); assert r['output_files']==[]; print(r['job']['report']['output_file_bytes'])")
q quantize "$data/imatrix-tiny-f32.gguf" -o "$tmp/iq3m.gguf" "${plan_args[@]}" > /dev/null
[ "$planned" = "$(stat -c %s "$tmp/iq3m.gguf")" ] \
  || { echo "FAIL: planned $planned bytes, wrote $(stat -c %s "$tmp/iq3m.gguf")"; exit 1; }
echo "ok: --dry-run through the service prints the offline plan ($(grep -c . "$tmp/plan-svc.txt") lines) and predicts the $planned-byte file"
