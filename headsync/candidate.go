package headsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

// fetcher fetches chains of heads from peers for candidates; Net is the
// one Attach installs.
type fetcher interface {
	// chain returns block c and up to max-1 of its ancestors, newest
	// first, from peer p, each checked to hash to the CID its child (or
	// the request) names. It may return fewer blocks, and blocks with an
	// error.
	chain(ctx context.Context, p peer.ID, c cid.Cid, max int) ([][]byte, error)
	// peersFor lists the peers to ask for the blocks of a candidate
	// announced by from: from first, when it is a peer.
	peersFor(from peer.ID) []peer.ID
}

func (s *Sync) setFetcher(f fetcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetch = f
}

func (s *Sync) fetcher() fetcher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetch
}

// errNeedBlocks: the candidate needs blocks from peers, and the caller
// asked not to fetch. Not a rejection.
var errNeedBlocks = errors.New("headsync: candidate needs blocks from peers")

// Consider verifies a candidate announcement and adopts its head if it is
// preferred to the newest one. Every rejection is logged and recorded with
// from and the reason; nothing is changed by a rejected candidate.
//
// In order: the record (if any) must verify against the cluster name; the
// head (if announced) must be signed by a key of the known trust set
// (see checkHead) and not older than the newest head. Blocks the node
// lacks (the head a record names, missing parents) are then fetched from
// from first, then other peers, into the candidate's quarantine (Limits),
// with no lock held and within the per-peer budget; nothing of them is
// stored until the head verifies against a head verified before (or the
// checkpoint). Adopting a verified head takes a lock held only for local
// writes, so a candidate fetching never delays another, nor the curator's
// own heads.
func (s *Sync) Consider(ctx context.Context, a Announcement, src Source, from peer.ID) (Outcome, error) {
	return s.considerAs(ctx, a, src, from, true)
}

// considerAs is Consider; with fetch false, a candidate that needs blocks
// from peers returns errNeedBlocks (not recorded) at once.
func (s *Sync) considerAs(ctx context.Context, a Announcement, src Source, from peer.ID, fetch bool) (Outcome, error) {
	out, err := s.consider(ctx, a, src, from, fetch)
	if err != nil && !errors.Is(err, errNeedBlocks) {
		s.reject(src, from, err)
	}
	return out, err
}

// candidate is a head under consideration.
type candidate struct {
	cid  cid.Cid
	head []byte // nil until fetched when a record alone named it
	rec  *publish.Record
	src  Source
}

func (s *Sync) consider(ctx context.Context, a Announcement, src Source, from peer.ID, fetch bool) (Outcome, error) {
	now := s.now()
	c, err := s.precheck(a, src, now)
	if err != nil {
		return 0, err
	}
	if cur, ok := s.Newest(); ok && cur.CID.Equals(c.cid) {
		return Known, s.offerRecord(ctx, c.rec, cur)
	}
	q := newQuarantine(s.cfg.Limits)
	if c.head != nil {
		if err := q.add(c.head); err != nil {
			return 0, fmt.Errorf("head %s: %w", c.cid, err)
		}
	}
	missing, anchor, err := s.missing(ctx, q, c.cid, c.cid)
	if err != nil {
		return 0, err
	}
	if missing.Defined() {
		if !fetch {
			return 0, errNeedBlocks
		}
		release, err := s.budget.acquire(from)
		if err != nil {
			return 0, fmt.Errorf("head %s: %w", c.cid, err)
		}
		defer release()
		if anchor, err = s.fetchMissing(ctx, q, &c, from, missing); err != nil {
			return 0, err
		}
	}
	v, chain, err := s.verify(ctx, c.cid, anchor, q, now)
	if err != nil {
		return 0, err
	}
	return s.commit(ctx, c, q, v, chain, anchor)
}

// precheck checks what needs no other block: the record against the
// cluster name, and the head with checkHead.
func (s *Sync) precheck(a Announcement, src Source, now time.Time) (candidate, error) {
	c := candidate{src: src}
	if len(a.Record) > 0 {
		r, err := publish.ParseRecord(a.Record, s.cfg.Name, now)
		if err != nil {
			return c, fmt.Errorf("record: %w", err)
		}
		if cur, have := s.Newest(); have && r.Seq < uint64(max(cur.Head.Seq, 0)) {
			return c, fmt.Errorf("record for head %s: %w: seq %d, the newest head %s has seq %d",
				r.Head, trust.ErrStaleSeq, r.Seq, cur.CID, cur.Head.Seq)
		}
		c.rec, c.cid = &r, r.Head
	}
	switch {
	case len(a.Head) > 0:
		hc := dag.CID(a.Head)
		if c.rec != nil && !c.rec.Head.Equals(hc) {
			return c, fmt.Errorf("record names %s but the announced head is %s: %w", c.rec.Head, hc, publish.ErrHeadMismatch)
		}
		c.cid, c.head = hc, a.Head
		return c, s.checkHead(hc, a.Head, src)
	case c.rec != nil:
		return c, nil
	}
	return c, fmt.Errorf("%w: neither head nor record", ErrMalformed)
}

