package curator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/pinset"
)

// ErrUnreachable: a pin's DAG could not be walked completely before the
// walk's timeout: no connected peer sent some block.
var ErrUnreachable = errors.New("curator: content unreachable")

// DefaultWalkTimeout bounds the walk of one pin when PinOptions.Timeout is 0.
const DefaultWalkTimeout = 10 * time.Minute

// PinOptions shape how AddPinsWith learns and checks pin sizes.
type PinOptions struct {
	// From lists providers to dial before walking, as multiaddrs ending in
	// /p2p/<peer ID>.
	From []string
	// Timeout bounds the walk of each pin; 0 means DefaultWalkTimeout.
	Timeout time.Duration
	// MaxBlocks bounds the distinct blocks of each walked DAG; 0 means
	// content.DefaultFetcherConfig().MaxBlocks.
	MaxBlocks int64
	// Check queues a background walk of every new pin whose size was
	// given, to compare it with the walked size.
	Check bool
}

// Bounds of PinOptions.
const (
	maxFrom        = 16
	maxWalkTimeout = 24 * time.Hour
)

func (o PinOptions) validate() error {
	if len(o.From) > maxFrom {
		return fmt.Errorf("from: %d providers, at most %d", len(o.From), maxFrom)
	}
	for _, s := range o.From {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			return fmt.Errorf("from %q: want a multiaddr ending in /p2p/<peer ID>: %w", s, err)
		}
	}
	if o.Timeout < 0 || o.Timeout > maxWalkTimeout {
		return fmt.Errorf("timeout %s: want 0 to %s", o.Timeout, maxWalkTimeout)
	}
	if o.MaxBlocks < 0 {
		return fmt.Errorf("max_blocks %d: want >= 0", o.MaxBlocks)
	}
	return nil
}

func (o PinOptions) timeout() time.Duration {
	if o.Timeout == 0 {
		return DefaultWalkTimeout
	}
	return o.Timeout
}

func (o PinOptions) maxBlocks() int64 {
	if o.MaxBlocks == 0 {
		return content.DefaultFetcherConfig().MaxBlocks
	}
	return o.MaxBlocks
}

// query writes the options as the query of POST /v1/pins.
func (o PinOptions) query() string {
	q := url.Values{}
	for _, f := range o.From {
		q.Add("from", f)
	}
	if o.Timeout > 0 {
		q.Set("timeout", o.Timeout.String())
	}
	if o.MaxBlocks > 0 {
		q.Set("max_blocks", strconv.FormatInt(o.MaxBlocks, 10))
	}
	if o.Check {
		q.Set("check", "1")
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// pinOptionsFromQuery reads what query wrote.
func pinOptionsFromQuery(q url.Values) (PinOptions, error) {
	o := PinOptions{From: q["from"]}
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return o, fmt.Errorf("timeout: %w", err)
		}
		o.Timeout = d
	}
	if s := q.Get("max_blocks"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return o, fmt.Errorf("max_blocks: %w", err)
		}
		o.MaxBlocks = n
	}
	switch q.Get("check") {
	case "", "0":
	case "1":
		o.Check = true
	default:
		return o, fmt.Errorf("check %q: want 0 or 1", q.Get("check"))
	}
	return o, o.validate()
}

// WalkedPin is a pin whose size AddPinsWith learned by walking its DAG.
type WalkedPin struct {
	CID    string `json:"cid"`
	Size   int64  `json:"size"`
	Blocks int64  `json:"blocks"`
}

// connectProviders dials every provider of o; the first failure is returned.
func (d *Daemon) connectProviders(ctx context.Context, o PinOptions) error {
	for _, s := range o.From {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return fmt.Errorf("from %q: %w", s, err)
		}
		if ai.ID == d.id {
			continue
		}
		if err := d.node.Connect(ctx, *ai); err != nil {
			return fmt.Errorf("provider %s: %w", s, err)
		}
	}
	return nil
}

