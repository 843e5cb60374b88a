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
// The algorithm (Algorithm, Version) ranks members per shard by stratified
// weighted rendezvous and bounds each member's load at (1+epsilon) times
// the mean fill. Version 1 is a global greedy matching under that bound.
// Version 2 first takes the plain rendezvous assignment, trims each member
// over its bound by the shards it ranks worst, and places those copies with
// the same greedy matching, which moves fewer bytes when a member joins,
// leaves or changes its pledge. Version 3, the newest, is version 2 plus a
// bounded repair (repair.go): a shard the matching left short although the
// pledges have room in pieces gets a holder whose room is made by moving
// copies of other shards to members with room. Compute computes every
// version, so a published map never changes. docs/allocation.md describes
// the algorithm, its guarantees, the lower bounds its movement is measured
// against, and the measured figures. Packer forms shards from pins without
// reshuffling existing ones. The sim subpackage measures balance, movement
// and speed on synthetic clusters.
package allocation
