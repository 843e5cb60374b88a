package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/trust"
)

// runCurator initialises a curator of a new cluster and runs its daemon
// on 127.0.0.1 until the test ends. It returns the cluster config (with
// the daemon's address as bootstrap), the config's path and the curator.
func runCurator(t *testing.T) (configs.Cluster, string, peer.ID, curator.Home) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	home := curator.Home{Dir: filepath.Join(t.TempDir(), "curator")}
	cfg := configs.DefaultCurator()
	cfg.Listen, cfg.API = []string{"/ip4/127.0.0.1/tcp/0"}, "127.0.0.1:0"
	res, err := home.Init(ctx, curator.InitOptions{Name: "demo", Config: cfg, Now: time.Now(), Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	d, err := curator.OpenDaemon(ctx, home, curator.DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }() // owned by the test: ends at cancel
	t.Cleanup(func() {
		cancel()
		<-done
		d.Close()
	})
	c := res.Cluster
	for _, a := range d.Node().Addrs() {
		c.Bootstrap = append(c.Bootstrap, a.String()+"/p2p/"+res.Curator.String())
	}
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := configs.Save(path, &c, 0o644); err != nil {
		t.Fatal(err)
	}
	return c, path, res.Curator, home
}

// TestJoin: a follower joins from a URL and from an IPNS name with a
// trusted curator; a config whose cluster id was altered is refused at
// init; a folder whose cluster.json was replaced by another cluster's
// refuses to start.
func TestJoin(t *testing.T) {
	cluster, cfgPath, cur, curHome := runCurator(t)
	root := t.TempDir()
	// A second daemon on the same home says who runs it (no panic).
	if _, err := curator.OpenDaemon(context.Background(), curHome, curator.DaemonOptions{}); !errors.Is(err, curator.ErrAlreadyRunning) ||
		!strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", os.Getpid())) {
		t.Fatalf("second curator daemon: %v", err)
	}
	listen := "--listen=/ip4/127.0.0.1/tcp/0"

	// An http(s) URL: the config is fetched, at most 1 MiB.
	body, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/mirror.json":
			_, _ = w.Write(body)
		case "/huge.json":
			_, _ = w.Write([]byte(strings.Repeat(" ", follower.MaxConfigBytes+1)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	if out, err := runFollow(t, "--root", root, "viaurl", "init", srv.URL+"/mirror.json", listen); err != nil {
		t.Fatalf("init from a URL: %v\n%s", err, out)
	}
	if out, err := runFollow(t, "--root", root, "huge", "init", srv.URL+"/huge.json"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized config: %v\n%s", err, out)
	}
	if out, err := runFollow(t, "--root", root, "gone", "init", srv.URL+"/nothing.json"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing config: %v\n%s", err, out)
	}

	// An IPNS name: the bootstrap peers' newest head, signed by the
	// curator the user trusts, becomes the checkpoint.
	boot := "--bootstrap=" + cluster.Bootstrap[0]
	if _, err := runFollow(t, "--root", root, "byname", "init", cluster.ID, boot); !errors.Is(err, follower.ErrNeedTrust) {
		t.Fatalf("IPNS name without --trust: %v", err)
	}
	if _, err := runFollow(t, "--root", root, "byname", "init", cluster.ID, boot, "--trust", newPeerID(t).String()); !errors.Is(err, follower.ErrNoPeers) {
		t.Fatalf("IPNS name, head not signed by the trusted curator: %v", err)
	}
	if out, err := runFollow(t, "--root", root, "byname", "init", cluster.ID, boot, "--trust", cur.String(), listen); err != nil {
		t.Fatalf("init from an IPNS name: %v\n%s", err, out)
	}
	var got configs.Cluster
	if err := configs.Load(filepath.Join(root, "byname", "cluster.json"), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != cluster.ID || got.Checkpoint.Head != cluster.Checkpoint.Head || got.Checkpoint.Trust[0] != cur.String() || got.Topics != cluster.Topics {
		t.Fatalf("config from the IPNS name: %+v, want the cluster's %+v", got, cluster)
	}

	// Another cluster's id (a one-character change gives another key's
	// name just the same): its peers serve no such cluster.
	other := cluster
	other.ID = ipns.NameFromPeer(newPeerID(t)).String()
	other.Topics = configs.DefaultTopics(other.ID)
	otherPath := filepath.Join(t.TempDir(), "other.json")
	if err := configs.Save(otherPath, &other, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runFollow(t, "--root", root, "altered", "init", otherPath); !errors.Is(err, follower.ErrWrongCluster) {
		t.Fatalf("altered cluster id accepted: %v\n%s", err, out)
	}

	// A folder started for one cluster refuses another's cluster.json.
	home := follower.Home{Dir: filepath.Join(root, "viaurl"), Name: "viaurl"}
	ctx := context.Background()
	d, err := follower.OpenDaemon(ctx, home, follower.DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := configs.Save(home.ClusterPath(), &other, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = follower.OpenDaemon(ctx, home, follower.DaemonOptions{})
	if !errors.Is(err, follower.ErrWrongCluster) || !strings.Contains(err.Error(), "copied from another folder") {
		t.Fatalf("another cluster's cluster.json: %v", err)
	}
}

func newPeerID(t *testing.T) peer.ID {
	t.Helper()
	k, err := trust.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
