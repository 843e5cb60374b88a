package kubo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"
)

// pinLsBatch bounds the CIDs of one pin ls request (the URL's length).
const pinLsBatch = 64

// Identity is what `ipfs id` says of the daemon.
type Identity struct {
	ID           string
	PublicKey    string
	Addresses    []string
	AgentVersion string
	Protocols    []string
}

// ID returns the daemon's identity.
func (c *Client) ID(ctx context.Context) (Identity, error) {
	var out Identity
	err := c.single(ctx, "id", nil, nil, &out)
	return out, err
}

// Version is what `ipfs version` says.
type Version struct {
	Version string
	Commit  string
	Repo    string
	System  string
	Golang  string
}

// Version returns the daemon's version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var out Version
	err := c.single(ctx, "version", nil, nil, &out)
	return out, err
}

// SwarmConnect makes the daemon connect to ai (any of its addresses).
func (c *Client) SwarmConnect(ctx context.Context, ai peer.AddrInfo) error {
	addrs, err := peer.AddrInfoToP2pAddrs(&ai)
	if err != nil {
		return fmt.Errorf("%w: swarm connect %s: %v", ErrInvalid, ai.ID, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: swarm connect %s: no address", ErrInvalid, ai.ID)
	}
	args := make([]string, len(addrs))
	for i, a := range addrs {
		args[i] = a.String()
	}
	return c.single(ctx, "swarm/connect", args, nil, nil)
}

// PinAdd pins root recursively under name (kubo 0.39 keeps pin names;
// pinning a pinned root again replaces its name), fetching the blocks the
// daemon lacks from its peers. progress, if not nil, is called with the
// blocks fetched or found so far, about twice a second while the daemon
// works (kubo counts blocks, not bytes). It returns when the pin is made.
func (c *Client) PinAdd(ctx context.Context, root cid.Cid, name string, progress func(blocks int64)) error {
	if !root.Defined() {
		return fmt.Errorf("%w: pin add: undefined CID", ErrInvalid)
	}
	opts := url.Values{"recursive": {"true"}, "progress": {boolOpt(progress != nil)}}
	if name != "" {
		opts.Set("name", name)
	}
	pinned := false
	err := c.stream(ctx, "pin/add", []string{root.String()}, opts, func(line []byte) error {
		var v struct {
			Pins     []string
			Progress int64
		}
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("kubo pin/add: %w: %v", ErrMalformed, err)
		}
		if v.Progress > 0 && progress != nil {
			progress(v.Progress)
		}
		if len(v.Pins) > 0 {
			pinned = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pin add %s: %w", root, err)
	}
	if !pinned {
		return fmt.Errorf("pin add %s: %w: the reply ended without the pin", root, ErrMalformed)
	}
	return nil
}

// PinRm removes the recursive pin of root.
func (c *Client) PinRm(ctx context.Context, root cid.Cid) error {
	if !root.Defined() {
		return fmt.Errorf("%w: pin rm: undefined CID", ErrInvalid)
	}
	if err := c.single(ctx, "pin/rm", []string{root.String()}, url.Values{"recursive": {"true"}}, nil); err != nil {
		return fmt.Errorf("pin rm %s: %w", root, err)
	}
	return nil
}

// Pin is one recursive pin of the daemon.
type Pin struct {
	CID  cid.Cid
	Name string
}

// PinLs returns which of roots are pinned recursively, with their names.
// Roots that are not pinned (or pinned only directly or indirectly) are
// absent from the map.
func (c *Client) PinLs(ctx context.Context, roots []cid.Cid) (map[cid.Cid]Pin, error) {
	out := make(map[cid.Cid]Pin, len(roots))
	for start := 0; start < len(roots); start += pinLsBatch {
		batch := roots[start:min(start+pinLsBatch, len(roots))]
		err := c.pinLs(ctx, batch, out)
		if err != nil && isNotPinned(err) {
			// kubo fails the whole request at the first root not pinned:
			// ask again one root at a time.
			for _, r := range batch {
				if err = c.pinLs(ctx, []cid.Cid{r}, out); err != nil && !isNotPinned(err) {
					break
				}
				err = nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("pin ls: %w", err)
		}
	}
	return out, nil
}

func (c *Client) pinLs(ctx context.Context, roots []cid.Cid, out map[cid.Cid]Pin) error {
	args := make([]string, len(roots))
	for i, r := range roots {
		if !r.Defined() {
			return fmt.Errorf("%w: pin ls: undefined CID", ErrInvalid)
		}
		args[i] = r.String()
	}
	opts := url.Values{"type": {"recursive"}, "names": {"true"}, "stream": {"true"}}
	return c.stream(ctx, "pin/ls", args, opts, func(line []byte) error {
		p, err := decodePin(line)
		if err != nil {
			return err
		}
		out[p.CID] = p
		return nil
	})
}

// PinLsAll calls fn with every recursive pin whose name contains
// nameContains ("" for all), as the daemon streams them.
func (c *Client) PinLsAll(ctx context.Context, nameContains string, fn func(Pin) error) error {
	opts := url.Values{"type": {"recursive"}, "names": {"true"}, "stream": {"true"}}
	if nameContains != "" {
		opts.Set("name", nameContains)
	}
	err := c.stream(ctx, "pin/ls", nil, opts, func(line []byte) error {
		p, err := decodePin(line)
		if err != nil {
			return err
		}
		return fn(p)
	})
	if err != nil {
		return fmt.Errorf("pin ls: %w", err)
	}
	return nil
}

func decodePin(line []byte) (Pin, error) {
	var v struct {
		Cid  string
		Name string
		Type string
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return Pin{}, fmt.Errorf("kubo pin/ls: %w: %v", ErrMalformed, err)
	}
	c, err := cid.Decode(v.Cid)
	if err != nil {
		return Pin{}, fmt.Errorf("kubo pin/ls: %w: CID %q: %v", ErrMalformed, v.Cid, err)
	}
	if v.Type != "recursive" {
		return Pin{}, fmt.Errorf("kubo pin/ls: %w: pin %s has type %q, asked for recursive", ErrMalformed, c, v.Type)
	}
	return Pin{CID: c, Name: v.Name}, nil
}

// isNotPinned reports kubo's "path '...' is not pinned" error.
func isNotPinned(err error) bool {
	var e *Error
	return errors.As(err, &e) && strings.Contains(e.Message, "is not pinned")
}

// DAGStat is the size of a DAG: its distinct blocks and their bytes.
type DAGStat struct {
	Blocks int64
	Bytes  int64
}

// DAGStat sizes root's DAG from the daemon's local blocks only (offline:
// a missing block fails the call instead of being fetched).
func (c *Client) DAGStat(ctx context.Context, root cid.Cid) (DAGStat, error) {
	if !root.Defined() {
		return DAGStat{}, fmt.Errorf("%w: dag stat: undefined CID", ErrInvalid)
	}
	var v struct {
		DagStats []struct {
			Cid       string
			Size      int64
			NumBlocks int64
		}
	}
	opts := url.Values{"progress": {"false"}, "offline": {"true"}}
	if err := c.single(ctx, "dag/stat", []string{root.String()}, opts, &v); err != nil {
		return DAGStat{}, fmt.Errorf("dag stat %s: %w", root, err)
	}
	if len(v.DagStats) != 1 || v.DagStats[0].Size < 0 || v.DagStats[0].NumBlocks < 1 {
		return DAGStat{}, fmt.Errorf("dag stat %s: %w: want one DAG of at least one block", root, ErrMalformed)
	}
	if got, err := cid.Decode(v.DagStats[0].Cid); err != nil || !got.Equals(root) {
		return DAGStat{}, fmt.Errorf("dag stat %s: %w: reply is about %q", root, ErrMalformed, v.DagStats[0].Cid)
	}
	return DAGStat{Blocks: v.DagStats[0].NumBlocks, Bytes: v.DagStats[0].Size}, nil
}

// RepoStat is the daemon's repository size and its configured maximum.
type RepoStat struct {
	RepoSize   uint64
	StorageMax uint64
}

// RepoStat returns the repository's size (size-only: no block count).
func (c *Client) RepoStat(ctx context.Context) (RepoStat, error) {
	var out RepoStat
	err := c.single(ctx, "repo/stat", nil, url.Values{"size-only": {"true"}}, &out)
	return out, err
}

// BlockGet returns the block c from the daemon's own store only
// (block/get with offline=true: kubo does not ask the network). A block
// the daemon does not have is an error satisfying ipld.IsNotFound.
func (c *Client) BlockGet(ctx context.Context, k cid.Cid) (blocks.Block, error) {
	if !k.Defined() {
		return nil, fmt.Errorf("%w: block get: undefined CID", ErrInvalid)
	}
	resp, err := c.post(ctx, "block/get", []string{k.String()}, url.Values{"offline": {"true"}})
	if err != nil {
		var ke *Error
		if errors.As(err, &ke) && strings.Contains(ke.Message, "not found") {
			return nil, fmt.Errorf("block get %s: %w", k, ipld.ErrNotFound{Cid: k})
		}
		return nil, fmt.Errorf("block get %s: %w", k, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBlockSize+1))
	if err != nil {
		return nil, fmt.Errorf("block get %s: %w", k, err)
	}
	if len(data) > maxBlockSize {
		return nil, fmt.Errorf("block get %s: %w: more than %d bytes", k, ErrTooLarge, maxBlockSize)
	}
	sum, err := k.Prefix().Sum(data)
	if err != nil || !sum.Equals(k) {
		return nil, fmt.Errorf("block get %s: %w: the bytes do not hash to the CID", k, ErrMalformed)
	}
	return blocks.NewBlockWithCid(data, k)
}

// maxBlockSize bounds a block read from kubo (bitswap's own limit is 2 MiB).
const maxBlockSize = 4 << 20
