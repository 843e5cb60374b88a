package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ProtocolID returns the audit protocol of a cluster (its config's
// cluster ID, as for the head protocol).
func ProtocolID(clusterID string) protocol.ID {
	return protocol.ID("/pinfold/" + clusterID + "/audit/1.0.0")
}

// Config bounds one audit exchange, on both sides.
type Config struct {
	// Timeout bounds the whole exchange: opening the stream, the
	// challenge, computing and reading the answer.
	Timeout time.Duration
	// MaxResponse is the most bytes of block data one answer may carry.
	MaxResponse int64
	// Samples is how many roots an auditor samples per challenge (the k
	// of NewChallenge); the server accepts any count up to MaxSamples.
	Samples int
}

// Defaults (docs/audits.md has the reasoning and the figures).
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxResponse = 8 << 20
	DefaultSamples     = 4
)

// DefaultConfig returns the defaults: 30 s, 8 MiB, 4 samples. Four paths
// through UnixFS DAGs of 1 MiB leaves carry about 4.2 MiB; the limit
// leaves room for leaves up to 2 MiB.
func DefaultConfig() Config {
	return Config{Timeout: DefaultTimeout, MaxResponse: DefaultMaxResponse, Samples: DefaultSamples}
}

// Validate checks the config without changing it.
func (c Config) Validate() error {
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("%w: audit.timeout must be positive, is %s", ErrInvalid, c.Timeout)
	case c.Samples < 1 || c.Samples > MaxSamples:
		return fmt.Errorf("%w: audit.samples must be 1..%d, is %d", ErrInvalid, MaxSamples, c.Samples)
	case c.MaxResponse < int64(c.Samples)*MaxBlockSize:
		return fmt.Errorf("%w: audit.max_response must be at least samples * %d bytes, is %d", ErrInvalid, MaxBlockSize, c.MaxResponse)
	}
	return nil
}

