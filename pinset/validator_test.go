package pinset

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	pb "github.com/ipfs/go-ds-crdt/pb"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pspb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func headCID(n uint64) cid.Cid { return cid.NewCidV1(cid.DagProtobuf, testCID(n).Hash()) }

func TestValidator(t *testing.T) {
	cfg := DefaultConfig()
	curator, stranger := peerOf(t, newKey(t)), peerOf(t, newKey(t))
	trust := newTrustSet(curator)
	v := NewValidator(cfg, trust.has)

	good, err := encodeBroadcast([]cid.Cid{headCID(1), headCID(2)})
	if err != nil {
		t.Fatal(err)
	}
	many := make([]cid.Cid, cfg.MaxBroadcastHeads+1)
	for i := range many {
		many[i] = headCID(uint64(i))
	}
	tooMany, _ := encodeBroadcast(many)
	rawHead, _ := proto.Marshal(&pb.CRDTBroadcast{Heads: []*pb.Head{{Cid: testCID(1).Bytes()}}})
	legacy := headCID(1).Bytes() // go-ds-crdt's old bare-CID form
	unknown := protowire.AppendTag(append([]byte{}, good...), 9, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 1)
	empty, _ := proto.Marshal(&pb.CRDTBroadcast{})

	msg := func(from peer.ID, data []byte, signed bool) *pubsub.Message {
		m := &pubsub.Message{Message: &pspb.Message{From: []byte(from), Data: data}}
		if signed {
			m.Signature = []byte{1}
		}
		return m
	}
	for _, tc := range []struct {
		name string
		msg  *pubsub.Message
		want pubsub.ValidationResult
	}{
		{"trusted", msg(curator, good, true), pubsub.ValidationAccept},
		{"untrusted author", msg(stranger, good, true), pubsub.ValidationIgnore},
		{"unsigned", msg(curator, good, false), pubsub.ValidationIgnore},
		{"too many heads", msg(curator, tooMany, true), pubsub.ValidationReject},
		{"raw codec head", msg(curator, rawHead, true), pubsub.ValidationReject},
		{"legacy bare CID", msg(curator, legacy, true), pubsub.ValidationReject},
		{"unknown field", msg(curator, unknown, true), pubsub.ValidationReject},
		{"no heads", msg(curator, empty, true), pubsub.ValidationReject},
		{"oversize", msg(curator, bytes.Repeat([]byte{0}, cfg.MaxBroadcastBytes+1), true), pubsub.ValidationReject},
		{"garbage", msg(curator, []byte{0xff, 0xff}, true), pubsub.ValidationReject},
		{"nil", &pubsub.Message{}, pubsub.ValidationReject},
	} {
		if got := v.Validate(context.Background(), stranger, tc.msg); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if st := v.Stats(); st.Accepted != 1 || st.Untrusted != 2 || st.Malformed != 8 {
		t.Fatalf("stats %+v", st)
	}
	// The trust set is read per message: a removed curator is refused at once.
	trust.mu.Lock()
	delete(trust.peers, curator)
	trust.mu.Unlock()
	if got := v.Validate(context.Background(), curator, msg(curator, good, true)); got != pubsub.ValidationIgnore {
		t.Fatalf("removed curator: %v, want ignore", got)
	}
}

func TestBroadcastRoundTrip(t *testing.T) {
	heads := []cid.Cid{headCID(1), headCID(2), headCID(3)}
	b, err := encodeBroadcast(heads)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBroadcast(b, 1024, 3)
	if err != nil || len(got) != 3 || !got[2].Equals(heads[2]) {
		t.Fatalf("decode = %v, %v", got, err)
	}
	if _, err := decodeBroadcast(b, 1024, 2); !errors.Is(err, ErrMalformed) {
		t.Fatalf("over head limit: %v", err)
	}
}

func FuzzDecodeBroadcast(f *testing.F) {
	b, _ := encodeBroadcast([]cid.Cid{headCID(1)})
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		heads, err := decodeBroadcast(data, 8192, 64)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(heads) == 0 || len(heads) > 64 {
			t.Fatalf("accepted %d heads", len(heads))
		}
		for _, h := range heads {
			if !IsHeadCID(h) {
				t.Fatalf("accepted head %s", h)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"namespace", func(c *Config) { c.Namespace = "pinset" }},
		{"namespace", func(c *Config) { c.Namespace = "/pinset/" }},
		{"batch_keys", func(c *Config) { c.BatchKeys = 0 }},
		{"max_delta_bytes", func(c *Config) { c.MaxDeltaBytes = 4 << 20 }},
		{"max_block_bytes", func(c *Config) { c.MaxBlockBytes = c.MaxDeltaBytes }},
		{"num_workers", func(c *Config) { c.NumWorkers = 0 }},
		{"prefetch_blocks", func(c *Config) { c.PrefetchBlocks = -1 }},
		{"fetch_timeout", func(c *Config) { c.FetchTimeout = 0 }},
		{"retry_min", func(c *Config) { c.RetryMin = -time.Second }},
		{"retry_max", func(c *Config) { c.RetryMax = c.RetryMin / 2 }},
		{"rebroadcast_interval", func(c *Config) { c.RebroadcastInterval = time.Millisecond }},
		{"repair_interval", func(c *Config) { c.RepairInterval = 0 }},
		{"poll_interval", func(c *Config) { c.PollInterval = 0 }},
		{"index_flush_entries", func(c *Config) { c.IndexFlushEntries = 0 }},
		{"max_pending", func(c *Config) { c.MaxPending = 0 }},
		{"max_broadcast_bytes", func(c *Config) { c.MaxBroadcastBytes = 10 }},
		{"max_broadcast_heads", func(c *Config) { c.MaxBroadcastHeads = 0 }},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		before := c
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "pinset."+tc.field) {
			t.Errorf("%s: Validate() = %v", tc.field, err)
		}
		if c != before {
			t.Errorf("%s: Validate changed the config", tc.field)
		}
	}
}