// walkSize walks root's whole DAG through the node's DAG service, bounded
// by o's timeout and block count, and returns its size. Errors wrap
// ErrUnreachable (timeout: with what was walked so far),
// content.ErrMalformed or content.ErrTooLarge, or ctx's error when ctx
// ended first.
func (d *Daemon) walkSize(ctx context.Context, root cid.Cid, o PinOptions) (content.Stat, error) {
	tctx, cancelTimeout := context.WithTimeout(ctx, o.timeout())
	defer cancelTimeout()
	wctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)
	dag := &countingDAG{DAGService: d.node.DAGService(), max: o.maxBlocks(), stop: cancel}
	st, err := content.DAGStat(wctx, dag, root, 0)
	cause := context.Cause(wctx)
	switch {
	case err == nil:
		return st, nil
	case ctx.Err() != nil:
		return content.Stat{}, fmt.Errorf("walk %s: %w", root, ctx.Err())
	case cause != nil && !errors.Is(cause, context.DeadlineExceeded):
		return content.Stat{}, fmt.Errorf("walk %s: %w", root, cause)
	case errors.Is(err, context.DeadlineExceeded):
		return content.Stat{}, fmt.Errorf("%w: %s: DAG not complete after %s: walked %d blocks, %d bytes; no connected peer sent the rest (name a provider with --from)",
			ErrUnreachable, root, o.timeout(), dag.blocks.Load(), dag.bytes.Load())
	default:
		return content.Stat{}, fmt.Errorf("walk %s: %w", root, err)
	}
}

// countingDAG counts the nodes a walk fetches and refuses more than max.
// It keeps merkledag sessions (one bitswap session per walk). On the first
// failed Get it calls stop with the error: the walker waits for every
// fetch in flight before it returns, and a fetch of a block nobody has
// only ends with its context, so stop cancels them.
type countingDAG struct {
	ipld.DAGService
	max     int64
	stop    context.CancelCauseFunc
	started atomic.Int64 // Gets begun: bounds the walk exactly
	blocks  atomic.Int64 // nodes fetched
	bytes   atomic.Int64 // their bytes
}

// Session implements merkledag.SessionMaker.
func (c *countingDAG) Session(ctx context.Context) ipld.NodeGetter {
	return countingGetter{NodeGetter: merkledag.NewSession(ctx, c.DAGService), c: c}
}

type countingGetter struct {
	ipld.NodeGetter
	c *countingDAG
}

func (g countingGetter) Get(ctx context.Context, k cid.Cid) (ipld.Node, error) {
	if n := g.c.started.Add(1); n > g.c.max {
		err := fmt.Errorf("%w: more than %d blocks", content.ErrTooLarge, g.c.max)
		g.c.stop(err)
		return nil, err
	}
	nd, err := g.NodeGetter.Get(ctx, k)
	if err != nil {
		if ctx.Err() == nil {
			if !ipld.IsNotFound(err) { // the block came but does not decode
				err = fmt.Errorf("%w: %s: %v", content.ErrMalformed, k, err)
			}
			g.c.stop(err)
		}
		return nil, err
	}
	g.c.blocks.Add(1)
	g.c.bytes.Add(int64(len(nd.RawData())))
	return nd, nil
}

// Size check states.
const (
	CheckPending     = "pending"
	CheckOK          = "ok"
	CheckMismatch    = "mismatch"
	CheckUnreachable = "unreachable"
	CheckFailed      = "failed" // malformed block, DAG over the limits
)

// SizeCheck is the outcome of walking one pin's DAG to learn or check its
// size.
type SizeCheck struct {
	State  string    `json:"state"`
	Size   int64     `json:"size"`             // the size in the pin record
	Walked int64     `json:"walked,omitempty"` // the walked size (ok, mismatch)
	Blocks int64     `json:"blocks,omitempty"` // the walked blocks (ok, mismatch)
	Error  string    `json:"error,omitempty"`  // unreachable, failed
	Time   time.Time `json:"time"`             // of the outcome, or of queueing

	// What the walk is asked with, kept to retry after a restart.
	From      []string      `json:"from,omitempty"`
	Timeout   time.Duration `json:"timeout,omitempty"`
	MaxBlocks int64         `json:"max_blocks,omitempty"`
}

// String is the check as `curate pin ls` shows it: "ok", "pending",
// "mismatch: walked N", "unreachable" or "failed: <why>".
func (s SizeCheck) String() string {
	switch s.State {
	case CheckMismatch:
		return fmt.Sprintf("%s: walked %d", CheckMismatch, s.Walked)
	case CheckFailed:
		return CheckFailed + ": " + s.Error
	default:
		return s.State
	}
}

