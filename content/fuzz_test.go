package content

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	mh "github.com/multiformats/go-multihash"
)

// FuzzRecordDecoders: no input makes a record decoder panic, and what
// decodes re-encodes to the same bytes (the encoding is canonical).
func FuzzRecordDecoders(f *testing.F) {
	f.Add(encodePin(pinRecord{state: stateKept, finished: true, stat: Stat{Blocks: 3, Bytes: 900}, chunks: 1, applied: 1}))
	f.Add(encodeList([]blockEntry{{mh: "\x12\x20" + string(make([]byte, 32)), size: 7}}))
	f.Add(encodeRef(ref{count: 2, size: 1 << 20}))
	f.Add(encodeStat(Stat{Blocks: 1, Bytes: 2}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodePin(b); err == nil && !bytes.Equal(encodePin(r), b) {
			t.Errorf("pin %x re-encodes to %x", b, encodePin(r))
		} else if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("pin: error %v is not ErrCorrupt", err)
		}
		if l, err := decodeList(b); err == nil && !bytes.Equal(encodeList(l), b) {
			t.Errorf("list %x re-encodes to %x", b, encodeList(l))
		}
		if r, err := decodeRef(b); err == nil && !bytes.Equal(encodeRef(r), b) {
			t.Errorf("ref %x re-encodes to %x", b, encodeRef(r))
		}
		if s, err := decodeStat(b); err == nil && !bytes.Equal(encodeStat(s), b) {
			t.Errorf("stat %x re-encodes to %x", b, encodeStat(s))
		}
		_, _ = decodeSize(b)
	})
}

// FuzzWalkBlock stores arbitrary bytes as the root block under several
// codecs and walks it: the walk never panics, and either fails with an
// error naming the root or returns a stat that counts the root.
func FuzzWalkBlock(f *testing.F) {
	f.Add([]byte{0x12, 0x00})                         // dag-pb: an empty link
	f.Add([]byte{0xa1, 0x61, 0x61, 0xd8, 0x2a, 0x41}) // dag-cbor: a truncated link
	f.Add([]byte("plain bytes"))
	leaf := blocks.NewBlock([]byte("leaf"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		ctx := context.Background()
		bs := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
		if err := bs.Put(ctx, leaf); err != nil {
			t.Fatal(err)
		}
		for _, codec := range []uint64{cid.DagProtobuf, cid.DagCBOR, cid.Raw, cid.DagJSON} {
			root, err := cid.Prefix{Version: 1, Codec: codec, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
			if err != nil {
				t.Fatal(err)
			}
			blk, _ := blocks.NewBlockWithCid(data, root)
			if err := bs.Put(ctx, blk); err != nil {
				t.Fatal(err)
			}
			// Links to blocks that are absent would wait forever on a
			// network; offline they fail at once.
			st, err := DAGStat(ctx, offlineDAG(bs), root, 2)
			if err != nil {
				if !bytes.Contains([]byte(err.Error()), []byte(root.String())) {
					t.Errorf("codec %#x: error %q does not name the root", codec, err)
				}
				continue
			}
			if st.Blocks < 1 || st.Bytes < int64(len(data)) {
				t.Errorf("codec %#x: stat %+v does not count the root", codec, st)
			}
		}
	})
}
