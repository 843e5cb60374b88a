package content

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	mh "github.com/multiformats/go-multihash"
)

// The Fetcher's records live under one prefix of the process's datastore.
// Every value is a version byte followed by unsigned varints; decoding is
// strict (no trailing bytes, bounded lengths). The layout is written down
// in doc.go; do not reorder the state constants.
const nsRoot = "/pinfold/content"

const recordVersion = 1

// pinState is the life cycle of a pin record.
type pinState byte

const (
	stateRecording pinState = 1 // block list being applied to the reference counts
	stateKept      pinState = 2 // every block present and counted
	stateReleasing pinState = 3 // reference counts being taken back
)

// pinRecord is the value of pinKey(root).
type pinRecord struct {
	state    pinState
	finished bool // recording finished (set with stateKept, kept through stateReleasing)
	stat     Stat
	chunks   int // block list chunks: ceil(stat.Blocks / chunkEntries)
	applied  int // chunks whose reference counts are in the datastore
}

// ref is the value of refKey(mh): how many kept (or recording) pins
// reference the block, and its size.
type ref struct {
	count int64
	size  int64
}

func pinKey(root cid.Cid) ds.Key { return ds.NewKey(nsRoot + "/pin/" + root.String()) }
func pinPrefix() string          { return nsRoot + "/pin/" }
func listKey(root cid.Cid, i int) ds.Key {
	return ds.NewKey(fmt.Sprintf("%s/list/%s/%08d", nsRoot, root.String(), i))
}
func refKey(k string) ds.Key {
	return ds.NewKey(nsRoot + "/ref" + dshelp.MultihashToDsKey(mh.Multihash(k)).String())
}
func claimKey(k string) ds.Key {
	return ds.NewKey(nsRoot + "/claim" + dshelp.MultihashToDsKey(mh.Multihash(k)).String())
}
func gcKey(k string) ds.Key {
	return ds.NewKey(nsRoot + "/gc" + dshelp.MultihashToDsKey(mh.Multihash(k)).String())
}
func gcPrefix() string { return nsRoot + "/gc/" }
func usageKey() ds.Key { return ds.NewKey(nsRoot + "/usage") }

// multihashFromKey returns the multihash bytes at the end of a ref, claim
// or gc key.
func multihashFromKey(k ds.Key) (string, error) {
	m, err := dshelp.DsKeyToMultihash(ds.NewKey(k.BaseNamespace()))
	if err != nil {
		return "", fmt.Errorf("%w: key %s: %v", ErrCorrupt, k, err)
	}
	return string(m), nil
}

// encoder appends varints after the version byte.
type encoder []byte

func newEncoder() encoder               { return encoder{recordVersion} }
func (e encoder) uint(v uint64) encoder { return binary.AppendUvarint(e, v) }
func (e encoder) int(v int64) encoder   { return e.uint(uint64(v)) }
func (e encoder) bytes(b []byte) encoder {
	return append(e.uint(uint64(len(b))), b...)
}

// decoder reads what encoder wrote; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func newDecoder(b []byte) *decoder {
	d := &decoder{b: b}
	if len(b) == 0 || b[0] != recordVersion {
		d.err = errors.New("unknown record version")
		return d
	}
	d.b = b[1:]
	return d
}

func (d *decoder) uint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		d.err = errors.New("bad or overlong varint")
		return 0
	}
	if v > limit {
		d.err = fmt.Errorf("value %d over %d", v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 { return int64(d.uint(1 << 62)) }

func (d *decoder) bytes(limit int) []byte {
	n := d.uint(uint64(limit))
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errors.New("short record")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, what, d.err)
	}
	return nil
}

func encodePin(r pinRecord) []byte {
	finished := uint64(0)
	if r.finished {
		finished = 1
	}
	return newEncoder().uint(uint64(r.state)).uint(finished).int(r.stat.Blocks).int(r.stat.Bytes).
		uint(uint64(r.chunks)).uint(uint64(r.applied))
}

