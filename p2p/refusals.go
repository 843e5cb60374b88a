package p2p

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// RefusalGroup sums recent rejection entries of one topic and reason: for
// status displays, which show who is refused what, at a glance.
type RefusalGroup struct {
	Topic  string `json:"topic"`
	Reason string `json:"reason"` // the entries' Label
	Count  uint64 `json:"count"`
	Peers  int    `json:"peers"`    // distinct peers the messages came from
	Top    string `json:"top_peer"` // the peer most of them came from
	TopN   uint64 `json:"top_count"`
}

// GroupRejections groups entries by topic and label, largest count first
// (ties by topic, then reason).
func GroupRejections(entries []Rejection) []RefusalGroup {
	type key struct{ topic, label string }
	perPeer := map[key]map[peer.ID]uint64{}
	for _, e := range entries {
		k := key{e.Topic, e.Label}
		if perPeer[k] == nil {
			perPeer[k] = map[peer.ID]uint64{}
		}
		perPeer[k][e.Peer] += e.Count
	}
	out := make([]RefusalGroup, 0, len(perPeer))
	for k, peers := range perPeer {
		g := RefusalGroup{Topic: k.topic, Reason: k.label, Peers: len(peers)}
		for p, n := range peers {
			g.Count += n
			if n > g.TopN || n == g.TopN && p.String() < g.Top {
				g.Top, g.TopN = p.String(), n
			}
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b RefusalGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}

// String is one line: "heads: trust: signature invalid: 812 from 2 peers
// (most from 12D3Koo…x7F9Qa: 800)". The topic is its last path element.
func (g RefusalGroup) String() string {
	topic := g.Topic[strings.LastIndexByte(g.Topic, '/')+1:]
	s := fmt.Sprintf("%s: %s: %d", topic, g.Reason, g.Count)
	switch {
	case g.Peers == 1 && g.Top != "":
		s += " from " + shortID(g.Top)
	case g.Peers > 1:
		s += fmt.Sprintf(" from %d peers (most from %s: %d)", g.Peers, shortID(g.Top), g.TopN)
	}
	return s
}

func shortID(id string) string {
	if len(id) <= 16 {
		return id
	}
	return id[:7] + "…" + id[len(id)-6:]
}

// RefusalLines returns the groups as at most n lines of text for a status
// display, the last saying how many more there are.
func RefusalLines(groups []RefusalGroup, n int) []string {
	var out []string
	for i, g := range groups {
		if i == n {
			out = append(out, fmt.Sprintf("(%d more; --json lists all)", len(groups)-i))
			break
		}
		out = append(out, g.String())
	}
	return out
}

// TotalsLine lists counts by reason, largest first (ties by reason):
// "trust: signature invalid 812, p2p: peer rate limited 200".
func TotalsLine(counts map[string]uint64) string {
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s %d", r, counts[r])
	}
	return strings.Join(parts, ", ")
}
