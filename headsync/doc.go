// Package headsync keeps a process's view of its cluster's newest verified
// head. Candidate heads arrive from the heads topic, from peers asked over
// the head protocol, from record files and from the local curator; each is
// verified against the trust chain (package trust) from a head already
// verified or the configured checkpoint, the preferred one is kept
// durably, and it is served to peers together with its IPNS record, so a
// follower that comes late catches up from any peer, curator online or not.
package headsync
