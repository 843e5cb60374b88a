package headsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"

	"github.com/pinfold/pinfold/dag"
)

// ChainProtocolID returns the head-chain protocol of a cluster: a peer
// opens a stream and writes a request naming a head and a count; the other
// side writes that head and its ancestors, newest first, each a
// varint-length-prefixed block, and closes. It serves only heads it
// verified. Candidates fetch their missing parents with it instead of
// bitswap, which would store every block it receives before anything
// verified it.
func ChainProtocolID(clusterID string) protocol.ID {
	return protocol.ID("/pinfold/" + clusterID + "/head-chain/1.0.0")
}

// Bounds of the head-chain protocol.
const (
	maxChainRequest = 256     // bytes of a request
	maxChainBlocks  = 1024    // heads in one response
	maxChainBytes   = 4 << 20 // bytes of blocks in one response
	maxServing      = 8       // requests served at once; more are reset
)

// chainRequest asks for head Head and up to Max-1 of its ancestors.
type chainRequest struct {
	Head cid.Cid
	Max  int64
}

// encode returns the canonical dag-cbor map {"head": bytes, "max": int}.
func (r chainRequest) encode() ([]byte, error) {
	n, err := qp.BuildMap(basicnode.Prototype.Map, 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "head", qp.Bytes(r.Head.Bytes()))
		qp.MapEntry(ma, "max", qp.Int(r.Max))
	})
	if err != nil {
		return nil, fmt.Errorf("encode chain request: %w", err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		return nil, fmt.Errorf("encode chain request: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeChainRequest parses a request strictly: canonical, exactly the two
// keys, a head CID of the head DAG's form, max >= 1.
func decodeChainRequest(data []byte) (chainRequest, error) {
	if len(data) > maxChainRequest {
		return chainRequest{}, fmt.Errorf("%w: chain request of %d bytes", ErrMalformed, len(data))
	}
	nb := basicnode.Prototype.Map.NewBuilder()
	if err := (dagcbor.DecodeOptions{AllowLinks: false, MaxDepth: 2}).Decode(nb, bytes.NewReader(data)); err != nil {
		return chainRequest{}, fmt.Errorf("%w: chain request: %v", ErrMalformed, err)
	}
	n := nb.Build()
	if n.Kind() != datamodel.Kind_Map || n.Length() != 2 {
		return chainRequest{}, fmt.Errorf("%w: chain request: want a map of head and max", ErrMalformed)
	}
	hn, err := n.LookupByString("head")
	if err != nil {
		return chainRequest{}, fmt.Errorf("%w: chain request: no head", ErrMalformed)
	}
	hb, err := hn.AsBytes()
	if err != nil {
		return chainRequest{}, fmt.Errorf("%w: chain request: head is not bytes", ErrMalformed)
	}
	c, err := cid.Cast(hb)
	if err != nil || !dag.IsBlockCID(c) {
		return chainRequest{}, fmt.Errorf("%w: chain request: head is not a CIDv1 dag-cbor sha2-256", ErrMalformed)
	}
	mn, err := n.LookupByString("max")
	if err != nil {
		return chainRequest{}, fmt.Errorf("%w: chain request: no max", ErrMalformed)
	}
	m, err := mn.AsInt()
	if err != nil || m < 1 {
		return chainRequest{}, fmt.Errorf("%w: chain request: max must be a positive integer", ErrMalformed)
	}
	r := chainRequest{Head: c, Max: m}
	if again, err := r.encode(); err != nil || !bytes.Equal(again, data) {
		return chainRequest{}, fmt.Errorf("%w: chain request: not canonical dag-cbor", ErrMalformed)
	}
	return r, nil
}

// serveChain answers one head-chain request from the local store: the
// requested head and its ancestors while they are verified heads (or the
// checkpoint), up to the request's max, maxChainBlocks and maxChainBytes.
// At most maxServing requests are served at once; others are reset.
func (n *Net) serveChain(st network.Stream) {
	select {
	case n.serving <- struct{}{}:
		defer func() { <-n.serving }()
	default:
		_ = st.Reset()
		return
	}
	defer st.Close()
	deadline := time.Now().Add(serveTimeout)
	_ = st.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	data, err := io.ReadAll(io.LimitReader(st, maxChainRequest+1))
	if err != nil {
		_ = st.Reset()
		return
	}
	req, err := decodeChainRequest(data)
	if err != nil {
		n.s.log.Debug("bad chain request", "peer", st.Conn().RemotePeer(), "err", err)
		_ = st.Reset()
		return
	}
	w := msgio.NewVarintWriter(st)
	c, sent, size := req.Head, int64(0), 0
	for sent < min(req.Max, maxChainBlocks) {
		if !c.Equals(n.s.cfg.Checkpoint) && !n.s.isVerified(ctx, c) {
			return
		}
		blk, err := n.s.blocks.Get(ctx, c)
		if err != nil || size+len(blk.RawData()) > maxChainBytes {
			return
		}
		if err := w.WriteMsg(blk.RawData()); err != nil {
			return
		}
		sent++
		size += len(blk.RawData())
		sh, err := dag.DecodeSignedHead(blk.RawData())
		if err != nil || sh.Head.Parent == nil {
			return
		}
		c = *sh.Head.Parent
	}
}

// errChainMismatch: a peer sent a block other than the one the chain
// needed next.
var errChainMismatch = errors.New("headsync: peer sent a block off the requested chain")

// chain asks p for head c and up to max-1 of its ancestors over the
// head-chain protocol, within Limits.AskTimeout. Each block must hash to
// the CID asked for (the first) or named as parent by the block before
// it, and be at most MaxHeadSize; the valid prefix is returned, with the
// error that ended it.
func (n *Net) chain(ctx context.Context, p peer.ID, c cid.Cid, max int) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, n.s.cfg.Limits.AskTimeout)
	defer cancel()
	req, err := chainRequest{Head: c, Max: int64(max)}.encode()
	if err != nil {
		return nil, err
	}
	st, err := n.node.Host().NewStream(ctx, p, n.chainProto)
	if err != nil {
		return nil, fmt.Errorf("ask %s for chain %s: %w", p, c, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if _, err := st.Write(req); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("ask %s for chain %s: %w", p, c, err)
	}
	_ = st.CloseWrite()
	r := msgio.NewVarintReaderSize(st, MaxHeadSize)
	var out [][]byte
	for want := c; len(out) < max; {
		buf, err := r.ReadMsg()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = st.Reset()
			return out, fmt.Errorf("chain %s from %s: %w", c, p, err)
		}
		data := slices.Clone(buf)
		r.ReleaseMsg(buf)
		if got := dag.CID(data); !got.Equals(want) {
			_ = st.Reset()
			return out, fmt.Errorf("chain %s from %s: %w: got %s, want %s", c, p, errChainMismatch, got, want)
		}
		sh, err := dag.DecodeSignedHead(data)
		if err != nil {
			_ = st.Reset()
			return out, fmt.Errorf("chain %s from %s: %w", c, p, err)
		}
		out = append(out, data)
		if sh.Head.Parent == nil {
			break
		}
		want = *sh.Head.Parent
	}
	return out, nil
}

// peersFor lists the peers asked for a candidate's blocks: from first
// (the peer that announced or served it) when we are connected to it,
// then connected peers that speak the head-chain protocol, then from when
// we are not connected to it (dialling it may cost the whole
// Limits.AskTimeout); Limits.AskPeers in all.
func (n *Net) peersFor(from peer.ID) []peer.ID {
	var out []peer.ID
	self := n.node.ID()
	asked := from != "" && from != self
	if asked && n.node.ConnectedTo(from) {
		out = append(out, from)
		asked = false
	}
	h := n.node.Host()
	for _, p := range h.Network().Peers() {
		if len(out) >= n.s.cfg.Limits.AskPeers-btoi(asked) {
			break
		}
		if p == from || p == self {
			continue
		}
		if ok, _ := h.Peerstore().SupportsProtocols(p, n.chainProto); len(ok) == 0 {
			continue
		}
		out = append(out, p)
	}
	if asked {
		out = append(out, from)
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
