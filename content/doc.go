// Package content is pinfold's content layer: it imports files and folders
// as UnixFS, walks and sizes DAGs, fetches whole pin DAGs into the local
// block store over bitswap, keeps track of which blocks belong to which
// kept pin, and deletes the blocks of released pins. It also generates the
// sample archive of the demo.
//
// # Import
//
// Import builds IPIP-499's unixfs-v1-2025 profile (CIDv1, sha2-256, 1 MiB
// raw leaves, balanced file DAGs of width 1024, HAMT folders above 256 KiB)
// without touching boxo's process-wide defaults, and reports each pin's
// size as the bytes of its distinct blocks: what a holder stores.
//
// # Walking
//
// DAGStat and Fetch walk a DAG with a fixed number of workers taking CIDs
// from a stack; each distinct block is fetched once (once per codec it is
// linked under). Every block is verified against its CID: bitswap rehashes
// each block it receives and drops mismatches, the block service refuses
// CIDs with insecure hash functions, and the walk refuses such links
// before asking anyone. A walk follows at most MaxBlocks distinct blocks
// (so examines at most MaxBlocks × MaxLinks links), MaxLinks links per
// block and (optionally) MaxBytes bytes; a block that
// does not decode, or makes a decoder panic, fails the walk with
// ErrMalformed naming its CID. Nothing a peer sends can make it panic.
//
// # Stalls
//
// A Fetch that walked no block for StallTimeout ends its bitswap session
// and asks every connected peer again in a new one (Renewals counts
// this): a bitswap session waits on the peer it sent a want-block to, and
// a peer that claimed the block and never sends it would hold the fetch
// until the attempt timed out. The node's bitswap guard (package p2p)
// disconnects such peers; the watchdog covers what it does not judge.
//
// # Records
//
// A Fetcher keeps its records in the process's badger datastore, under
// /pinfold/content:
//
//	pin/<root CID>        state (recording, kept, releasing), Stat, chunks, applied
//	list/<root CID>/<i>   chunk i of the pin's distinct blocks (multihash, size), sorted
//	ref/<multihash>       how many recorded pins reference the block, its size
//	claim/<multihash>     this Fetcher stored the block (it was absent when needed)
//	gc/<multihash>        the block is queued for deletion, its size
//	usage                 blocks and bytes of all referenced blocks
//
// Blocks are counted by multihash because the block store keys them so: a
// raw and a dag-pb CID of the same bytes are one stored block.
//
// # Crash safety
//
// Fetch stores blocks as they arrive (the block service writes each one
// before the walk reads it), so a fetch interrupted at any point, kill -9
// included, resumes from the blocks present: only missing ones are asked
// for again. Before asking for a missing block, Fetch writes its claim.
//
// Recording a fetched pin is a sequence of transactions, one per chunk of
// at most 512 blocks: each writes the chunk, adds one reference per block
// (and the new blocks' bytes to usage) and advances the pin record's
// applied count, all atomically; the last one also marks the pin kept. A
// crash between two leaves a record in state recording whose applied
// count says exactly which references exist; the next Fetch of that root
// walks the (now local) DAG again, gets the same sorted list, and goes on
// from there. A Release of it takes back exactly the applied chunks.
//
// Release marks the record releasing, then takes the chunks back in
// transactions, last first: each subtracts one reference per block,
// deletes references that reach zero (and their bytes from usage), queues
// those blocks for deletion if they are claimed, deletes the chunk and
// lowers applied; the last deletes the record. Then the queue is
// collected: a queued block is deleted from the block store and then its
// queue entry and claim are removed. Every step is idempotent, so after a
// crash calling Release again (or Collect) finishes it; usage is exact
// after every transaction.
//
// # What GC never deletes
//
// A block is deleted only if no recorded pin references it, this Fetcher
// claimed it (it was absent when a Fetch needed it), and no running Fetch
// has reached it. Blocks that were in the store before a Fetch needed
// them, such as pinfold's own dag-cbor heads, go-ds-crdt's dag-pb delta
// blocks or content imported by a curator, are never claimed, so never
// deleted, even if a pin's DAG happens to contain them. The gap: a block
// that a Fetch stored first and that another component relies on later
// (it finds the block present and does not store it again) counts as the
// Fetcher's, and goes when its pins are released. That takes a pin whose
// DAG contains one of pinfold's own head or CRDT blocks, fetched before
// the node needed that block: only a curator can publish such a pin. Running
// walks register each block before reading it, under a lock that deletion
// takes exclusively, so a Fetch never counts a block that is deleted
// under it; a concurrent Release leaves such blocks queued instead.
package content
