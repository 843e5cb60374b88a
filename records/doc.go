// Package records holds the followers' signed records on the wire: the
// gossipsub validators of offers and ACK batches, and the acceptance of
// ACKs (Book) against the recent verified heads (Window): an ACK counts
// only if its peer is a member of the head it names, the shard exists
// there and is assigned to it, the head is recent, and it is newer than
// the one accepted before. Curators and followers register the same
// validators, so a record that one peer forwards, every peer would have
// accepted.
package records
