package kubo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pinfold/pinfold/content"
)

func testPeers(t *testing.T, n int) []peer.AddrInfo {
	t.Helper()
	ids := []string{
		"12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
		"12D3KooWSi4CvqH93zasK1EFjh6N5AaaSVVgB1hKnjiH8DFVcjrw",
		"12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq",
	}
	var out []peer.AddrInfo
	for i := range n {
		id, err := peer.Decode(ids[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}})
	}
	return out
}

// clock is a test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestStore(t *testing.T) {
	f, c := newFake(t)
	ctx := context.Background()
	clk := &clock{t: time.Unix(1000, 0)}
	peers := testPeers(t, 3)
	s, err := NewStore(c, StoreConfig{Name: "pinfold/demo/me", Peers: func() []peer.AddrInfo { return peers }, MaxPeers: 2, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	a, b, mine := testCID(t, 1), testCID(t, 2), testCID(t, 3)
	f.setPin(mine.String(), "the user's own", DAGStat{Blocks: 2, Bytes: 50})
	f.mu.Lock()
	f.sizes[b.String()] = DAGStat{Blocks: 3, Bytes: 300}
	f.mu.Unlock()

	var prog []content.Stat
	st, err := s.Fetch(ctx, a, func(st content.Stat) { prog = append(prog, st) })
	if err != nil {
		t.Fatal(err)
	}
	if st != (content.Stat{Blocks: 7, Bytes: 7000}) {
		t.Fatalf("Fetch = %+v; want the dag stat", st)
	}
	want := []content.Stat{{Blocks: 1}, {Blocks: 3}, {Blocks: 7}, {Blocks: 7, Bytes: 7000}}
	if len(prog) != len(want) {
		t.Fatalf("progress %v; want %v", prog, want)
	}
	for i := range want {
		if prog[i] != want[i] {
			t.Fatalf("progress %v; want %v", prog, want)
		}
	}
	if name(f, a) != "pinfold/demo/me" {
		t.Fatalf("pin named %q", name(f, a))
	}
	if len(f.connected()) != 2 || !strings.HasSuffix(f.connected()[0], peers[0].ID.String()) {
		t.Fatalf("swarm connects %v; want the first 2 peers", f.connected())
	}

	// Within ConnectInterval, no new connects; after it, again.
	if _, err := s.Fetch(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	if len(f.connected()) != 2 {
		t.Fatalf("connected again within the interval: %v", f.connected())
	}
	u, err := s.Usage(ctx)
	if err != nil || u != (content.Stat{Blocks: 10, Bytes: 7300}) {
		t.Fatalf("Usage = %+v, %v; want a + b", u, err)
	}

	// A pin the user made is used, keeps its name, is not counted, and
	// is never removed.
	st, err = s.Fetch(ctx, mine, nil)
	if err != nil || st.Bytes != 50 || name(f, mine) != "the user's own" {
		t.Fatalf("Fetch of the user's pin = %+v, %v; name now %q", st, err, name(f, mine))
	}
	if n, err := s.Release(ctx, mine); err != nil || n != 0 {
		t.Fatalf("Release of the user's pin = %d, %v", n, err)
	}
	if _, ok := f.pin(mine.String()); !ok {
		t.Fatal("Release removed the user's own pin")
	}
	ok, st, err := s.Kept(ctx, mine)
	if err != nil || !ok || st.Bytes != 50 {
		t.Fatalf("Kept(user's pin) = %v %+v %v", ok, st, err)
	}

	// Release unpins ours; twice is harmless.
	n, err := s.Release(ctx, a)
	if err != nil || n != 7000 {
		t.Fatalf("Release = %d, %v", n, err)
	}
	if _, ok := f.pin(a.String()); ok {
		t.Fatal("still pinned after Release")
	}
	if n, err := s.Release(ctx, a); err != nil || n != 0 {
		t.Fatalf("second Release = %d, %v", n, err)
	}
	if ok, _, err := s.Kept(ctx, a); ok || err != nil {
		t.Fatalf("Kept after Release = %v, %v", ok, err)
	}
	u, err = s.Usage(ctx)
	if err != nil || u != (content.Stat{Blocks: 3, Bytes: 300}) {
		t.Fatalf("Usage after Release = %+v, %v", u, err)
	}

	// A new Store over the same daemon (a restart) finds our pins by name.
	s2, err := NewStore(c, StoreConfig{Name: "pinfold/demo/me"})
	if err != nil {
		t.Fatal(err)
	}
	u, err = s2.Usage(ctx)
	if err != nil || u != (content.Stat{Blocks: 3, Bytes: 300}) {
		t.Fatalf("Usage after restart = %+v, %v", u, err)
	}
	// Substring matches of the name are not ours.
	f.setPin(testCID(t, 4).String(), "pinfold/demo/me-too", DAGStat{Blocks: 1, Bytes: 1})
	s3, _ := NewStore(c, StoreConfig{Name: "pinfold/demo/me"})
	if u, err := s3.Usage(ctx); err != nil || u.Bytes != 300 {
		t.Fatalf("Usage with a look-alike name = %+v, %v", u, err)
	}

	clk.t = clk.t.Add(time.Minute)
	if _, err := s.Fetch(ctx, testCID(t, 5), nil); err != nil {
		t.Fatal(err)
	}
	if len(f.connected()) != 4 {
		t.Fatalf("swarm connects %v; want a second round after ConnectInterval", f.connected())
	}
}

func TestStoreStall(t *testing.T) {
	f, c := newFake(t)
	f.mu.Lock()
	f.stall, f.failDial = true, true
	f.mu.Unlock()
	s, err := NewStore(c, StoreConfig{Name: "pinfold/x", StallTimeout: 200 * time.Millisecond,
		Peers: func() []peer.AddrInfo { return testPeers(t, 1) }})
	if err != nil {
		t.Fatal(err)
	}
	root := testCID(t, 1)
	_, err = s.Fetch(context.Background(), root, nil)
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "dial refused") {
		t.Fatalf("Fetch = %v; want ErrStalled naming the connect failure", err)
	}
	if _, ok := f.pin(root.String()); ok {
		t.Fatal("pinned after a stall")
	}
	// A stall makes the next Fetch connect again.
	f.mu.Lock()
	f.stall, f.failDial = false, false
	f.mu.Unlock()
	if _, err := s.Fetch(context.Background(), root, nil); err != nil {
		t.Fatal(err)
	}
	if len(f.connected()) != 2 {
		t.Fatalf("swarm connects %v; want one per Fetch after a stall", f.connected())
	}
}

func TestNewStoreName(t *testing.T) {
	_, c := newFake(t)
	for _, name := range []string{"", strings.Repeat("n", 256)} {
		if _, err := NewStore(c, StoreConfig{Name: name}); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewStore(name of %d bytes) = %v; want ErrInvalid", len(name), err)
		}
	}
}
