package trust

import (
	"crypto/ed25519"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/dag"
)

// BenchmarkVerifyHead: one child head with a three-key trust set, checked
// against its verified parent: decode, rules, one ed25519 verification.
func BenchmarkVerifyHead(b *testing.B) {
	rules := testRules(b, "k1")
	_, gData, _ := signHead(b, spec{cluster: rules.Cluster, signer: testKey(b, "k1"), trust: trustSet(b, "k1", "k2", "k3"), time: baseTime})
	g, err := VerifyHead(rules, nil, gData, testNow)
	if err != nil {
		b.Fatal(err)
	}
	_, data, _ := signHead(b, spec{cluster: rules.Cluster, signer: testKey(b, "k2"), trust: trustSet(b, "k1", "k2", "k3"),
		seq: 1, time: baseTime + 1, parent: &g.CID})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyHead(rules, &g, data, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAck: one follower ACK: decode, cluster and signer checks,
// one ed25519 verification.
func BenchmarkVerifyAck(b *testing.B) {
	cluster := testID(b, "cluster")
	data := signedAckBytes(b, testKey(b, "f1"), testAck(b, "f1"))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyAck(cluster, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyOffer(b *testing.B) {
	cluster := testID(b, "cluster")
	data := signedOfferBytes(b, testKey(b, "f1"), testOffer(b, "f1"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyOffer(cluster, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Verify is the floor under VerifyAck: crypto/ed25519
// verifying the same ACK message, nothing else.
func BenchmarkEd25519Verify(b *testing.B) {
	sa, err := SignAck(testKey(b, "f1"), testAck(b, "f1"))
	if err != nil {
		b.Fatal(err)
	}
	msg, _ := dag.AckSigningBytes(sa.Ack)
	pub, _ := publicKey(sa.Sig.Signer)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sa.Sig.Sig) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkSignAck(b *testing.B) {
	k, a := testKey(b, "f1"), testAck(b, "f1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignAck(k, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyChain1000: a 1,000-head chain with rotations from genesis;
// ns/op is for the whole chain.
func BenchmarkVerifyChain1000(b *testing.B) {
	ch := buildChain(b, 1000, 1)
	to := ch.heads[ch.last()]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyChain(ch.rules, cid.Undef, to, ch.blocks.get, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
