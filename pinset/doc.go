// Package pinset is a cluster's replicated pinset: a go-ds-crdt (v0.6.8)
// Merkle-CRDT key-value store on a go-datastore (badger4 in production),
// whose DAG travels through an ipld DAGService (boxo merkledag over bitswap)
// and whose new heads are announced on a gossipsub topic.
//
// # Records and keys
//
// A pin is stored under /<shard as 16 lowercase hex digits>/<CIDv1 string>,
// so the pins of a shard are one prefix query and key order is shard
// order. Its value is canonical dag-cbor of the schema in pin.ipldsch
// (go-ipld-prime bindnode): CID, name, size, shard, replication min/max,
// time added (unix ms), optional bounded metadata. Decoding is strict:
// size limits, exact schema, canonical bytes, key and record must agree.
// Values that fail are never returned by readers and are counted.
//
// # Writers and followers
//
// Only a writer (a curator's replica, Config.Writer) may Add and Remove.
// Add commits one go-ds-crdt delta per batch (Config.BatchKeys keys, kept
// under Config.MaxDeltaBytes; go-ds-crdt re-measures the whole pending
// delta on every Put, so a batch costs O(keys²)), merges it locally, syncs
// the datastore and publishes the new head. A follower refuses writes with
// ErrReadOnly, its DAG guard refuses to store new blocks, and its
// broadcaster publishes nothing, not even go-ds-crdt's rebroadcasts.
//
// # Trust: what can put state into a replica
//
// go-ds-crdt accepts any delta it is pointed at; deltas and broadcasts
// carry no author. A head reaches go-ds-crdt only through this package's
// broadcaster (feeder), from two sources:
//
//   - the topic, where the Validator (registered before anything
//     subscribes: JoinTopic) accepts only messages whose signed author,
//     msg.GetFrom() and not the forwarding peer, is trusted right now, and
//     whose payload is a well-formed, bounded broadcast of block CIDs
//     (others are dropped and not forwarded); the broadcaster checks the
//     author again on every message it reads, so a topic joined without
//     the validator still lets nothing untrusted through;
//   - Feed and WaitFor, whose caller vouches for the heads (they come from
//     a signed head the trust package verified).
//
// Everything else follows from content addressing: a block is fetched by
// the CID a trusted head names or links to, so a peer that serves blocks
// cannot substitute content. A head nobody trusted is never fetched, so a
// block served for it is never merged. Other paths were closed: the guard
// refuses CIDs that cannot be go-ds-crdt blocks (only CIDv1 dag-pb
// sha2-256: no identity multihashes carrying inline content), blocks over
// Config.MaxBlockBytes, and any Add on a follower; a follower's own local
// writes are refused before they reach go-ds-crdt; go-ds-crdt's rebroadcast
// only re-announces heads it already processed, and is dropped on
// followers; its repair only re-walks DAG reachable from its current heads,
// which all came from the two sources above. Malformed values inside a
// trusted delta (a buggy curator) are stored by the CRDT but ignored by
// every reader. What trust cannot undo: deltas of a curator later removed
// from the trust set stay merged (a CRDT does not forget); removal stops
// its future broadcasts at once.
//
// # Knowing when a replica has caught up
//
// go-ds-crdt records each merged block as "processed", but it walks heads
// top-down and never returns to a walk that stopped, so processed blocks
// can sit above unprocessed ones (see sync.go). CaughtUp(heads) therefore
// checks over local data that each head and every block reachable from it
// is processed, memoising complete blocks. Heads that were handed to
// go-ds-crdt are watched, durably, until complete; when go-ds-crdt is idle
// and a watched head is incomplete, the blocks where the walk stopped are
// handed over again (with back-off), so walks resume where they stopped,
// in the same session or after a crash, without re-merging what was done.
// Feed hands over heads from a signed head even if their broadcast was
// missed; WaitFor feeds and waits. A replica that has caught up contains
// at least the state at those heads (maybe more, never less).
//
// # Index and aggregates
//
// Beside the CRDT, in its own namespace, each replica keeps an index
// CID -> (shard, size) and per-shard aggregates (pins, bytes), maintained
// from go-ds-crdt's PutHook and DeleteHook. Updates are idempotent (the
// hook applies the difference with what the index holds), so re-merged
// deltas are harmless. PutHook runs before go-ds-crdt persists a merge,
// and index writes are buffered, so after a crash the index may disagree
// with the CRDT: a dirty marker is set at Open and removed by a clean
// Close; Open rebuilds index and aggregates by a full scan when it finds
// the marker. Stats reads memory only and may run a moment ahead of what
// CaughtUp reports.
//
// # Performance
//
// A single writer makes a linear chain, walked one block at a time
// (MultiHeadProcessing stays off: the feeder relies on go-ds-crdt asking
// for the next broadcast only when idle). Large deltas make the chain
// short; a prefetcher fetches up to Config.PrefetchBlocks blocks ahead of
// the walk, so merges overlap fetches. Reads stream from the datastore: List
// and ListShard hold one record at a time. Records decode through a fast
// path that is tested to accept exactly what the bindnode decoder accepts.
//
// # Goroutines
//
// Open starts go-ds-crdt's goroutines, the subscription reader (with a
// Topic) and the prefetcher (with PrefetchBlocks > 0). Close cancels the
// broadcaster first (go-ds-crdt would otherwise wait on it), closes
// go-ds-crdt, waits for every goroutine, then writes the index and marks
// it clean. The caller closes the topic, DAG service and datastore after.
package pinset
