package audit

import (
	"context"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Blocks is where a holder answers from: its local block store (boxo's
// blockstore.Blockstore has this method). Get returns an error that
// satisfies ipld.IsNotFound for a block it does not have. It must never
// fetch from the network: an answer proves what the holder stores, so
// pass the blockstore, never a blockservice or a DAG service with
// bitswap behind it. Get may block on disk I/O; ctx bounds it.
type Blocks interface {
	Get(ctx context.Context, c cid.Cid) (blocks.Block, error)
}

// Answer computes a holder's answer to ch from its local blocks: for each
// root, the blocks of the path the rule picks, or Missing as soon as one
// of them is not in bs. It fails (and the server then answers nothing)
// on other store errors, or if the answer would carry more than maxBytes
// bytes of blocks or a block over MaxBlockSize: the auditor would refuse
// it anyway. Work: at most len(ch.Roots) * MaxDepth block reads.
func Answer(ctx context.Context, bs Blocks, ch Challenge, maxBytes int64) (Response, error) {
	if err := ch.Validate(); err != nil {
		return Response{}, fmt.Errorf("answer: %w", err)
	}
	resp := Response{Paths: make([]Path, len(ch.Roots))}
	var total int64
	for i, root := range ch.Roots {
		c := root
		for d := 0; ; d++ {
			if err := ctx.Err(); err != nil {
				return Response{}, fmt.Errorf("answer: %w", err)
			}
			b, err := bs.Get(ctx, c)
			if ipld.IsNotFound(err) {
				resp.Paths[i] = Path{Missing: true}
				break
			}
			if err != nil {
				return Response{}, fmt.Errorf("answer: path %d depth %d: get %s: %w", i, d, c, err)
			}
			data := b.RawData()
			if len(data) > MaxBlockSize {
				return Response{}, fmt.Errorf("answer: path %d depth %d: %w: block %s of %d bytes", i, d, ErrTooLarge, c, len(data))
			}
			if total += int64(len(data)); total > maxBytes {
				return Response{}, fmt.Errorf("answer: path %d depth %d: %w: more than %d bytes", i, d, ErrTooLarge, maxBytes)
			}
			resp.Paths[i].Blocks = append(resp.Paths[i].Blocks, data)
			nxt, ok := next(&ch.Nonce, i, d, c, data)
			if !ok {
				break
			}
			c = nxt
		}
	}
	return resp, nil
}
