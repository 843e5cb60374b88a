package tui

import (
	"testing"

	"github.com/pinfold/pinfold/follower"
)

func TestNextAction(t *testing.T) {
	t.Parallel()
	head := &follower.HeadInfo{Seq: 4}
	caught := follower.PinsetInfo{CaughtUp: true}
	for _, tc := range []struct {
		name string
		s    follower.Status
		want string
	}{
		{"no head", follower.Status{}, "waiting for a verified head from the cluster's peers"},
		{"syncing", follower.Status{Head: head}, "syncing the pinset of head seq 4"},
		{"not admitted", follower.Status{Head: head, Pinset: caught, Why: "not a member yet: waiting for a curator to admit this follower's offer"},
			"not a member yet: waiting for a curator to admit this follower's offer"},
		{"disk", follower.Status{Head: head, Pinset: caught, DiskError: "disk nearly full: 10 MiB free"}, "waiting for disk space (disk nearly full: 10 MiB free)"},
		{"paused for disk space", follower.Status{Head: head, Pinset: caught, DiskPaused: "paused: disk full: 0 B free on /f, fetching resumes when 359 MiB is free",
			Shards: []follower.ShardStatus{{ID: 2, State: follower.ShardFetching, Fetched: 1 << 20, Bytes: 4 << 20}}},
			"waiting for disk space (paused: disk full: 0 B free on /f, fetching resumes when 359 MiB is free)"},
		{"fetching", follower.Status{Head: head, Pinset: caught, Shards: []follower.ShardStatus{
			{ID: 1, State: follower.ShardStored}, {ID: 2, State: follower.ShardFetching, Fetched: 1 << 20, Bytes: 4 << 20}}},
			"fetching shard 2 (1.0 MiB of 4.0 MiB)"},
		{"fetching before queued", follower.Status{Head: head, Pinset: caught, Shards: []follower.ShardStatus{
			{ID: 2, State: follower.ShardFetching, Fetched: 1 << 20, Bytes: 4 << 20}, {ID: 3, State: follower.ShardQueued}}},
			"fetching shard 2 (1.0 MiB of 4.0 MiB)"},
		{"queued", follower.Status{Head: head, Pinset: caught, Shards: []follower.ShardStatus{
			{ID: 3, State: follower.ShardQueued}, {ID: 5, State: follower.ShardQueued}}}, "fetching shard 3 next, 2 shards queued"},
		{"retrying", follower.Status{Head: head, Pinset: caught, Shards: []follower.ShardStatus{
			{ID: 3, State: follower.ShardQueued, Error: "pin x: no provider"}}}, "retrying shard 3: pin x: no provider"},
		{"acks", follower.Status{Head: head, Pinset: caught, AcksPending: 1, Shards: []follower.ShardStatus{{ID: 1, State: follower.ShardStored}}},
			"waiting for a signed head to record 1 ACK"},
		{"audits", follower.Status{Head: head, Pinset: caught, Shards: []follower.ShardStatus{
			{ID: 1, State: follower.ShardStored, Proven: true}, {ID: 2, State: follower.ShardStored}}}, "waiting for audits to prove 1 copy"},
		{"done", follower.Status{Head: head, Pinset: caught, Shards: []follower.ShardStatus{{ID: 1, State: follower.ShardStored, Proven: true}}},
			"holding 1 shard, every copy proven"},
	} {
		if got := NextAction(tc.s); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
