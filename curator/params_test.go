package curator

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

func TestShardTarget(t *testing.T) {
	const gib = int64(1) << 30
	members := func(caps ...int64) []dag.Member {
		out := make([]dag.Member, len(caps))
		for i, c := range caps {
			out[i] = dag.Member{Peer: []byte{byte(i)}, Capacity: c}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		config  int64
		members []dag.Member
		want    int64
	}{
		{"config wins", 8 << 20, members(1 << 40), 8 << 20},
		{"no members: 1 GiB", 0, nil, gib},
		{"small pledges: the 1 GiB floor", 0, members(50<<30, 80<<30, 10<<30), gib},
		{"median 2 TiB / 200", 0, members(1<<40, 2<<40, 4<<40), (2 << 40) / 200},
		{"even count: mean of the middle two", 0, members(1<<40, 3<<40), (2 << 40) / 200},
		{"huge pledges: the 64 GiB ceiling", 0, members(100<<40, 200<<40), 64 * gib},
		{"members without capacity do not count", 0, members(0, 0, 4<<40), (4 << 40) / 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configs.DefaultCurator()
			cfg.ShardTarget = configs.Size(tc.config)
			if got := ShardTarget(cfg, tc.members); got != tc.want {
				t.Fatalf("ShardTarget = %d, want %d", got, tc.want)
			}
		})
	}
}

// initPlain initialises a curator home as `curate init` with no flags
// does: no shard target in the config.
func initPlain(t *testing.T) Home {
	t.Helper()
	cfg := configs.DefaultCurator()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.API = "127.0.0.1:0"
	home := Home{Dir: filepath.Join(t.TempDir(), "curator")}
	if _, err := home.Init(context.Background(), InitOptions{Name: "test", Config: cfg, Now: time.Now(), Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	return home
}

// openPlain opens a daemon on a plain home without running it: the tests
// publish by hand and may change its config between heads.
func openPlain(t *testing.T) *Daemon {
	t.Helper()
	d, err := OpenDaemon(context.Background(), initPlain(t), DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

func newestParams(t *testing.T, d *Daemon) dag.AllocParams {
	t.Helper()
	v, ok := d.heads.Newest()
	if !ok {
		t.Fatal("no newest head")
	}
	a, err := d.store.DAG.Allocation(context.Background(), v.Head.Allocation)
	if err != nil {
		t.Fatal(err)
	}
	return a.Params
}

// signZeroTarget publishes, on top of the newest head, a head as clusters
// made before the default were left with: the same state, shard target 0.
func signZeroTarget(t *testing.T, d *Daemon) {
	t.Helper()
	signOnNewest(t, d, d.l.CuratorKey, func(a *dag.Allocation) { a.Params.ShardTarget = 0 })
}

// signOnNewest signs with key, and adopts, a head on top of the newest one
// carrying its allocation (changed by change, if not nil) and trust set, as
// another curator of the cluster would.
func signOnNewest(t *testing.T, d *Daemon, key crypto.PrivKey, change func(*dag.Allocation)) {
	t.Helper()
	ctx := context.Background()
	v, _ := d.heads.Newest()
	a, err := d.store.DAG.Allocation(ctx, v.Head.Allocation)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(&a)
	}
	head := dag.Head{Version: dag.Version, Cluster: v.Head.Cluster, Seq: v.Head.Seq + 1, Parent: &v.CID, Time: v.Head.Time, Trust: v.Head.Trust}
	head, _, err = d.store.DAG.BuildHead(ctx, head, dag.State{Allocation: a})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := trust.SignHead(key, head)
	if err != nil {
		t.Fatal(err)
	}
	data, err := dag.EncodeSignedHead(signed)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := publish.BuildRecord(d.l.ClusterKey, dag.CID(data), uint64(head.Seq), d.now(), recordConfig(d.l.Config))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := d.heads.Consider(ctx, headsync.Announcement{Head: data, Record: rec.Raw}, headsync.FromLocal, d.id); err != nil || out != headsync.Adopted {
		t.Fatalf("head seq %d: %v, %v", head.Seq, out, err)
	}
}

// TestPlainInitAllocates: a cluster made with no shard target signs a
// working one from genesis on, and its allocation can be computed.
func TestPlainInitAllocates(t *testing.T) {
	ctx := context.Background()
	d := openPlain(t)
	if p := newestParams(t, d); p.ShardTarget != allocation.DefaultTargetMin {
		t.Fatalf("genesis signs shard target %d, want %d", p.ShardTarget, allocation.DefaultTargetMin)
	}
	if _, err := d.Shards(ctx); err != nil {
		t.Fatalf("shards of the genesis head: %v", err)
	}
	if _, err := d.AddPins(ctx, []PinRequest{{CID: dag.CID([]byte("a")).String(), Size: 5 << 20}}); err != nil {
		t.Fatal(err)
	}
	if published, err := d.PublishNow(ctx, false); err != nil || !published {
		t.Fatalf("PublishNow: %v, %v", published, err)
	}
	ss, err := d.Shards(ctx)
	if err != nil || len(ss) != 1 {
		t.Fatalf("shards after a pin: %v, %v", ss, err)
	}
}

// TestZeroTargetRepaired: a cluster whose newest head signs a shard target
// of 0 cannot allocate; the next head carries the config's target and
// repairs it.
func TestZeroTargetRepaired(t *testing.T) {
	ctx := context.Background()
	d := openPlain(t)
	signZeroTarget(t, d)
	if _, err := d.Shards(ctx); err == nil || !strings.Contains(err.Error(), "shard_target") {
		t.Fatalf("shards of a zero-target head: %v, want the shard_target error", err)
	}
	// Pins are still packed to a working target.
	if _, err := d.AddPins(ctx, []PinRequest{{CID: dag.CID([]byte("b")).String(), Size: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	if published, err := d.PublishNow(ctx, false); err != nil || !published {
		t.Fatalf("PublishNow: %v, %v", published, err)
	}
	if p := newestParams(t, d); p.ShardTarget != allocation.DefaultTargetMin {
		t.Fatalf("next head signs shard target %d, want %d", p.ShardTarget, allocation.DefaultTargetMin)
	}
	if _, err := d.Shards(ctx); err != nil {
		t.Fatalf("shards after the repair: %v", err)
	}
	// A target set in the config goes into the next head.
	d.l.Config.ShardTarget = 8 << 20
	if published, err := d.PublishNow(ctx, false); err != nil || !published {
		t.Fatalf("PublishNow after the config change: %v, %v", published, err)
	}
	if p := newestParams(t, d); p.ShardTarget != 8<<20 {
		t.Fatalf("head signs shard target %d, want the config's %d", p.ShardTarget, 8<<20)
	}
}

// TestUnallocatableHeadRefused: parameters from which no allocation can
// be computed are refused before anything is signed.
func TestUnallocatableHeadRefused(t *testing.T) {
	ctx := context.Background()
	d := openPlain(t)
	before, _ := d.heads.Newest()
	d.l.Config.ReplicationMin, d.l.Config.ReplicationMax = 2, allocation.MaxRepl+1 // past configs.Validate
	_, err := d.PublishNow(ctx, true)
	if !errors.Is(err, ErrCannotAllocate) || !strings.Contains(err.Error(), "repl_max") {
		t.Fatalf("PublishNow = %v, want ErrCannotAllocate naming repl_max", err)
	}
	if after, _ := d.heads.Newest(); !after.CID.Equals(before.CID) {
		t.Fatalf("a head was adopted: %s after %s", after.CID, before.CID)
	}
	t.Logf("refused: %v", err)
}
