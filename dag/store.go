package dag

import (
	"context"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Blocks is the part of a block store that Store uses.
// github.com/ipfs/boxo/blockstore.Blockstore satisfies it, whether backed by
// badger4 or by an in-memory datastore. Get returns an error wrapping
// format.ErrNotFound (github.com/ipfs/go-ipld-format) for a missing block.
type Blocks interface {
	Get(ctx context.Context, c cid.Cid) (blocks.Block, error)
	Put(ctx context.Context, b blocks.Block) error
}

// Store writes and reads pinfold blocks, checking every block both ways:
// what it writes passes the same checks as what it reads, and what it reads
// must hash to the CID it was asked for.
type Store struct {
	bs Blocks
}

// NewStore returns a Store over bs.
func NewStore(bs Blocks) *Store { return &Store{bs: bs} }

func (s *Store) put(ctx context.Context, data []byte) (cid.Cid, error) {
	b := NewBlock(data)
	if err := s.bs.Put(ctx, b); err != nil {
		return cid.Undef, fmt.Errorf("put block %s: %w", b.Cid(), err)
	}
	return b.Cid(), nil
}

// get returns the bytes of block c after checking its prefix, size and hash.
func (s *Store) get(ctx context.Context, what string, c cid.Cid) ([]byte, error) {
	if !IsBlockCID(c) {
		return nil, fmt.Errorf("get %s %s: %w: not a CIDv1 dag-cbor sha2-256", what, c, ErrMalformed)
	}
	b, err := s.bs.Get(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", what, c, err)
	}
	data := b.RawData()
	if len(data) > MaxBlockSize {
		return nil, fmt.Errorf("get %s %s: %w: block is %d bytes, limit %d", what, c, ErrTooLarge, len(data), MaxBlockSize)
	}
	if got := CID(data); !got.Equals(c) {
		return nil, fmt.Errorf("get %s %s: %w: bytes hash to %s", what, c, ErrMalformed, got)
	}
	return data, nil
}

func putTyped[T any](ctx context.Context, s *Store, bt *blockType[T], v *T) (cid.Cid, error) {
	data, err := bt.encode(v)
	if err != nil {
		return cid.Undef, err
	}
	return s.put(ctx, data)
}

func getTyped[T any](ctx context.Context, s *Store, bt *blockType[T], c cid.Cid) (*T, error) {
	data, err := s.get(ctx, bt.name, c)
	if err != nil {
		return nil, err
	}
	return bt.decode(data, c)
}

func getSigned[S any](ctx context.Context, s *Store, bt *blockType[S], fs []field[S], domain string, c cid.Cid) (S, error) {
	data, err := s.get(ctx, bt.name, c)
	if err != nil {
		var zero S
		return zero, err
	}
	v, _, err := decodeSigned(bt, fs, domain, data, c)
	return v, err
}

// PutSignedHead stores a signed head and returns its CID, the head CID.
func (s *Store) PutSignedHead(ctx context.Context, h SignedHead) (cid.Cid, error) {
	return putTyped(ctx, s, signedHeadType, &h)
}

// SignedHead loads and strictly decodes the signed head c. The signature is
// not verified here.
func (s *Store) SignedHead(ctx context.Context, c cid.Cid) (SignedHead, error) {
	return getSigned(ctx, s, signedHeadType, signedHeadFields, HeadDomain, c)
}

// PutPinset stores a pinset block.
func (s *Store) PutPinset(ctx context.Context, p Pinset) (cid.Cid, error) {
	return putTyped(ctx, s, pinsetType, &p)
}

// Pinset loads and strictly decodes the pinset block c.
func (s *Store) Pinset(ctx context.Context, c cid.Cid) (Pinset, error) {
	return deref(getTyped(ctx, s, pinsetType, c))
}

// PutAllocation stores an allocation block.
func (s *Store) PutAllocation(ctx context.Context, a Allocation) (cid.Cid, error) {
	return putTyped(ctx, s, allocationType, &a)
}

// Allocation loads and strictly decodes the allocation block c.
func (s *Store) Allocation(ctx context.Context, c cid.Cid) (Allocation, error) {
	return deref(getTyped(ctx, s, allocationType, c))
}

// PutSignedAck stores a signed ACK block.
func (s *Store) PutSignedAck(ctx context.Context, a SignedAck) (cid.Cid, error) {
	return putTyped(ctx, s, signedAckType, &a)
}

// SignedAck loads and strictly decodes the signed ACK c; the signature is
// not verified here.
func (s *Store) SignedAck(ctx context.Context, c cid.Cid) (SignedAck, error) {
	return getSigned(ctx, s, signedAckType, signedAckFields, AckDomain, c)
}

// PutSignedOffer stores a signed offer block.
func (s *Store) PutSignedOffer(ctx context.Context, o SignedOffer) (cid.Cid, error) {
	return putTyped(ctx, s, signedOfferType, &o)
}

// SignedOffer loads and strictly decodes the signed offer c; the signature
// is not verified here.
func (s *Store) SignedOffer(ctx context.Context, c cid.Cid) (SignedOffer, error) {
	return getSigned(ctx, s, signedOfferType, signedOfferFields, OfferDomain, c)
}

// PutSignedAudit stores a signed audit block.
func (s *Store) PutSignedAudit(ctx context.Context, a SignedAudit) (cid.Cid, error) {
	return putTyped(ctx, s, signedAuditType, &a)
}

// SignedAudit loads and strictly decodes the signed audit c; the signature
// is not verified here.
func (s *Store) SignedAudit(ctx context.Context, c cid.Cid) (SignedAudit, error) {
	return getSigned(ctx, s, signedAuditType, signedAuditFields, AuditDomain, c)
}

// List loads and strictly decodes the list block c without knowing its
// element type. Use Members, Shards or Log to read the items.
func (s *Store) List(ctx context.Context, c cid.Cid) (List, error) {
	return deref(getTyped(ctx, s, listType, c))
}
