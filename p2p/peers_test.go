package p2p

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// testIDs returns n peer IDs derived from a fixed seed.
func testIDs(t testing.TB, n int) []peer.ID {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]peer.ID, n)
	for i := range out {
		seed := make([]byte, 32)
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		_, pub, err := crypto.GenerateEd25519Key(bytesReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = peer.IDFromPublicKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

type bytesReader []byte

func (b bytesReader) Read(p []byte) (int, error) { return copy(p, b), nil }

func addrs(t testing.TB, ss ...string) []ma.Multiaddr {
	t.Helper()
	var out []ma.Multiaddr
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

func TestUsableAddrs(t *testing.T) {
	in := addrs(t,
		"/ip4/10.0.0.1/tcp/4050",
		"/ip4/0.0.0.0/tcp/4050",            // unspecified
		"/ip4/10.0.0.1/udp/4050/quic-v1",   // ok
		"/ip4/10.0.0.1/tcp/4050",           // duplicate
		"/ip4/10.0.0.1/tcp/4050/ws",        // not TCP/QUIC
		"/ip4/224.0.0.1/tcp/1",             // multicast
		"/ip6/::1/tcp/4050",                // ok
		"/ip4/10.0.0.1/udp/4050/quic",      // draft QUIC
		"/dns4/example.com/tcp/4050",       // not an IP
		"/ip4/127.0.0.1/tcp/1/p2p-circuit", // relay
		"/ip4/192.168.1.1/tcp/4051",        // ok
	)
	want := addrs(t, "/ip4/10.0.0.1/tcp/4050", "/ip4/10.0.0.1/udp/4050/quic-v1", "/ip6/::1/tcp/4050", "/ip4/192.168.1.1/tcp/4051")
	if got := usableAddrs(in); !reflect.DeepEqual(got, want) {
		t.Errorf("usableAddrs = %v, want %v", got, want)
	}
	var many []ma.Multiaddr
	for i := range 20 {
		many = append(many, ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/1", i+1)))
	}
	if got := usableAddrs(many); len(got) != maxAddrsPerPeer {
		t.Errorf("usableAddrs kept %d of 20, want %d", len(got), maxAddrsPerPeer)
	}
}

func TestPeersFileRoundTrip(t *testing.T) {
	ids := testIDs(t, 5)
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var peers []remembered
	for i, id := range ids {
		peers = append(peers, remembered{
			ID:       id,
			Addrs:    addrs(t, fmt.Sprintf("/ip4/10.0.0.%d/tcp/4050", i+1)),
			LastSeen: base.Add(time.Duration(i) * time.Minute),
		})
	}
	path := filepath.Join(t.TempDir(), "peers.json")
	if err := savePeers(path, newest(slices.Clone(peers), 10)); err != nil {
		t.Fatal(err)
	}
	got, err := loadPeers(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []remembered{peers[4], peers[3], peers[2]} // newest three
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loadPeers = %v, want %v", got, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d files after save, want only peers.json", len(entries))
	}
	if got, err := loadPeers(filepath.Join(t.TempDir(), "missing.json"), 3); err != nil || got != nil {
		t.Errorf("missing file: %v, %v; want nil, nil", got, err)
	}
}

func TestDecodePeers(t *testing.T) {
	id := testIDs(t, 1)[0]
	tests := []struct {
		name  string
		in    string
		n     int    // peers kept
		err   string // "" means no error
		addrs int    // addresses of the first peer
	}{
		{"empty list", `{"version":1,"peers":[]}`, 0, "", 0},
		{"one", `{"version":1,"peers":[{"id":"` + id.String() + `","addrs":["/ip4/1.2.3.4/tcp/1"],"last_seen":"2025-01-01T00:00:00Z"}]}`, 1, "", 1},
		{"bad id skipped", `{"version":1,"peers":[{"id":"nope","addrs":["/ip4/1.2.3.4/tcp/1"]}]}`, 0, "", 0},
		{"no usable addr skipped", `{"version":1,"peers":[{"id":"` + id.String() + `","addrs":["/ip4/0.0.0.0/tcp/1","junk"]}]}`, 0, "", 0},
		{"duplicates merged", `{"version":1,"peers":[{"id":"` + id.String() + `","addrs":["/ip4/1.2.3.4/tcp/1"]},{"id":"` + id.String() + `","addrs":["/ip4/1.2.3.5/tcp/1"]}]}`, 1, "", 2},
		{"wrong version", `{"version":2,"peers":[]}`, 0, "version 2", 0},
		{"not json", `peers`, 0, "invalid character", 0},
		{"wrong types", `{"version":"1"}`, 0, "cannot unmarshal", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePeers([]byte(tt.in), 10)
			if tt.err != "" {
				if !errors.Is(err, ErrPeersFile) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("decodePeers = %v, want ErrPeersFile containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.n {
				t.Fatalf("decodePeers kept %d peers, want %d: %v", len(got), tt.n, got)
			}
			if tt.n > 0 && len(got[0].Addrs) != tt.addrs {
				t.Errorf("first peer has %d addrs, want %d", len(got[0].Addrs), tt.addrs)
			}
		})
	}
	if _, err := decodePeers(make([]byte, maxPeersFileSize+1), 10); !errors.Is(err, ErrPeersFile) {
		t.Errorf("oversized file: %v, want ErrPeersFile", err)
	}
}

// TestMemoryBounded checks memory against a reference: after any sequence
// of sightings, list() is the limit most recently seen peers.
func TestMemoryBounded(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	ids := testIDs(t, 40)
	for round := range 50 {
		limit := 1 + rng.IntN(10)
		m := newMemory(limit, nil)
		ref := make(map[peer.ID]time.Time)
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		for range 200 {
			now = now.Add(time.Duration(1+rng.IntN(3)) * time.Second)
			id := ids[rng.IntN(len(ids))]
			m.seen(id, addrs(t, "/ip4/10.1.2.3/tcp/4050"), now)
			ref[id] = now
			if len(m.peers) > 2*limit {
				t.Fatalf("round %d: memory holds %d peers, limit %d", round, len(m.peers), limit)
			}
		}
		var want []remembered
		for id, at := range ref {
			want = append(want, remembered{ID: id, Addrs: addrs(t, "/ip4/10.1.2.3/tcp/4050"), LastSeen: at})
		}
		want = newest(want, limit)
		if got := m.list(); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: list = %v, want %v", round, got, want)
		}
	}
}

func TestMemorySave(t *testing.T) {
	ids := testIDs(t, 3)
	path := filepath.Join(t.TempDir(), "peers.json")
	m := newMemory(2, nil)
	if err := m.save(path, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("clean memory wrote a file: %v", err)
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range ids {
		m.seen(id, addrs(t, "/ip4/10.0.0.1/tcp/1"), now.Add(time.Duration(i)*time.Second))
	}
	if m.seen(ids[0], addrs(t, "/ip4/0.0.0.0/tcp/1"), now) {
		t.Errorf("seen accepted a peer with no usable address")
	}
	if err := m.save(path, false); err != nil {
		t.Fatal(err)
	}
	got, err := loadPeers(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[2] || got[1].ID != ids[1] {
		t.Errorf("saved %v, want the two newest (%s, %s)", got, ids[2], ids[1])
	}
	if err := m.save(filepath.Join(t.TempDir(), "no", "such", "dir.json"), true); !errors.Is(err, ErrPeersFile) {
		t.Errorf("save to a missing folder: %v, want ErrPeersFile", err)
	}
}

// FuzzDecodePeers: any input decodes without panic to a bounded list
// that survives an encode/decode round trip unchanged.
func FuzzDecodePeers(f *testing.F) {
	id := testIDs(f, 1)[0]
	f.Add([]byte(`{"version":1,"peers":[{"id":"` + id.String() + `","addrs":["/ip4/1.2.3.4/tcp/1","/ip6/::1/udp/2/quic-v1"],"last_seen":"2025-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"peers":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 4
		got, err := decodePeers(data, limit)
		if err != nil {
			return
		}
		if len(got) > limit {
			t.Fatalf("kept %d peers, limit %d", len(got), limit)
		}
		for _, p := range got {
			if len(p.Addrs) == 0 || len(p.Addrs) > maxAddrsPerPeer {
				t.Fatalf("peer %s has %d addrs", p.ID, len(p.Addrs))
			}
		}
		enc, err := encodePeers(got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodePeers(enc, limit)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(back, got) && !(len(back) == 0 && len(got) == 0) {
			t.Fatalf("round trip:\n got %v\nwant %v", back, got)
		}
	})
}
