#!/usr/bin/env bash
# Instructions per request of ferrocached's main thread (the JS thread: event loop, napi,
# protocol, engine) under valgrind's callgrind, over a fixed number of unpipelined get/set
# requests from countgen.c. Repeatable to within ~1% between runs of one build, where
# wall-clock figures on a shared machine move by 10-20%; see docs/benchmarks.md.
#
#   bench/counts/server-counts.sh [seq|all] [CONNS]      (default: all 50)
#
#   FERROCACHED_BIN   server script (default bin/ferrocached.js of this tree), e.g. a
#                     build of another revision in a git worktree
#   WARMUP, COUNT     requests before and inside the count (default 5000, 20000)
#
# Takes ~1 min of one core. Background threads (the crawler: wall-clock timed, so
# stretched by valgrind's slowdown) are not counted. The profile stays for
# callgrind_annotate (its path is printed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-all}
conns=${2:-50}
warm=${WARMUP:-5000}
count=${COUNT:-20000}
bin=${FERROCACHED_BIN:-$root/bin/ferrocached.js}
build=$root/bench/.build
mkdir -p "$build"
cc -O2 -o "$build/countgen" "$here/countgen.c"
out=$(mktemp -d /tmp/server-counts.XXXXXX)
port=$((20000 + RANDOM % 20000))
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/cg.%p" \
  node "$bin" -p "$port" -l 127.0.0.1 -m 64 >"$out/server.log" 2>&1 &
vg=$!
trap 'kill "$vg" 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$vg" 2>/dev/null || { cat "$out/server.log"; exit 1; }
  sleep 0.5
done
"$build/countgen" "$port" "$conns" "$warm" "$count" "$vg" "$mode"
kill "$vg"
wait "$vg" || true
f=$(ls "$out"/cg.*.1-01)
ir=$(awk '/^summary:/ {print $2}' "$f")
echo "main thread: $((ir / count)) Ir/request ($mode, $conns connections, $count requests after $warm)"
echo "profile: $f (callgrind_annotate --inclusive=yes $f)"