func decodePin(b []byte) (pinRecord, error) {
	d := newDecoder(b)
	r := pinRecord{
		state:    pinState(d.uint(uint64(stateReleasing))),
		finished: d.uint(1) == 1,
		stat:     Stat{Blocks: d.int(), Bytes: d.int()},
		chunks:   int(d.uint(1 << 40)),
		applied:  int(d.uint(1 << 40)),
	}
	if d.err == nil && (r.state < stateRecording || r.applied > r.chunks) {
		d.err = fmt.Errorf("state %d, applied %d of %d chunks", r.state, r.applied, r.chunks)
	}
	return r, d.finish("pin record")
}

// maxMultihash bounds a multihash in a record (the longest digests in
// use are 64 bytes).
const maxMultihash = 128

func encodeList(part []blockEntry) []byte {
	e := newEncoder().uint(uint64(len(part)))
	for _, b := range part {
		e = e.bytes([]byte(b.mh)).int(b.size)
	}
	return e
}

func decodeList(b []byte) ([]blockEntry, error) {
	d := newDecoder(b)
	n := d.uint(1 << 20)
	var out []blockEntry
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.bytes(maxMultihash)
		size := d.int()
		out = append(out, blockEntry{mh: string(k), size: size})
	}
	return out, d.finish("block list")
}

func encodeRef(r ref) []byte { return newEncoder().int(r.count).int(r.size) }

func decodeRef(b []byte) (ref, error) {
	d := newDecoder(b)
	r := ref{count: d.int(), size: d.int()}
	if d.err == nil && r.count < 1 {
		d.err = fmt.Errorf("count %d", r.count)
	}
	return r, d.finish("reference count")
}

func encodeStat(s Stat) []byte { return newEncoder().int(s.Blocks).int(s.Bytes) }

func decodeStat(b []byte) (Stat, error) {
	d := newDecoder(b)
	s := Stat{Blocks: d.int(), Bytes: d.int()}
	return s, d.finish("usage")
}

func encodeSize(n int64) []byte { return newEncoder().int(n) }

func decodeSize(b []byte) (int64, error) {
	d := newDecoder(b)
	n := d.int()
	return n, d.finish("queued block")
}

// reader is what both a datastore and a transaction offer.
type reader interface {
	Get(ctx context.Context, key ds.Key) ([]byte, error)
	Has(ctx context.Context, key ds.Key) (bool, error)
}

func loadPin(ctx context.Context, r reader, root cid.Cid) (pinRecord, bool, error) {
	b, err := r.Get(ctx, pinKey(root))
	if errors.Is(err, ds.ErrNotFound) {
		return pinRecord{}, false, nil
	}
	if err != nil {
		return pinRecord{}, false, err
	}
	rec, err := decodePin(b)
	if err != nil {
		return pinRecord{}, false, fmt.Errorf("pin %s: %w", root, err)
	}
	return rec, true, nil
}

func loadRef(ctx context.Context, r reader, k string) (ref, bool, error) {
	b, err := r.Get(ctx, refKey(k))
	if errors.Is(err, ds.ErrNotFound) {
		return ref{}, false, nil
	}
	if err != nil {
		return ref{}, false, err
	}
	v, err := decodeRef(b)
	return v, err == nil, err
}

func loadUsage(ctx context.Context, r reader) (Stat, error) {
	b, err := r.Get(ctx, usageKey())
	if errors.Is(err, ds.ErrNotFound) {
		return Stat{}, nil
	}
	if err != nil {
		return Stat{}, err
	}
	return decodeStat(b)
}

func loadList(ctx context.Context, r reader, root cid.Cid, i int) ([]blockEntry, error) {
	b, err := r.Get(ctx, listKey(root, i))
	if err != nil {
		return nil, fmt.Errorf("pin %s block list %d: %w", root, i, err)
	}
	l, err := decodeList(b)
	if err != nil {
		return nil, fmt.Errorf("pin %s block list %d: %w", root, i, err)
	}
	return l, nil
}
