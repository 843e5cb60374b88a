// Package ledger derives, from the logs of signed heads, what each member
// has committed to and what audits have proven: for every (member, shard)
// its newest recorded ACK and audit results, and for every member its
// audit record (passes, failures, the newest failure's reason).
//
// Only what a curator-signed head records counts. Gossip, a member's own
// clock, or anything a member says outside the chain never changes the
// ledger. It is a pure state machine: heads' log entries go in, in chain
// order, with the seq of the head that records them; decisions come out
// (Proven, Record). It does no I/O; package chainlog feeds it.
package ledger
