package p2p

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// BandwidthConfig bounds the node's bitswap traffic: every byte written
// to (upload) or read from (download) a bitswap stream, whether it
// carries blocks or wants, served or fetched. Gossipsub (heads, offers,
// ACKs, the pinset's broadcasts), audits, identify and the DHT are not
// counted and never wait. 0 means unlimited.
//
// It is not part of the JSON form: followers set it through
// configs.Follower (max_upload, max_download).
type BandwidthConfig struct {
	// MaxUpload bounds the bytes per second written to bitswap streams.
	// Default: 0 (unlimited).
	MaxUpload int64
	// MaxDownload bounds the bytes per second read from bitswap streams;
	// the peers sending them are held back by the transport's flow
	// control. Default: 0 (unlimited).
	MaxDownload int64
}

// MinBandwidth is the smallest limit Validate accepts (64KiB/s), so a
// typo cannot stall a node.
const MinBandwidth = 64 << 10

// smallWrite is the largest bitswap write that takes its bytes from the
// upload budget without waiting: bitswap writes one message per Write,
// so these are wants, HAVEs and cancels (and tiny blocks), which would
// otherwise queue behind the blocks being served. Their bytes still
// count, and the next larger write waits for them.
const smallWrite = 2 << 10

// meterWindow is how far back Bandwidth's rates look, in whole seconds.
const meterWindow = 10

func (b BandwidthConfig) validate() error {
	if b.MaxUpload != 0 && b.MaxUpload < MinBandwidth {
		return invalid("bandwidth.max_upload", "is %d B/s; want 0 (unlimited) or at least %d B/s (64KiB/s)", b.MaxUpload, MinBandwidth)
	}
	if b.MaxDownload != 0 && b.MaxDownload < MinBandwidth {
		return invalid("bandwidth.max_download", "is %d B/s; want 0 (unlimited) or at least %d B/s (64KiB/s)", b.MaxDownload, MinBandwidth)
	}
	return nil
}

// Traffic is one direction of the node's bitswap traffic.
type Traffic struct {
	// Limit is the configured bytes per second; 0 is unlimited.
	Limit int64 `json:"limit"`
	// Rate is the bytes per second over the last 10 whole seconds.
	Rate float64 `json:"rate"`
	// Total is the bytes since the node started.
	Total uint64 `json:"total"`
}

// Bandwidth is the node's bitswap traffic, as BandwidthConfig counts it.
type Bandwidth struct {
	Up   Traffic `json:"up"`
	Down Traffic `json:"down"`
}

// Bandwidth returns the current rates, totals and limits of the node's
// bitswap traffic.
func (n *Node) Bandwidth() Bandwidth {
	now := time.Now()
	return Bandwidth{Up: n.up.traffic(now), Down: n.down.traffic(now)}
}

// shaper is one direction's budget, shared by all bitswap streams: a token
// bucket (nil when unlimited) and a meter.
type shaper struct {
	limit int64
	lim   *rate.Limiter
	burst int
	meter meter
}

// burstFor is the bucket size for a limit: a tenth of a second of it, at
// least 64KiB. Over any interval t the bytes are at most burst + limit×t.
func burstFor(limit int64) int {
	return int(max(limit/10, MinBandwidth))
}

func newShaper(limit int64) *shaper {
	s := &shaper{limit: limit}
	if limit > 0 {
		s.burst = burstFor(limit)
		s.lim = rate.NewLimiter(rate.Limit(limit), s.burst)
	}
	return s
}

// take spends n bytes (n <= burst) of the budget, waiting for them unless
// small is set, and reports how long it waited.
func (s *shaper) take(ctx context.Context, n int, small bool) (time.Duration, error) {
	if s.lim == nil || n <= 0 {
		return 0, nil
	}
	if small {
		s.lim.ReserveN(time.Now(), n) // n <= burst: always granted
		return 0, nil
	}
	start := time.Now()
	err := s.lim.WaitN(ctx, n)
	return time.Since(start), err
}

func (s *shaper) traffic(now time.Time) Traffic {
	total, r := s.meter.read(now)
	return Traffic{Limit: s.limit, Rate: r, Total: total}
}

// meter counts bytes per whole second for the last meterWindow seconds.
type meter struct {
	total atomic.Uint64

	mu    sync.Mutex
	slots [meterWindow + 1]uint64
	secs  [meterWindow + 1]int64 // the Unix second each slot counts
}

