package p2p

import (
	"strings"
	"testing"
)

func TestNATAdvice(t *testing.T) {
	relay := []string{"/ip4/11.0.0.10/tcp/4050/p2p/12D3KooWEaVjx7z3WQpsbprHNnvRu8mL6ANDJy7bU9KHLupRjYwS/p2p-circuit"}
	tests := []struct {
		name string
		st   NATStatus
		want string
	}{
		{"public", NATStatus{Reachability: "public"}, "reachable directly"},
		{"relayed, hole punching", NATStatus{Reachability: "private", RelayAddrs: relay, Relay: true, HolePunching: true}, "through a relay; peers upgrade"},
		{"relayed only", NATStatus{Reachability: "private", RelayAddrs: relay, Relay: true}, "turn on hole punching"},
		{"private, traversal off", NATStatus{Reachability: "private"}, "NAT traversal is off"},
		{"private, no reservation", NATStatus{Reachability: "private", Relay: true}, "no relay reservation"},
		{"unknown", NATStatus{Reachability: "unknown", Relay: true}, "not known yet"},
	}
	for _, tt := range tests {
		if got := tt.st.Advice(); !strings.Contains(got, tt.want) {
			t.Errorf("%s: Advice() = %q, want it to contain %q", tt.name, got, tt.want)
		}
	}
}
