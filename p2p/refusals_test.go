package p2p

import (
	"reflect"
	"testing"
)

func TestGroupRejections(t *testing.T) {
	ids := testIDs(t, 2)
	a, b := ids[0], ids[1]
	entries := []Rejection{
		{Peer: a, Topic: "/pinfold/x/heads", Label: "trust: signature invalid", Count: 800},
		{Peer: b, Topic: "/pinfold/x/heads", Label: "trust: signature invalid", Count: 12},
		{Peer: b, Topic: "/pinfold/x/crdt", Label: "pinset: broadcast author not trusted", Count: 3},
		{Peer: a, Topic: "/pinfold/x/heads", Label: "p2p: peer rate limited", Count: 3},
	}
	got := GroupRejections(entries)
	want := []RefusalGroup{
		{Topic: "/pinfold/x/heads", Reason: "trust: signature invalid", Count: 812, Peers: 2, Top: a.String(), TopN: 800},
		{Topic: "/pinfold/x/crdt", Reason: "pinset: broadcast author not trusted", Count: 3, Peers: 1, Top: b.String(), TopN: 3},
		{Topic: "/pinfold/x/heads", Reason: "p2p: peer rate limited", Count: 3, Peers: 1, Top: a.String(), TopN: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	lines := RefusalLines(got, 2)
	if len(lines) != 3 || lines[2] != "(1 more; --json lists all)" {
		t.Fatalf("lines %q", lines)
	}
	if want := "heads: trust: signature invalid: 812 from 2 peers (most from " + shortID(a.String()) + ": 800)"; lines[0] != want {
		t.Errorf("line %q, want %q", lines[0], want)
	}
	if got, want := TotalsLine(map[string]uint64{"b": 2, "a": 2, "c": 9}), "c 9, a 2, b 2"; got != want {
		t.Errorf("totals %q, want %q", got, want)
	}
}
