# Sourced by the bench scripts: the disk anchor, the time dd takes to put a
# job's output size on the same disk (a job waits for as much before it
# ends).
#
#   disk_anchor_us MODE FILE BYTES   -> prints microseconds; FILE is removed
#   MODE: direct1  O_DIRECT, 4 MiB requests one at a time
#         direct4  O_DIRECT, four dd processes on disjoint quarters
#         buffered through the page cache, then fsync
disk_anchor_us() {
  local mode=$1 file=$2 bytes=$3
  local chunks=$(((bytes + 4194303) / 4194304)) start end per k
  rm -f "$file"
  start=$(date +%s%N)
  case $mode in
    direct1) dd if=/dev/zero of="$file" bs=4M count="$chunks" oflag=direct status=none ;;
    direct4)
      per=$(((chunks + 3) / 4))
      for k in 0 1 2 3; do
        dd if=/dev/zero of="$file" bs=4M count="$per" seek=$((k * per)) oflag=direct \
          conv=notrunc status=none &
      done
      wait
      ;;
    buffered) dd if=/dev/zero of="$file" bs=4M count="$chunks" conv=fsync status=none ;;
    *) echo "disk_anchor_us: unknown mode $mode" >&2; return 2 ;;
  esac
  end=$(date +%s%N)
  rm -f "$file"
  echo $(((end - start) / 1000))
}
