package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/follower"
)

// TestBandwidthFlags: init and run take --max-upload and --max-download,
// check them (a rate, 0 or at least 64KiB/s) and save them in
// config.json; a bad value is a usage error that changes nothing.
func TestBandwidthFlags(t *testing.T) {
	root := t.TempDir()
	cfg := newCluster(t)
	limits := func() (up, down configs.Rate) {
		t.Helper()
		out, err := runFollow(t, "--root", root, "demo", "info", "--json")
		if err != nil {
			t.Fatalf("info: %v\n%s", err, out)
		}
		var info struct {
			Config configs.Follower `json:"config"`
		}
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("info --json: %v\n%s", err, out)
		}
		return info.Config.MaxUpload, info.Config.MaxDownload
	}
	var ue usageError
	for _, bad := range [][]string{{"--max-upload", "1000"}, {"--max-download", "fast"}, {"--max-upload", "-5MB/s"}} {
		out, err := runFollow(t, append([]string{"--root", root, "demo", "init", cfg, "--offline"}, bad...)...)
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), bad[0]) {
			t.Fatalf("init %v: %v, want a usage error naming the flag\n%s", bad, err, out)
		}
	}
	if names, err := (follower.Root{Dir: root}).List(); err != nil || len(names) != 0 {
		t.Fatalf("failed inits left clusters behind: %v %v", names, err)
	}
	out, err := runFollow(t, "--root", root, "demo", "init", cfg, "--offline", "--listen", "/ip4/127.0.0.1/tcp/0",
		"--max-upload", "5MB/s", "--max-download", "40Mbit/s")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if up, down := limits(); up != 5_000_000 || down != 5_000_000 {
		t.Fatalf("after init: limits %s, %s; want 5MB/s, 5MB/s", up, down)
	}
	if out, err := runFollow(t, "--root", root, "demo", "info"); err != nil || !strings.Contains(out, "bandwidth   upload 5MB/s, download 5MB/s\n") {
		t.Fatalf("info: %v\n%s", err, out)
	}
	// run checks the flags before anything else and saves them; kubo on
	// port 1 then fails the start, after the save.
	if _, err := runFollow(t, "--root", root, "demo", "run", "--max-download", "10kB/s"); !errors.As(err, &ue) {
		t.Fatalf("run --max-download 10kB/s: %v, want a usage error", err)
	}
	if up, down := limits(); up != 5_000_000 || down != 5_000_000 {
		t.Fatalf("a refused flag changed the limits: %s, %s", up, down)
	}
	var logs syncBuffer
	err = run(context.Background(), []string{"--root", root, "demo", "run", "--max-download", "1MiB/s", "--max-upload", "unlimited",
		"--ipfs-api", "127.0.0.1:1"}, &logs, &logs)
	if err == nil || !strings.Contains(err.Error(), "kubo at http://127.0.0.1:1") {
		t.Fatalf("run with an unreachable kubo: %v\n%s", err, logs.String())
	}
	if up, down := limits(); up != 0 || down != 1<<20 {
		t.Fatalf("after run: limits %s, %s; want unlimited, 1MiB/s", up, down)
	}
}
