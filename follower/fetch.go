package follower

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/pinset"
)

// errBehindHead: the pinset lists fewer pins or bytes for a shard than
// the head the assignment comes from. The follower waits: it never stores
// (or ACKs) a shard before it holds every pin the head lists for it.
var errBehindHead = errors.New("the pinset lists less than the head")

// fetchLoop fetches the assigned shards that are not stored yet, or whose
// content changed, lowest ID first, one shard at a time with
// FetchConcurrency pins in parallel. Between shards it releases the pins
// a shard's new content left out, once that content is ACKed.
func (d *Daemon) fetchLoop(ctx context.Context) error {
	for {
		if err := d.releaseReplaced(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("release pins a shard no longer holds", "err", err)
		}
		id, ok := d.nextToFetch()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-d.fetchWakeCh:
			}
			continue
		}
		fctx, done, ok := d.disk.fetching(ctx)
		if !ok { // paused for disk space: wait for it to come back
			msg, resumed := d.disk.pausedFor()
			if resumed != nil {
				d.setRowError(id, msg)
				select {
				case <-ctx.Done():
					return nil
				case <-resumed:
				}
			}
			continue
		}
		err := d.fetchShard(fctx, id)
		done()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if msg, _ := d.disk.pausedFor(); msg != "" {
				d.log.Info("fetch stopped for disk space", "shard", id, "err", err)
				d.setRowError(id, msg)
				continue
			}
			if errors.Is(err, errBehindHead) {
				d.log.Debug("fetch shard", "shard", id, "err", err) // in the status; resolves with the pinset
			} else {
				d.log.Warn("fetch shard", "shard", id, "err", err)
			}
			d.setRowError(id, err.Error())
			select { // back off before trying again
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Second):
			case <-d.fetchWakeCh:
			}
		}
	}
}

func (d *Daemon) fetchWake() {
	select {
	case d.fetchWakeCh <- struct{}{}:
	default:
	}
}

func (d *Daemon) nextToFetch() (int64, bool) {
	s := d.shards
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.mine))
	for id := range s.mine {
		if rec, ok := s.records[id]; ok && rec.Stored && !s.stale[id] {
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return 0, false
	}
	return slices.Min(ids), true
}

func (d *Daemon) setRowError(id int64, msg string) {
	s := d.shards
	s.mu.Lock()
	defer s.mu.Unlock()
	if row, ok := s.rows[id]; ok {
		row.fail(msg, d.now())
	}
}

// listShard returns the pins of shard id in the pinset, their content
// digest and the sum of their sizes.
func (d *Daemon) listShard(ctx context.Context, id int64) ([]pinset.Pin, []byte, int64, error) {
	var pins []pinset.Pin
	if err := d.pins.ListShard(ctx, id, func(p pinset.Pin) error { pins = append(pins, p); return nil }); err != nil {
		return nil, nil, 0, err
	}
	refs := make([]assign.PinRef, 0, len(pins))
	var declared int64
	for _, p := range pins {
		refs = append(refs, assign.PinRef{CID: p.CID.Bytes(), Size: p.Size})
		declared += p.Size
	}
	return pins, assign.Digest(refs), declared, nil
}

