package pinset

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// sessionMaker is implemented by boxo's merkledag DAG service: a session
// asks the peers that had earlier blocks of a walk first.
type sessionMaker interface {
	Session(context.Context) ipld.NodeGetter
}

// guard is the DAG service go-ds-crdt sees. It refuses CIDs that cannot be
// CRDT blocks and blocks over the size limit, bounds every fetch with a
// timeout (go-ds-crdt fetches the first heads of a fresh replica with no
// deadline), counts what is asked for, and refuses new blocks on a
// follower, which never creates any.
type guard struct {
	inner    ipld.DAGService
	writer   bool
	maxBytes int
	timeout  time.Duration

	requested atomic.Uint64 // blocks asked for (local or remote)
	failed    atomic.Uint64 // fetches that returned an error

	// fetched, if set, is told of every block handed to go-ds-crdt. It
	// must not block.
	fetched func(ipld.Node)
}

var _ ipld.DAGService = (*guard)(nil)

func (g *guard) checkCID(c cid.Cid) error {
	if !IsHeadCID(c) {
		return fmt.Errorf("%w: %s is not a CIDv1 dag-pb sha2-256", ErrInvalidHead, c)
	}
	return nil
}

func (g *guard) checkNode(nd ipld.Node) error {
	if n := len(nd.RawData()); n > g.maxBytes {
		return fmt.Errorf("%w: CRDT block %s is %d bytes, limit %d", ErrMalformed, nd.Cid(), n, g.maxBytes)
	}
	return nil
}

func (g *guard) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	return g.get(ctx, g.inner, c)
}

func (g *guard) get(ctx context.Context, ng ipld.NodeGetter, c cid.Cid) (ipld.Node, error) {
	g.requested.Add(1)
	if err := g.checkCID(c); err != nil {
		g.failed.Add(1)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	nd, err := ng.Get(ctx, c)
	if err == nil {
		err = g.checkNode(nd)
	}
	if err != nil {
		g.failed.Add(1)
		return nil, fmt.Errorf("fetch CRDT block %s: %w", c, err)
	}
	if g.fetched != nil {
		g.fetched(nd)
	}
	return nd, nil
}

func (g *guard) GetMany(ctx context.Context, cids []cid.Cid) <-chan *ipld.NodeOption {
	return g.getMany(ctx, g.inner, cids)
}

// getMany forwards the inner results after checking them. Its goroutine
// exits when the inner channel closes, which the inner getter guarantees
// once ctx (bounded by the timeout) is done.
func (g *guard) getMany(ctx context.Context, ng ipld.NodeGetter, cids []cid.Cid) <-chan *ipld.NodeOption {
	g.requested.Add(uint64(len(cids)))
	// One slot per CID plus one for a trailing context error: the inner
	// getter sends at most that, so forwarding never blocks even if the
	// consumer has stopped reading.
	out := make(chan *ipld.NodeOption, len(cids)+1)
	ok := make([]cid.Cid, 0, len(cids))
	for _, c := range cids {
		if err := g.checkCID(c); err != nil {
			g.failed.Add(1)
			out <- &ipld.NodeOption{Err: err}
			continue
		}
		ok = append(ok, c)
	}
	if len(ok) == 0 {
		close(out)
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	in := ng.GetMany(ctx, ok)
	go func() {
		defer close(out)
		defer cancel()
		for opt := range in {
			if opt.Err == nil {
				if err := g.checkNode(opt.Node); err != nil {
					opt = &ipld.NodeOption{Err: err}
				}
			}
			if opt.Err != nil {
				g.failed.Add(1)
			} else if g.fetched != nil {
				g.fetched(opt.Node)
			}
			select {
			case out <- opt:
			default: // more results than asked for: drop, never block
			}
		}
	}()
	return out
}

// Session returns a guarded session getter when the inner service has them.
func (g *guard) Session(ctx context.Context) ipld.NodeGetter {
	if sm, ok := g.inner.(sessionMaker); ok {
		return &guardSession{g: g, ng: sm.Session(ctx)}
	}
	return &guardSession{g: g, ng: g.inner}
}

func (g *guard) Add(ctx context.Context, nd ipld.Node) error {
	if !g.writer {
		return ErrReadOnly
	}
	return g.inner.Add(ctx, nd)
}

func (g *guard) AddMany(ctx context.Context, nds []ipld.Node) error {
	if !g.writer {
		return ErrReadOnly
	}
	return g.inner.AddMany(ctx, nds)
}

// Remove and RemoveMany are never called by go-ds-crdt; blocks of the CRDT
// DAG are never deleted through it.
func (g *guard) Remove(context.Context, cid.Cid) error { return ErrReadOnly }

func (g *guard) RemoveMany(context.Context, []cid.Cid) error { return ErrReadOnly }

type guardSession struct {
	g  *guard
	ng ipld.NodeGetter
}

func (s *guardSession) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	return s.g.get(ctx, s.ng, c)
}

func (s *guardSession) GetMany(ctx context.Context, cids []cid.Cid) <-chan *ipld.NodeOption {
	return s.g.getMany(ctx, s.ng, cids)
}
