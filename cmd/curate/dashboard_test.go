package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pinfold/pinfold/curator"
)

func TestDashboardPlain(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(curator.Status{Cluster: "demo", Members: 1,
			Head:       &curator.HeadInfo{Seq: 9, Time: time.Now(), Signer: "12D3KooWcurator"},
			RecentAcks: []curator.ReceivedAck{{Time: time.Now(), Peer: "12D3KooWmember", Shard: 4, State: "stored", Seq: 9}}})
	})
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]curator.MemberLoad{{MemberInfo: curator.MemberInfo{Peer: "12D3KooWmember", Nickname: "attic", State: curator.StateActive}}})
	})
	mux.HandleFunc("GET /v1/shards", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]curator.ShardInfo{{ID: 4, Bytes: 1 << 20, Min: 1, Max: 2, Acked: 1, Status: curator.ShardUnder}})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	home := filepath.Join(t.TempDir(), "curator")
	if out, err := runCurate(t, "--home", home, "init", "demo", "--api", strings.TrimPrefix(srv.URL, "http://")); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	// Standard output is not a terminal here: the dashboard prints text.
	out, err := runCurate(t, "--home", home, "dashboard")
	if err != nil {
		t.Fatalf("dashboard: %v\n%s", err, out)
	}
	for _, want := range []string{"cluster demo", "members (1)", "attic", "under 1", "shard 4  stored"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	srv.Close()
	if _, err := runCurate(t, "--home", home, "dashboard", "--plain"); err == nil {
		t.Fatal("no error with the daemon down")
	}
}
