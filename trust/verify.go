package trust

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// Defaults of Rules fields left at zero.
const (
	// DefaultMaxSkew is how far a head's time may be ahead of the
	// verifier's clock: curators' clocks drift, but not by hours.
	DefaultMaxSkew = 5 * time.Minute
	// DefaultMaxChain bounds the heads one VerifyChain call walks: about
	// 45 days of one head a minute.
	DefaultMaxChain = 1 << 16
)

// Rules is what a verifier is configured with: the cluster and, for a
// genesis head, the trust set. Everything later comes from signed heads.
type Rules struct {
	// Cluster is the peer ID of the cluster key; every head and follower
	// record must name it.
	Cluster peer.ID
	// Trust is the set of curator keys (ed25519 peer IDs) allowed to sign
	// a genesis head. Order does not matter.
	Trust []peer.ID
	// MaxSkew is how far in the future of now a head's time may be;
	// 0 means DefaultMaxSkew.
	MaxSkew time.Duration
	// MaxChain bounds the number of heads VerifyChain walks; 0 means
	// DefaultMaxChain.
	MaxChain int
}

// Validate checks r without changing it; errors name the field.
func (r Rules) Validate() error {
	if len(r.Cluster) == 0 || len(r.Cluster) > dag.MaxPeerIDLen {
		return fmt.Errorf("%w: rules.cluster: %d bytes, want 1..%d", ErrBadRules, len(r.Cluster), dag.MaxPeerIDLen)
	}
	if len(r.Trust) == 0 {
		return fmt.Errorf("%w: rules.trust: empty", ErrBadRules)
	}
	if len(r.Trust) > dag.MaxTrust {
		return fmt.Errorf("%w: rules.trust: %d keys, limit %d", ErrBadRules, len(r.Trust), dag.MaxTrust)
	}
	for i, id := range r.Trust {
		if !IsEd25519(id) {
			return fmt.Errorf("%w: rules.trust[%d]: %s is not an ed25519 peer ID", ErrBadRules, i, peerString([]byte(id)))
		}
	}
	if r.MaxSkew < 0 {
		return fmt.Errorf("%w: rules.max_skew: negative (%s)", ErrBadRules, r.MaxSkew)
	}
	if r.MaxChain < 0 {
		return fmt.Errorf("%w: rules.max_chain: negative (%d)", ErrBadRules, r.MaxChain)
	}
	return nil
}

func (r Rules) maxSkew() time.Duration {
	if r.MaxSkew == 0 {
		return DefaultMaxSkew
	}
	return r.MaxSkew
}

func (r Rules) maxChain() int {
	if r.MaxChain == 0 {
		return DefaultMaxChain
	}
	return r.MaxChain
}

// Verified is a head that passed verification (or, for the starting point
// of VerifyChain, one the caller already trusted), with its CID.
type Verified struct {
	dag.SignedHead
	CID cid.Cid
}

// VerifyHead verifies data as a signed head block. parent is the verified
// parent, or nil for a genesis head, which must then be signed by a key in
// r.Trust. now is the verifier's clock. On success it returns the head and
// its CID; otherwise an error wrapping one of this package's sentinels and
// naming the head's CID.
//
// The rules, in the order they are checked: strict decoding (dag); cluster
// equal to r.Cluster; trust set of ed25519 keys; parent link equal to the
// parent's CID (null at genesis); seq greater than the parent's; time not
// before the parent's and at most MaxSkew after now; format version not
// lower than the parent's; signer in the parent's
// trust set (r.Trust at genesis); signature valid over
// dag.HeadDomain || dagcbor(head).
func VerifyHead(r Rules, parent *Verified, data []byte, now time.Time) (Verified, error) {
	if err := r.Validate(); err != nil {
		return Verified{}, fmt.Errorf("verify head: %w", err)
	}
	return verifyHead(r, parent, data, now)
}

func verifyHead(r Rules, parent *Verified, data []byte, now time.Time) (Verified, error) {
	if len(data) > dag.MaxBlockSize {
		return Verified{}, fmt.Errorf("verify head (%d bytes): %w: limit %d", len(data), ErrTooLarge, dag.MaxBlockSize)
	}
	c := dag.CID(data)
	sh, msg, err := dag.SplitSignedHead(data)
	if err != nil {
		return Verified{}, fmt.Errorf("verify head: %w", err)
	}
	if err := checkHead(r, parent, c, &sh, msg, now); err != nil {
		return Verified{}, fmt.Errorf("verify head %s: %w", c, err)
	}
	return Verified{SignedHead: sh, CID: c}, nil
}