func (m *meter) add(now time.Time, n int) {
	if n <= 0 {
		return
	}
	m.total.Add(uint64(n))
	sec := now.Unix()
	i := int(sec % int64(len(m.slots)))
	m.mu.Lock()
	if m.secs[i] != sec {
		m.secs[i], m.slots[i] = sec, 0
	}
	m.slots[i] += uint64(n)
	m.mu.Unlock()
}

// read returns the total and the mean rate over the meterWindow whole
// seconds before now's.
func (m *meter) read(now time.Time) (total uint64, perSec float64) {
	sec := now.Unix()
	var sum uint64
	m.mu.Lock()
	for i, s := range m.secs {
		if s < sec && s >= sec-meterWindow {
			sum += m.slots[i]
		}
	}
	m.mu.Unlock()
	return m.total.Load(), float64(sum) / meterWindow
}

// shapedHost is the host bitswap's network is given: the streams it opens
// and accepts go through the node's upload and download shapers.
type shapedHost struct {
	host.Host
	life     context.Context // the node's: its end stops every wait
	up, down *shaper
}

func (h shapedHost) wrap(s network.Stream) network.Stream {
	ctx, cancel := context.WithCancel(h.life)
	return &shapedStream{Stream: s, ctx: ctx, cancel: cancel, up: h.up, down: h.down}
}

func (h shapedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

func (h shapedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h shapedHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(h.wrap(s)) })
}

// shapedStream spends its shapers' budgets on what it reads and writes.
// Time spent waiting for the budget is ours, not the peer's: it moves the
// caller's read and write deadlines back by as much, so bitswap's send
// timeouts still measure the network only.
type shapedStream struct {
	network.Stream
	ctx      context.Context // cancelled by Close and Reset
	cancel   context.CancelFunc
	up, down *shaper

	mu       sync.Mutex
	rdl, wdl time.Time // deadlines the caller set, moved by waits
}

func (s *shapedStream) Write(p []byte) (int, error) {
	small := len(p) <= smallWrite
	written := 0
	for len(p) > 0 {
		chunk := len(p)
		if s.up.lim != nil {
			chunk = min(chunk, s.up.burst)
		}
		waited, err := s.up.take(s.ctx, chunk, small)
		if err != nil {
			return written, err
		}
		if waited > 0 {
			s.moveDeadline(&s.wdl, waited, s.Stream.SetWriteDeadline)
		}
		n, err := s.Stream.Write(p[:chunk])
		s.up.meter.add(time.Now(), n)
		written += n
		if err != nil {
			return written, err
		}
		p = p[chunk:]
	}
	return written, nil
}

func (s *shapedStream) Read(p []byte) (int, error) {
	if s.down.lim != nil && len(p) > s.down.burst {
		p = p[:s.down.burst]
	}
	n, err := s.Stream.Read(p)
	s.down.meter.add(time.Now(), n)
	waited, werr := s.down.take(s.ctx, n, false)
	if waited > 0 {
		s.moveDeadline(&s.rdl, waited, s.Stream.SetReadDeadline)
	}
	if err == nil {
		err = werr
	}
	return n, err
}

// moveDeadline pushes a deadline the caller set back by d.
func (s *shapedStream) moveDeadline(dl *time.Time, d time.Duration, set func(time.Time) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dl.IsZero() {
		return
	}
	*dl = dl.Add(d)
	_ = set(*dl)
}

func (s *shapedStream) SetDeadline(t time.Time) error {
	s.mu.Lock()
	s.rdl, s.wdl = t, t
	s.mu.Unlock()
	return s.Stream.SetDeadline(t)
}

func (s *shapedStream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.rdl = t
	s.mu.Unlock()
	return s.Stream.SetReadDeadline(t)
}

func (s *shapedStream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.wdl = t
	s.mu.Unlock()
	return s.Stream.SetWriteDeadline(t)
}

func (s *shapedStream) Close() error {
	s.cancel()
	return s.Stream.Close()
}

func (s *shapedStream) Reset() error {
	s.cancel()
	return s.Stream.Reset()
}

func (s *shapedStream) ResetWithError(code network.StreamErrorCode) error {
	s.cancel()
	return s.Stream.ResetWithError(code)
}