func (s SizeCheck) options() PinOptions {
	return PinOptions{From: s.From, Timeout: s.Timeout, MaxBlocks: s.MaxBlocks}
}

var checksPfx = ds.NewKey("/pinfold/curator/sizecheck")

// sizeChecks keeps every pin's SizeCheck, in memory and in the datastore,
// and the queue of pending background checks. Its methods are safe for
// concurrent use; run does the checks.
type sizeChecks struct {
	d    ds.Datastore
	log  *slog.Logger
	now  func() time.Time
	wake chan struct{}

	mu    sync.Mutex
	state map[cid.Cid]SizeCheck
	queue []cid.Cid // pending, oldest first
}

// openSizeChecks loads the stored checks and queues the pending and
// unreachable ones again.
func openSizeChecks(ctx context.Context, d ds.Datastore, log *slog.Logger, now func() time.Time) (*sizeChecks, error) {
	s := &sizeChecks{d: d, log: log, now: now, wake: make(chan struct{}, 1), state: map[cid.Cid]SizeCheck{}}
	res, err := d.Query(ctx, query.Query{Prefix: checksPfx.String()})
	if err != nil {
		return nil, fmt.Errorf("load size checks: %w", err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("load size checks: %w", r.Error)
		}
		c, err := cid.Decode(ds.RawKey(r.Key).BaseNamespace())
		if err != nil {
			return nil, fmt.Errorf("load size check %s: %w", r.Key, err)
		}
		var sc SizeCheck
		if err := json.Unmarshal(r.Value, &sc); err != nil {
			return nil, fmt.Errorf("load size check %s: %w", r.Key, err)
		}
		s.state[c] = sc
		if sc.State == CheckPending || sc.State == CheckUnreachable {
			s.queue = append(s.queue, c)
		}
	}
	return s, nil
}

func checkKey(c cid.Cid) ds.Key { return checksPfx.ChildString(c.String()) }

// put records sc for c.
func (s *sizeChecks) put(ctx context.Context, c cid.Cid, sc SizeCheck) error {
	raw, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	if err := s.d.Put(ctx, checkKey(c), raw); err != nil {
		return fmt.Errorf("record size check of %s: %w", c, err)
	}
	s.mu.Lock()
	s.state[c] = sc
	s.mu.Unlock()
	return nil
}

// enqueue records a pending check of c and wakes run.
func (s *sizeChecks) enqueue(ctx context.Context, c cid.Cid, size int64, o PinOptions) error {
	sc := SizeCheck{State: CheckPending, Size: size, Time: s.now().UTC(), From: o.From, Timeout: o.Timeout, MaxBlocks: o.MaxBlocks}
	if err := s.put(ctx, c, sc); err != nil {
		return err
	}
	s.mu.Lock()
	s.queue = append(s.queue, c)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// forget drops c's check (the pin was removed).
func (s *sizeChecks) forget(ctx context.Context, c cid.Cid) error {
	s.mu.Lock()
	_, ok := s.state[c]
	delete(s.state, c)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return s.d.Delete(ctx, checkKey(c))
}

// lookup returns c's check, if it has one.
func (s *sizeChecks) lookup(c cid.Cid) (SizeCheck, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.state[c]
	return sc, ok
}

// counts returns how many checks are in each state.
func (s *sizeChecks) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, sc := range s.state {
		out[sc.State]++
	}
	return out
}

// next takes the oldest queued CID whose check is still pending.
func (s *sizeChecks) next() (cid.Cid, SizeCheck, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) > 0 {
		c := s.queue[0]
		s.queue = s.queue[1:]
		if sc, ok := s.state[c]; ok && (sc.State == CheckPending || sc.State == CheckUnreachable) {
			return c, sc, true
		}
	}
	return cid.Undef, SizeCheck{}, false
}

// runSizeChecks walks the queued pins one at a time and records each
// outcome, until ctx ends (then it returns nil). A walk in progress ends
// with ctx; its pin stays pending and is checked again on the next start.
func (d *Daemon) runSizeChecks(ctx context.Context) error {
	s := d.checks
	for {
		c, sc, ok := s.next()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
				continue
			}
		}
		if err := d.checkSize(ctx, c, sc); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// checkSize walks c and records how its walked size compares with sc.Size.
