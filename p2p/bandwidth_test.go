package p2p

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestBandwidthValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*BandwidthConfig)
		field  string // "" means valid
	}{
		{"unlimited", func(*BandwidthConfig) {}, ""},
		{"minimum", func(b *BandwidthConfig) { b.MaxUpload, b.MaxDownload = MinBandwidth, MinBandwidth }, ""},
		{"5MB/s", func(b *BandwidthConfig) { b.MaxUpload = 5_000_000 }, ""},
		{"upload below minimum", func(b *BandwidthConfig) { b.MaxUpload = MinBandwidth - 1 }, "p2p.bandwidth.max_upload"},
		{"upload negative", func(b *BandwidthConfig) { b.MaxUpload = -1 }, "p2p.bandwidth.max_upload"},
		{"download below minimum", func(b *BandwidthConfig) { b.MaxDownload = 1000 }, "p2p.bandwidth.max_download"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg.Bandwidth)
			err := cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %s", err, tt.field)
			}
		})
	}
}

func TestMeter(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var m meter
	if total, r := m.read(t0); total != 0 || r != 0 {
		t.Fatalf("empty meter = %d, %v", total, r)
	}
	// 1,000 bytes in each of the seconds 0 to 9, 5,000 in second 10.
	for s := range 10 {
		m.add(at(float64(s)+0.5), 1000)
	}
	m.add(at(10.2), 5000)
	m.add(at(10.3), 0)
	m.add(at(10.3), -3)
	tests := []struct {
		at    float64
		total uint64
		rate  float64
	}{
		{10.9, 15000, 1000}, // seconds 0-9; the current second does not count yet
		{11.0, 15000, 1400}, // seconds 1-10
		{15.5, 15000, 1000}, // seconds 5-14: 5 x 1000 + 5000
		{20.5, 15000, 500},  // seconds 10-19
		{21.0, 15000, 0},    // seconds 11-20: all old
		{1000, 15000, 0},    // long after
		{5.5, 15000, 500},   // seconds -5..4: 5 x 1000 / 10
	}
	for _, tt := range tests {
		total, r := m.read(at(tt.at))
		if total != tt.total || r != tt.rate {
			t.Errorf("read(%vs) = %d, %v; want %d, %v", tt.at, total, r, tt.total, tt.rate)
		}
	}
	// A slot is reused when its second comes round again.
	m.add(at(11.5), 700)
	if _, r := m.read(at(12)); r != (1000*8+5000+700)/10.0 {
		t.Errorf("after reuse: rate %v", r)
	}
}

func TestBurstFor(t *testing.T) {
	for limit, want := range map[int64]int{MinBandwidth: MinBandwidth, 1_000_000: 100_000, 5_000_000: 500_000, 100_000: MinBandwidth} {
		if got := burstFor(limit); got != want {
			t.Errorf("burstFor(%d) = %d, want %d", limit, got, want)
		}
	}
}

// bwSeed gives each pair of nodes its own identities.
var bwSeed atomic.Uint64

// bandwidthPair starts a holder with upload limit up and a fetcher
// connected to it with download limit down.
func bandwidthPair(t *testing.T, up, down int64) (holder, fetcher *running) {
	t.Helper()
	seed := 5000 + 10*bwSeed.Add(1)
	cfgA := testConfig(t.TempDir())
	cfgA.Bandwidth.MaxUpload = up
	holder = start(t, "holder", testKey(t, seed), cfgA)
	cfgB := testConfig(t.TempDir(), holder.Node)
	cfgB.Bandwidth.MaxDownload = down
	fetcher = start(t, "fetcher", testKey(t, seed+1), cfgB)
	waitFor(t, "fetcher connected", func() bool { return fetcher.ConnectedTo(holder.ID()) })
	return holder, fetcher
}

// addRandomBlocks adds n raw blocks of size bytes of random data to r.
func addRandomBlocks(t *testing.T, r *running, n, size int, seed uint64) []cid.Cid {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	cids := make([]cid.Cid, 0, n)
	for range n {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		nd := merkledag.NewRawNode(data)
		if err := r.DAGService().Add(context.Background(), nd); err != nil {
			t.Fatal(err)
		}
		cids = append(cids, nd.Cid())
	}
	return cids
}

