#!/usr/bin/env bash
# measure-followers.sh [STEPS]: the many-follower figures of docs/scale.md.
# A fresh curator daemon (the real `curate` binary, its own process) on
# 127.0.0.1 gets PINS pins (default 2,000 of 64 MiB claimed, no content;
# shard target 64 MiB, so about 2,000 shards); then internal/manyfollowers
# starts light followers in a second process in steps (default
# "50,100,200") and, at each step, prints: the curator's CPU and memory in
# a steady window of offers, publish -> verified p50/p99/max over HEADS
# forced heads, the curator's CPU per ACK for a round in which every
# follower ACKs its shards again, the bytes of the newest head and its
# lists, and the ACK log those ACKs made. The curator's figures come from
# its own /metrics (process_cpu_seconds_total, process_resident_memory_bytes,
# go_memstats_heap_inuse_bytes), so the followers' work is not in them.
# Ports 14120 (libp2p) and 14121 (API) must be free. WINDOW (default 60s),
# HEADS (default 5), PINS, OFFER_INTERVAL (20s), ACK_INTERVAL (10m) tune it.
# The curator serves pprof: go tool pprof http://127.0.0.1:14121/debug/pprof/profile
# PPROF=127.0.0.1:14122 serves the followers' process's profiles too.
set -euo pipefail
steps=${1:-50,100,200}
work=${WORK:-$(mktemp -d)}
repo=$(cd "$(dirname "$0")/.." && pwd)
echo "work folder $work"
go build -C "$repo" -o "$work/bin/" ./cmd/curate ./internal/manyfollowers
bin=$work/bin
cpid=""
cleanup() {
	if [ -n "$cpid" ]; then
		kill "$cpid" 2>/dev/null || true
		while kill -0 "$cpid" 2>/dev/null; do sleep 0.1; done
	fi
}
trap cleanup EXIT

export PINFOLD_CURATE_HOME=$work/curate
"$bin/curate" init many --listen /ip4/127.0.0.1/tcp/14120 --api 127.0.0.1:14121 --shard-size 64MiB >/dev/null
"$bin/curate" daemon --pprof >"$work/curate.log" 2>&1 &
cpid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:14121/metrics >/dev/null && break; sleep 0.1; done
"$bin/curate" export-config --out "$work/cluster.json" >/dev/null 2>&1
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/manyfollowers" -curator "$work/curate" -cluster "$work/cluster.json" -steps "$steps" \
	-pins "${PINS:-2000}" -heads "${HEADS:-5}" -window "${WINDOW:-60s}" \
	-settle "${SETTLE:-3m}" -offer-interval "${OFFER_INTERVAL:-20s}" -ack-interval "${ACK_INTERVAL:-10m}" \
	${PPROF:+-pprof "$PPROF"} 2>"$work/followers.log"
echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg)"