func checkHead(r Rules, parent *Verified, c cid.Cid, sh *dag.SignedHead, msg []byte, now time.Time) error {
	h := &sh.Head
	if !bytes.Equal(h.Cluster, []byte(r.Cluster)) {
		return fmt.Errorf("%w: head is for cluster %s, this is %s", ErrWrongCluster, peerString(h.Cluster), r.Cluster)
	}
	for i, id := range h.Trust {
		if _, ok := publicKey(id); !ok {
			return fmt.Errorf("%w: head.trust[%d]: %s: %w", ErrMalformed, i, peerString(id), ErrNotEd25519)
		}
	}
	var authority [][]byte
	if parent == nil {
		if h.Parent != nil {
			return fmt.Errorf("%w: expected a genesis head, this one names parent %s (seq %d)", ErrParentMismatch, h.Parent, h.Seq)
		}
		authority = peerBytes(r.Trust)
	} else {
		ph := &parent.Head
		if h.Parent == nil {
			return fmt.Errorf("%w: head is a genesis head, expected a child of %s (seq %d)", ErrParentMismatch, parent.CID, ph.Seq)
		}
		if !h.Parent.Equals(parent.CID) {
			return fmt.Errorf("%w: head names parent %s, expected %s (seq %d)", ErrParentMismatch, h.Parent, parent.CID, ph.Seq)
		}
		if h.Seq <= ph.Seq {
			return fmt.Errorf("%w: seq %d is not greater than parent %s's seq %d", ErrStaleSeq, h.Seq, parent.CID, ph.Seq)
		}
		if h.Time < ph.Time {
			return fmt.Errorf("%w: time %s is before parent %s's time %s", ErrPastTime, msTime(h.Time), parent.CID, msTime(ph.Time))
		}
		if h.Version < ph.Version {
			return fmt.Errorf("%w: version %d after parent %s's version %d", ErrVersionDowngrade, h.Version, parent.CID, ph.Version)
		}
		authority = ph.Trust
	}
	if limit := now.Add(r.maxSkew()).UnixMilli(); h.Time > limit {
		return fmt.Errorf("%w: time %s is %s ahead of now %s (max skew %s)", ErrFutureTime, msTime(h.Time),
			time.Duration(h.Time-now.UnixMilli())*time.Millisecond, now.UTC().Format(time.RFC3339), r.maxSkew())
	}
	if !contains(authority, sh.Sig.Signer) {
		if parent == nil {
			return fmt.Errorf("%w: signer %s is not in the configured genesis trust set", ErrUntrustedSigner, peerString(sh.Sig.Signer))
		}
		return fmt.Errorf("%w: signer %s is not in the trust set of parent %s (seq %d)", ErrUntrustedSigner,
			peerString(sh.Sig.Signer), parent.CID, parent.Head.Seq)
	}
	return verifySig(sh.Sig, msg)
}

// verifySig checks an ed25519 signature over msg by the key embedded in
// the signer's peer ID.
func verifySig(s dag.Signature, msg []byte) error {
	pub, ok := publicKey(s.Signer)
	if !ok {
		return fmt.Errorf("%w: signer %s: %w", ErrBadSignature, peerString(s.Signer), ErrNotEd25519)
	}
	if !ed25519.Verify(pub, msg, s.Sig) {
		return fmt.Errorf("%w: by %s", ErrBadSignature, peer.ID(s.Signer))
	}
	return nil
}

func contains(set [][]byte, id []byte) bool {
	for _, k := range set {
		if bytes.Equal(k, id) {
			return true
		}
	}
	return false
}

func peerBytes(ids []peer.ID) [][]byte {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = []byte(id)
	}
	return out
}

func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// VerifyAck verifies data as a follower's signed ACK for cluster: strict
// decoding (which checks the version), the cluster, the signer equal to the
// ACK's own peer, and the signature over dag.AckDomain || dagcbor(ack).
// Whether that follower was allocated the shard is the caller's question.
func VerifyAck(cluster peer.ID, data []byte) (dag.SignedAck, error) {
	a, msg, err := dag.SplitSignedAck(data)
	if err != nil {
		return dag.SignedAck{}, fmt.Errorf("verify ack: %w", err)
	}
	if err := checkRecord(cluster, a.Ack.Cluster, a.Ack.Peer, a.Sig, msg); err != nil {
		return dag.SignedAck{}, fmt.Errorf("verify ack %s: %w", dag.CID(data), err)
	}
	return a, nil
}

