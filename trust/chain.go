package trust

import (
	"bytes"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// Getter returns the bytes of the block c, from a local store or the
// network; VerifyChain checks that they hash to c. It must not be nil.
type Getter func(c cid.Cid) ([]byte, error)

// fetch gets block c and checks its size and hash.
func fetch(get Getter, c cid.Cid) ([]byte, error) {
	if !dag.IsBlockCID(c) {
		return nil, fmt.Errorf("get head %s: %w: not a CIDv1 dag-cbor sha2-256", c, ErrMalformed)
	}
	data, err := get(c)
	if err != nil {
		return nil, fmt.Errorf("get head %s: %w", c, err)
	}
	if len(data) > dag.MaxBlockSize {
		return nil, fmt.Errorf("get head %s: %w: %d bytes, limit %d", c, ErrTooLarge, len(data), dag.MaxBlockSize)
	}
	if got := dag.CID(data); !got.Equals(c) {
		return nil, fmt.Errorf("get head %s: %w: bytes hash to %s", c, ErrMalformed, got)
	}
	return data, nil
}

// decodeAt fetches and strictly decodes the head c without verifying it.
func decodeAt(get Getter, c cid.Cid) (dag.SignedHead, []byte, error) {
	data, err := fetch(get, c)
	if err != nil {
		return dag.SignedHead{}, nil, err
	}
	sh, msg, err := dag.SplitSignedHead(data)
	if err != nil {
		return dag.SignedHead{}, nil, fmt.Errorf("get head: %w", err)
	}
	return sh, msg, nil
}

// VerifyChain verifies the heads from the known head from (exclusive) to
// the new head to (inclusive) and returns them oldest first. from is a head
// the caller already trusts (verified earlier, or configured by CID); its
// block is read but its signature is not checked. With from undefined the
// chain must start at a genesis head signed by a key in r.Trust, and the
// genesis head is the first one returned. from == to returns no heads.
//
// It walks parent links back from to, at most r.MaxChain heads, then
// verifies forward with VerifyHead, each head against its parent. get is
// called about twice per head. Errors: ErrStaleSeq if to is not newer than
// from; ErrFork (a *ForkError with both CIDs) if to's branch holds a head
// that from's signer also signed at from's seq on from's parent;
// ErrNotDescendant if to's branch does not pass through from otherwise
// (another curator's branch: compare with Prefer); ErrChainTooLong; and
// whatever VerifyHead reports for the first bad head.
func VerifyChain(r Rules, from, to cid.Cid, get Getter, now time.Time) ([]Verified, error) {
	heads, err := verifyChain(r, from, to, get, now)
	if err != nil {
		return nil, fmt.Errorf("verify chain to %s: %w", to, err)
	}
	return heads, nil
}

func verifyChain(r Rules, from, to cid.Cid, get Getter, now time.Time) ([]Verified, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var start *Verified
	if from.Defined() {
		sh, _, err := decodeAt(get, from)
		if err != nil {
			return nil, fmt.Errorf("known head: %w", err)
		}
		if !bytes.Equal(sh.Head.Cluster, []byte(r.Cluster)) {
			return nil, fmt.Errorf("known head %s: %w: it is for cluster %s, this is %s",
				from, ErrWrongCluster, peerString(sh.Head.Cluster), r.Cluster)
		}
		start = &Verified{SignedHead: sh, CID: from}
		if from.Equals(to) {
			return []Verified{}, nil
		}
	}
	path, err := walkBack(r, start, to, get)
	if err != nil {
		return nil, err
	}
	out := make([]Verified, 0, len(path))
	parent := start
	for i := len(path) - 1; i >= 0; i-- {
		data, err := fetch(get, path[i])
		if err != nil {
			return nil, err
		}
		v, err := verifyHead(r, parent, data, now)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		parent = &out[len(out)-1]
	}
	return out, nil
}

// walkBack follows parent links from to until start (exclusive) or, with
// start nil, a genesis head (inclusive). It returns the CIDs newest first.
func walkBack(r Rules, start *Verified, to cid.Cid, get Getter) ([]cid.Cid, error) {
	limit := r.maxChain()
	cur, msg, err := decodeAt(get, to)
	if err != nil {
		return nil, err
	}
	if start != nil && cur.Head.Seq <= start.Head.Seq {
		if err := equivocation(start, to, cur, msg); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: head %s has seq %d, the known head %s has seq %d",
			ErrStaleSeq, to, cur.Head.Seq, start.CID, start.Head.Seq)
	}
	path := []cid.Cid{to}
	curCID := to
	for {
		p := cur.Head.Parent
		if p == nil {
			if start != nil {
				return nil, fmt.Errorf("%w: head %s descends from genesis %s, not from the known head %s (seq %d)",
					ErrNotDescendant, to, curCID, start.CID, start.Head.Seq)
			}
			return path, nil
		}
		if start != nil && p.Equals(start.CID) {
			return path, nil
		}
		if len(path) >= limit {
			return nil, fmt.Errorf("%w: more than %d heads below %s", ErrChainTooLong, limit, to)
		}
		ph, pmsg, err := decodeAt(get, *p)
		if err != nil {
			return nil, err
		}
		if ph.Head.Seq >= cur.Head.Seq {
			return nil, fmt.Errorf("verify head %s: %w: seq %d is not greater than parent %s's seq %d",
				curCID, ErrStaleSeq, cur.Head.Seq, *p, ph.Head.Seq)
		}
		if start != nil && ph.Head.Seq <= start.Head.Seq {
			if err := equivocation(start, *p, ph, pmsg); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: head %s's ancestor at seq %d is %s, the known head %s has seq %d",
				ErrNotDescendant, to, ph.Head.Seq, *p, start.CID, start.Head.Seq)
		}
		path = append(path, *p)
		cur, curCID = ph, *p
	}
}

