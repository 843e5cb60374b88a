package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pinfold/pinfold/follower"
)

// fakeFollower serves a follower status with one shard ACKed, like
// serveStatus.
func fakeFollower(t *testing.T, dir string, onRequest func(n int64)) {
	t.Helper()
	serveStatus(t, dir, follower.Status{
		Cluster: "demo", Peer: "12D3KooWpeer", Pledged: 1 << 30,
		Head:   &follower.HeadInfo{Seq: 7, Time: time.Now(), Signer: "12D3KooWcurator"},
		Shards: []follower.ShardStatus{{ID: 3, Bytes: 1 << 20, Pins: 2, State: follower.ShardStored, Holders: 1, Target: 1, Min: 1, AckedSeq: 7}},
	}, onRequest)
}

// serveStatus serves st on a control API and writes its address where
// the follow commands look for it; onRequest runs with the count of
// requests so far.
func serveStatus(t *testing.T, dir string, st follower.Status, onRequest func(n int64)) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		if onRequest != nil {
			onRequest(n.Add(1))
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A config.json marks the folder as holding a follower.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := os.WriteFile(filepath.Join(dir, "api.addr"), []byte(addr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDashboardPlain(t *testing.T) {
	root := t.TempDir()
	if _, err := runFollow(t, "--root", root, "demo", "dashboard"); !errors.Is(err, follower.ErrNotInitialised) {
		t.Fatalf("no follower: %v, want ErrNotInitialised", err)
	}
	fakeFollower(t, filepath.Join(root, "demo"), nil)
	// Standard output is not a terminal here: the dashboard prints text.
	out, err := runFollow(t, "--root", root, "demo", "dashboard")
	if err != nil {
		t.Fatalf("dashboard: %v\n%s", err, out)
	}
	for _, want := range []string{"cluster demo", "head      seq 7,", "commitments (1)", "ACKed at seq 7"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape codes in plain output: %q", out)
	}
}

func TestDashboardWatch(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fakeFollower(t, filepath.Join(root, "demo"), func(n int64) {
		if n == 3 {
			cancel()
		}
	})
	var out strings.Builder
	err := run(ctx, []string{"--root", root, "demo", "dashboard", "--plain", "--watch", "10ms"}, &out, &out)
	if err != nil {
		t.Fatalf("watch: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "commitments (1)"); n < 2 {
		t.Fatalf("%d prints, want at least 2:\n%s", n, out.String())
	}
}
