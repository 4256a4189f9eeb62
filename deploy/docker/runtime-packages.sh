#!/usr/bin/env bash
# Prints the Debian packages that provide the shared libraries the given
# binaries load (ldd + dpkg -S), one per line, sorted. The Dockerfile's
# runtime stage installs exactly this list for quantd and quantctl
# (RUNTIME_PACKAGES; its build stage and tests/ops ValidateDeploy both check
# that the two agree).
#
#   deploy/docker/runtime-packages.sh build/server/quantd build/client/quantctl/quantctl
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
libs=()
for bin in "$@"; do
  [ -f "$bin" ] || { echo "runtime-packages: no such file: $bin" >&2; exit 1; }
  out=$(ldd "$bin")
  if grep -q "not found" <<<"$out"; then
    echo "runtime-packages: $bin has unresolved libraries:" >&2
    grep "not found" <<<"$out" >&2
    exit 1
  fi
  # "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" and the loader line.
  while read -r lib; do libs+=("$lib"); done < <(awk '/=> \// {print $3} /^\s*\/[^ ]+ \(/ {print $1}' <<<"$out")
done
# usrmerge: dpkg may know a file under /lib or /usr/lib, by its link name or
# its real name. Ask about every variant in one dpkg -S call.
declare -A owner=()
queries=()
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
  for cand in "$lib" "$(readlink -f "$lib")"; do
    base=${cand#/usr}
    queries+=("$base" "/usr$base")
  done
done
while IFS= read -r line; do
  # "libfoo1:amd64: /lib/x86_64-linux-gnu/libfoo.so.1"
  pkg=${line%%: *}
  path=${line#*: }
  owner["${path#/usr}"]=${pkg%%:*}
done < <(dpkg -S "${queries[@]}" 2>/dev/null || true)
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
  pkg=""
  for cand in "$lib" "$(readlink -f "$lib")"; do
    pkg=${owner["${cand#/usr}"]:-}
    [ -n "$pkg" ] && break
  done
  if [ -z "$pkg" ]; then
    echo "runtime-packages: no package owns $lib" >&2
    exit 1
  fi
  echo "$pkg"
done | sort -u
