package curator

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/pinset"
)

// PinStatus answers "is it pinned, where, by whom, since when" for one
// pin: the pin, and its shard as the newest signed head allocates it, with
// every holder's ACK and audit.
type PinStatus struct {
	Pin PinJSON `json:"pin"`
	// Shard is the pin's shard in the newest head; nil while no signed
	// head lists that shard yet (the pin was added after it).
	Shard *ShardInfo `json:"shard,omitempty"`
	// HeadSeq is the seq of the head the shard comes from; -1 for none.
	HeadSeq int64 `json:"head_seq"`
}

// PinStatus returns the status of pin c. It wraps pinset.ErrNotFound for a
// CID that is not pinned.
func (d *Daemon) PinStatus(ctx context.Context, c cid.Cid) (PinStatus, error) {
	p, err := d.pins.Get(ctx, c)
	if err != nil {
		return PinStatus{}, err
	}
	ps := PinStatus{Pin: pinJSON(p), HeadSeq: -1}
	if sc, ok := d.checks.lookup(p.CID); ok {
		ps.Pin.SizeChecked = sc.String()
	}
	v, ok := d.heads.Newest()
	if !ok {
		return ps, nil
	}
	plan, _, err := d.plan(ctx)
	if err != nil {
		return ps, fmt.Errorf("pin status %s: %w", c, err)
	}
	ps.HeadSeq = v.Head.Seq
	for i := range plan.Len() {
		sa := plan.Shard(i)
		if sa.ID != p.Shard {
			continue
		}
		digests, err := d.currentDigests(ctx, []int64{sa.ID})
		if err != nil {
			return ps, fmt.Errorf("pin status %s: %w", c, err)
		}
		si := d.shardInfo(sa, digests[sa.ID], d.nicknames())
		d.shardClock.markOne(&si, d.now())
		ps.Shard = &si
		break
	}
	return ps, nil
}

func (d *Daemon) handlePinStatus(w http.ResponseWriter, r *http.Request) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("%q is not a CID: %w", r.PathValue("cid"), err))
		return
	}
	ps, err := d.PinStatus(r.Context(), c)
	if errors.Is(err, pinset.ErrNotFound) {
		httpError(w, http.StatusNotFound, fmt.Errorf("%s is not pinned", c))
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, ps)
}

// PinStatus asks the daemon about one pin.
func (c *Client) PinStatus(ctx context.Context, cidStr string) (PinStatus, error) {
	var ps PinStatus
	return ps, c.do(ctx, http.MethodGet, "/v1/pins/"+cidStr, nil, &ps)
}