// Only a datastore failure is returned.
func (d *Daemon) checkSize(ctx context.Context, c cid.Cid, sc SizeCheck) error {
	has, err := d.pins.Has(ctx, c)
	if err != nil {
		return err
	}
	if !has { // removed meanwhile
		return d.checks.forget(ctx, c)
	}
	log := d.checks.log
	o := sc.options()
	if err := d.connectProviders(ctx, o); err != nil {
		log.Warn("size check: provider unreachable", "cid", c, "err", err)
	}
	st, err := d.walkSize(ctx, c, o)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	sc.Time = d.now().UTC()
	switch {
	case errors.Is(err, ErrUnreachable):
		sc.State, sc.Error = CheckUnreachable, err.Error()
		log.Warn("size check: content unreachable", "cid", c, "err", err)
	case err != nil:
		sc.State, sc.Error = CheckFailed, err.Error()
		log.Warn("size check failed", "cid", c, "err", err)
	case st.Bytes != sc.Size:
		sc.State, sc.Walked, sc.Blocks, sc.Error = CheckMismatch, st.Bytes, st.Blocks, ""
		log.Warn("size check: the pin's size differs from its DAG's; fix it with 'curate pin rm' then 'curate pin add' without --size",
			"cid", c, "size", sc.Size, "walked", st.Bytes, "blocks", st.Blocks)
	default:
		sc.State, sc.Walked, sc.Blocks, sc.Error = CheckOK, st.Bytes, st.Blocks, ""
		log.Info("size check: ok", "cid", c, "size", sc.Size, "blocks", st.Blocks)
	}
	if _, ok := d.checks.lookup(c); !ok { // removed during the walk
		return nil
	}
	return d.checks.put(ctx, c, sc)
}

// SizeCheck returns the outcome of walking pin c, if it was walked or
// queued for a check.
func (d *Daemon) SizeCheck(c cid.Cid) (SizeCheck, bool) { return d.checks.lookup(c) }

// walkUnsized walks the DAG of every request without a size whose pin is
// not present yet, after dialling o's providers (once, if any walk is
// needed), and returns the sizes by CID.
func (d *Daemon) walkUnsized(ctx context.Context, reqs []PinRequest, o PinOptions) (map[cid.Cid]content.Stat, error) {
	walked := map[cid.Cid]content.Stat{}
	dialled := false
	for i, pr := range reqs {
		if pr.Size != 0 {
			continue
		}
		c, err := cid.Decode(pr.CID)
		if err != nil {
			return nil, fmt.Errorf("pin %d: cid %q: %w", i+1, pr.CID, err)
		}
		if _, ok := walked[c]; ok {
			continue
		}
		has, err := d.pins.Has(ctx, c)
		if err != nil {
			return nil, err
		}
		if has {
			continue
		}
		if !dialled {
			if err := d.connectProviders(ctx, o); err != nil {
				return nil, err
			}
			dialled = true
		}
		began := time.Now()
		st, err := d.walkSize(ctx, c, o)
		if err != nil {
			return nil, fmt.Errorf("pin %d: %w", i+1, err)
		}
		d.checks.log.Info("walked a pin's DAG to learn its size", "cid", c, "bytes", st.Bytes, "blocks", st.Blocks, "took", time.Since(began))
		walked[c] = st
	}
	return walked, nil
}

// recordSizes records the walked pins among the new pins as checked ok
// and, with o.Check, queues a check of the others; it returns the walked
// ones.
func (d *Daemon) recordSizes(ctx context.Context, pins []pinset.Pin, walked map[cid.Cid]content.Stat, o PinOptions) ([]WalkedPin, error) {
	var out []WalkedPin
	now := d.now().UTC()
	for _, p := range pins {
		if st, ok := walked[p.CID]; ok {
			out = append(out, WalkedPin{CID: p.CID.String(), Size: st.Bytes, Blocks: st.Blocks})
			sc := SizeCheck{State: CheckOK, Size: p.Size, Walked: st.Bytes, Blocks: st.Blocks, Time: now}
			if err := d.checks.put(ctx, p.CID, sc); err != nil {
				return out, err
			}
			continue
		}
		if o.Check {
			if err := d.checks.enqueue(ctx, p.CID, p.Size, o); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}
