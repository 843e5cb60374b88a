package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/internal/runlock"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/p2p"
)

// auditedStatus is a follower with a shard in each state of proof and a
// failure on its record.
func auditedStatus() follower.Status {
	now := time.Now()
	return follower.Status{
		Cluster: "demo", ClusterID: "k51demo", Peer: "12D3KooWpeer", Pledged: 1 << 30, Free: 8 << 30,
		Head:     &follower.HeadInfo{Seq: 9, Time: now.Add(-time.Minute), Signer: "12D3KooWcurator"},
		Pinset:   follower.PinsetInfo{Pins: 12, Bytes: 6 << 20, Shards: 5, CaughtUp: true},
		Assigned: 4 << 20, Stored: 3 << 20, AcksPending: 2,
		Shards: []follower.ShardStatus{
			{ID: 1, Bytes: 1 << 20, State: follower.ShardStored, AckedSeq: 8, Recorded: true, Proven: true, Audit: ledger.Pass, AuditedAt: now},
			{ID: 2, Bytes: 1 << 20, State: follower.ShardStored, AckedSeq: 8, Recorded: true},
			{ID: 3, Bytes: 1 << 20, State: follower.ShardStored, AckedSeq: 7, Recorded: true, Audit: ledger.Fail, AuditedAt: now, AuditReason: "no answer within 30s"},
			{ID: 4, Bytes: 1 << 20, State: follower.ShardFetching},
			{ID: 5, Bytes: 1 << 20, State: follower.ShardReleasing, Proven: true},
		},
		Audits:    ledger.Member{Passes: 4, Fails: 1, Streak: 1, FailShard: 3, FailReason: "no answer within 30s", FailTime: now.Add(-2 * time.Hour).UnixMilli()},
		Rejected:  map[string]uint64{"trust: signature invalid": 1, "ack: replayed": 2},
		Bandwidth: p2p.Bandwidth{Up: p2p.Traffic{Limit: 5_000_000, Rate: 4_980_000, Total: 300_000_000}, Down: p2p.Traffic{Rate: 1500, Total: 42_000}},
	}
}

func TestStatusText(t *testing.T) {
	root := t.TempDir()
	if _, err := runFollow(t, "--root", root, "demo", "status"); !errors.Is(err, follower.ErrNotInitialised) {
		t.Fatalf("no follower: %v, want ErrNotInitialised", err)
	}
	dir := filepath.Join(root, "demo")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runFollow(t, "--root", root, "demo", "status"); !errors.Is(err, follower.ErrNotRunning) {
		t.Fatalf("follower not started: %v, want ErrNotRunning", err)
	}
	// Opening, before its API serves: status says what it is doing.
	lock, err := runlock.Acquire(follower.Home{Dir: dir, Name: "demo"}.LockPath(), "rebuilding the index", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, err := runFollow(t, "--root", root, "demo", "status")
	if err != nil || !strings.Contains(out, "cluster demo: starting: rebuilding the index (pid ") {
		t.Fatalf("starting follower: %v\n%s", err, out)
	}
	lock.Release()
	serveStatus(t, dir, auditedStatus(), nil)
	out, err = runFollow(t, "--root", root, "demo", "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{
		"cluster    demo (k51demo)\n",
		"head       seq 9, ",
		"pledge     1.0 GiB (free 8.0 GiB)\n",
		"shards     4 assigned (4.0 MiB), 3 stored (3.0 MiB), 1 proven (1.0 MiB), 1 failed its newest audit\n",
		"audits     4 passed, 1 failed (1 since the last pass); last failure 2h ago, shard 3: no answer within 30s\n",
		"acks       2 waiting for a signed head",
		"in all     ack: replayed 2, trust: signature invalid 1\n",
		"traffic    down 1.5 kB/s (unlimited), up 5.0 MB/s of 5MB/s; 42 kB down, 300 MB up since start\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// --json is the status as the control API serves it.
	out, err = runFollow(t, "--root", root, "demo", "status", "--json")
	if err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var got follower.Status
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(got.Shards) != 5 || !got.Shards[0].Proven || got.Shards[2].AuditReason != "no answer within 30s" || got.Audits.Fails != 1 ||
		got.Bandwidth.Up.Limit != 5_000_000 || got.Bandwidth.Up.Rate != 4_980_000 || got.Bandwidth.Down.Total != 42_000 {
		t.Fatalf("status --json lost the proofs: %+v", got)
	}
}

// TestStatusTextNoAudits: before any audit the lines say so.
func TestStatusTextNoAudits(t *testing.T) {
	var b strings.Builder
	if err := writeStatus(&b, follower.Status{Cluster: "demo"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"head       none verified yet\n", "shards     0 assigned (0 B), 0 stored (0 B), 0 proven (0 B)\n", "audits     none yet\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}