// fetchShard fetches every pin of shard id, then records it as stored. A
// shard stored before whose content changed keeps its record (and its
// ACKs) while the pins it lacks are fetched; pins already kept cost
// nothing. The pins its new content left out are released once the new
// digest is ACKed (releaseReplaced).
func (d *Daemon) fetchShard(ctx context.Context, id int64) error {
	pins, digest, declared, err := d.listShard(ctx, id)
	if err != nil {
		return err
	}
	names := make([]string, len(pins))
	for i, p := range pins {
		names[i] = p.CID.String()
	}
	s := d.shards
	s.mu.Lock()
	var old shardRecord
	if r, ok := s.records[id]; ok {
		old = *r
	}
	var want ShardStatus
	if r, ok := s.rows[id]; ok {
		want = *r
	}
	var seq int64 = -1
	if s.head != nil {
		seq = s.head.Head.Seq
	}
	s.mu.Unlock()
	if int64(len(pins)) < want.Pins || declared < want.Bytes {
		return fmt.Errorf("shard %d: %w: it lists %d pins (%d bytes), head seq %d lists %d pins (%d bytes); waiting for the pinset to catch up",
			id, errBehindHead, len(pins), declared, seq, want.Pins, want.Bytes)
	}
	if old.Stored && bytes.Equal(old.Digest, digest) {
		d.markStored(old) // the change was undone before it was fetched
		return nil
	}
	growth := declared
	if old.Stored {
		growth = max(declared-max(old.Declared, old.Bytes), 0)
	}
	if err := d.checkRoom(ctx, id, growth); err != nil {
		return err
	}

	// The record is saved before fetching, so a crash leaves a record of
	// every pin that may be half-stored; Fetch resumes from the blocks
	// present. A stored shard stays stored, at its old digest, meanwhile.
	rec := shardRecord{ID: id, Pins: names, Digest: digest, Declared: declared}
	if old.Stored {
		rec = old
	}
	rec.Extra = without(union(old.Pins, old.Extra, names), rec.Pins)
	if err := d.saveRecord(ctx, &rec); err != nil {
		return err
	}
	s.mu.Lock()
	s.records[id] = &rec
	if row, ok := s.rows[id]; ok {
		row.enter(ShardFetching, d.now())
		row.fail("", d.now())
	}
	s.mu.Unlock()
	if old.Stored {
		d.event("fetch", fmt.Sprintf("shard %d changed: fetching its new content, %s, %s", id, plural(len(pins), "pin"), humanize.IBytes(uint64(max(declared, 0)))))
	} else {
		d.event("fetch", fmt.Sprintf("fetching shard %d: %s, %s", id, plural(len(pins), "pin"), humanize.IBytes(uint64(max(declared, 0)))))
	}

	var done content.Stat
	for _, p := range pins {
		if !d.disk.check(0) {
			return fmt.Errorf("shard %d: %w", id, errDiskPaused)
		}
		base := done.Bytes
		st, err := d.fetcher.Fetch(ctx, p.CID, func(st content.Stat) {
			s.mu.Lock()
			if row, ok := s.rows[id]; ok {
				row.Fetched = base + st.Bytes
			}
			s.mu.Unlock()
		})
		if err != nil {
			return fmt.Errorf("shard %d: pin %s: %w", id, p.CID, err)
		}
		done.Bytes += st.Bytes
		done.Blocks += st.Blocks
	}
	stored := shardRecord{ID: id, Pins: names, Digest: digest, Declared: declared, Bytes: done.Bytes, Blocks: done.Blocks,
		Stored: true, Extra: without(union(old.Pins, old.Extra), names)}
	if err := d.saveRecord(ctx, &stored); err != nil {
		return err
	}
	d.markStored(stored)
	d.event("stored", fmt.Sprintf("shard %d stored: %s in %s", id, humanize.IBytes(uint64(max(stored.Bytes, 0))), plural(int(stored.Blocks), "block")))
	return nil
}

// markStored makes rec the shard's record, stored and current, and has it
// ACKed at once.
func (d *Daemon) markStored(rec shardRecord) {
	s := d.shards
	s.mu.Lock()
	s.records[rec.ID] = &rec
	delete(s.stale, rec.ID)
	delete(s.acked, rec.ID) // a new digest is ACKed now, not at the next heartbeat
	if row, ok := s.rows[rec.ID]; ok {
		row.enter(ShardStored, d.now())
		row.Fetched = rec.Bytes
		row.fail("", d.now())
	}
	s.mu.Unlock()
	s.poke()
	pokeChan(s.held)
}

// checkRoom refuses to fetch n more bytes for shard id beyond the pledge
// or into a nearly full disk.
func (d *Daemon) checkRoom(ctx context.Context, id, n int64) error {
	pledged, free := d.Pledge()
	usage, err := d.fetcher.Usage(ctx)
	if err != nil {
		return err
	}
	if usage.Bytes+n > pledged {
		return fmt.Errorf("shard %d (%d bytes) would take the stored bytes to %d, over the pledge of %d: not fetching",
			id, n, usage.Bytes+n, pledged)
	}
	if free < n+64<<20 {
		d.shards.mu.Lock()
		d.shards.diskErr = fmt.Sprintf("disk nearly full: %d bytes free, shard %d needs %d", free, id, n)
		d.shards.mu.Unlock()
		return errors.New(d.shards.diskErr)
	}
	return nil
}

