// Package publish carries a cluster's newest head to followers.
//
// This file set is the pure part: IPNS records. A cluster has a dedicated
// ed25519 cluster key; the IPNS name derived from it (ipns.NameFromPeer of
// its peer ID) is the cluster name. Curators hold the cluster key and use it
// for one thing only: signing IPNS records that point at a signed head.
//
// An IPNS record is a pointer, not an authority. Authority over content is
// the signed head chain (package trust); a follower that resolves a record
// always fetches and verifies the head it points to, then calls [CheckHead]
// to make sure the record and the head agree: the record's value is
// /ipfs/<head CID> (CIDv1, dag-cbor, sha2-256) and its sequence equals the
// head's seq.
//
// What is here:
//   - [BuildRecord] makes the record for a head (boxo/ipns, V1-compatible
//     signature as boxo makes by default);
//   - [ParseRecord] unmarshals it with a size limit, validates it against the
//     cluster name and a caller-supplied now, and extracts head CID, sequence,
//     EOL and TTL; [Select] and [Compare] pick the best of several records by
//     fixed rules, whatever order they arrive in;
//   - [WriteRecordFile] and [ReadRecordFile] move a record as a file named
//     [RecordFileName] (<cluster name>.ipns), holding the raw marshaled record
//     as `ipfs routing put` expects it, so that a record can travel by any
//     means and still be verified.
//
// Nothing here reads the wall clock, touches the network or starts a
// goroutine: time is a parameter. (boxo's ipns.Validate compares the EOL with
// time.Now; ParseRecord sets that verdict aside and decides expiry against its
// own now parameter, so results depend on inputs only.)
//
// Records are parsed more strictly than boxo alone does: see ParseRecord.
// The wire rules are written down in docs/protocol.md, section "IPNS records".
package publish
