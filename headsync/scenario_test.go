package headsync

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/trust"
)

// Scenario files (testdata/*.txt) drive one node's head adoption, as text:
// the heads that exist, what each peer would serve, the candidates that
// arrive and what the node must decide. One command per line; '#' starts
// a comment.
//
//	head A parent G signer k1 [trust k1+k2] [seq N] [badsig]
//	                             define head A (parent "none": a genesis)
//	checkpoint G                 the node's checkpoint (seq 0); starts it
//	peer p1 has G A B            blocks peer p1 serves for missing parents
//	relay B: EXPECT              the heads topic's check, no fetching
//	consider B from p1 via topic: EXPECT
//	                             Consider; sources topic, peer, local
//	newest: B                    the node's newest head
//	stored: G A B                exactly these head blocks are in its store
//	asked: p1 p2                 peers asked for blocks since the last check
//
// EXPECT is adopted, known, passed, or "reject CODE" with CODE one of
// errorCodes. Keys (k1, k2, x, ...) come from fixed seeds: every run signs
// the same bytes, so races between curators end the same way.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sc := &scenario{t: t, heads: map[string][]byte{}, names: map[cid.Cid]string{}, peers: map[peer.ID]map[cid.Cid][]byte{}}
			for i, line := range strings.Split(string(data), "\n") {
				if j := strings.Index(line, "#"); j >= 0 {
					line = line[:j]
				}
				if line = strings.TrimSpace(line); line != "" {
					sc.at = fmt.Sprintf("%s:%d", f, i+1)
					sc.run(line)
				}
			}
			if sc.checks == 0 {
				t.Fatal("scenario checks nothing")
			}
		})
	}
}

var errorCodes = map[string]error{
	"bad-signature":   trust.ErrBadSignature,
	"untrusted":       trust.ErrUntrustedSigner,
	"stale-seq":       trust.ErrStaleSeq,
	"unavailable":     ErrUnavailable,
	"not-descendant":  trust.ErrNotDescendant,
	"quarantine-full": ErrQuarantineFull,
	"busy":            ErrBusy,
}

var (
	scenarioBase = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	scenarioLink = dag.CID([]byte("state"))
)

type scenario struct {
	t      *testing.T
	at     string
	checks int
	s      *Sync
	bs     blockstore.Blockstore
	heads  map[string][]byte
	names  map[cid.Cid]string
	peers  map[peer.ID]map[cid.Cid][]byte
	asked  []string
}

func (sc *scenario) fatalf(format string, args ...any) {
	sc.t.Helper()
	sc.t.Fatalf("%s: %s", sc.at, fmt.Sprintf(format, args...))
}

func scenarioKey(name string) crypto.PrivKey {
	seed := sha256.Sum256([]byte("headsync scenario key " + name))
	k, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8(seed))
	if err != nil {
		panic(err)
	}
	return k
}

func scenarioID(name string) peer.ID {
	id, err := peer.IDFromPrivateKey(scenarioKey(name))
	if err != nil {
		panic(err)
	}
	return id
}

// trustSet parses "k1+k2" into sorted binary peer IDs.
func trustSet(s string) [][]byte {
	var out [][]byte
	for _, n := range strings.Split(s, "+") {
		out = append(out, []byte(scenarioID(n)))
	}
	slices.SortFunc(out, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })
	return out
}

func (sc *scenario) run(line string) {
	sc.t.Helper()
	cmd, expect, _ := strings.Cut(line, ":")
	f := strings.Fields(cmd)
	switch f[0] {
	case "head":
		sc.defineHead(f[1], options(f[2:]))
	case "checkpoint":
		sc.start(f[1])
	case "peer":
		m := map[cid.Cid][]byte{}
		for _, n := range f[3:] {
			m[dag.CID(sc.head(n))] = sc.head(n)
		}
		sc.peers[peer.ID(f[1])] = m
	case "relay":
		_, err := sc.s.precheck(Announcement{Head: sc.head(f[1])}, FromTopic, scenarioBase.Add(time.Hour))
		sc.expect(0, err, expect)
	case "consider":
		o := options(f[2:])
		src := Source(o["via"])
		out, err := sc.s.Consider(context.Background(), Announcement{Head: sc.head(f[1])}, src, peer.ID(o["from"]))
		sc.expect(out, err, expect)
	case "newest":
		v, ok := sc.s.Newest()
		if got := sc.names[v.CID]; !ok || got != strings.TrimSpace(expect) {
			sc.fatalf("newest is %q, want %q", got, strings.TrimSpace(expect))
		}
		sc.checks++
	case "stored":
		var got []string
		for c, n := range sc.names {
			if ok, _ := sc.bs.Has(context.Background(), c); ok {
				got = append(got, n)
			}
		}
		want := strings.Fields(expect)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			sc.fatalf("stored %v, want %v", got, want)
		}
		sc.checks++
	case "asked":
		if want := strings.Fields(expect); !slices.Equal(sc.asked, want) {
			sc.fatalf("asked %v, want %v", sc.asked, want)
		}
		sc.asked = nil
		sc.checks++
	default:
		sc.fatalf("unknown command %q", f[0])
	}
}