// fetchAll fetches cids through r's block service and returns the bytes
// received and the time taken; it fails t if any block does not come.
func fetchAll(t *testing.T, r *running, cids []cid.Cid) (int64, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	start := time.Now()
	var got int64
	n := 0
	for b := range r.BlockService().GetBlocks(ctx, cids) {
		got += int64(len(b.RawData()))
		n++
	}
	elapsed := time.Since(start)
	if n != len(cids) {
		t.Fatalf("fetched %d of %d blocks in %s", n, len(cids), elapsed)
	}
	return got, elapsed
}

// checkRate fails t unless bytes over elapsed are within 10 % of limit
// and above it by no more than the burst.
func checkRate(t *testing.T, what string, bytes int64, elapsed time.Duration, limit int64) {
	t.Helper()
	got := float64(bytes) / elapsed.Seconds()
	ceiling := float64(limit) + float64(burstFor(limit))/elapsed.Seconds()
	t.Logf("%s: %d bytes in %s = %.0f B/s; limit %d B/s (%.1f%%), ceiling with the burst %.0f B/s",
		what, bytes, elapsed.Round(time.Millisecond), got, limit, 100*got/float64(limit), ceiling)
	if got > ceiling {
		t.Errorf("%s: %.0f B/s is above the limit %d B/s plus the burst (%.0f B/s)", what, got, limit, ceiling)
	}
	if got < 0.9*float64(limit) {
		t.Errorf("%s: %.0f B/s is more than 10%% below the limit %d B/s", what, got, limit)
	}
}

// TestBandwidthLimits fetches 3MB over bitswap between two real hosts on
// loopback, once with the holder's upload limited to 1MB/s and once with
// the fetcher's download limited, and checks the rate achieved.
func TestBandwidthLimits(t *testing.T) {
	const limit = 1_000_000
	const blocks, size = 48, 64 << 10 // 3MiB
	for _, dir := range []string{"upload", "download"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			up, down := int64(limit), int64(0)
			if dir == "download" {
				up, down = 0, limit
			}
			holder, fetcher := bandwidthPair(t, up, down)
			cids := addRandomBlocks(t, holder, blocks, size, bwSeed.Load())
			got, elapsed := fetchAll(t, fetcher, cids)
			checkRate(t, dir, got, elapsed, limit)
			// The nodes count what they sent and received, framing and
			// wants included, and report their limits.
			sent, recv := holder.Bandwidth().Up, fetcher.Bandwidth().Down
			if sent.Total < uint64(got) || recv.Total < uint64(got) {
				t.Errorf("holder counted %d bytes sent, fetcher %d received; want at least %d", sent.Total, recv.Total, got)
			}
			if sent.Limit != up || recv.Limit != down {
				t.Errorf("limits reported %d up, %d down; want %d, %d", sent.Limit, recv.Limit, up, down)
			}
		})
	}
}

// TestBandwidthMeasure runs each limit for a full minute:
//
//	PINFOLD_BW_MEASURE=1 [PINFOLD_BW_RATE=5MB/s] go test -run TestBandwidthMeasure -v -timeout 10m ./p2p/
//
// The fetcher fetches 16MB of blocks, deletes them, and fetches them
// again until a minute has passed; it prints the rate against the limit,
// and the rate the limited node's own meter shows (its last 10 s).
func TestBandwidthMeasure(t *testing.T) {
	if os.Getenv("PINFOLD_BW_MEASURE") != "1" {
		t.Skip("set PINFOLD_BW_MEASURE=1 to measure the bandwidth limits over a minute")
	}
	text := os.Getenv("PINFOLD_BW_RATE")
	if text == "" {
		text = "5MB/s"
	}
	v, err := humanize.ParseBytes(strings.TrimSuffix(text, "/s"))
	if err != nil || v < MinBandwidth {
		t.Fatalf("PINFOLD_BW_RATE=%q: want a rate like 5MB/s, at least 64KiB/s", text)
	}
	limit := int64(v)
	for _, dir := range []string{"upload", "download"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			up, down := limit, int64(0)
			if dir == "download" {
				up, down = 0, limit
			}
			holder, fetcher := bandwidthPair(t, up, down)
			cids := addRandomBlocks(t, holder, 64, 256<<10, bwSeed.Load())
			var total int64
			start := time.Now()
			for round := 0; time.Since(start) < time.Minute; round++ {
				got, _ := fetchAll(t, fetcher, cids)
				total += got
				for _, c := range cids {
					if err := fetcher.cfg.Blockstore.DeleteBlock(context.Background(), c); err != nil {
						t.Fatal(err)
					}
				}
			}
			elapsed := time.Since(start)
			limited := holder.Bandwidth().Up
			if dir == "download" {
				limited = fetcher.Bandwidth().Down
			}
			t.Logf("%s limit %s/s: %s in %s = %s/s (%.1f%% of the limit); the node's meter shows %s/s",
				dir, humanize.Bytes(uint64(limit)), humanize.Bytes(uint64(total)), elapsed.Round(time.Millisecond),
				humanize.Bytes(uint64(float64(total)/elapsed.Seconds())), 100*float64(total)/elapsed.Seconds()/float64(limit),
				humanize.Bytes(uint64(limited.Rate)))
			checkRate(t, dir, total, elapsed, limit)
		})
	}
}

