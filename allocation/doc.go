// Package allocation decides, from signed inputs alone, which member holds
// which shard, and groups pins into shards.
//
// Compute is a pure function of an Input (members with their pledges,
// failure domains and offline marks; shards with their sizes and
// replication bounds; cluster parameters; overrides) that every peer
// evaluates to the same Plan, byte for byte, on any platform: it reads no
// clock, no global randomness and no network, starts no goroutines, and
// uses integer arithmetic only. It is stateless: the plan for a head is
// computed from that head alone, so a follower that joins late needs no
// history.
//
// The algorithm (Algorithm, Version) is a global greedy matching over a
// stratified weighted-rendezvous ranking with a per-member load bound of
// (1+epsilon) times the mean fill; docs/allocation.md describes it, its
// guarantees, the lower bounds its movement is measured against, and the
// measured figures. Packer forms shards from pins without reshuffling
// existing ones. The sim subpackage measures balance, movement and speed
// on synthetic clusters.
package allocation