// checkContent marks stale the stored shards whose pins in the pinset are
// no longer those fetched, so they are fetched again. It compares the
// pinset's per-shard counts (memory only) with each record, and lists the
// newest two shards in full: the curator only adds pins to its newest
// shard (a CID removed and pinned again goes there too), so an older
// shard can only lose pins, which changes its count, while the newest
// may gain and lose as many pins of the same total size.
func (d *Daemon) checkContent(ctx context.Context) error {
	agg := map[int64]pinset.ShardStats{}
	newest := int64(-1)
	for _, a := range d.pins.Stats().Shards {
		agg[a.Shard] = a
		newest = max(newest, a.Shard)
	}
	s := d.shards
	s.mu.Lock()
	var held []shardRecord
	for id, rec := range s.records {
		if s.mine[id] && rec.Stored && !s.stale[id] {
			held = append(held, *rec)
		}
	}
	s.mu.Unlock()
	changed := 0
	for _, rec := range held {
		a := agg[rec.ID]
		diff := a.Pins != int64(len(rec.Pins)) || (rec.Declared > 0 && a.Bytes != rec.Declared)
		if !diff && (rec.ID >= newest-1 || rec.Declared == 0) {
			_, digest, _, err := d.listShard(ctx, rec.ID)
			if err != nil {
				return err
			}
			diff = !bytes.Equal(digest, rec.Digest)
		}
		if !diff {
			continue
		}
		changed++
		s.mu.Lock()
		if r, ok := s.records[rec.ID]; ok && r.Stored && bytes.Equal(r.Digest, rec.Digest) {
			s.stale[rec.ID] = true
			if row, ok := s.rows[rec.ID]; ok {
				row.enter(ShardQueued, d.now())
			}
		}
		s.mu.Unlock()
		d.event("changed", fmt.Sprintf("shard %d changed in the pinset: %s now, %d stored; fetching it again", rec.ID, plural(int(a.Pins), "pin"), len(rec.Pins)))
	}
	if changed > 0 {
		d.fetchWake()
	}
	return nil
}

// releaseReplaced releases, for every stored shard whose current digest
// was ACKed, the pins its earlier content held and its present content
// does not (unless another shard holds them), and forgets them.
func (d *Daemon) releaseReplaced(ctx context.Context) error {
	s := d.shards
	s.mu.Lock()
	var todo []shardRecord
	for id, rec := range s.records {
		if len(rec.Extra) > 0 && rec.Stored && !s.stale[id] && bytes.Equal(s.ackedDigest[id], rec.Digest) {
			todo = append(todo, *rec)
		}
	}
	s.mu.Unlock()
	for _, rec := range todo {
		var freed int64
		for _, c := range d.unheld(rec.ID, rec.Extra) {
			pc, err := cid.Decode(c)
			if err != nil {
				continue
			}
			n, err := d.fetcher.Release(ctx, pc)
			if err != nil {
				return fmt.Errorf("shard %d: release %s: %w", rec.ID, c, err)
			}
			freed += n
		}
		rec.Extra = nil
		if err := d.saveRecord(ctx, &rec); err != nil {
			return err
		}
		s.mu.Lock()
		if r, ok := s.records[rec.ID]; ok && bytes.Equal(r.Digest, rec.Digest) {
			s.records[rec.ID] = &rec
		}
		s.mu.Unlock()
		d.event("drop", fmt.Sprintf("shard %d: pins it no longer holds released, %s freed", rec.ID, humanize.IBytes(uint64(max(freed, 0)))))
	}
	return nil
}

// unheld returns the pins of cids that no shard record other than id's
// holds in its present content.
func (d *Daemon) unheld(id int64, cids []string) []string {
	s := d.shards
	s.mu.Lock()
	kept := map[string]bool{}
	for other, rec := range s.records {
		if other != id {
			for _, c := range rec.Pins {
				kept[c] = true
			}
		}
	}
	s.mu.Unlock()
	var out []string
	for _, c := range cids {
		if !kept[c] {
			out = append(out, c)
		}
	}
	return out
}

// union returns the distinct strings of lists, sorted.
func union(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// without returns the strings of a not in b.
func without(a, b []string) []string {
	drop := make(map[string]bool, len(b))
	for _, s := range b {
		drop[s] = true
	}
	var out []string
	for _, s := range a {
		if !drop[s] {
			out = append(out, s)
		}
	}
	return out
}

// heldBytes returns the bytes of the stored shards this follower holds
// as assigned: what its stored ACKs commit to.
func (d *Daemon) heldBytes() int64 {
	s := d.shards
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for id, rec := range s.records {
		if rec.Stored && s.mine[id] {
			n += rec.Bytes
		}
	}
	return n
}