// Failed reports whether err, from Client.Challenge or Verify, proves a
// bad answer (the holder answered and the answer is wrong, incomplete,
// over a limit or admits a missing block). Any other error means there
// was no answer (busy, refused, timeout, no connection): retry, and
// decide by policy when silence counts as failure.
func Failed(err error) bool {
	for _, e := range []error{ErrBlockMissing, ErrWrongBlock, ErrPathTooShort, ErrPathTooLong, ErrTooLarge, ErrMalformed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Server answers challenges on a host: only from peers allowed says yes
// to (the cluster's curators), only for its cluster, one challenge at a
// time per peer, from the local blocks only.
type Server struct {
	h       host.Host
	proto   protocol.ID
	cluster peer.ID
	bs      Blocks
	allowed func(peer.ID) bool
	cfg     Config
	log     *slog.Logger

	life context.Context // cancelled by Close: in-flight answers stop
	stop context.CancelFunc

	mu     sync.Mutex
	busy   map[peer.ID]bool
	closed bool
	wg     sync.WaitGroup // in-flight handlers
}

// Serve registers the audit protocol of clusterID on h and returns the
// server; Close unregisters it. cluster is the cluster's peer ID (a
// challenge for another cluster is refused); bs the local block store
// (never a blockservice: see Blocks); allowed decides, per challenge, who
// may challenge (it may be called concurrently and must not block).
// Serve starts no goroutine: libp2p runs each stream's handler on its
// own, and Close waits for those that are running.
func Serve(h host.Host, clusterID string, cluster peer.ID, bs Blocks, allowed func(peer.ID) bool, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil || bs == nil || allowed == nil || cluster == "" {
		return nil, fmt.Errorf("%w: audit server needs a host, a cluster, blocks and an allowed function", ErrInvalid)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{h: h, proto: ProtocolID(clusterID), cluster: cluster, bs: bs, allowed: allowed, cfg: cfg, log: log,
		busy: make(map[peer.ID]bool)}
	s.life, s.stop = context.WithCancel(context.Background())
	h.SetStreamHandler(s.proto, s.handle)
	return s, nil
}

// Close stops answering: it unregisters the protocol, stops the answers in
// progress and waits for their handlers to return. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(s.proto)
	s.stop()
	s.wg.Wait()
	return nil
}

// enter marks p busy; false if it already is or the server is closed.
func (s *Server) enter(p peer.ID) (ok, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, true
	}
	if s.busy[p] {
		return false, false
	}
	s.busy[p] = true
	s.wg.Add(1)
	return true, false
}

func (s *Server) leave(p peer.ID) {
	s.mu.Lock()
	delete(s.busy, p)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) handle(st network.Stream) {
	remote := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(s.cfg.Timeout))
	if !s.allowed(remote) {
		s.log.Info("audit challenge refused", "peer", remote, "reason", "not allowed")
		s.status(st, statusRefused)
		return
	}
	ok, closed := s.enter(remote)
	switch {
	case closed:
		_ = st.Reset()
		return
	case !ok:
		s.log.Info("audit challenge refused", "peer", remote, "reason", "busy")
		s.status(st, statusBusy)
		return
	}
	// The holder is free again once its answer is written, before the
	// stream closes: the auditor, reading to the end, may send its next
	// challenge as soon as the close arrives.
	release := sync.OnceFunc(func() { s.leave(remote) })
	defer release()
	data, err := io.ReadAll(io.LimitReader(st, MaxChallengeSize+1))
	if err != nil {
		s.log.Info("audit challenge unread", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	ch, err := DecodeChallenge(data)
	if err != nil {
		s.log.Warn("audit challenge malformed", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	if ch.Cluster != s.cluster {
		s.log.Info("audit challenge refused", "peer", remote, "reason", "other cluster", "cluster", ch.Cluster)
		s.status(st, statusRefused)
		return
	}
	ctx, cancel := context.WithTimeout(s.life, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	resp, err := Answer(ctx, s.bs, ch, s.cfg.MaxResponse)
	if err != nil {
		s.log.Warn("audit challenge not answered", "peer", remote, "shard", ch.Shard, "err", err)
		_ = st.Reset()
		return
	}
	if err := WriteResponse(st, resp); err != nil {
		s.log.Info("audit answer not sent", "peer", remote, "shard", ch.Shard, "err", err)
		_ = st.Reset()
		return
	}
	release()
	_ = st.Close()
	missing := 0
	for _, p := range resp.Paths {
		if p.Missing {
			missing++
		}
	}
	s.log.Info("audit challenge answered", "peer", remote, "shard", ch.Shard, "paths", len(resp.Paths),
		"missing", missing, "bytes", resp.Size(), "took", time.Since(start))
}

func (s *Server) status(st network.Stream, b byte) {
	if _, err := st.Write([]byte{b}); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// Client challenges holders over a host.
type Client struct {
	h     host.Host
	proto protocol.ID
	cfg   Config
}

// NewClient returns a client for the audit protocol of clusterID on h.
func NewClient(h host.Host, clusterID string, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{h: h, proto: ProtocolID(clusterID), cfg: cfg}, nil
}

// Challenge sends ch to holder p and reads its answer, all within the
// config's Timeout (and ctx). It does not verify the answer: call Verify.
// Errors: ErrBusy, ErrRefused, ErrTimeout and connection errors mean no
// answer; ErrMalformed and ErrTooLarge a bad one (see Failed).
func (c *Client) Challenge(ctx context.Context, p peer.ID, ch Challenge) (Response, error) {
	data, err := ch.Encode()
	if err != nil {
		return Response{}, fmt.Errorf("challenge %s: %w", p, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := c.exchange(ctx, p, data, len(ch.Roots))
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			err = fmt.Errorf("%w (%s): %w", ErrTimeout, c.cfg.Timeout, err)
		}
		return Response{}, fmt.Errorf("challenge %s shard %d: %w", p, ch.Shard, err)
	}
	return resp, nil
}

// isTimeout tells whether err is a deadline error: the stream's deadline is
// the context's, and the muxer's error for it (yamux: "i/o deadline
// reached") can come back before the context notices its own deadline.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) exchange(ctx context.Context, p peer.ID, data []byte, paths int) (Response, error) {
	st, err := c.h.NewStream(ctx, p, c.proto)
	if err != nil {
		return Response{}, fmt.Errorf("open stream: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() }) // ctx cancelled mid-read
	defer stop()
	if _, err := st.Write(data); err != nil {
		_ = st.Reset()
		return Response{}, fmt.Errorf("send challenge: %w", err)
	}
	if err := st.CloseWrite(); err != nil {
		_ = st.Reset()
		return Response{}, fmt.Errorf("send challenge: %w", err)
	}
	resp, err := ReadResponse(st, paths, c.cfg.MaxResponse)
	if err != nil {
		_ = st.Reset()
		return Response{}, err
	}
	_ = st.Close()
	return resp, nil
}
