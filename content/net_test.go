package content

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/store"
)

// testKey derives a deterministic identity from seed.
func testKey(t testing.TB, seed uint64) crypto.PrivKey {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b9))
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newNode starts a libp2p host with bitswap on s's block store, listening
// on 127.0.0.1 only, closed at the end of the test (before the store).
func newNode(t testing.TB, seed uint64, s *store.Store) *p2p.Node {
	t.Helper()
	return newNodeWith(t, seed, s, nil)
}

// newNodeWith is newNode with edit (if not nil) applied to the config.
func newNodeWith(t testing.TB, seed uint64, s *store.Store, edit func(*p2p.Config)) *p2p.Node {
	t.Helper()
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.DialTimeout = 10 * time.Second
	cfg.Blockstore = s.Blocks
	if edit != nil {
		edit(&cfg)
	}
	n, err := p2p.New(testKey(t, seed), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return n
}

func connect(t testing.TB, from, to *p2p.Node) {
	t.Helper()
	if err := from.Connect(context.Background(), peer.AddrInfo{ID: to.ID(), Addrs: to.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func bitswapStat(t testing.TB, n *p2p.Node) (blocks, data uint64) {
	t.Helper()
	bs, ok := n.BlockService().Exchange().(*bitswap.Bitswap)
	if !ok {
		t.Fatalf("exchange is %T; want *bitswap.Bitswap", n.BlockService().Exchange())
	}
	st, err := bs.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.BlocksReceived, st.DataReceived
}

// TestFetchOverBitswap imports a sample archive on host A, one pin per
// entry, fetches every pin on host B over bitswap on 127.0.0.1, and reads
// everything back from B's store alone through a UnixFS reader.
func TestFetchOverBitswap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "archive")
	if err := GenerateSample(dir, 11, 40, 4<<20); err != nil {
		t.Fatal(err)
	}
	sa, sb := openStore(t), openStore(t)
	a, b := newNode(t, 1, sa), newNode(t, 2, sb)
	connect(t, b, a)
	pins, err := Import(ctx, a.DAGService(), dir, ImportOptions{PerEntry: true})
	if err != nil {
		t.Fatal(err)
	}
	f := NewFetcher(b.DAGService(), sb.Blocks, sb.Datastore, FetcherConfig{Concurrency: 8})
	var want Stat
	for _, im := range pins {
		var last Stat
		st, err := f.Fetch(ctx, im.CID, func(s Stat) { last = s })
		if err != nil {
			t.Fatal(err)
		}
		if st.Bytes != im.Size || st.Blocks != im.Blocks || last != st {
			t.Errorf("%s: fetched %+v (last progress %+v); imported %d blocks, %d bytes", im.Path, st, last, im.Blocks, im.Size)
		}
		compareDigests(t, treeDigests(t, offlineDAG(sb.Blocks), im.CID), diskDigests(t, im.Path))
		want.Blocks += im.Blocks
		want.Bytes += im.Size
	}
	if u, _ := f.Usage(ctx); u != want {
		t.Errorf("Usage = %+v; want %+v (the sample shares no blocks)", u, want)
	}
	if tr := f.Transferred(); tr != want {
		t.Errorf("Transferred = %+v; want %+v", tr, want)
	}
	blocks, data := bitswapStat(t, b)
	t.Logf("%d pins, %d blocks, %d bytes; bitswap received %d blocks, %d bytes", len(pins), want.Blocks, want.Bytes, blocks, data)
	if blocks < uint64(want.Blocks) || data < uint64(want.Bytes) {
		t.Errorf("bitswap received %d blocks, %d bytes; want at least %d, %d", blocks, data, want.Blocks, want.Bytes)
	}
	// DAGStat from a third host that has nothing agrees.
	sc := openStore(t)
	c := newNode(t, 3, sc)
	connect(t, c, a)
	for _, im := range pins[:3] {
		st, err := DAGStat(ctx, c.DAGService(), im.CID, 4)
		if err != nil || st.Bytes != im.Size || st.Blocks != im.Blocks {
			t.Errorf("DAGStat(%s) over the network = %+v, %v; want %d blocks, %d bytes", im.CID, st, err, im.Blocks, im.Size)
		}
	}
}

// TestFetchResumesAfterCancel cancels a Fetch half-way and fetches again:
// only the missing blocks move, by the Fetcher's count exactly and by
// bitswap's within the blocks that were in flight at the cancel.
func TestFetchResumesAfterCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	file := filepath.Join(t.TempDir(), "big.bin")
	writeRandFile(t, file, 4, 3<<20)
	sa, sb := openStore(t), openStore(t)
	a, b := newNode(t, 1, sa), newNode(t, 2, sb)
	connect(t, b, a)
	im := importOne(t, a.DAGService(), file, 16<<10) // 192 leaves + root
	all := dagBlocks(t, offlineDAG(sa.Blocks), im.CID)

	const concurrency = 4
	f := NewFetcher(b.DAGService(), sb.Blocks, sb.Datastore, FetcherConfig{Concurrency: concurrency})
	half := int64(len(all) / 2)
	cctx, stop := context.WithCancel(ctx)
	_, err := f.Fetch(cctx, im.CID, func(s Stat) {
		if s.Blocks >= half {
			stop()
		}
	})
	stop()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first Fetch: %v; want context.Canceled", err)
	}
	var missing Stat
	for k, n := range all {
		if !present(t, sb.Blocks, k) {
			missing.Blocks++
			missing.Bytes += n
		}
	}
	if missing.Blocks == 0 || missing.Blocks > int64(len(all))-half {
		t.Fatalf("%d of %d blocks missing after cancelling at %d", missing.Blocks, len(all), half)
	}
	tr0 := f.Transferred()
	bs0, _ := bitswapStat(t, b)
	st, err := f.Fetch(ctx, im.CID, nil)
	if err != nil {
		t.Fatal(err)
	}
	moved := Stat{Blocks: f.Transferred().Blocks - tr0.Blocks, Bytes: f.Transferred().Bytes - tr0.Bytes}
	bs1, _ := bitswapStat(t, b)
	t.Logf("%d blocks; %d present after the cancel; second fetch moved %+v; bitswap received %d",
		len(all), int64(len(all))-missing.Blocks, moved, bs1-bs0)
	if moved != missing {
		t.Errorf("second Fetch moved %+v; want exactly the missing %+v", moved, missing)
	}
	if got := int64(bs1 - bs0); got < missing.Blocks || got > missing.Blocks+concurrency {
		t.Errorf("bitswap received %d blocks in the second fetch; want %d (+ at most %d late)", got, missing.Blocks, concurrency)
	}
	if st.Blocks != im.Blocks {
		t.Errorf("Stat %+v; want %d blocks", st, im.Blocks)
	}
	compareDigests(t, treeDigests(t, offlineDAG(sb.Blocks), im.CID), diskDigests(t, file))
}

