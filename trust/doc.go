// Package trust decides who may sign what in a pinfold cluster.
//
// Curators sign heads (package dag's SignedHead) with ed25519 keys; the
// signature covers dag.HeadDomain || dagcbor(head). A head is valid as the
// child of a verified parent if its signer is in the parent's trust set,
// its seq is greater, it links the parent, it names the configured cluster
// and its time is neither before the parent's nor too far ahead of the
// verifier's clock. A genesis head is checked against the trust set the
// verifier was configured with (Rules.Trust). Changing the trust set (add,
// remove, rotate a key) is an ordinary head signed by a current curator;
// a removed key can sign nothing after the head that removed it.
//
// VerifyChain verifies every head from a known one to a new one, bounded
// in length. One curator signing two different heads with the same parent
// and seq is a fork, reported as a *ForkError with both CIDs; two curators
// racing from one parent is not, and Prefer picks between such heads
// deterministically (higher seq, then smaller CID bytes).
//
// Followers sign their ACKs and offers with their own peer key; VerifyAck
// and VerifyOffer check that the signer is the record's peer.
//
// Keys are libp2p ed25519 keys kept in files of mode 0600 (GenerateKey,
// SaveKey, LoadKey). The package reads no clock and no global randomness
// (now and the random source are parameters), starts no goroutines and
// does no I/O besides the key files.
package trust
