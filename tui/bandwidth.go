package tui

import (
	"fmt"

	"github.com/dustin/go-humanize"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/p2p"
)

// TrafficSummary is bitswap's traffic in one line: the rates over the
// last 10 s against the limits, then the totals since start, e.g.
// "down 4.9 MB/s of 5MB/s, up 120 kB/s (unlimited); 302 MB down, 7.2 MB up since start".
func TrafficSummary(b p2p.Bandwidth) string {
	dir := func(name string, t p2p.Traffic) string {
		s := name + " " + humanize.Bytes(uint64(max(t.Rate, 0))) + "/s"
		if t.Limit > 0 {
			return s + " of " + configs.Rate(t.Limit).String()
		}
		return s + " (unlimited)"
	}
	return fmt.Sprintf("%s, %s; %s down, %s up since start", dir("down", b.Down), dir("up", b.Up),
		humanize.Bytes(b.Down.Total), humanize.Bytes(b.Up.Total))
}
