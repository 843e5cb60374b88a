package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// Limits of a challenge.
const (
	NonceLen         = dag.NonceLen // bytes of a nonce, exactly
	MaxSamples       = 64           // roots in one challenge
	MaxRootLen       = 128          // bytes of one root CID
	MaxChallengeSize = 16 << 10     // bytes of an encoded challenge
)

// Challenge is what an auditor asks a holder: for each of Roots (sampled
// from shard Shard's pins as listed by head Head, whose content digest is
// Digest), the blocks of the path the rule picks from Nonce. The holder
// cannot know the paths before the nonce arrives.
type Challenge struct {
	Cluster peer.ID
	Shard   int64
	Head    cid.Cid
	Digest  []byte
	Nonce   [NonceLen]byte
	Roots   []cid.Cid
}

// NewChallenge draws a fresh nonce and k roots (Sample) from rnd, which
// should be crypto/rand.Reader outside tests.
func NewChallenge(cluster peer.ID, shard int64, head cid.Cid, digest []byte, pins []PinRef, k int, rnd io.Reader) (Challenge, error) {
	ch := Challenge{Cluster: cluster, Shard: shard, Head: head, Digest: bytes.Clone(digest)}
	if _, err := io.ReadFull(rnd, ch.Nonce[:]); err != nil {
		return Challenge{}, fmt.Errorf("new challenge: read nonce: %w", err)
	}
	roots, err := Sample(pins, k, rnd)
	if err != nil {
		return Challenge{}, fmt.Errorf("new challenge: %w", err)
	}
	ch.Roots = roots
	if err := ch.Validate(); err != nil {
		return Challenge{}, err
	}
	return ch, nil
}

// Validate checks the limits of a challenge.
func (ch Challenge) Validate() error {
	switch {
	case len(ch.Cluster) == 0 || len(ch.Cluster) > dag.MaxPeerIDLen:
		return fmt.Errorf("%w: challenge cluster: %d bytes, want 1..%d", ErrInvalid, len(ch.Cluster), dag.MaxPeerIDLen)
	case ch.Shard < 0:
		return fmt.Errorf("%w: challenge shard %d", ErrInvalid, ch.Shard)
	case !dag.IsBlockCID(ch.Head):
		return fmt.Errorf("%w: challenge head %s is not a pinfold block CID", ErrInvalid, ch.Head)
	case len(ch.Digest) == 0 || len(ch.Digest) > dag.MaxDigestLen:
		return fmt.Errorf("%w: challenge digest: %d bytes, want 1..%d", ErrInvalid, len(ch.Digest), dag.MaxDigestLen)
	case len(ch.Roots) == 0 || len(ch.Roots) > MaxSamples:
		return fmt.Errorf("%w: challenge roots: %d, want 1..%d", ErrInvalid, len(ch.Roots), MaxSamples)
	}
	for i, r := range ch.Roots {
		if !r.Defined() || r.ByteLen() > MaxRootLen {
			return fmt.Errorf("%w: challenge roots[%d]: undefined or over %d bytes", ErrInvalid, i, MaxRootLen)
		}
		if !auditable(r) {
			return fmt.Errorf("%w: challenge roots[%d]: %s is not hashed with a function audits accept", ErrInvalid, i, r)
		}
	}
	return nil
}

var encodeOptions = dagcbor.EncodeOptions{AllowLinks: true, MapSortMode: codec.MapSortMode_RFC7049}

var decodeOptions = dagcbor.DecodeOptions{
	AllowLinks:            true,
	MaxDepth:              4,
	AllocationBudget:      4 * MaxChallengeSize,
	MaxCollectionPrealloc: MaxSamples,
}