// equivocation returns a *ForkError if the head (c, sh) and the verified
// head known have the same parent and seq and the same signer, and sh's
// signature is valid; an error if that signature is invalid; nil if the two
// heads are not a same-signer pair.
func equivocation(known *Verified, c cid.Cid, sh dag.SignedHead, msg []byte) error {
	if c.Equals(known.CID) || sh.Head.Seq != known.Head.Seq ||
		!sameParent(sh.Head.Parent, known.Head.Parent) || !bytes.Equal(sh.Sig.Signer, known.Sig.Signer) {
		return nil
	}
	if err := verifySig(sh.Sig, msg); err != nil {
		return fmt.Errorf("verify head %s: %w", c, err)
	}
	return newForkError(known.CID, c, sh.Sig.Signer, sh.Head.Parent, sh.Head.Seq)
}

func sameParent(a, b *cid.Cid) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equals(*b)
}

func newForkError(a, b cid.Cid, signer []byte, parent *cid.Cid, seq int64) *ForkError {
	if bytes.Compare(b.Bytes(), a.Bytes()) < 0 {
		a, b = b, a
	}
	e := &ForkError{A: a, B: b, Signer: peer.ID(signer), Seq: seq}
	if parent != nil {
		e.Parent = *parent
	}
	return e
}

// CheckFork returns a *ForkError (errors.Is ErrFork) if a and b, both
// verified, are different heads with the same parent and seq signed by the
// same curator: equivocation, with both heads as evidence. It returns nil
// for any other pair; in particular two curators racing from one parent is
// not a fork (see Prefer).
func CheckFork(a, b Verified) error {
	if a.CID.Equals(b.CID) || a.Head.Seq != b.Head.Seq || !sameParent(a.Head.Parent, b.Head.Parent) ||
		!bytes.Equal(a.Sig.Signer, b.Sig.Signer) {
		return nil
	}
	return newForkError(a.CID, b.CID, a.Sig.Signer, a.Head.Parent, a.Head.Seq)
}

// Prefer chooses between two verified heads deterministically, so every
// peer that sees both follows the same one: the higher seq wins; at equal
// seq, the head whose CID bytes compare smaller wins.
func Prefer(a, b Verified) Verified {
	switch {
	case a.Head.Seq > b.Head.Seq:
		return a
	case b.Head.Seq > a.Head.Seq:
		return b
	case bytes.Compare(b.CID.Bytes(), a.CID.Bytes()) < 0:
		return b
	default:
		return a
	}
}
