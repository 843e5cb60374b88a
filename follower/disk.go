package follower

import (
	"context"
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
)

// diskHeadroom is the free space kept beyond a shard's bytes before it is
// fetched (the same margin the fetch checks).
const diskHeadroom = 64 << 20

// diskLoop clears the "disk nearly full" trouble once the next shard to
// fetch fits again, and wakes the fetcher; it checks every interval until
// ctx ends.
func (d *Daemon) diskLoop(ctx context.Context) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		d.recheckDisk()
	}
}

// recheckDisk clears the disk trouble if the next shard now fits.
func (d *Daemon) recheckDisk() {
	s := d.shards
	s.mu.Lock()
	trouble := s.diskErr
	s.mu.Unlock()
	if trouble == "" {
		return
	}
	var need int64
	if id, ok := d.nextToFetch(); ok {
		s.mu.Lock()
		if row, ok := s.rows[id]; ok {
			need = row.Bytes
		}
		s.mu.Unlock()
	}
	_, free := d.Pledge()
	if free < need+diskHeadroom {
		return
	}
	s.mu.Lock()
	s.diskErr = ""
	s.mu.Unlock()
	d.event("disk", fmt.Sprintf("disk space back: %s free", humanize.IBytes(uint64(max(free, 0)))))
	d.fetchWake()
}
