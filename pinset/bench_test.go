package pinset

// The 1,000,000-pin measurement. Not part of the normal run:
//
//	PINSET_BENCH=1 go test -run '^TestBenchMillion$' -v -timeout 60m ./pinset/
//
// PINSET_BENCH_PINS overrides the count; PINSET_BENCH_COMPARE=1 also times
// a sync with prefetching off; PINSET_BENCH_BADGER=small runs badger with
// 16 MiB memtables and block cache, 2 compactors and values over 64 KiB
// (CRDT blocks) in the value log, instead of its defaults. The curator runs in the test
// process; the fresh follower's sync, the listing and the index rebuild
// each run in a child process (this test binary again), so each peak RSS
// (VmHWM) is that of one role alone. badger4 runs with go-ds-badger4's
// default options.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	offline "github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	badger4 "github.com/ipfs/go-ds-badger4"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
)

// memStatus returns VmRSS, VmHWM, RssAnon and RssFile of this process,
// in MiB. RssFile counts pages of mapped files (badger maps its tables and
// logs) that the kernel can drop; RssAnon is memory the process allocated.
func memStatus(t testing.TB) (rss, hwm, anon, file float64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		case "RssAnon:":
			anon = kb / 1024
		case "RssFile:":
			file = kb / 1024
		}
	}
	return rss, hwm, anon, file
}

// peakAnon samples RssAnon and the Go heap (live and dead objects not yet
// swept) every 20 ms until stop is called, which returns the peaks in MiB
// (the kernel keeps no peak of RssAnon alone).
func peakAnon(t testing.TB) (stop func() (anon, heap float64)) {
	done := make(chan struct{})
	result := make(chan [2]float64)
	go func() {
		var peak [2]float64
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			_, _, anon, _ := memStatus(t)
			metrics.Read(sample)
			peak[0] = max(peak[0], anon)
			peak[1] = max(peak[1], float64(sample[0].Value.Uint64())/(1<<20))
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() (float64, float64) { close(done); p := <-result; return p[0], p[1] }
}

// resetPeak resets VmHWM to the current RSS (Linux >= 4.0).
func resetPeak(t testing.TB) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
}

