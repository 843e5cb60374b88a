package main

import (
	"testing"
	"time"

	"github.com/pinfold/pinfold/curator"
)

func TestDHTLine(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		info curator.DHTInfo
		want string
	}{
		{curator.DHTInfo{Mode: "client"}, "client, routing table 0"},
		{curator.DHTInfo{Mode: "server", Peers: 3, LastPut: now.Add(-90 * time.Second), LastSeq: 7, Next: now.Add(3 * time.Hour)},
			"server, routing table 3; record of seq 7 put 1m30s ago; next put in 3h0m0s"},
		{curator.DHTInfo{Mode: "client", LastError: "p2p: dht put k51…: failed to find any peer in table", Next: now.Add(20 * time.Second)},
			"client, routing table 0; last put failed: p2p: dht put k51…: failed to find any peer in table; next put in 20s"},
		{curator.DHTInfo{Mode: "auto", Peers: 1, LastPut: now.Add(-time.Hour), LastSeq: 2, LastError: "context deadline exceeded", Next: now.Add(-time.Second)},
			"auto, routing table 1; record of seq 2 put 1h0m0s ago; last put failed: context deadline exceeded; next put in 0s"},
	} {
		if got := dhtLine(tt.info, now); got != tt.want {
			t.Errorf("dhtLine(%+v)\n got %q\nwant %q", tt.info, got, tt.want)
		}
	}
}
