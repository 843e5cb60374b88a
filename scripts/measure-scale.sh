#!/usr/bin/env bash
# measure-scale.sh [PINS]: the memory and speed figures of docs/scale.md, with
# the real binaries on 127.0.0.1. A curator imports PINS pins (default
# 1,000,000, 100 KiB each, no content), `curate pin ls` lists them, then a
# fresh follower (pledge 2 GiB) syncs the pinset. For each daemon it prints
# the wall time and the peak RssAnon (heap, memtables: what the process
# needs) and RssFile (badger's mapped files: page cache the kernel reclaims)
# sampled every 0.5 s. FOLLOW_ARGS is added to `follow run` (e.g.
# "--memory 160MiB"); CGROUP_LIMIT (bytes, cgroup v1, root) runs the
# follower in a memory cgroup of that size. Ports 14060-14061 and API
# 127.0.0.1:19660 must be free. Work files go to $WORK (default a temp dir).
set -euo pipefail
pins=${1:-1000000}
work=${WORK:-$(mktemp -d)}
repo=$(cd "$(dirname "$0")/.." && pwd)
echo "work folder $work"
go build -C "$repo" -o "$work/bin/" ./cmd/curate ./cmd/follow ./internal/genpins
bin=$work/bin
pids=()
cg=""
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
	if [ -n "$cg" ]; then rmdir "$cg" 2>/dev/null || true; fi
}
trap cleanup EXIT

# watch PID OUT: peak RssAnon and RssFile of PID in kB, until it exits.
watch() {
	local pid=$1 out=$2 ma=0 mf=0 a f
	while read -r a f < <(awk '/RssAnon/{a=$2}/RssFile/{f=$2}END{print a+0, f+0}' "/proc/$pid/status" 2>/dev/null) && [ -e "/proc/$pid" ]; do
		((a > ma)) && ma=$a
		((f > mf)) && mf=$f
		echo "$ma $mf" >"$out"
		sleep 0.5
	done
}
report() { read -r a f <"$2"; echo "$1 peak RssAnon $((a / 1024)) MiB, RssFile $((f / 1024)) MiB"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

"$bin/genpins" "$pins" 100KiB >"$work/pins.txt"
export PINFOLD_CURATE_HOME=$work/curate
"$bin/curate" init scale --listen /ip4/127.0.0.1/tcp/14060 --api 127.0.0.1:19660 >/dev/null
"$bin/curate" daemon >"$work/curate.log" 2>&1 &
cpid=$!
pids+=("$cpid")
watch "$cpid" "$work/curate.rss" &
for _ in $(seq 100); do curl -sf http://127.0.0.1:19660/metrics >/dev/null && break; sleep 0.1; done
t=$(now)
"$bin/curate" pin import "$work/pins.txt" >/dev/null 2>&1
s=$(since "$t")
echo "ingest: $pins pins in $s s, $(echo "$pins / $s" | bc) pins/s"
report curator "$work/curate.rss"
/usr/bin/time -f "pin ls: %e s, client peak RSS %M kB" "$bin/curate" pin ls >"$work/ls.out" 2>"$work/ls.time"
tail -1 "$work/ls.time"
"$bin/curate" export-config --out "$work/cluster.json" >/dev/null 2>&1

export PINFOLD_FOLLOW_HOME=$work/follow
"$bin/follow" scale init "$work/cluster.json" --storage 2GiB --listen /ip4/127.0.0.1/tcp/14061 >/dev/null
t=$(now)
# shellcheck disable=SC2086 # FOLLOW_ARGS is a list of flags
"$bin/follow" scale run ${FOLLOW_ARGS:-} >"$work/follow.log" 2>&1 &
fpid=$!
pids+=("$fpid")
if [ -n "${CGROUP_LIMIT:-}" ]; then
	cg=/sys/fs/cgroup/memory/pinfold-measure-$$
	mkdir -p "$cg"
	echo "$CGROUP_LIMIT" >"$cg/memory.limit_in_bytes"
	echo "$fpid" >"$cg/cgroup.procs"
fi
watch "$fpid" "$work/follow.rss" &
for _ in $(seq 3000); do grep -q "pinset caught up" "$work/follow.log" && break; sleep 0.2; done
grep -q "pinset caught up" "$work/follow.log" || { echo "follower did not catch up in 600 s" >&2; exit 1; }
echo "follower sync: $(since "$t") s to 'pinset caught up'"
report follower "$work/follow.rss"
if [ -n "${CGROUP_LIMIT:-}" ]; then
	echo "follower cgroup: limit $((CGROUP_LIMIT >> 20)) MiB, peak $(($(cat "$cg/memory.max_usage_in_bytes") >> 20)) MiB, $(grep oom_kill "$cg/memory.oom_control" | tr '\n' ' ')"
fi
echo "disk: curator $(du -sm "$work/curate/datastore" | cut -f1) MiB, follower $(du -sm "$work/follow/scale/datastore" | cut -f1) MiB"
