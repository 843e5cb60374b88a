package follower

import (
	"sync"
	"time"

	"github.com/dustin/go-humanize/english"
)

// Event is one line of the follower's recent history, for status and the
// dashboard: a verified head, a rejection, an ACK, a dropped shard.
type Event struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	Text string    `json:"text"`
}

// events keeps the newest maxEvents events.
type events struct {
	mu   sync.Mutex
	list []Event
}

const maxEvents = 200

func (d *Daemon) event(kind, text string) {
	d.log.Info(text, "event", kind)
	d.events.mu.Lock()
	defer d.events.mu.Unlock()
	d.events.list = append(d.events.list, Event{Time: d.now(), Kind: kind, Text: text})
	if n := len(d.events.list); n > maxEvents {
		d.events.list = append(d.events.list[:0:0], d.events.list[n-maxEvents:]...)
	}
}

// Events returns the recent events, oldest first.
func (d *Daemon) Events() []Event {
	d.events.mu.Lock()
	defer d.events.mu.Unlock()
	return append([]Event(nil), d.events.list...)
}

// plural is "1 pin", "2 pins": counts in events read the same everywhere.
func plural(n int, unit string) string { return english.Plural(n, unit, "") }
