package records

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	"github.com/ipld/go-ipld-prime/node/basicnode"
)

// Limits of an ACK batch, the payload of the ACK topic.
const (
	MaxBatch     = 64       // ACKs per batch
	MaxBatchSize = 64 << 10 // encoded bytes
)

// ErrMalformedBatch is wrapped by errors decoding an ACK batch.
var ErrMalformedBatch = errors.New("records: malformed ack batch")

// EncodeBatch returns the canonical dag-cbor form of a batch of SignedAck
// blocks: {"acks": [bytes, ...]}, 1 to MaxBatch of them.
func EncodeBatch(acks [][]byte) ([]byte, error) {
	if len(acks) == 0 || len(acks) > MaxBatch {
		return nil, fmt.Errorf("encode ack batch: %d acks, want 1 to %d", len(acks), MaxBatch)
	}
	n, err := qp.BuildMap(basicnode.Prototype.Map, 1, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "acks", qp.List(int64(len(acks)), func(la datamodel.ListAssembler) {
			for _, a := range acks {
				qp.ListEntry(la, qp.Bytes(a))
			}
		}))
	})
	if err != nil {
		return nil, fmt.Errorf("encode ack batch: %w", err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		return nil, fmt.Errorf("encode ack batch: %w", err)
	}
	if buf.Len() > MaxBatchSize {
		return nil, fmt.Errorf("encode ack batch: %d bytes, limit %d", buf.Len(), MaxBatchSize)
	}
	return buf.Bytes(), nil
}

// DecodeBatch parses an ACK batch strictly: canonical dag-cbor, exactly
// the one key, 1 to MaxBatch byte strings of at most MaxSize each. The
// ACKs inside are only checked by VerifyAck and CheckAck.
func DecodeBatch(data []byte) ([][]byte, error) {
	if len(data) > MaxBatchSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformedBatch, len(data), MaxBatchSize)
	}
	nb := basicnode.Prototype.Map.NewBuilder()
	opts := dagcbor.DecodeOptions{AllowLinks: false, MaxDepth: 3}
	if err := opts.Decode(nb, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedBatch, err)
	}
	n := nb.Build()
	if n.Kind() != datamodel.Kind_Map || n.Length() != 1 {
		return nil, fmt.Errorf("%w: want a map with one key, acks", ErrMalformedBatch)
	}
	l, err := n.LookupByString("acks")
	if err != nil || l.Kind() != datamodel.Kind_List {
		return nil, fmt.Errorf("%w: no list acks", ErrMalformedBatch)
	}
	if l.Length() < 1 || l.Length() > MaxBatch {
		return nil, fmt.Errorf("%w: %d acks, want 1 to %d", ErrMalformedBatch, l.Length(), MaxBatch)
	}
	out := make([][]byte, 0, l.Length())
	for it := l.ListIterator(); !it.Done(); {
		i, v, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedBatch, err)
		}
		b, err := v.AsBytes()
		if err != nil {
			return nil, fmt.Errorf("%w: acks[%d] is not bytes", ErrMalformedBatch, i)
		}
		if len(b) == 0 || len(b) > MaxSize {
			return nil, fmt.Errorf("%w: acks[%d] is %d bytes, want 1 to %d", ErrMalformedBatch, i, len(b), MaxSize)
		}
		out = append(out, b)
	}
	again, err := EncodeBatch(out)
	if err != nil || !bytes.Equal(again, data) {
		return nil, fmt.Errorf("%w: not canonical dag-cbor", ErrMalformedBatch)
	}
	return out, nil
}
