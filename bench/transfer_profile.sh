#!/usr/bin/env bash
# Where the CPU of an upload goes: starts a local `quantd serve`, uploads a
# model with `quantctl upload` (page cache warm, or with COLD=1 dropped
# just before the upload; needs root), and prints the wall time,
# the CPU seconds (user + system) of the client and of the server, and with
# PERF=1 the top entries of a `perf record -g` profile of each side.
#
#   bench/transfer_profile.sh BUILD_DIR MODEL.onnx [MORE_FILES...]
#
# MODEL.onnx's external data must sit next to it (quantctl finds it).
#
# It also prints the single-core SHA-256 rate of `openssl dgst` over the
# same files (both ends hash every byte: the client while reading, the
# server while writing) and what it alone allows. A diagnostic, NODIGEST=1,
# runs client and server with bench/no_digest_shim.c preloaded, which
# makes OpenSSL's EVP_DigestUpdate a no-op in both (their digests then
# agree: both are SHA-256 of nothing): the transfer path without the
# hashing, to see which of the two limits it. Never a way to run the
# service.
set -euo pipefail
build=$1
shift
work=$(mktemp -d /tmp/quantd-transfer-profile.XXXXXX)
quantd=$build/server/quantd
quantctl=$build/client/quantctl/quantctl
preload=""
if [ "${NODIGEST:-0}" = 1 ]; then
  cc -shared -fPIC -O2 -o "$work/no_digest_shim.so" "$(dirname "$0")/no_digest_shim.c"
  preload="$work/no_digest_shim.so"
  echo "NODIGEST=1: client and server hash nothing (diagnostic only)"
fi
if [ "${COLD:-0}" = 1 ]; then
  :  # the page cache is dropped just before the upload (below)
else
  cat "$@" "$(dirname "$1")"/*.data > /dev/null 2>&1 || true  # warm the page cache
fi
LD_PRELOAD=$preload "$quantd" serve --listen 127.0.0.1:0 --data-dir "$work/data" --port-file "$work/port" \
  --workers 1 --min-free-bytes 1G > "$work/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true; [ "${PERF:-0}" = 1 ] || rm -rf "$work"' EXIT
for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { n += $2 } END { print n }'; }
hz=$(getconf CLK_TCK)
s0=$(cpu "$server_pid")
w0=$(switches "$server_pid")
if [ "${PERF:-0}" = 1 ]; then
  perf record -g -o "$work/server.perf" -p "$server_pid" 2> /dev/null &
  perf_pid=$!
  sleep 0.5
fi
if [ "${COLD:-0}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
t0=$(date +%s.%N)
wrap=()
if [ "${PERF:-0}" = 1 ]; then wrap=(perf record -q -g -o "$work/client.perf"); fi
client=$( { LD_PRELOAD=$preload /usr/bin/time -f "%e %U %S" "${wrap[@]}" "$quantctl" --server "127.0.0.1:$port" \
  upload "$@" > /dev/null; } 2>&1 | tail -1)
t1=$(date +%s.%N)
s1=$(cpu "$server_pid")
w1=$(switches "$server_pid")
bytes=$(du -cb "$@" "$(dirname "$1")"/*.data 2>/dev/null | tail -1 | cut -f1)
echo "upload    $(echo "$t1 - $t0" | bc -l | cut -c1-5) s, $(awk -v b="$bytes" -v t="$(echo "$t1 - $t0" | bc -l)" 'BEGIN { printf "%.0f", b / 1048576 / t }') MiB/s of $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB"
echo "cpu       client $(echo "$client" | awk '{ printf "%.2f", $2 + $3 }') s (user $(echo "$client" | cut -d' ' -f2), sys $(echo "$client" | cut -d' ' -f3)), server $(awk -v a="$s0" -v b="$s1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }') s, $((w1 - w0)) server context switches"
echo "load      $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
if command -v openssl > /dev/null && [ "${COLD:-0}" != 1 ]; then
  h0=$(date +%s.%N)
  openssl dgst -sha256 "$@" "$(dirname "$1")"/*.data > /dev/null 2>&1 || true
  h1=$(date +%s.%N)
  awk -v b="$bytes" -v t="$(echo "$h1 - $h0" | bc -l)" 'BEGIN { r = b / t / 1e9;
    printf "sha256    %.2f GB/s on one core (openssl dgst, warm): %.2f CPU s per GB for both ends; each end hashes its stream on one core, so at most %.2f GB/s with nothing else to do\n", r, 2 / r, r }'
fi
if [ "${PERF:-0}" = 1 ]; then
  kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
  echo "client profile (self, top 15):"
  perf report -i "$work/client.perf" --no-children --sort dso,sym --stdio -g none 2> /dev/null | grep -E '^ +[0-9]' | head -15
  echo "server profile (self, top 15):"
  perf report -i "$work/server.perf" --no-children --sort dso,sym --stdio -g none 2> /dev/null | grep -E '^ +[0-9]' | head -15
fi