// VerifyOffer verifies data as a follower's signed offer for cluster, by
// the same rules as VerifyAck.
func VerifyOffer(cluster peer.ID, data []byte) (dag.SignedOffer, error) {
	o, msg, err := dag.SplitSignedOffer(data)
	if err != nil {
		return dag.SignedOffer{}, fmt.Errorf("verify offer: %w", err)
	}
	if err := checkRecord(cluster, o.Offer.Cluster, o.Offer.Peer, o.Sig, msg); err != nil {
		return dag.SignedOffer{}, fmt.Errorf("verify offer %s: %w", dag.CID(data), err)
	}
	return o, nil
}

// VerifyAudit verifies data as a curator's signed audit result for
// cluster, by the same rules as VerifyAck: strict decoding (an audit must
// be of format version 2 or later), the cluster, the signer equal to the
// audit's auditor, and the signature over dag.AuditDomain || dagcbor(audit).
//
// It does not decide whether the auditor is a curator: the caller checks
// the auditor against the trust set of the head it logs or reads the
// audit in (an audit by a key outside that set is worth nothing), and
// whether the holder, shard, head and digest match that head.
func VerifyAudit(cluster peer.ID, data []byte) (dag.SignedAudit, error) {
	a, msg, err := dag.SplitSignedAudit(data)
	if err != nil {
		return dag.SignedAudit{}, fmt.Errorf("verify audit: %w", err)
	}
	if err := checkRecord(cluster, a.Audit.Cluster, a.Audit.Auditor, a.Sig, msg); err != nil {
		return dag.SignedAudit{}, fmt.Errorf("verify audit %s: %w", dag.CID(data), err)
	}
	return a, nil
}

// VerifyLoggedAudit verifies an audit read from a head's log, where it is
// a value rather than a block: it re-encodes it canonically and verifies
// those bytes as VerifyAudit does.
func VerifyLoggedAudit(cluster peer.ID, a dag.SignedAudit) error {
	data, err := dag.EncodeSignedAudit(a)
	if err != nil {
		return fmt.Errorf("verify audit: %w", err)
	}
	_, err = VerifyAudit(cluster, data)
	return err
}

func checkRecord(cluster peer.ID, recCluster, recPeer []byte, sig dag.Signature, msg []byte) error {
	if !bytes.Equal(recCluster, []byte(cluster)) {
		return fmt.Errorf("%w: record is for cluster %s, this is %s", ErrWrongCluster, peerString(recCluster), cluster)
	}
	if !bytes.Equal(sig.Signer, recPeer) {
		return fmt.Errorf("%w: signed by %s, record is for peer %s", ErrSignerMismatch, peerString(sig.Signer), peerString(recPeer))
	}
	return verifySig(sig, msg)
}

// VerifySigned checks what can be checked of a head block without its
// parent: strict decoding, the cluster, the signer in authority (the trust
// set of a head the caller verified, or r.Trust) and the signature. One
// ed25519 verification: the cheap check a node makes before relaying or
// fetching anything for a head. VerifyHead and VerifyChain check the rest
// (parent, seq, time, the parent's trust set).
func VerifySigned(r Rules, authority [][]byte, data []byte) (dag.SignedHead, error) {
	if len(data) > dag.MaxBlockSize {
		return dag.SignedHead{}, fmt.Errorf("verify head (%d bytes): %w: limit %d", len(data), ErrTooLarge, dag.MaxBlockSize)
	}
	sh, msg, err := dag.SplitSignedHead(data)
	if err != nil {
		return dag.SignedHead{}, fmt.Errorf("verify head: %w", err)
	}
	c := dag.CID(data)
	if !bytes.Equal(sh.Head.Cluster, []byte(r.Cluster)) {
		return dag.SignedHead{}, fmt.Errorf("verify head %s: %w: head is for cluster %s, this is %s", c, ErrWrongCluster, peerString(sh.Head.Cluster), r.Cluster)
	}
	if !contains(authority, sh.Sig.Signer) {
		return dag.SignedHead{}, fmt.Errorf("verify head %s: %w: signer %s is not in the known trust set", c, ErrUntrustedSigner, peerString(sh.Sig.Signer))
	}
	if err := verifySig(sh.Sig, msg); err != nil {
		return dag.SignedHead{}, fmt.Errorf("verify head %s: %w", c, err)
	}
	return sh, nil
}