// pulled reports whether heads from src were asked for by this node
// (rather than pushed to it): from a peer it asked, a DHT record or a
// record file.
func pulled(src Source) bool { return src == FromPeer || src == FromDHT || src == FromFile }

// checkHead is the check made before anything is relayed or fetched for a
// head: its size, its seq not below the newest head's, and its signature
// by a key of the trust set of the newest head (or of the configured
// rules before any) — one ed25519 verification. A pulled head signed by a
// key outside that set goes on to full verification all the same (the
// trust set may have changed in heads this node has yet to see); its
// quarantine bounds what that costs.
func (s *Sync) checkHead(c cid.Cid, data []byte, src Source) error {
	if len(data) > MaxHeadSize {
		return fmt.Errorf("head %s: %w: %d bytes, limit %d", c, dag.ErrTooLarge, len(data), MaxHeadSize)
	}
	cur, have := s.Newest()
	if have && cur.CID.Equals(c) {
		return nil
	}
	authority := make([][]byte, 0, len(s.cfg.Rules.Trust))
	if have {
		authority = cur.Head.Trust
	} else {
		for _, id := range s.cfg.Rules.Trust {
			authority = append(authority, []byte(id))
		}
	}
	sh, err := trust.VerifySigned(s.cfg.Rules, authority, data)
	if errors.Is(err, trust.ErrUntrustedSigner) && pulled(src) {
		sh, err = dag.DecodeSignedHead(data)
	}
	if err != nil {
		return err
	}
	if have && sh.Head.Seq < cur.Head.Seq {
		return fmt.Errorf("head %s: %w: seq %d is older than the newest head %s (seq %d)",
			c, trust.ErrStaleSeq, sh.Head.Seq, cur.CID, cur.Head.Seq)
	}
	return nil
}

// missing walks parent links from walk (a block of candidate c, or one it
// needs) through the quarantine down to a head verified before, or the
// checkpoint: the anchor. It returns the first block it lacks, or an
// undefined CID and the anchor when the chain is complete.
func (s *Sync) missing(ctx context.Context, q *quarantine, walk, c cid.Cid) (need, anchor cid.Cid, err error) {
	for range q.maxBlocks + 1 {
		if walk.Equals(s.cfg.Checkpoint) {
			if _, ok := q.get(walk); ok || s.hasLocal(ctx, walk) {
				return cid.Undef, walk, nil
			}
			return walk, cid.Undef, nil
		}
		if s.isVerified(ctx, walk) {
			return cid.Undef, walk, nil
		}
		data, ok := q.get(walk)
		if !ok {
			return walk, cid.Undef, nil
		}
		sh, err := dag.DecodeSignedHead(data)
		if err != nil {
			return cid.Undef, cid.Undef, fmt.Errorf("head %s: %w", walk, err)
		}
		if sh.Head.Seq < s.cfg.CheckpointSeq || sh.Head.Parent == nil {
			return cid.Undef, cid.Undef, fmt.Errorf("head %s: %w: its chain does not pass through checkpoint %s (seq %d)",
				c, trust.ErrNotDescendant, s.cfg.Checkpoint, s.cfg.CheckpointSeq)
		}
		walk = *sh.Head.Parent
	}
	return cid.Undef, cid.Undef, fmt.Errorf("head %s: %w", c, ErrQuarantineFull)
}

func (s *Sync) hasLocal(ctx context.Context, c cid.Cid) bool {
	_, err := s.blocks.Get(ctx, c)
	return err == nil
}

