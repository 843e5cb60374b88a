package content

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// session is one bitswap session of a Fetch: its node getter and the
// context whose cancellation ends it.
type session struct {
	ng     ipld.NodeGetter
	ctx    context.Context
	cancel context.CancelFunc
}

// sessions holds a Fetch's current bitswap session and replaces it when
// the fetch stalls. A bitswap session remembers which peers claimed which
// blocks and waits on the peer it sent a want-block to; a new one forgets
// all that and asks every connected peer again, so a peer that claimed a
// block and never sent it stops holding the fetch up. Peers the node has
// penalised (see p2p's bitswap guard) are disconnected, so no new session
// asks them.
type sessions struct {
	parent context.Context
	net    ipld.DAGService

	mu  sync.Mutex
	cur *session
}

func newSessions(parent context.Context, net ipld.DAGService) *sessions {
	s := &sessions{parent: parent, net: net}
	s.cur = s.open()
	return s
}

func (s *sessions) open() *session {
	ctx, cancel := context.WithCancel(s.parent)
	return &session{ng: merkledag.NewSession(ctx, s.net), ctx: ctx, cancel: cancel}
}

func (s *sessions) current() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// renew ends the current session (its pending Gets fail with
// context.Canceled) and opens a new one.
func (s *sessions) renew() {
	s.mu.Lock()
	old := s.cur
	s.cur = s.open()
	s.mu.Unlock()
	old.cancel()
}

// get asks for c until deadline, in the current session, and again in a
// new one when the watchdog renews the session meanwhile.
func (s *sessions) get(ctx context.Context, c cid.Cid, deadline time.Time) (ipld.Node, error) {
	for {
		cur := s.current()
		actx, cancel := context.WithDeadline(cur.ctx, deadline)
		nd, err := cur.ng.Get(actx, c)
		cancel()
		if err == nil || ctx.Err() != nil || cur.ctx.Err() == nil || !time.Now().Before(deadline) {
			return nd, err
		}
	}
}

// watchStalls renews ss whenever the fetch has made no progress (no call
// of progressed) for stall, counting renewals in renewed. It returns when
// ctx ends; the caller waits for it.
func watchStalls(ctx context.Context, ss *sessions, stall time.Duration, last *atomic.Int64, renewed *atomic.Int64) {
	t := time.NewTimer(stall)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		idle := time.Since(time.Unix(0, last.Load()))
		if idle < stall {
			t.Reset(stall - idle)
			continue
		}
		ss.renew()
		renewed.Add(1)
		last.Store(time.Now().UnixNano()) // give the new session a full period
		t.Reset(stall)
	}
}
