package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/pinfold/pinfold/configs"
)

// TestIPFSAPIFlags: init --ipfs-api checks the address and saves it in
// config.json; run --ipfs-api overrides it, and an unreachable daemon
// fails the start with a message naming it.
func TestIPFSAPIFlags(t *testing.T) {
	root := t.TempDir()
	cfg := newCluster(t)
	var ue usageError
	if _, err := runFollow(t, "--root", root, "demo", "init", cfg, "--ipfs-api", "ftp://127.0.0.1:5001"); !errors.As(err, &ue) {
		t.Fatalf("--ipfs-api ftp://: %v; want a usage error", err)
	}
	out, err := runFollow(t, "--root", root, "demo", "init", cfg, "--ipfs-api", "http://127.0.0.1:5001", "--listen", "/ip4/127.0.0.1/tcp/0")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	out, err = runFollow(t, "--root", root, "demo", "info", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Config configs.Follower `json:"config"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Config.IPFSAPI != "http://127.0.0.1:5001" {
		t.Fatalf("info: %+v %v", info, err)
	}
	// Port 1 on loopback refuses connections: the run fails at start and
	// names the daemon it tried (the flag's, not config.json's).
	// The run's logger gets lines from libp2p goroutines that end after
	// run returns: give it a writer that is safe for that.
	var logs syncBuffer
	err = run(context.Background(), []string{"--root", root, "demo", "run", "--ipfs-api", "127.0.0.1:1"}, &logs, &logs)
	if err == nil || !strings.Contains(err.Error(), "kubo at http://127.0.0.1:1") {
		t.Fatalf("run with an unreachable kubo: %v\n%s", err, logs.String())
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