func benchPins() uint64 {
	if n, err := strconv.ParseUint(os.Getenv("PINSET_BENCH_PINS"), 10, 64); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// openBenchBadger opens badger4 with go-ds-badger4's defaults, or with
// small memtables and caches if PINSET_BENCH_BADGER=small.
func openBenchBadger(t testing.TB, dir string) *badger4.Datastore {
	t.Helper()
	opts := badger4.DefaultOptions
	if os.Getenv("PINSET_BENCH_BADGER") == "small" {
		opts.Options = opts.Options.WithMemTableSize(16 << 20).WithNumMemtables(2).
			WithBlockCacheSize(16 << 20).WithNumLevelZeroTables(2).WithNumLevelZeroTablesStall(8).
			WithNumCompactors(2).WithValueThreshold(64 << 10)
	}
	d, err := badger4.NewDatastore(dir, &opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// benchResult is what a child process reports on its last stdout line.
type benchResult struct {
	Seconds     float64 `json:"seconds"`
	Pins        int64   `json:"pins"`
	Bytes       int64   `json:"bytes"`
	StartRSSMiB float64 `json:"start_rss_mib"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	PeakAnonMiB float64 `json:"peak_anon_mib"`
	PeakHeapMiB float64 `json:"peak_heap_mib"`
	Blocks      uint64  `json:"blocks_received"`
	Keys        uint64  `json:"keys_applied"`
}

func TestBenchMillion(t *testing.T) {
	if os.Getenv("PINSET_BENCH") == "" {
		t.Skip("set PINSET_BENCH=1 to run the 1,000,000-pin measurement")
	}
	total := benchPins()
	ctx := context.Background()
	root := t.TempDir()
	curKey := newKey(t)
	trust := newTrustSet(peerOf(t, curKey))

	// The curator: a real host, gossipsub, bitswap, badger4 defaults.
	h, err := libp2p.New(libp2p.Identity(curKey), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay(), libp2p.DisableMetrics(),
		libp2p.ResourceManager(&network.NullResourceManager{}))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps, err := pubsub.NewGossipSub(pctx, h)
	if err != nil {
		t.Fatal(err)
	}
	store := openBenchBadger(t, filepath.Join(root, "curator"))
	defer store.Close()
	bs := blockstore.NewBlockstore(namespace.Wrap(store, ds.NewKey("/blocks")))
	bswap := bitswap.New(pctx, bsnet.NewFromIpfsHost(h), nil, bs)
	defer bswap.Close()
	cfg := DefaultConfig()
	cfg.Writer = true
	topic, err := JoinTopic(ps, testTopic, NewValidator(cfg, trust.has))
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Close()
	cur, err := Open(ctx, cfg, Deps{Datastore: store, DAG: merkledag.NewDAGService(blockservice.New(bs, bswap)),
		Topic: topic, Trusted: trust.has, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()

	// Ingest, 10,000 pins per Add call, as an import would.
	runtime.GC()
	resetPeak(t)
	rss0, _, _, _ := memStatus(t)
	stopAnon := peakAnon(t)
	rng := rand.New(rand.NewPCG(11, 11))
	start := time.Now()
	for first := uint64(0); first < total; first += 10_000 {
		n := min(10_000, total-first)
		if _, err := cur.Add(ctx, makePins(first, n, 1000, rng)); err != nil {
			t.Fatal(err)
		}
	}
	ingest := time.Since(start)
	anon, heap := stopAnon()
	_, hwm, _, _ := memStatus(t)
	st := cur.Stats()
	blocks := len(chainOf(t, cur, cur.Heads()[0]))
	t.Logf("ingest: %d pins in %s = %.0f pins/s; %d CRDT blocks (%.0f pins/block); curator RSS %.0f MiB at start, peak %.0f MiB (anonymous %.0f MiB, Go heap objects %.0f MiB)",
		st.Pins, ingest.Round(time.Millisecond), float64(st.Pins)/ingest.Seconds(), blocks, float64(st.Pins)/float64(blocks), rss0, hwm, anon, heap)

	// A fresh follower syncs in its own process.
	heads := cur.Heads()
	var hs []string
	for _, c := range heads {
		hs = append(hs, c.String())
	}
	addr := fmt.Sprintf("%s/p2p/%s", h.Addrs()[0], h.ID())
	fdir := filepath.Join(root, "follower")
	syncEnv := []string{"PINSET_BENCH_PEER=" + addr, "PINSET_BENCH_HEADS=" + strings.Join(hs, ","),
		"PINSET_BENCH_TRUST=" + h.ID().String()}
	if os.Getenv("PINSET_BENCH_COMPARE") != "" {
		// The same sync without prefetching, into a throw-away folder.
		nopre := runChild(t, "sync", filepath.Join(root, "follower-noprefetch"), append(syncEnv, "PINSET_BENCH_PREFETCH=0")...)
		t.Logf("fresh follower sync without prefetch: %d pins in %.1f s = %.0f pins/s",
			nopre.Pins, nopre.Seconds, float64(nopre.Pins)/nopre.Seconds)
	}
	sync := runChild(t, "sync", fdir, syncEnv...)
	t.Logf("fresh follower sync: %d pins in %.1f s = %.0f pins/s; %d blocks received; %d keys merged; follower RSS peak %.0f MiB (anonymous %.0f MiB, Go heap objects %.0f MiB)",
		sync.Pins, sync.Seconds, float64(sync.Pins)/sync.Seconds, sync.Blocks, sync.Keys, sync.PeakRSSMiB, sync.PeakAnonMiB, sync.PeakHeapMiB)
	if sync.Pins != st.Pins || sync.Bytes != st.Bytes {
		t.Fatalf("follower has %d pins / %d bytes, curator %d / %d", sync.Pins, sync.Bytes, st.Pins, st.Bytes)
	}

	list := runChild(t, "list", fdir)
	t.Logf("follower List: %d pins in %.1f s = %.0f pins/s; RSS %.0f MiB after Open, peak %.0f MiB (anonymous %.0f MiB, Go heap objects %.0f MiB)",
		list.Pins, list.Seconds, float64(list.Pins)/list.Seconds, list.StartRSSMiB, list.PeakRSSMiB, list.PeakAnonMiB, list.PeakHeapMiB)
	if list.Pins != st.Pins {
		t.Fatalf("List returned %d pins, want %d", list.Pins, st.Pins)
	}

	rebuild := runChild(t, "rebuild", fdir)
	t.Logf("follower Open after a crash (index rebuild by full scan): %d pins in %.1f s; RSS peak %.0f MiB (anonymous %.0f MiB, Go heap objects %.0f MiB)",
		rebuild.Pins, rebuild.Seconds, rebuild.PeakRSSMiB, rebuild.PeakAnonMiB, rebuild.PeakHeapMiB)
	if rebuild.Pins != st.Pins || rebuild.Bytes != st.Bytes {
		t.Fatalf("rebuilt index has %d pins / %d bytes, want %d / %d", rebuild.Pins, rebuild.Bytes, st.Pins, st.Bytes)
	}
}

// chainOf returns the blocks of a linear CRDT chain from head down.
func chainOf(t *testing.T, s *Set, head cid.Cid) []cid.Cid {
	t.Helper()
	var out []cid.Cid
	for c := head; ; {
		out = append(out, c)
		ls, err := s.links(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) == 0 {
			return out
		}
		c = ls[0]
	}
}

// runChild runs this test binary as a child in role, and returns the
// result it reports.
func runChild(t *testing.T, role, dir string, env ...string) benchResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.v", "-test.timeout=60m")
	cmd.Env = append(os.Environ(), append(env, "PINSET_BENCH_ROLE="+role, "PINSET_BENCH_DIR="+dir)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var res benchResult
	found := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				t.Fatal(err)
			}
			found = true
		} else if testing.Verbose() {
			t.Log(role + ": " + line)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s child: %v", role, err)
	}
	if !found {
		t.Fatalf("%s child reported nothing", role)
	}
	return res
}

// TestBenchChild is the child side of TestBenchMillion.
func TestBenchChild(t *testing.T) {
	role := os.Getenv("PINSET_BENCH_ROLE")
	if role == "" {
		t.Skip("child of TestBenchMillion")
	}
	ctx := context.Background()
	dir := os.Getenv("PINSET_BENCH_DIR")
	report := func(r benchResult) {
		b, _ := json.Marshal(r)
		fmt.Printf("RESULT %s\n", b)
	}
	switch role {
	case "sync":
		key := newKey(t)
		h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay(), libp2p.DisableMetrics(),
			libp2p.ResourceManager(&network.NullResourceManager{}))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ps, err := pubsub.NewGossipSub(pctx, h)
		if err != nil {
			t.Fatal(err)
		}
		curator, err := peer.Decode(os.Getenv("PINSET_BENCH_TRUST"))
		if err != nil {
			t.Fatal(err)
		}
		trust := newTrustSet(curator)
		store := openBenchBadger(t, dir)
		defer store.Close()
		bs := blockstore.NewBlockstore(namespace.Wrap(store, ds.NewKey("/blocks")))
		bswap := bitswap.New(pctx, bsnet.NewFromIpfsHost(h), nil, bs)
		defer bswap.Close()
		cfg := DefaultConfig()
		if n, err := strconv.Atoi(os.Getenv("PINSET_BENCH_PREFETCH")); err == nil {
			cfg.PrefetchBlocks = n
		}
		topic, err := JoinTopic(ps, testTopic, NewValidator(cfg, trust.has))
		if err != nil {
			t.Fatal(err)
		}
		defer topic.Close()
		var heads []cid.Cid
		for _, s := range strings.Split(os.Getenv("PINSET_BENCH_HEADS"), ",") {
			c, err := cid.Decode(s)
			if err != nil {
				t.Fatal(err)
			}
			heads = append(heads, c)
		}
		runtime.GC()
		resetPeak(t)
		rss0, _, _, _ := memStatus(t)
		stopAnon := peakAnon(t)
		start := time.Now()
		s, err := Open(ctx, cfg, Deps{Datastore: store, DAG: merkledag.NewDAGService(blockservice.New(bs, bswap)),
			Topic: topic, Trusted: trust.has, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ma, err := multiaddr.NewMultiaddr(os.Getenv("PINSET_BENCH_PEER"))
		if err != nil {
			t.Fatal(err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(ma)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Connect(ctx, *ai); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitFor(ctx, heads); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		anon, heap := stopAnon()
		_, hwm, _, _ := memStatus(t)
		if path := os.Getenv("PINSET_BENCH_HEAPPROFILE"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
		st := s.Stats()
		bst, _ := bswap.Stat()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		report(benchResult{Seconds: took.Seconds(), Pins: st.Pins, Bytes: st.Bytes, StartRSSMiB: rss0, PeakRSSMiB: hwm,
			PeakAnonMiB: anon, PeakHeapMiB: heap, Blocks: bst.BlocksReceived, Keys: st.KeysApplied})

	case "list", "rebuild":
		store := openBenchBadger(t, dir)
		defer store.Close()
		if role == "rebuild" {
			// What a kill -9 leaves: the dirty marker.
			if err := store.Put(ctx, ds.NewKey("/pinset/idx/dirty"), nil); err != nil {
				t.Fatal(err)
			}
		}
		bs := blockstore.NewBlockstore(namespace.Wrap(store, ds.NewKey("/blocks")))
		dag := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
		runtime.GC()
		resetPeak(t)
		rss0, _, _, _ := memStatus(t)
		stopAnon := peakAnon(t)
		start := time.Now()
		s, err := Open(ctx, DefaultConfig(), Deps{Datastore: store, DAG: dag, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if role == "rebuild" {
			took := time.Since(start)
			anon, heap := stopAnon()
			_, hwm, _, _ := memStatus(t)
			st := s.Stats()
			report(benchResult{Seconds: took.Seconds(), Pins: st.Pins, Bytes: st.Bytes, StartRSSMiB: rss0, PeakRSSMiB: hwm,
				PeakAnonMiB: anon, PeakHeapMiB: heap})
			return
		}
		stopAnon()
		runtime.GC()
		rss0, _, _, _ = memStatus(t)
		resetPeak(t)
		stopAnon = peakAnon(t)
		start = time.Now()
		var n int64
		if err := s.List(ctx, func(Pin) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		anon, heap := stopAnon()
		_, hwm, _, _ := memStatus(t)
		report(benchResult{Seconds: took.Seconds(), Pins: n, StartRSSMiB: rss0, PeakRSSMiB: hwm, PeakAnonMiB: anon, PeakHeapMiB: heap})
	default:
		t.Fatalf("unknown role %q", role)
	}
}
