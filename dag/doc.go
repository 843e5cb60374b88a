// Package dag defines the blocks of pinfold's signed allocation DAG and
// reads and writes them.
//
// Every block is canonical dag-cbor addressed by a CIDv1 (codec dag-cbor,
// sha2-256). The IPLD schema in schema.ipldsch is normative; the Go types in
// schema.go are bound to it positionally with go-ipld-prime's bindnode, so
// their field order follows the schema. docs/protocol.md describes every
// field, limit and rule.
//
// A head CID names a SignedHead: a Head (cluster, seq, parent, time, trust
// set and links to the pinset, the members and the allocation) with a
// curator's signature over HeadDomain || dagcbor(Head). Followers write
// SignedAck and SignedOffer records the same way; curators write
// SignedAudit records (format version 2) with the result of a
// proof-of-possession challenge, and log them like ACKs. Long lists (members,
// shards, the allocation log) are split into fixed-size chunks under a List
// block, so no block exceeds MaxBlockSize and equal lists have equal CIDs.
//
// Decoding is strict: a block must be at most MaxBlockSize bytes, match the
// schema exactly, respect every per-field limit and ordering rule, and
// re-encode to exactly the bytes it was read from. Anything else is
// rejected with ErrMalformed, ErrTooLarge or ErrUnknownVersion, wrapped with
// the block type, its CID and the field. This code writes format Version
// (2) and reads MinVersion (1) to Version: version 1 blocks decode to the
// same values and bytes as before. Encoding applies the same checks,
// so this package never writes a block it would refuse to read.
//
// Signed records (heads, ACKs, offers, audits) are decoded on every verification,
// so they have a direct decoder of their canonical encoding; SplitSignedHead
// and friends also return the exact message the signature covers. The
// bindnode path stays the reference: tests and fuzz targets check that both
// accept the same bytes and yield the same values.
//
// The package signs and verifies nothing (see package trust), reads no
// clock, starts no goroutines and talks to no network: Store works over any
// block store with Get and Put, such as boxo's blockstore on badger4 or on
// an in-memory datastore.
package dag
