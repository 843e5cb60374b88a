// Package audit is proof of possession: a curator (the auditor) challenges
// a member (the holder) to show that it stores a shard's blocks, and
// checks the answer without trusting the holder.
//
// A Challenge names the shard, the head its pin list comes from, the
// shard's content digest, a fresh 32-byte nonce and k roots that the
// auditor sampled from the shard's pins, weighted by pin size (Sample).
// For each root the holder answers the blocks of one root-to-leaf path,
// which the nonce picks (the path rule, see PathDomain): at each depth,
// one child of the block, weighted by dag-pb Tsize, so that a path lands
// on a leaf about in proportion to its bytes. The holder cannot know the
// paths before the nonce arrives, so it must hold every block it may be
// asked for; a holder missing a fraction f of the shard's bytes fails
// each path with probability at least f (Detection).
//
// Verify checks an answer: the first block hashes to the root, each next
// block to the link the rule picks in the block before, and the path ends
// where the rule ends it. Verify, Sample, Detection and the wire codecs
// are pure: no clock, no network, no goroutines. Answer computes an
// answer from a local block store. Serve and Client carry the exchange
// over a libp2p stream (ProtocolID), with a deadline and bounded sizes.
//
// Who may challenge (the curators), when to audit, and what a result
// means for a member are the caller's policy; Challenge.Record builds the
// dag.Audit entry a curator signs (trust.SignAudit) and logs in a head.
// docs/protocol.md specifies the wire formats; docs/audits.md the
// protocol and the detection computation.
package audit
