package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/ipfs/go-cid"
	dagpb "github.com/ipld/go-codec-dagpb"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/ipld/go-ipld-prime/traversal"
	"github.com/multiformats/go-multihash"
)

// The path rule. For the i-th sampled root of a challenge, the holder
// answers the blocks of one root-to-leaf path: the root, then at every
// depth d one child of the block at depth d, chosen by
//
//	r = first 8 bytes, big endian, of sha256(PathDomain || nonce || uvarint(i) || uvarint(d))
//
// among the block's candidate links (see auditable): weighted by dag-pb Tsize when every
// candidate has a Tsize > 0 (so a path through a UnixFS DAG lands on a
// leaf with probability close to its share of the DAG's bytes), uniformly
// by index otherwise. The path ends at a block with no candidate links
// (raw blocks, leaves, blocks of codecs other than dag-pb and dag-cbor),
// or after MaxDepth blocks.
const (
	PathDomain = "pinfold/v2/audit-path\n"
	// MaxDepth is the most blocks of one path.
	MaxDepth = 64
	// MaxBlockSize is the largest block an answer may carry: bitswap's
	// limit, so no block of a DAG fetched over IPFS is larger.
	MaxBlockSize = 2 << 20
)

// Codecs whose links the path rule follows.
const (
	codecDagPB   = 0x70
	codecRaw     = 0x55
	codecDagCBOR = 0x71
)

// auditable reports whether c's hash function is one a path may check:
// a cryptographic hash from a fixed list, so that no holder can forge a
// block for a CID, and the rule does not depend on which functions a
// library happens to register. Links to other CIDs are not candidates
// (identity CIDs hold their content in the CID: nothing to possess).
func auditable(c cid.Cid) bool {
	switch c.Prefix().MhType {
	case multihash.SHA2_256, multihash.SHA2_512, multihash.SHA3_256, multihash.SHA3_512,
		multihash.BLAKE2B_MIN + 31, multihash.BLAKE3:
		return true
	}
	return false
}

// link is one candidate child of a block.
type link struct {
	c     cid.Cid
	tsize int64 // dag-pb Tsize; 0 when absent or not dag-pb
}

// links returns the candidate links of block data, whose CID c has been
// checked: its dag-pb or dag-cbor links, in the order of the encoding,
// without links to identity-hashed CIDs (they hold their content in the
// CID itself; there is nothing to possess). Raw blocks and other codecs
// have none. A block that does not decode under its codec has none
// either: the path ends there for holder and auditor alike (the bytes are
// authentic, they hash to a CID the auditor chose or checked, so an honest
// holder must not fail for the DAG's own defects).
func links(c cid.Cid, data []byte) ([]link, error) {
	var out []link
	add := func(l datamodel.Link, tsize int64) error {
		cl, ok := l.(cidlink.Link)
		if !ok {
			return fmt.Errorf("link of unknown kind %T", l)
		}
		if !auditable(cl.Cid) {
			return nil
		}
		out = append(out, link{c: cl.Cid, tsize: tsize})
		return nil
	}
	switch c.Prefix().Codec {
	case codecDagPB:
		nb := dagpb.Type.PBNode.NewBuilder()
		if err := dagpb.DecodeBytes(nb, data); err != nil {
			return nil, fmt.Errorf("decode dag-pb block %s: %v", c, err)
		}
		nd, ok := nb.Build().(dagpb.PBNode)
		if !ok {
			return nil, fmt.Errorf("decode dag-pb block %s: unexpected node", c)
		}
		for it := nd.FieldLinks().Iterator(); !it.Done(); {
			_, l := it.Next()
			var ts int64
			if t := l.FieldTsize(); t.Exists() {
				ts = t.Must().Int()
			}
			if err := add(l.FieldHash().Link(), ts); err != nil {
				return nil, err
			}
		}
	case codecDagCBOR:
		nb := basicnode.Prototype.Any.NewBuilder()
		opts := dagcbor.DecodeOptions{AllowLinks: true, MaxDepth: 64, AllocationBudget: 4 * MaxBlockSize, MaxCollectionPrealloc: 256}
		if err := opts.Decode(nb, bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("decode dag-cbor block %s: %v", c, err)
		}
		ls, err := traversal.SelectLinks(nb.Build())
		if err != nil {
			return nil, fmt.Errorf("links of dag-cbor block %s: %v", c, err)
		}
		for _, l := range ls {
			if err := add(l, 0); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// pathRand is r for path i at depth d.
func pathRand(nonce *[NonceLen]byte, i, d int) uint64 {
	h := sha256.New()
	h.Write([]byte(PathDomain))
	h.Write(nonce[:])
	var buf [2 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(buf[:], uint64(i))
	n += binary.PutUvarint(buf[n:], uint64(d))
	h.Write(buf[:n])
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0])[:8])
}

// scale maps r uniformly onto [0, n): the high word of r*n.
func scale(r, n uint64) uint64 {
	hi, _ := bits.Mul64(r, n)
	return hi
}

// choose picks the child for r among ls (non-empty): weighted by Tsize if
// every link has a positive one and their sum fits in 64 bits, else
// uniformly by index.
func choose(ls []link, r uint64) cid.Cid {
	var total uint64
	weighted := true
	for _, l := range ls {
		if l.tsize <= 0 {
			weighted = false
			break
		}
		var carry uint64
		total, carry = bits.Add64(total, uint64(l.tsize), 0)
		if carry != 0 {
			weighted = false
			break
		}
	}
	if !weighted {
		return ls[scale(r, uint64(len(ls)))].c
	}
	x := scale(r, total)
	for _, l := range ls {
		if x < uint64(l.tsize) {
			return l.c
		}
		x -= uint64(l.tsize)
	}
	return ls[len(ls)-1].c // unreachable: x < total
}

// next returns the CID of the block that follows block data (CID c) at
// depth d of path i, or ok false where the path ends there.
func next(nonce *[NonceLen]byte, i, d int, c cid.Cid, data []byte) (cid.Cid, bool) {
	if d+1 >= MaxDepth {
		return cid.Undef, false
	}
	ls, err := links(c, data)
	if err != nil || len(ls) == 0 {
		return cid.Undef, false
	}
	return choose(ls, pathRand(nonce, i, d)), true
}
