// Package p2p is the one libp2p node every pinfold process runs: a host
// (TCP and QUIC), gossipsub topics guarded by validators, and bitswap with
// a block and DAG service, all on the same identity.
//
// # Life cycle
//
//	n, err := p2p.New(key, cfg, logger) // host, gossipsub, bitswap started
//	t, err := n.JoinTopic(name, validate) // validator registered, then joined
//	go n.Run(ctx)                       // bootstrap, remembered peers, peers file
//	...
//	n.Close()                           // Run, gossipsub, bitswap, host, in order
//
// Goroutine ownership: libp2p, gossipsub and bitswap start goroutines in
// New (they cannot be built otherwise) and Close stops them. Run starts
// only its dials, which it waits for before returning; Close waits for Run.
//
// # Finding the cluster
//
// There is no public bootstrap, mDNS, DHT or peer exchange by default.
// Run dials Config.Bootstrap and keeps those peers connected (backoff,
// protected from connection trimming). Every peer speaking gossipsub that
// the node gets connected to is remembered in Config.PeersFile (bounded,
// newest first, written atomically) and dialled on the next start like a
// bootstrap peer, so a restart finds the cluster without the bootstrap
// list. Remembered peers are redialled only while the node has fewer than
// Config.ConnLow connections.
//
// Curators and followers treat remembered peers the same way: the file
// holds addresses, not trust. Whatever a peer sends is judged by the
// signatures on it (topic validators, the signed DAG), never by how we
// found the peer. The only thing a hostile peer gains by being remembered
// is a dial attempt every few minutes; by connecting many identities it
// can push honest peers out of the bounded list, which the bootstrap list
// still covers.
//
// SetMembers adds cluster members to keep connected (at most
// Config.KeepMembers, their claimed addresses filtered; tagged, not
// protected, in the connection manager), dialled whatever the number of
// connections. Bootstrap peers, and members once reached, are redialled
// at most Config.KeepReconnectMax apart (5 s), past libp2p's own dial
// backoff, so a healed partition is noticed within seconds; a member
// never reached backs off like a remembered peer, so claimed addresses
// cannot make the node dial a stranger every few seconds.
//
// # DHT
//
// Config.DHT can add a Kademlia DHT (go-libp2p-kad-dht) in client,
// server or auto mode, under a protocol prefix ("/ipfs", the public IPFS
// DHT, by default; a private network picks its own). It is off by default
// and has no public bootstrap peers: DHTConfig.Bootstrap lists the only
// ones it dials itself, and connected peers running a DHT server with the
// same prefix join its routing table. Its validator accepts IPNS records
// (boxo's ipns.Validator: signature by the name's key, shape, EOL) under
// /ipns/ and public keys under /pk/, nothing else; every server checks
// what it is asked to store and every lookup checks what it receives.
// PutRecord and GetRecord store and find a name's IPNS record; the
// record store is in memory, so a restarted node republishes. No address
// filter is set, so loopback and LAN peers are usable. The DHT starts in
// New and stops in Close.
//
// # Topics
//
// Gossipsub runs with StrictSign: every message we publish is signed by
// our key and every message received must carry a valid signature from
// its author, checked before any validator runs. A topic's gate then
// applies, in order: the payload size limit (ValidationReject), a token
// bucket per forwarding peer (ValidationIgnore, since an honest relay may
// forward a flood it did not author), and the caller's Validator
// (ValidationReject on error). Each refusal is logged, counted per reason
// (Prometheus counter pinfold_p2p_pubsub_rejections_total{topic,reason}
// when Config.Metrics is set, and RejectionCounts), and kept in a bounded
// list for status displays (Rejections). Drops gossipsub makes before the
// gate (bad signatures, full validation queue) and messages lost to a
// slow subscriber are recorded the same way.
//
// The rate limit applies to msg.ReceivedFrom, the peer that handed us the
// message. Authorization must use msg.GetFrom(), the signed author.
//
// Gossipsub forwards full messages only to its mesh, which a newly
// subscribed peer joins at the next heartbeat (about a second). A message
// published or forwarded before then can miss that peer for good, so
// Topic.Publish waits briefly for a mesh, Topic.MeshPeers shows it, and
// senders of state (heads, CRDT broadcasts) should republish.
//
// # Blocks
//
// Bitswap (client and server) runs over Config.Blockstore. It asks
// connected peers first; when none has a block within
// BitswapConfig.SearchDelay, it asks the cluster DHT (or, when that is
// off, the other DHT) for holders and connects to them. Without a DHT
// it asks connected peers only, so callers connect to the peers that
// hold what they want before fetching. BlockService and DAGService are
// built on it.
//
// # Reachability and providing
//
// Config.Relay, StaticRelays, HolePunching, NATPortMap, RelayService,
// AutoNATService and ForceReachability set up NAT traversal (natOptions);
// NATStatus reports AutoNAT's verdict, the relay addresses held and the
// direct and relayed peers. Provide announces held roots in every DHT
// the node runs through kad-dht's sweeping provider (ProvideConfig).
// Boxo v0.43 waits at least 20 ms between two want messages to the same
// peer, so fetching a chain one block at a time costs about 20 ms per
// block; fetch many CIDs per call (DAGService.GetMany, merkledag.Walk
// with concurrency) to fill each message. BitswapConfig records the
// other choices and why.
//
// A guard on bitswap's network penalises peers that lie: blocks nobody
// asked for (wrong bytes), or want-blocks left unanswered past
// BitswapConfig.PromiseTimeout. The peer is logged, counted
// (BitswapPenaltyCounts, pinfold_p2p_bitswap_penalties_total),
// disconnected and refused by the host's connection gater for
// BitswapConfig.Penalty, so bitswap sessions turn to the other holders.
//
// Bitswap's streams pass through Config.Bandwidth's upload and download
// token buckets (one per direction, shared by all peers; see
// BandwidthConfig), and are metered: Node.Bandwidth returns the rates over
// the last 10 s, the totals and the limits. Gossipsub, the DHT and other
// protocols are neither limited nor counted.
package p2p
