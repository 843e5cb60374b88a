package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
)

func runFollow(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

// newCluster creates a curator home and returns its cluster config path.
func newCluster(t *testing.T) string {
	t.Helper()
	home := curator.Home{Dir: filepath.Join(t.TempDir(), "curator")}
	if _, err := home.Init(context.Background(), curator.InitOptions{Name: "demo", Now: time.Now(), Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	return home.ClusterPath()
}

func TestInitInfoList(t *testing.T) {
	root := t.TempDir()
	cfg := newCluster(t)
	if out, err := runFollow(t, "--root", root, "list"); err != nil || !strings.Contains(out, "no clusters") {
		t.Fatalf("list on empty root: %v\n%s", err, out)
	}
	out, err := runFollow(t, "--root", root, "demo", "init", cfg, "--storage", "40MiB", "--nickname", "alice")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if !strings.Contains(out, "pledge            40MiB") {
		t.Fatalf("init output:\n%s", out)
	}
	// The cluster config can also be given as JSON text.
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runFollow(t, "mirror", "init", string(text), "--root", root); err != nil {
		t.Fatalf("init from JSON text: %v\n%s", err, out)
	}
	out, err = runFollow(t, "--root", root, "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := json.Unmarshal([]byte(out), &names); err != nil || len(names) != 2 || names[0] != "demo" || names[1] != "mirror" {
		t.Fatalf("list --json = %q (%v)", out, err)
	}
	out, err = runFollow(t, "--root", root, "demo", "info", "--json")
	if err != nil {
		t.Fatalf("info: %v\n%s", err, out)
	}
	var info struct {
		Peer   string           `json:"peer_id"`
		Config configs.Follower `json:"config"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	if !strings.HasPrefix(info.Peer, "12D3Koo") || info.Config.Storage.Bytes != 40<<20 || info.Config.Nickname != "alice" {
		t.Fatalf("info: %+v", info)
	}
	if _, err := runFollow(t, "--root", root, "demo", "init", cfg); !errors.Is(err, follower.ErrAlreadyInitialised) {
		t.Fatalf("second init: %v", err)
	}
}

func TestInitRejectsBadInput(t *testing.T) {
	root := t.TempDir()
	cfg := newCluster(t)
	var ue usageError
	if _, err := runFollow(t, "--root", root, "demo", "init", cfg, "--storage", "0%"); !errors.As(err, &ue) {
		t.Fatalf("--storage 0%%: %v", err)
	}
	if _, err := runFollow(t, "--root", root, "demo", "init", `{"version": 1, "name": "demo"}`); !errors.Is(err, configs.ErrInvalid) {
		t.Fatalf("incomplete config: %v", err)
	}
	if _, err := runFollow(t, "--root", root, "demo", "init", filepath.Join(root, "missing.json")); err == nil {
		t.Fatal("missing config file accepted")
	}
	if _, err := runFollow(t, "--root", root, "../x", "init", cfg); err == nil {
		t.Fatal("cluster name ../x accepted")
	}
	if _, err := runFollow(t, "--root", root, "nothere", "info"); !errors.Is(err, follower.ErrNotInitialised) {
		t.Fatalf("info of an unknown cluster: %v", err)
	}
	if names, err := (follower.Root{Dir: root}).List(); err != nil || len(names) != 0 {
		t.Fatalf("failed inits left clusters behind: %v %v", names, err)
	}
}

// TestBitswapStatusLine: `follow status` shows the bitswap liars caught,
// by reason in sorted order, and the stalled fetches restarted.
func TestBitswapStatusLine(t *testing.T) {
	s := follower.Status{
		Penalised: map[string]uint64{
			"p2p: bitswap peer sent unwanted blocks":        2,
			"p2p: bitswap peer left want-blocks unanswered": 1,
		},
		FetchRenewals: 3,
	}
	want := "penalised 1 (p2p: bitswap peer left want-blocks unanswered), " +
		"penalised 2 (p2p: bitswap peer sent unwanted blocks), 3 stalled fetches restarted"
	if got := bitswapLine(s); got != want {
		t.Errorf("bitswapLine = %q; want %q", got, want)
	}
	if got := bitswapLine(follower.Status{FetchRenewals: 1}); got != "1 stalled fetches restarted" {
		t.Errorf("bitswapLine with renewals only = %q", got)
	}
}

// TestCommandLine: version, unknown commands and clusters, completion.
func TestCommandLine(t *testing.T) {
	root := t.TempDir()
	var ue usageError
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := runFollow(t, args...)
		if err != nil || !strings.HasPrefix(out, "follow github.com/pinfold/pinfold ") || !strings.Contains(out, "commit") || strings.Contains(out, "Usage") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	if out, err := runFollow(t, "--root", root, "nosuch"); !errors.As(err, &ue) || !strings.Contains(err.Error(), `unknown command or cluster "nosuch"`) {
		t.Errorf("unknown word: %v\n%s", err, out)
	}
	if out, err := runFollow(t, "--root", root, "mirror", "bogus"); !errors.As(err, &ue) || !strings.Contains(err.Error(), `unknown command "bogus"`) {
		t.Errorf("unknown cluster command: %v\n%s", err, out)
	}
	if out, err := runFollow(t, "--root", root, "mirror", "init", newCluster(t)); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	// The first word completes to commands and clusters; after a cluster,
	// to its commands.
	out, err := runFollow(t, "__complete", "--root", root, "")
	if err != nil || !strings.Contains(out, "mirror\tcluster followed") || !strings.Contains(out, "demo\tRun a local demo") {
		t.Errorf("complete the first word: %v\n%s", err, out)
	}
	out, err = runFollow(t, "__complete", "--root", root, "mirror", "st")
	if err != nil || !strings.Contains(out, "status\t") || !strings.Contains(out, "stop\t") || strings.Contains(out, "mirror") {
		t.Errorf("complete a cluster command: %v\n%s", err, out)
	}
	if out, err := runFollow(t, "--root", root, "mirror", "stop"); !errors.Is(err, follower.ErrNotRunning) {
		t.Errorf("stop, not running: %v\n%s", err, out)
	}
	if out, err := runFollow(t, "--root", root, "nosuch", "status"); !errors.Is(err, follower.ErrNotInitialised) {
		t.Errorf("status of an unknown cluster: %v\n%s", err, out)
	}
}
