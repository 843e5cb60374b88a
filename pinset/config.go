package pinset

import (
	"fmt"
	"strings"
	"time"
)

// Config tunes one replica. Start from DefaultConfig; Validate reports the
// first field out of range and changes nothing.
type Config struct {
	// Writer makes this replica a curator's: it may Add and Remove, and it
	// publishes its CRDT heads on the topic. A follower (Writer false)
	// refuses writes with ErrReadOnly and never publishes anything.
	Writer bool

	// Namespace is the datastore key prefix under which everything of this
	// pinset lives: the CRDT (<ns>/crdt), the local index (<ns>/idx) and
	// the sync bookkeeping (<ns>/sync). Two pinsets may share a datastore
	// under different namespaces.
	Namespace string

	// BatchKeys is the most keys (pins added or removed) one CRDT delta
	// carries. go-ds-crdt re-measures the whole pending delta on every
	// Put, so a batch costs O(keys²); MaxDeltaBytes bounds it first for
	// pins of usual size.
	BatchKeys int

	// MaxDeltaBytes is the most bytes of one delta block. Add commits a
	// batch before its estimated size reaches it; go-ds-crdt itself
	// commits any batch that outgrows it (MaxBatchDeltaSize). Blocks must
	// stay well under the 2 MiB that bitswap peers accept. go-ds-crdt's
	// O(keys²) re-measuring makes large deltas slow to build:
	// BenchmarkAdd ingested 5.8k pins/s with 1 MiB deltas, 10.8k with
	// 256 KiB ones (about 1,250 pins each), and no more with 128 KiB;
	// 13.0k with 256 KiB since records skip bindnode (docs/scale.md).
	MaxDeltaBytes int

	// MaxBlockBytes is the largest CRDT block this replica accepts from the
	// DAG service. Larger blocks are refused before go-ds-crdt sees them.
	MaxBlockBytes int

	// NumWorkers is the number of go-ds-crdt DAG workers. A single curator
	// writes a linear chain, which is walked one block at a time whatever
	// this is; several curators make branches that workers walk in
	// parallel.
	NumWorkers int

	// PrefetchBlocks is how many CRDT blocks may be fetched ahead of
	// go-ds-crdt's walk (see prefetcher); 0 turns prefetching off. Each
	// is at most MaxBlockBytes, held in the block store, not in memory.
	PrefetchBlocks int

	// FetchTimeout bounds each fetch of a CRDT block from the DAG service
	// (go-ds-crdt's DAGSyncerTimeout and this package's guard). A walk
	// whose block cannot be fetched stops and is retried later.
	FetchTimeout time.Duration

	// RetryMin and RetryMax bound the exponential back-off between
	// attempts to resume a walk that stopped at a block it could not fetch.
	RetryMin time.Duration
	RetryMax time.Duration

	// RebroadcastInterval is how often go-ds-crdt re-announces this
	// replica's heads (curators only; followers never publish).
	RebroadcastInterval time.Duration

	// RepairInterval is how often go-ds-crdt re-walks its DAG when it
	// marked itself dirty after an error.
	RepairInterval time.Duration

	// PollInterval is how often WaitFor re-checks progress when no walk
	// finished in the meantime (a fallback; walks notify WaitFor).
	PollInterval time.Duration

	// IndexFlushEntries is how many pending index updates are buffered in
	// memory before they are written in one batch.
	IndexFlushEntries int

	// MaxPending is the most CRDT heads waiting to be processed (received
	// or fed and not yet fully walked). Beyond it, broadcasts are dropped
	// (a later broadcast or Feed brings them back) and Feed fails with
	// ErrBusy.
	MaxPending int

	// MaxBroadcastBytes and MaxBroadcastHeads bound one message on the
	// CRDT topic. The topic validator and the broadcaster both enforce them.
	MaxBroadcastBytes int
	MaxBroadcastHeads int
}

// DefaultConfig returns a follower configuration with every field set.
func DefaultConfig() Config {
	return Config{
		Writer:              false,           // followers are the common case
		Namespace:           "/pinset",       // one pinset per datastore by default
		BatchKeys:           10_000,          // see BatchKeys
		MaxDeltaBytes:       256 << 10,       // see MaxDeltaBytes
		MaxBlockBytes:       2 << 20,         // bitswap's de-facto block limit
		NumWorkers:          5,               // go-ds-crdt's default
		PrefetchBlocks:      64,              // 16 MiB of 256-KiB deltas ahead of the merges
		FetchTimeout:        2 * time.Minute, // one 1 MiB block over a slow link
		RetryMin:            time.Second,     // first retry of a stalled walk
		RetryMax:            2 * time.Minute, // back-off ceiling
		RebroadcastInterval: time.Minute,     // go-ds-crdt's default
		RepairInterval:      time.Hour,       // go-ds-crdt's default
		PollInterval:        time.Second,     // WaitFor fallback
		IndexFlushEntries:   8192,            // about 1 MiB of index updates
		MaxPending:          1024,            // heads in flight
		MaxBroadcastBytes:   8 << 10,         // ~200 heads of 38 bytes, with room
		MaxBroadcastHeads:   64,              // go-ds-crdt sends 1 head per commit
	}
}

// Validate reports the first field out of range, named by its config path.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: pinset.%s %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Namespace == "" || c.Namespace[0] != '/' || strings.HasSuffix(c.Namespace, "/") || strings.Contains(c.Namespace, "//"):
		return bad("namespace", "%q must be a datastore key like /pinset", c.Namespace)
	case c.BatchKeys < 1 || c.BatchKeys > 1_000_000:
		return bad("batch_keys", "is %d, must be in [1, 1000000]", c.BatchKeys)
	case c.MaxDeltaBytes < 64<<10 || c.MaxDeltaBytes > 2<<20:
		return bad("max_delta_bytes", "is %d, must be in [64KiB, 2MiB]", c.MaxDeltaBytes)
	case c.MaxBlockBytes < c.MaxDeltaBytes+4096:
		return bad("max_block_bytes", "is %d, must be at least max_delta_bytes + 4KiB", c.MaxBlockBytes)
	case c.NumWorkers < 1 || c.NumWorkers > 64:
		return bad("num_workers", "is %d, must be in [1, 64]", c.NumWorkers)
	case c.PrefetchBlocks < 0 || c.PrefetchBlocks > 1024:
		return bad("prefetch_blocks", "is %d, must be in [0, 1024]", c.PrefetchBlocks)
	case c.FetchTimeout <= 0:
		return bad("fetch_timeout", "must be positive")
	case c.RetryMin <= 0:
		return bad("retry_min", "must be positive")
	case c.RetryMax < c.RetryMin:
		return bad("retry_max", "must be >= retry_min")
	case c.RebroadcastInterval < 10*time.Millisecond:
		return bad("rebroadcast_interval", "must be at least 10ms")
	case c.RepairInterval <= 0:
		return bad("repair_interval", "must be positive")
	case c.PollInterval <= 0:
		return bad("poll_interval", "must be positive")
	case c.IndexFlushEntries < 1:
		return bad("index_flush_entries", "must be positive")
	case c.MaxPending < 1:
		return bad("max_pending", "must be positive")
	case c.MaxBroadcastBytes < 64:
		return bad("max_broadcast_bytes", "is %d, must be at least 64", c.MaxBroadcastBytes)
	case c.MaxBroadcastHeads < 1:
		return bad("max_broadcast_heads", "must be positive")
	}
	return nil
}
