package main

import (
	"strings"
	"testing"

	"github.com/pinfold/pinfold/follower"
)

func TestReachAndProvideLines(t *testing.T) {
	r := follower.ReachInfo{Traversal: true, Reachability: "private", RelayAddrs: []string{"a", "b"}, Direct: 1, Relayed: 2,
		Advice: "reachable through a relay"}
	if got, want := reachLine(r), "reachable through a relay (AutoNAT: private; peers 1 direct, 2 relayed; 2 relay addresses)"; got != want {
		t.Errorf("reachLine = %q, want %q", got, want)
	}
	off := follower.ReachInfo{Advice: "NAT traversal is off: the node listens on loopback only"}
	if got := reachLine(off); got != off.Advice {
		t.Errorf("reachLine without traversal = %q, want the advice alone", got)
	}
	got := provideLine([]follower.ProvideInfo{
		{DHT: "cluster", Roots: 10, Pending: 3, Online: true},
		{DHT: "dht", Roots: 10, Failed: 2},
	})
	for _, want := range []string{"10 roots in the cluster DHT, 3 waiting", "10 roots in the other DHT, 2 failed (no DHT peer reached yet)"} {
		if !strings.Contains(got, want) {
			t.Errorf("provideLine = %q, want it to contain %q", got, want)
		}
	}
}