// shapedStreams returns a function that opens streams from a shaped host
// with upload limit up to a plain host that reads and discards
// everything; all of them share the host's budget.
func shapedStreams(t *testing.T, up int64) func() network.Stream {
	t.Helper()
	const proto = "/pinfold-test/shaped/1"
	mk := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		return h
	}
	a, b := mk(), mk()
	b.SetStreamHandler(proto, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
		_ = s.Close()
	})
	life, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	shaped := shapedHost{Host: a, life: life, up: newShaper(up), down: newShaper(0)}
	return func() network.Stream {
		ctx, cancelDial := context.WithTimeout(context.Background(), waitTimeout)
		defer cancelDial()
		if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
			t.Fatal(err)
		}
		s, err := shaped.NewStream(ctx, b.ID(), proto)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Reset() })
		return s
	}
}

// TestShapedStreamDeadline: time spent waiting for the budget moves the
// write deadline the caller set, so a write that is slow only because of
// the limit does not time out.
func TestShapedStreamDeadline(t *testing.T) {
	t.Parallel()
	s := shapedStreams(t, MinBandwidth)() // burst 64KiB: 192KiB wait about 2 s
	if err := s.SetWriteDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := s.Write(make([]byte, 3*MinBandwidth))
	took := time.Since(start)
	if err != nil || n != 3*MinBandwidth {
		t.Fatalf("Write = %d, %v after %s; want all of it despite the deadline", n, err, took)
	}
	if took < 1500*time.Millisecond {
		t.Errorf("192KiB at 64KiB/s took %s; want about 2 s", took)
	}
}

// TestShapedStreamClose: a small write does not wait behind large ones,
// and resetting a stream ends a write waiting for the budget.
func TestShapedStreamClose(t *testing.T) {
	t.Parallel()
	open := shapedStreams(t, MinBandwidth)
	// Four large writes, each a minute at the limit: each holds one burst
	// (64KiB, a second) of the budget ahead, so the queue is 4 s long.
	big := make([]network.Stream, 4)
	done := make(chan error, len(big))
	for i := range big {
		big[i] = open()
		go func() {
			_, err := big[i].Write(make([]byte, 64*MinBandwidth))
			done <- err
		}()
	}
	lim := big[0].(*shapedStream).up.lim
	waitFor(t, "the writes to queue for the budget", func() bool { return lim.Tokens() < -3.5*MinBandwidth })
	// A small message (a want) on another stream does not queue behind
	// them, but its bytes are charged.
	other := open()
	start, before := time.Now(), lim.Tokens()
	queue := time.Duration(-before / MinBandwidth * float64(time.Second))
	if _, err := other.Write(make([]byte, smallWrite)); err != nil {
		t.Fatalf("small write: %v", err)
	}
	took := time.Since(start)
	if took > queue/2 {
		t.Errorf("a small write took %s behind a queue of %s", took, queue)
	}
	// The budget refills at the limit meanwhile.
	after, refill := lim.Tokens(), took.Seconds()*MinBandwidth
	if after > before-smallWrite+refill+1 {
		t.Errorf("budget %.0f before the small write, %.0f after (%.0f refilled); want %d bytes less", before, after, refill, smallWrite)
	}
	for _, s := range big {
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	for range big {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("Write returned no error after Reset")
			}
		case <-time.After(waitTimeout):
			t.Fatal("Write still waiting after Reset")
		}
	}
}