// Encode returns the challenge's wire form: a canonical dag-cbor map
// {cluster: bytes, shard: int, head: link, digest: bytes, nonce: bytes,
// roots: [link]}.
func (ch Challenge) Encode() ([]byte, error) {
	if err := ch.Validate(); err != nil {
		return nil, err
	}
	nb := basicnode.Prototype.Map.NewBuilder()
	ma, _ := nb.BeginMap(6)
	entry := func(k string, assign func(datamodel.NodeAssembler) error) {
		if err := ma.AssembleKey().AssignString(k); err != nil {
			panic(err) // basicnode map assembly of fresh keys cannot fail
		}
		if err := assign(ma.AssembleValue()); err != nil {
			panic(err)
		}
	}
	entry("cluster", func(na datamodel.NodeAssembler) error { return na.AssignBytes([]byte(ch.Cluster)) })
	entry("shard", func(na datamodel.NodeAssembler) error { return na.AssignInt(ch.Shard) })
	entry("head", func(na datamodel.NodeAssembler) error { return na.AssignLink(cidlink.Link{Cid: ch.Head}) })
	entry("digest", func(na datamodel.NodeAssembler) error { return na.AssignBytes(ch.Digest) })
	entry("nonce", func(na datamodel.NodeAssembler) error { return na.AssignBytes(ch.Nonce[:]) })
	entry("roots", func(na datamodel.NodeAssembler) error {
		la, err := na.BeginList(int64(len(ch.Roots)))
		if err != nil {
			return err
		}
		for _, r := range ch.Roots {
			if err := la.AssembleValue().AssignLink(cidlink.Link{Cid: r}); err != nil {
				return err
			}
		}
		return la.Finish()
	})
	if err := ma.Finish(); err != nil {
		return nil, fmt.Errorf("encode challenge: %w", err)
	}
	var buf bytes.Buffer
	if err := encodeOptions.Encode(nb.Build(), &buf); err != nil {
		return nil, fmt.Errorf("encode challenge: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeChallenge strictly decodes a challenge: at most MaxChallengeSize
// bytes, exactly the six keys, canonical dag-cbor, every limit of Validate.
func DecodeChallenge(data []byte) (ch Challenge, err error) {
	if len(data) > MaxChallengeSize {
		return Challenge{}, fmt.Errorf("decode challenge: %w: %d bytes, limit %d", ErrTooLarge, len(data), MaxChallengeSize)
	}
	defer func() {
		if r := recover(); r != nil { // go-ipld-prime is not promised panic-free
			ch, err = Challenge{}, fmt.Errorf("decode challenge: %w: %v", ErrMalformed, r)
		}
	}()
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := decodeOptions.Decode(nb, bytes.NewReader(data)); err != nil {
		return Challenge{}, fmt.Errorf("decode challenge: %w: %v", ErrMalformed, err)
	}
	n := nb.Build()
	if n.Kind() != datamodel.Kind_Map || n.Length() != 6 {
		return Challenge{}, fmt.Errorf("decode challenge: %w: want a map of 6 entries", ErrMalformed)
	}
	get := func(k string, kind datamodel.Kind) (datamodel.Node, error) {
		v, err := n.LookupByString(k)
		if err != nil {
			return nil, fmt.Errorf("decode challenge: %w: no %q", ErrMalformed, k)
		}
		if v.Kind() != kind {
			return nil, fmt.Errorf("decode challenge: %w: %s is a %s, want %s", ErrMalformed, k, v.Kind(), kind)
		}
		return v, nil
	}
	var errs []error
	must := func(k string, kind datamodel.Kind) datamodel.Node {
		v, err := get(k, kind)
		errs = append(errs, err)
		return v
	}
	cl, sh, hd, dg, nc, rs := must("cluster", datamodel.Kind_Bytes), must("shard", datamodel.Kind_Int),
		must("head", datamodel.Kind_Link), must("digest", datamodel.Kind_Bytes), must("nonce", datamodel.Kind_Bytes),
		must("roots", datamodel.Kind_List)
	if err := errors.Join(errs...); err != nil {
		return Challenge{}, err
	}
	b, _ := cl.AsBytes()
	ch.Cluster = peer.ID(b)
	ch.Shard, _ = sh.AsInt()
	ch.Head, err = asCID(hd)
	if err != nil {
		return Challenge{}, err
	}
	ch.Digest, _ = dg.AsBytes()
	nonce, _ := nc.AsBytes()
	if len(nonce) != NonceLen {
		return Challenge{}, fmt.Errorf("decode challenge: %w: nonce of %d bytes, want %d", ErrMalformed, len(nonce), NonceLen)
	}
	copy(ch.Nonce[:], nonce)
	if rs.Length() > MaxSamples {
		return Challenge{}, fmt.Errorf("decode challenge: %w: %d roots, limit %d", ErrTooLarge, rs.Length(), MaxSamples)
	}
	for it := rs.ListIterator(); !it.Done(); {
		_, v, err := it.Next()
		if err != nil {
			return Challenge{}, fmt.Errorf("decode challenge: %w: %v", ErrMalformed, err)
		}
		c, err := asCID(v)
		if err != nil {
			return Challenge{}, err
		}
		ch.Roots = append(ch.Roots, c)
	}
	if err := ch.Validate(); err != nil {
		return Challenge{}, fmt.Errorf("decode challenge: %w: %v", ErrMalformed, err)
	}
	enc, err := ch.Encode()
	if err != nil || !bytes.Equal(enc, data) {
		return Challenge{}, fmt.Errorf("decode challenge: %w: not in canonical form", ErrMalformed)
	}
	return ch, nil
}

func asCID(n datamodel.Node) (cid.Cid, error) {
	l, err := n.AsLink()
	if err != nil {
		return cid.Undef, fmt.Errorf("decode challenge: %w: %v", ErrMalformed, err)
	}
	cl, ok := l.(cidlink.Link)
	if !ok || !cl.Cid.Defined() {
		return cid.Undef, fmt.Errorf("decode challenge: %w: not a CID link", ErrMalformed)
	}
	return cl.Cid, nil
}

// Record is the audit entry an auditor signs (trust.SignAudit) after
// Verify returned samples and err for holder's answer to this challenge:
// a pass when err is nil, else a fail whose reason is err's text, cut to
// dag.MaxReasonLen bytes with control characters replaced. auditor is the
// curator's peer ID, seq the seq of ch.Head, now the auditor's clock.
func (ch Challenge) Record(auditor, holder peer.ID, seq int64, samples int, err error, now time.Time) dag.Audit {
	a := dag.Audit{
		Version: dag.Version,
		Cluster: []byte(ch.Cluster),
		Auditor: []byte(auditor),
		Holder:  []byte(holder),
		Head:    ch.Head,
		Seq:     seq,
		Shard:   ch.Shard,
		Digest:  bytes.Clone(ch.Digest),
		Nonce:   bytes.Clone(ch.Nonce[:]),
		Samples: int64(samples),
		Result:  dag.ResultPass,
		Time:    now.UnixMilli(),
	}
	if err != nil {
		a.Result, a.Reason = dag.ResultFail, reason(err.Error())
	}
	return a
}

// reason makes s a valid audit reason: no control characters, valid
// UTF-8, at most dag.MaxReasonLen bytes, never empty.
func reason(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, " "))
	for len(s) > dag.MaxReasonLen {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	if s == "" {
		s = "audit: failed"
	}
	return s
}
