package trust

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// Errors. Each is wrapped with the CID of the record and the detail that
// failed; test with errors.Is. The decoding errors are package dag's own, so
// errors.Is(err, dag.ErrMalformed) and errors.Is(err, trust.ErrMalformed)
// agree.
var (
	ErrMalformed      = dag.ErrMalformed
	ErrTooLarge       = dag.ErrTooLarge
	ErrUnknownVersion = dag.ErrUnknownVersion

	ErrBadSignature    = errors.New("trust: signature invalid")
	ErrUntrustedSigner = errors.New("trust: signer not trusted")
	ErrStaleSeq        = errors.New("trust: seq not newer")
	ErrFork            = errors.New("trust: fork (curator signed two heads with the same parent and seq)")
	ErrWrongCluster    = errors.New("trust: wrong cluster")
	ErrFutureTime      = errors.New("trust: time in the future")
	ErrPastTime        = errors.New("trust: time before the parent's")
	ErrParentMismatch  = errors.New("trust: parent mismatch")
	ErrSignerMismatch  = errors.New("trust: signer is not the record's peer")
	ErrChainTooLong    = errors.New("trust: chain too long")
	ErrNotDescendant   = errors.New("trust: head does not descend from the known head")
	ErrNotEd25519      = errors.New("trust: not an ed25519 key")
	ErrKeyPermissions  = errors.New("trust: key file readable by group or others")
	ErrKeyExists       = errors.New("trust: key file exists")
	ErrBadRules        = errors.New("trust: invalid rules")
	// ErrVersionDowngrade: a head of a lower format version than its
	// parent's (a version 2 chain never goes back to version 1).
	ErrVersionDowngrade = errors.New("trust: format version lower than the parent's")
)

// ForkError is the evidence of an equivocation: one curator signed two
// different heads with the same parent and seq. Both heads carry valid
// signatures. errors.Is(err, ErrFork) holds for it.
type ForkError struct {
	A, B   cid.Cid // the two heads, A < B in byte order
	Signer peer.ID
	Parent cid.Cid // undefined for two genesis heads
	Seq    int64
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("%v: curator %s signed both %s and %s at seq %d on parent %s",
		ErrFork, e.Signer, e.A, e.B, e.Seq, parentString(e.Parent))
}

func (e *ForkError) Unwrap() error { return ErrFork }

func parentString(c cid.Cid) string {
	if !c.Defined() {
		return "(genesis)"
	}
	return c.String()
}