// Environment of the kill -9 helper process.
const (
	envHelper = "PINFOLD_CONTENT_KILL_HELPER"
	envDir    = "PINFOLD_CONTENT_KILL_DIR"
	envPeer   = "PINFOLD_CONTENT_KILL_PEER"
	envRoot   = "PINFOLD_CONTENT_KILL_ROOT"
	envStop   = "PINFOLD_CONTENT_KILL_AT"
)

// TestKillHelper is the process TestKill9MidFetch kills: it fetches a pin
// from the peer, prints "at N" once N blocks are stored and then waits
// to be killed. Skipped unless run by that test.
func TestKillHelper(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("helper process of TestKill9MidFetch")
	}
	s, err := store.Open(os.Getenv(envDir))
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, 9, s)
	ai, err := peer.AddrInfoFromString(os.Getenv(envPeer))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Connect(context.Background(), *ai); err != nil {
		t.Fatal(err)
	}
	root, err := cid.Decode(os.Getenv(envRoot))
	if err != nil {
		t.Fatal(err)
	}
	at, _ := strconv.ParseInt(os.Getenv(envStop), 10, 64)
	f := NewFetcher(n.DAGService(), s.Blocks, s.Datastore, FetcherConfig{Concurrency: 4})
	_, err = f.Fetch(context.Background(), root, func(st Stat) {
		if st.Blocks >= at {
			fmt.Printf("at %d\n", st.Blocks)
			_, _ = os.Stdin.Read(make([]byte, 1)) // blocks until killed
		}
	})
	t.Fatalf("fetch returned (%v) instead of being killed", err)
}

// TestKill9MidFetch runs a fetch in another process, kills it with
// SIGKILL once it reports half the blocks stored, then reopens its store
// in this process: the blocks it reported are there, and a new Fetch
// moves exactly the missing ones and completes the pin.
func TestKill9MidFetch(t *testing.T) {
	if os.Getenv(envHelper) == "1" {
		t.Skip("inside the helper")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	file := filepath.Join(t.TempDir(), "big.bin")
	writeRandFile(t, file, 6, 4<<20)
	sa := openStore(t)
	a := newNode(t, 1, sa)
	im := importOne(t, a.DAGService(), file, 32<<10) // 128 leaves + root
	all := dagBlocks(t, offlineDAG(sa.Blocks), im.CID)
	half := len(all) / 2

	dirB := t.TempDir()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"=1", envDir+"="+dirB, envPeer+"="+a.Addrs()[0].String(),
		envRoot+"="+im.CID.String(), envStop+"="+strconv.Itoa(half))
	stdin, err := cmd.StdinPipe() // kept open: the helper blocks reading it
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var reported int64 = -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "at "); ok {
			reported, _ = strconv.ParseInt(n, 10, 64)
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if reported < int64(half) {
		t.Fatalf("helper did not report progress (stderr: %s)", stderr.String())
	}

	sb := openStoreAt(t, dirB)
	var missing Stat
	for k, n := range all {
		if !present(t, sb.Blocks, k) {
			missing.Blocks++
			missing.Bytes += n
		}
	}
	t.Logf("killed after %d of %d blocks reported; %d present after reopening", reported, len(all), int64(len(all))-missing.Blocks)
	if int64(len(all))-missing.Blocks < reported {
		t.Errorf("only %d blocks present; the helper had reported %d stored", int64(len(all))-missing.Blocks, reported)
	}
	b := newNode(t, 2, sb)
	connect(t, b, a)
	f := NewFetcher(b.DAGService(), sb.Blocks, sb.Datastore, FetcherConfig{Concurrency: 4})
	if ok, _, _ := f.Kept(ctx, im.CID); ok {
		t.Fatal("pin kept before the fetch finished")
	}
	st, err := f.Fetch(ctx, im.CID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr := f.Transferred(); tr != missing {
		t.Errorf("resumed Fetch moved %+v; want exactly the missing %+v", tr, missing)
	}
	if st.Blocks != im.Blocks || st.Bytes != im.Size {
		t.Errorf("Stat %+v; want %d blocks, %d bytes", st, im.Blocks, im.Size)
	}
	compareDigests(t, treeDigests(t, offlineDAG(sb.Blocks), im.CID), diskDigests(t, file))
}
