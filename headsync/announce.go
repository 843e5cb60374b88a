package headsync

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	"github.com/ipld/go-ipld-prime/node/basicnode"

	"github.com/pinfold/pinfold/dag"
)

// MaxAnnouncement bounds an encoded announcement: a head block of at most
// dag.MaxBlockSize would not fit a pubsub message anyway; heads are small.
const MaxAnnouncement = 64 << 10

// ErrMalformed is wrapped by errors decoding an announcement.
var ErrMalformed = errors.New("headsync: malformed announcement")

// Announcement is what travels on the heads topic and over the head
// protocol: a signed head block and, when the sender has one, the IPNS
// record naming it. Encoded as a dag-cbor map {"head": bytes, "record":
// bytes}; either may be empty (a record alone names its head by CID).
type Announcement struct {
	Head   []byte // SignedHead block bytes
	Record []byte // marshalled IPNS record
}

// Encode returns the canonical dag-cbor bytes of a.
func (a Announcement) Encode() ([]byte, error) {
	n, err := qp.BuildMap(basicnode.Prototype.Map, 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "head", qp.Bytes(a.Head))
		qp.MapEntry(ma, "record", qp.Bytes(a.Record))
	})
	if err != nil {
		return nil, fmt.Errorf("encode announcement: %w", err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		return nil, fmt.Errorf("encode announcement: %w", err)
	}
	if buf.Len() > MaxAnnouncement {
		return nil, fmt.Errorf("encode announcement: %d bytes, limit %d", buf.Len(), MaxAnnouncement)
	}
	return buf.Bytes(), nil
}

// DecodeAnnouncement parses data strictly: canonical dag-cbor, exactly the
// two keys, within MaxAnnouncement. The head and record inside are only
// checked later, by verification.
func DecodeAnnouncement(data []byte) (Announcement, error) {
	if len(data) > MaxAnnouncement {
		return Announcement{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(data), MaxAnnouncement)
	}
	nb := basicnode.Prototype.Map.NewBuilder()
	opts := dagcbor.DecodeOptions{AllowLinks: false, MaxDepth: 2}
	if err := opts.Decode(nb, bytes.NewReader(data)); err != nil {
		return Announcement{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	n := nb.Build()
	if n.Kind() != datamodel.Kind_Map || n.Length() != 2 {
		return Announcement{}, fmt.Errorf("%w: want a map of head and record", ErrMalformed)
	}
	var a Announcement
	for _, f := range []struct {
		key string
		dst *[]byte
	}{{"head", &a.Head}, {"record", &a.Record}} {
		v, err := n.LookupByString(f.key)
		if err != nil {
			return Announcement{}, fmt.Errorf("%w: no %q", ErrMalformed, f.key)
		}
		b, err := v.AsBytes()
		if err != nil {
			return Announcement{}, fmt.Errorf("%w: %q is not bytes", ErrMalformed, f.key)
		}
		*f.dst = b
	}
	if len(a.Head) == 0 && len(a.Record) == 0 {
		return Announcement{}, fmt.Errorf("%w: neither head nor record", ErrMalformed)
	}
	if len(a.Head) > dag.MaxBlockSize {
		return Announcement{}, fmt.Errorf("%w: head of %d bytes", ErrMalformed, len(a.Head))
	}
	// Canonical form only: one announcement has one encoding.
	again, err := a.Encode()
	if err != nil || !bytes.Equal(again, data) {
		return Announcement{}, fmt.Errorf("%w: not canonical dag-cbor", ErrMalformed)
	}
	return a, nil
}
