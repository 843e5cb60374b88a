package follower

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/pinset"
)

// HeldPin is one pin this follower holds (or is fetching) for a shard.
type HeldPin struct {
	CID   string `json:"cid"`
	Name  string `json:"name,omitempty"`
	Size  int64  `json:"size"` // as the pinset records it; -1 once the pin left the pinset
	Shard int64  `json:"shard"`
	// State is the shard's: stored, fetching, queued or releasing.
	State string `json:"state"`
}

// HeldPins calls fn for every pin of the shards this follower keeps a
// record of (stored, being fetched, or kept until released), by shard.
func (d *Daemon) HeldPins(ctx context.Context, fn func(HeldPin) error) error {
	type shardPins struct {
		id    int64
		state string
		pins  []string
	}
	s := d.shards
	s.mu.Lock()
	list := make([]shardPins, 0, len(s.records))
	for id, rec := range s.records {
		state := ShardFetching
		if rec.Stored {
			state = ShardStored
		}
		if row, ok := s.rows[id]; ok && row.State != "" {
			state = row.State
		}
		list = append(list, shardPins{id: id, state: state, pins: append([]string(nil), rec.Pins...)})
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	for _, sp := range list {
		for _, c := range sp.pins {
			hp := HeldPin{CID: c, Shard: sp.id, State: sp.state, Size: -1}
			if pc, err := cid.Decode(c); err == nil {
				p, err := d.pins.Get(ctx, pc)
				switch {
				case err == nil:
					hp.Name, hp.Size = p.Name, p.Size
				case !errors.Is(err, pinset.ErrNotFound):
					return fmt.Errorf("held pins: %w", err)
				}
			}
			if err := fn(hp); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Daemon) handlePins(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := d.HeldPins(r.Context(), func(p HeldPin) error { return enc.Encode(p) }); err != nil {
		_ = enc.Encode(map[string]string{"error": err.Error()})
	}
	_ = bw.Flush()
}

// Pins streams the pins the follower holds to fn.
func (c *Client) Pins(ctx context.Context, fn func(HeldPin) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/v1/pins", nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pins: %s", resp.Status)
	}
	dec := json.NewDecoder(resp.Body)
	for dec.More() {
		var line struct {
			HeldPin
			Error string `json:"error"`
		}
		if err := dec.Decode(&line); err != nil {
			return fmt.Errorf("pins: %w", err)
		}
		if line.Error != "" {
			return fmt.Errorf("pins: %s", line.Error)
		}
		if err := fn(line.HeldPin); err != nil {
			return err
		}
	}
	return nil
}
