package pinset

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// prefetcher fetches CRDT blocks ahead of go-ds-crdt's walk. go-ds-crdt
// asks for a block's parents only after it has merged the block, so a
// follower catching up on a chain pays one network round trip (bitswap
// waits at least 20 ms between want messages to a peer) per block, in
// series with the merges. The prefetcher follows the links of every block
// go-ds-crdt fetches, down the chain, and brings up to Config.PrefetchBlocks
// blocks into the local block store before they are asked for; the merge
// of one block then overlaps the fetch of the next ones.
//
// It only follows links of blocks go-ds-crdt itself fetched (so of trusted
// heads), refuses the same CIDs the guard refuses, skips processed blocks,
// and keeps CIDs only, never blocks, in memory. One goroutine, started by
// start and stopped by stop (after go-ds-crdt is closed).
type prefetcher struct {
	dag   ipld.DAGService // the caller's: blocks land in its block store
	s     *Set
	ahead int // most blocks fetched ahead and not yet asked for

	mu       sync.Mutex
	cond     *sync.Cond
	todo     []cid.Cid            // links to fetch, most recent first
	seen     map[cid.Cid]struct{} // queued or fetched this session
	fetched  map[cid.Cid]struct{} // fetched ahead, not yet asked for
	stopping bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	count atomic.Uint64 // blocks fetched ahead
}

// maxSeen bounds the seen set; past it the set is cleared (at worst a
// block is fetched twice, locally the second time).
const maxSeen = 1 << 16

func newPrefetcher(s *Set, dag ipld.DAGService, ahead int) *prefetcher {
	p := &prefetcher{
		dag:     dag,
		s:       s,
		ahead:   ahead,
		seen:    make(map[cid.Cid]struct{}),
		fetched: make(map[cid.Cid]struct{}),
		done:    make(chan struct{}),
	}
	p.cond = sync.NewCond(&p.mu)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

func (p *prefetcher) start() { go p.run() }

// stop ends the goroutine and waits for it.
func (p *prefetcher) stop() {
	p.mu.Lock()
	p.stopping = true
	p.cond.Broadcast()
	p.mu.Unlock()
	p.cancel()
	<-p.done
}

// fetchedByCRDT is called by the guard for every block go-ds-crdt got.
// It never blocks.
func (p *prefetcher) fetchedByCRDT(nd ipld.Node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.fetched[nd.Cid()]; ok {
		delete(p.fetched, nd.Cid())
		p.cond.Broadcast() // room to fetch further ahead
	}
	p.pushLinksLocked(nd)
}

func (p *prefetcher) pushLinksLocked(nd ipld.Node) {
	for _, l := range nd.Links() {
		if !IsHeadCID(l.Cid) {
			continue
		}
		if _, ok := p.seen[l.Cid]; ok {
			continue
		}
		if len(p.seen) >= maxSeen {
			clear(p.seen)
		}
		p.seen[l.Cid] = struct{}{}
		p.todo = append(p.todo, l.Cid)
		p.cond.Broadcast()
	}
}

func (p *prefetcher) run() {
	defer close(p.done)
	for {
		p.mu.Lock()
		for !p.stopping && len(p.todo) == 0 {
			p.cond.Wait()
		}
		if p.stopping {
			p.mu.Unlock()
			return
		}
		if len(p.fetched) >= p.ahead {
			// Far enough ahead. Forget blocks that were processed
			// without being asked for (another walk got them), then
			// wait for go-ds-crdt to catch up.
			var ahead []cid.Cid
			for c := range p.fetched {
				ahead = append(ahead, c)
			}
			p.mu.Unlock()
			var gone []cid.Cid
			for _, c := range ahead {
				if done, err := p.s.isProcessed(p.ctx, c); err == nil && done {
					gone = append(gone, c)
				}
			}
			p.mu.Lock()
			for _, c := range gone {
				delete(p.fetched, c)
			}
			if len(gone) == 0 && !p.stopping && len(p.fetched) >= p.ahead {
				p.cond.Wait()
			}
			p.mu.Unlock()
			continue
		}
		c := p.todo[len(p.todo)-1] // depth first: follow the chain
		p.todo = p.todo[:len(p.todo)-1]
		p.mu.Unlock()

		if done, err := p.s.isProcessed(p.ctx, c); err != nil || done {
			continue
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.s.cfg.FetchTimeout)
		nd, err := p.dag.Get(ctx, c)
		cancel()
		if err != nil || len(nd.RawData()) > p.s.cfg.MaxBlockBytes {
			continue // go-ds-crdt will ask itself, and fail, and be retried
		}
		p.count.Add(1)
		p.mu.Lock()
		p.fetched[c] = struct{}{}
		p.pushLinksLocked(nd)
		p.mu.Unlock()
	}
}