func options(f []string) map[string]string {
	o := map[string]string{}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case "badsig":
			o[f[i]] = "yes"
		default:
			if i+1 < len(f) {
				o[f[i]] = f[i+1]
				i++
			}
		}
	}
	return o
}

func (sc *scenario) head(name string) []byte {
	b, ok := sc.heads[name]
	if !ok {
		sc.fatalf("no head %q", name)
	}
	return b
}

func (sc *scenario) defineHead(name string, o map[string]string) {
	h := dag.Head{Version: dag.Version, Cluster: []byte(scenarioID("cluster")), Trust: trustSet(o["trust"]),
		Pinset: scenarioLink, Members: scenarioLink, Allocation: scenarioLink, Time: scenarioBase.UnixMilli()}
	if o["parent"] != "none" {
		p, err := dag.DecodeSignedHead(sc.head(o["parent"]))
		if err != nil {
			sc.fatalf("parent: %v", err)
		}
		pc := dag.CID(sc.head(o["parent"]))
		h.Parent, h.Seq, h.Time = &pc, p.Head.Seq+1, p.Head.Time+1000
		if o["trust"] == "" {
			h.Trust = p.Head.Trust
		}
	}
	if s, ok := o["seq"]; ok {
		fmt.Sscan(s, &h.Seq)
	}
	sh, err := trust.SignHead(scenarioKey(o["signer"]), h)
	if err != nil {
		sc.fatalf("sign %s: %v", name, err)
	}
	if o["badsig"] != "" {
		sh.Sig.Sig[0] ^= 1
	}
	data, err := dag.EncodeSignedHead(sh)
	if err != nil {
		sc.fatalf("encode %s: %v", name, err)
	}
	sc.heads[name] = data
	sc.names[dag.CID(data)] = name
}

func (sc *scenario) start(checkpoint string) {
	sh, err := dag.DecodeSignedHead(sc.head(checkpoint))
	if err != nil {
		sc.fatalf("checkpoint: %v", err)
	}
	var rules []peer.ID
	for _, id := range sh.Head.Trust {
		rules = append(rules, peer.ID(id))
	}
	sc.bs = blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	now := scenarioBase.Add(time.Hour)
	sc.s, err = New(context.Background(), Config{
		Rules:      trust.Rules{Cluster: scenarioID("cluster"), Trust: rules},
		Checkpoint: dag.CID(sc.head(checkpoint)), Name: ipns.NameFromPeer(scenarioID("cluster")),
		Now: func() time.Time { return now }, Limits: Limits{MaxBlocks: 4},
	}, dssync.MutexWrap(ds.NewMapDatastore()), sc.bs, nil)
	if err != nil {
		sc.fatalf("new sync: %v", err)
	}
	sc.s.setFetcher(scenarioPeers{sc})
}

func (sc *scenario) expect(out Outcome, err error, expect string) {
	sc.t.Helper()
	sc.checks++
	want := strings.Fields(expect)
	if len(want) == 2 && want[0] == "reject" {
		code, ok := errorCodes[want[1]]
		if !ok {
			sc.fatalf("unknown code %q", want[1])
		}
		if !errors.Is(err, code) {
			sc.fatalf("got %v (%v), want %s", out, err, expect)
		}
		return
	}
	if err != nil || len(want) != 1 || (want[0] != "ok" && out.String() != want[0]) {
		sc.fatalf("got %v (%v), want %s", out, err, expect)
	}
}

// scenarioPeers is the fetcher: each peer serves the heads it has.
type scenarioPeers struct{ sc *scenario }

func (p scenarioPeers) chain(_ context.Context, id peer.ID, c cid.Cid, max int) ([][]byte, error) {
	p.sc.asked = append(p.sc.asked, string(id))
	var out [][]byte
	for len(out) < max {
		data, ok := p.sc.peers[id][c]
		if !ok {
			break
		}
		out = append(out, data)
		sh, _ := dag.DecodeSignedHead(data)
		if sh.Head.Parent == nil {
			break
		}
		c = *sh.Head.Parent
	}
	return out, nil
}

func (p scenarioPeers) peersFor(from peer.ID) []peer.ID {
	out := []peer.ID{}
	if from != "" {
		out = append(out, from)
	}
	var others []string
	for id := range p.sc.peers {
		if id != from {
			others = append(others, string(id))
		}
	}
	slices.Sort(others)
	for _, id := range others {
		out = append(out, peer.ID(id))
	}
	return out
}
