package curator

import (
	"sync"
	"time"
)

// PublishedHead is one head this curator published, for status and the
// dashboard.
type PublishedHead struct {
	CID     string    `json:"cid"`
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Pins    int64     `json:"pins"`
	Members int       `json:"members"`
	Log     int       `json:"log"` // ACK log entries it recorded
}

// ReceivedAck is one verified ACK or release this curator received.
type ReceivedAck struct {
	Time  time.Time `json:"time"` // when the curator received it
	Peer  string    `json:"peer"`
	Shard int64     `json:"shard"`
	State string    `json:"state"` // stored | released
	Seq   int64     `json:"seq"`   // the head it answers
	Bytes int64     `json:"bytes"`
}

// maxRecent bounds each recent list.
const maxRecent = 50

// recent keeps the newest heads published and ACKs received, newest last.
// Its methods are safe for concurrent use.
type recent struct {
	mu    sync.Mutex
	heads []PublishedHead
	acks  []ReceivedAck
}

func (r *recent) addHead(h PublishedHead) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heads = appendBounded(r.heads, h)
}

func (r *recent) addAck(a ReceivedAck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks = appendBounded(r.acks, a)
}

// snapshot returns copies of both lists, newest first.
func (r *recent) snapshot() ([]PublishedHead, []ReceivedAck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return reversed(r.heads), reversed(r.acks)
}

func appendBounded[T any](list []T, v T) []T {
	list = append(list, v)
	if n := len(list); n > maxRecent {
		list = append(list[:0:0], list[n-maxRecent:]...)
	}
	return list
}

func reversed[T any](list []T) []T {
	out := make([]T, len(list))
	for i, v := range list {
		out[len(list)-1-i] = v
	}
	return out
}