// fetchMissing fetches the blocks candidate c lacks, from missing down,
// into q: each round asks the peers of peersFor(from) in turn (the last
// one that answered first), each for as much of the chain as fits, within
// Limits.AskTimeout per request and FetchTimeout in all. The head of a
// record alone is fetched alone and checked (checkHead) before any of its
// parents. It returns the anchor the completed chain reaches.
func (s *Sync) fetchMissing(ctx context.Context, q *quarantine, c *candidate, from peer.ID, missing cid.Cid) (cid.Cid, error) {
	f := s.fetcher()
	if f == nil {
		return cid.Undef, fmt.Errorf("head %s: block %s: %w: no peers to ask", c.cid, missing, ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	peers := f.peersFor(from)
	for {
		want := q.room()
		if want <= 0 {
			return cid.Undef, fmt.Errorf("head %s: %w: %d blocks", c.cid, ErrQuarantineFull, q.maxBlocks)
		}
		if c.head == nil {
			want = 1
		}
		got := 0
		for i, p := range peers {
			blks, err := f.chain(ctx, p, missing, want)
			for _, b := range blks {
				if err := q.add(b); err != nil {
					return cid.Undef, fmt.Errorf("head %s: %w", c.cid, err)
				}
			}
			if len(blks) > 0 {
				got = len(blks)
				peers[0], peers[i] = peers[i], peers[0]
				break
			}
			s.log.Debug("no blocks from peer", "head", c.cid, "block", missing, "peer", p, "err", err)
		}
		if got == 0 {
			return cid.Undef, fmt.Errorf("head %s: block %s: %w: asked %d peers", c.cid, missing, ErrUnavailable, len(peers))
		}
		if c.head == nil {
			data, _ := q.get(c.cid)
			if err := s.checkHead(c.cid, data, c.src); err != nil {
				return cid.Undef, err
			}
			c.head = data
		}
		next, anchor, err := s.missing(ctx, q, missing, c.cid)
		if err != nil || !next.Defined() {
			return anchor, err
		}
		missing = next
	}
}

// verify verifies head c against anchor (a head verified before, or the
// checkpoint), reading blocks from q, then the local store. It returns the
// head and the heads verified on the way, oldest first. It changes
// nothing.
func (s *Sync) verify(ctx context.Context, c, anchor cid.Cid, q *quarantine, now time.Time) (trust.Verified, []trust.Verified, error) {
	get := func(c cid.Cid) ([]byte, error) {
		if b, ok := q.get(c); ok {
			return b, nil
		}
		b, err := s.blocks.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		return b.RawData(), nil
	}
	genesis := anchor.Equals(s.cfg.Checkpoint) && s.cfg.CheckpointSeq == 0 && !s.isVerified(ctx, anchor)
	if anchor.Equals(c) {
		// The candidate is the checkpoint itself (or verified before).
		data, err := get(c)
		if err != nil {
			return trust.Verified{}, nil, fmt.Errorf("head %s: %w", c, err)
		}
		if genesis {
			v, err := trust.VerifyHead(s.cfg.Rules, nil, data, now)
			if err != nil {
				return trust.Verified{}, nil, err
			}
			return v, []trust.Verified{v}, nil
		}
		sh, err := dag.DecodeSignedHead(data)
		if err != nil {
			return trust.Verified{}, nil, fmt.Errorf("head %s: %w", c, err)
		}
		v := trust.Verified{SignedHead: sh, CID: c}
		return v, []trust.Verified{v}, nil
	}
	from := anchor
	if genesis {
		from = cid.Undef // verify genesis itself: VerifyChain checks it against Rules.Trust
	}
	heads, err := trust.VerifyChain(s.cfg.Rules, from, c, get, now)
	if err != nil {
		return trust.Verified{}, nil, err
	}
	if anchor.Equals(s.cfg.Checkpoint) && !genesis && !s.isVerified(ctx, anchor) {
		// A checkpoint later than genesis is trusted by its CID.
		data, err := get(anchor)
		if err != nil {
			return trust.Verified{}, nil, fmt.Errorf("head %s: %w", anchor, err)
		}
		sh, err := dag.DecodeSignedHead(data)
		if err != nil {
			return trust.Verified{}, nil, fmt.Errorf("head %s: %w", anchor, err)
		}
		heads = append([]trust.Verified{{SignedHead: sh, CID: anchor}}, heads...)
	}
	return heads[len(heads)-1], heads, nil
}

// commit stores the verified chain (its blocks first, then their verified
// marks: a mark implies a local block) and adopts v if it is preferred to
// the newest head. It holds adoptMu for local writes only.
func (s *Sync) commit(ctx context.Context, c candidate, q *quarantine, v trust.Verified, chain []trust.Verified, anchor cid.Cid) (Outcome, error) {
	s.adoptMu.Lock()
	defer s.adoptMu.Unlock()
	for _, h := range chain {
		if data, ok := q.get(h.CID); ok {
			if err := s.blocks.Put(ctx, dag.NewBlock(data)); err != nil {
				return 0, fmt.Errorf("store head %s: %w", h.CID, err)
			}
		}
	}
	for _, h := range chain {
		if err := s.markVerified(ctx, h); err != nil {
			return 0, err
		}
	}
	cur, have := s.Newest()
	if have && cur.CID.Equals(v.CID) {
		return Known, s.offerRecord(ctx, c.rec, cur)
	}
	descends := !have || cur.CID.Equals(anchor) || slices.ContainsFunc(chain, func(h trust.Verified) bool { return h.CID.Equals(cur.CID) })
	if !descends && v.Head.Seq < cur.Head.Seq {
		return 0, fmt.Errorf("head %s: %w: seq %d is older than the newest head %s (seq %d)",
			v.CID, trust.ErrStaleSeq, v.Head.Seq, cur.CID, cur.Head.Seq)
	}
	if !descends {
		if ferr := trust.CheckFork(cur, v); ferr != nil {
			s.log.Error("curator equivocation", "err", ferr)
			s.reject(c.src, "", ferr)
		}
		if trust.Prefer(cur, v).CID.Equals(cur.CID) {
			return Passed, nil
		}
	}
	if err := s.adopt(ctx, v); err != nil {
		return 0, err
	}
	s.log.Info("new head", "cid", v.CID, "seq", v.Head.Seq, "signer", peer.ID(v.Sig.Signer), "source", c.src)
	return Adopted, s.offerRecord(ctx, c.rec, v)
}
