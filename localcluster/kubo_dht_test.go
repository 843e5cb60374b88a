package localcluster_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/kubo/kubotest"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/pinset"
)

// TestKuboFindsHolderByDHT: a real kubo daemon (PINFOLD_KUBO) whose only
// bootstrap peer is the curator, a DHT server, finds the follower that
// holds an archived CID by provider lookup, connects to it (it knew no
// holder before) and fetches the CID, with some of its blocks from the
// follower.
//
// The follower turns on the DHT option that would be the public IPFS DHT;
// here, on loopback, its prefix is /ipfs/lan: kubo keeps peers with
// loopback addresses only in its LAN DHT, which speaks
// /ipfs/lan/kad/1.0.0 (its WAN DHT, /ipfs/kad/1.0.0, drops them). No
// public address is ever dialled: kubo's bootstrap list is the curator.
func TestKuboFindsHolderByDHT(t *testing.T) {
	bin := kubotest.Binary(t)
	ctx := context.Background()
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	if err := content.GenerateSample(archive, 1, 4, 256<<10); err != nil {
		t.Fatal(err)
	}
	lan := configs.DHT{Mode: "server", ProtocolPrefix: "/ipfs/lan"}
	cfg := configs.DefaultCurator()
	cfg.ReplicationMin, cfg.ReplicationMax = 1, 1
	cfg.HeadInterval = configs.Duration(time.Second)
	cfg.DHT = lan
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: filepath.Join(dir, "cluster"), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := c.Curator.AddContent(ctx, curator.AddRequest{Path: archive, Each: true}); err != nil {
		t.Fatal(err)
	}
	// A DHT client, as a volunteer behind a NAT is in the public DHT: kubo
	// then never meets it as a DHT server.
	fdht := configs.DHT{Mode: "client", ProtocolPrefix: lan.ProtocolPrefix, Bootstrap: c.Config.Bootstrap}
	f, err := c.AddFollower(ctx, "f", localcluster.FollowerOptions{
		Pledge: pledge(64 << 20), OfferInterval: time.Second, AckInterval: 5 * time.Second, DHT: &fdht,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := localcluster.WaitSettled(ctx, c, 1, 2*time.Minute, t.Logf); err != nil {
		t.Fatal(err)
	}
	var pins []pinset.Pin
	if err := c.Curator.Pins().List(ctx, func(p pinset.Pin) error { pins = append(pins, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(pins) == 0 {
		t.Fatal("no pins")
	}
	target := pins[0].CID
	deadline := time.Now().Add(time.Minute)
	for {
		st := f.Daemon.Status()
		done := 0
		for _, p := range st.Provide {
			if p.Roots == int64(len(pins)) && p.Pending == 0 && p.Provided >= p.Roots {
				done++
			}
		}
		if done == 2 {
			t.Logf("follower announced %d roots: %+v", len(pins), st.Provide)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("roots not announced in both DHTs within a minute: %+v", st.Provide)
		}
		time.Sleep(100 * time.Millisecond) // polling the follower's status
	}

	boot, err := json.Marshal(c.Config.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	ipfs := kubotest.Start(t, bin,
		kubotest.Setting{Key: "Routing.Type", JSON: `"dht"`},
		kubotest.Setting{Key: "Bootstrap", JSON: string(boot)},
	)
	holder := f.Daemon.Node().ID().String()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	peers, err := ipfs.Run(rctx, "swarm", "peers")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(peers), holder) {
		t.Fatalf("kubo is connected to the holder before any lookup: %s", peers)
	}
	began := time.Now()
	var provs []byte
	for {
		provs, err = ipfs.Run(rctx, "routing", "findprovs", "--num-providers", "5", target.String())
		if err == nil && strings.Contains(string(provs), holder) {
			break
		}
		if rctx.Err() != nil {
			t.Fatalf("kubo found no provider of %s: %q %v", target, provs, err)
		}
		time.Sleep(500 * time.Millisecond) // kubo's LAN DHT fills its routing table after bootstrap
	}
	t.Logf("kubo found the holder of %s by provider lookup in %s: %s", target, time.Since(began).Round(time.Millisecond), strings.Fields(string(provs)))
	if _, err := ipfs.Run(rctx, "dag", "stat", "--progress=false", target.String()); err != nil {
		t.Fatalf("kubo fetch of %s: %v", target, err)
	}
	ledger, err := ipfs.Run(rctx, "bitswap", "ledger", holder)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubo fetched %s; its bitswap ledger with the holder: %s", target, strings.Join(strings.Fields(string(ledger)), " "))
	if !strings.Contains(string(ledger), "Bytes received:") || strings.Contains(string(ledger), "Bytes received: 0\n") {
		t.Errorf("kubo received no bytes from the holder: %s", ledger)
	}
}
