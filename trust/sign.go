package trust

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// ed25519IDPrefix starts every binary peer ID of an ed25519 key: an
// identity multihash (0x00, length 36) of the protobuf public key
// (type Ed25519 = 1, 32 data bytes). It is the only encoding libp2p
// produces; requiring it makes each key have exactly one peer ID.
var ed25519IDPrefix = []byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}

// publicKey returns the ed25519 public key embedded in a binary peer ID.
func publicKey(id []byte) (ed25519.PublicKey, bool) {
	if len(id) != len(ed25519IDPrefix)+ed25519.PublicKeySize || !bytes.HasPrefix(id, ed25519IDPrefix) {
		return nil, false
	}
	return ed25519.PublicKey(id[len(ed25519IDPrefix):]), true
}

// IsEd25519 reports whether id is the peer ID of an ed25519 key.
func IsEd25519(id peer.ID) bool {
	_, ok := publicKey([]byte(id))
	return ok
}

// signer returns the binary peer ID of an ed25519 private key.
func signer(key crypto.PrivKey) ([]byte, error) {
	if key == nil || key.Type() != crypto.Ed25519 {
		return nil, ErrNotEd25519
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return []byte(id), nil
}

func sign(key crypto.PrivKey, msg []byte) (dag.Signature, error) {
	id, err := signer(key)
	if err != nil {
		return dag.Signature{}, err
	}
	sig, err := key.Sign(msg)
	if err != nil {
		return dag.Signature{}, err
	}
	return dag.Signature{Signer: id, Sig: sig}, nil
}

// SignHead signs h with a curator's key: the signature covers
// dag.HeadDomain || dagcbor(h). h is checked as dag would check it.
// Whether the key may sign this head is for the verifier to decide.
func SignHead(key crypto.PrivKey, h dag.Head) (dag.SignedHead, error) {
	msg, err := dag.HeadSigningBytes(h)
	if err != nil {
		return dag.SignedHead{}, fmt.Errorf("sign head: %w", err)
	}
	sig, err := sign(key, msg)
	if err != nil {
		return dag.SignedHead{}, fmt.Errorf("sign head: %w", err)
	}
	return dag.SignedHead{Head: h, Sig: sig}, nil
}

// SignAck signs a follower's ACK. a.Peer must be the key's peer ID.
func SignAck(key crypto.PrivKey, a dag.Ack) (dag.SignedAck, error) {
	msg, err := dag.AckSigningBytes(a)
	if err != nil {
		return dag.SignedAck{}, fmt.Errorf("sign ack: %w", err)
	}
	sig, err := sign(key, msg)
	if err != nil {
		return dag.SignedAck{}, fmt.Errorf("sign ack: %w", err)
	}
	if !bytes.Equal(sig.Signer, a.Peer) {
		return dag.SignedAck{}, fmt.Errorf("sign ack: %w: key %s, ack peer %s", ErrSignerMismatch, peer.ID(sig.Signer), peerString(a.Peer))
	}
	return dag.SignedAck{Ack: a, Sig: sig}, nil
}

// SignOffer signs a follower's offer. o.Peer must be the key's peer ID.
func SignOffer(key crypto.PrivKey, o dag.Offer) (dag.SignedOffer, error) {
	msg, err := dag.OfferSigningBytes(o)
	if err != nil {
		return dag.SignedOffer{}, fmt.Errorf("sign offer: %w", err)
	}
	sig, err := sign(key, msg)
	if err != nil {
		return dag.SignedOffer{}, fmt.Errorf("sign offer: %w", err)
	}
	if !bytes.Equal(sig.Signer, o.Peer) {
		return dag.SignedOffer{}, fmt.Errorf("sign offer: %w: key %s, offer peer %s", ErrSignerMismatch, peer.ID(sig.Signer), peerString(o.Peer))
	}
	return dag.SignedOffer{Offer: o, Sig: sig}, nil
}

// SignAudit signs a curator's audit result. a.Auditor must be the key's
// peer ID. Whether that key belongs to a curator is for the verifier (the
// trust set of the head that logs the audit) to decide.
func SignAudit(key crypto.PrivKey, a dag.Audit) (dag.SignedAudit, error) {
	msg, err := dag.AuditSigningBytes(a)
	if err != nil {
		return dag.SignedAudit{}, fmt.Errorf("sign audit: %w", err)
	}
	sig, err := sign(key, msg)
	if err != nil {
		return dag.SignedAudit{}, fmt.Errorf("sign audit: %w", err)
	}
	if !bytes.Equal(sig.Signer, a.Auditor) {
		return dag.SignedAudit{}, fmt.Errorf("sign audit: %w: key %s, audit auditor %s", ErrSignerMismatch, peer.ID(sig.Signer), peerString(a.Auditor))
	}
	return dag.SignedAudit{Audit: a, Sig: sig}, nil
}

// peerString prints untrusted peer ID bytes: the base58 form if they are a
// valid multihash, else a hex dump.
func peerString(id []byte) string {
	p, err := peer.IDFromBytes(id)
	if err != nil {
		return fmt.Sprintf("<invalid peer ID %x>", id)
	}
	return p.String()
}
