#!/usr/bin/env bash
# Prints the Debian packages that provide the shared libraries the given
# binaries load (ldd + dpkg -S), one per line, sorted. The Dockerfile's
# runtime stage installs exactly the list this prints for quantd and quantctl
# (tests/ops ValidateDeploy checks the two agree on the built binaries).
#
#   deploy/docker/runtime-packages.sh build/server/quantd build/client/quantctl/quantctl
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
for bin in "$@"; do
  [ -f "$bin" ] || { echo "runtime-packages: no such file: $bin" >&2; exit 1; }
  if ldd "$bin" | grep -q "not found"; then
    echo "runtime-packages: $bin has unresolved libraries:" >&2
    ldd "$bin" | grep "not found" >&2
    exit 1
  fi
done
for bin in "$@"; do
  # "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" and the loader line.
  ldd "$bin" | awk '/=> \// {print $3} /^\s*\/[^ ]+ \(/ {print $1}'
done | sort -u | while read -r lib; do
  pkg=""
  # usrmerge: dpkg may know the file under /lib or /usr/lib, by either name.
  for cand in "$lib" "$(readlink -f "$lib")"; do
    for p in "$cand" "${cand#/usr}" "/usr${cand}"; do
      pkg=$(dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$pkg" ] && break 2
    done
  done
  if [ -z "$pkg" ]; then
    echo "runtime-packages: no package owns $lib" >&2
    exit 1
  fi
  echo "$pkg"
done | sort -u
