package trust

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// resign re-encodes sh after mutate, keeping its (now stale) signature.
func resign(t *testing.T, data []byte, mutate func(*dag.SignedHead)) []byte {
	t.Helper()
	sh, err := dag.DecodeSignedHead(data)
	if err != nil {
		t.Fatal(err)
	}
	mutate(&sh)
	out, err := dag.EncodeSignedHead(sh)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyHead(t *testing.T) {
	rules := testRules(t, "k1")
	cluster := rules.Cluster
	k1, k2, k3 := testKey(t, "k1"), testKey(t, "k2"), testKey(t, "k3")
	gCID, gData, _ := signHead(t, spec{cluster: cluster, signer: k1, trust: trustSet(t, "k1", "k2"), seq: 0, time: baseTime})
	g, err := VerifyHead(rules, nil, gData, testNow)
	if err != nil {
		t.Fatalf("genesis: %v", err)
	}
	if !g.CID.Equals(gCID) {
		t.Fatal("verified CID differs")
	}
	child := func(s spec) []byte {
		if s.cluster == "" {
			s.cluster = cluster
		}
		if s.signer == nil {
			s.signer = k2
		}
		if s.trust == nil {
			s.trust = trustSet(t, "k1", "k2")
		}
		if s.seq == 0 {
			s.seq = 1
		}
		if s.time == 0 {
			s.time = baseTime + 1000
		}
		if s.parent == nil {
			s.parent = &gCID
		}
		_, data, _ := signHead(t, s)
		return data
	}
	secp, _, _ := crypto.GenerateSecp256k1Key(seededReader("secp"))
	secpID, _ := peer.IDFromPrivateKey(secp)
	otherParent := dag.CID([]byte("elsewhere"))
	skewLimit := testNow.Add(DefaultMaxSkew).UnixMilli()
	okChild := child(spec{})
	version3 := resign(t, okChild, func(sh *dag.SignedHead) {})
	version3 = bytes.Replace(version3, []byte("\x67version\x02"), []byte("\x67version\x03"), 1)

	tests := []struct {
		name   string
		parent *Verified
		data   []byte
		rules  Rules
		want   error
		msg    []string
	}{
		{"child", &g, okChild, rules, nil, nil},
		{"child signed by the other curator", &g, child(spec{signer: k1}), rules, nil, nil},
		{"time at the skew limit", &g, child(spec{time: skewLimit}), rules, nil, nil},
		{"seq may jump", &g, child(spec{seq: 100}), rules, nil, nil},
		{"same time as parent", &g, child(spec{time: baseTime}), rules, nil, nil},

		{"genesis signer not configured", nil, func() []byte {
			_, d, _ := signHead(t, spec{cluster: cluster, signer: k2, trust: trustSet(t, "k2"), time: baseTime})
			return d
		}(), rules, ErrUntrustedSigner, []string{"genesis trust set", testID(t, "k2").String()}},
		{"signer not in parent's trust set", &g, child(spec{signer: k3}), rules, ErrUntrustedSigner,
			[]string{"verify head ", "trust: signer not trusted: signer " + testID(t, "k3").String() + " is not in the trust set of parent " + gCID.String() + " (seq 0)"}},
		{"wrong parent link", &g, child(spec{parent: &otherParent}), rules, ErrParentMismatch, []string{otherParent.String(), gCID.String()}},
		{"genesis where a child is expected", &g, gData, rules, ErrParentMismatch, nil},
		{"child where genesis is expected", nil, okChild, rules, ErrParentMismatch, nil},
		{"seq equal to parent", &g, func() []byte {
			_, d, _ := signHead(t, spec{cluster: cluster, signer: k2, trust: trustSet(t, "k2"), seq: 0, time: baseTime + 1, parent: &gCID})
			return d
		}(), rules, ErrStaleSeq, []string{"seq 0 is not greater than parent"}},
		{"time before parent", &g, child(spec{time: baseTime - 1}), rules, ErrPastTime, nil},
		{"time past the skew limit", &g, child(spec{time: skewLimit + 1}), rules, ErrFutureTime, []string{"max skew 5m0s"}},
		{"wrong cluster", &g, child(spec{cluster: testID(t, "other-cluster")}), rules, ErrWrongCluster, nil},
		{"non-ed25519 key in trust set", &g, child(spec{trust: append(trustSet(t, "k1", "k2"), []byte(secpID))}), rules, ErrNotEd25519, []string{"head.trust[2]"}},
		{"signature of another head", &g, resign(t, okChild, func(sh *dag.SignedHead) { sh.Head.Seq = 2 }), rules, ErrBadSignature, nil},
		{"signature bit flipped", &g, resign(t, okChild, func(sh *dag.SignedHead) { sh.Sig.Sig[5] ^= 1 }), rules, ErrBadSignature, nil},
		{"signer swapped", &g, resign(t, okChild, func(sh *dag.SignedHead) { sh.Sig.Signer = trustSet(t, "k1")[0] }), rules, ErrBadSignature, nil},
		{"unknown version", &g, version3, rules, ErrUnknownVersion, []string{"version 3"}},
		{"garbage", &g, []byte("garbage"), rules, ErrMalformed, nil},
		{"oversized", &g, make([]byte, dag.MaxBlockSize+1), rules, ErrTooLarge, nil},
		{"rules without trust", &g, okChild, Rules{Cluster: cluster}, ErrBadRules, []string{"rules.trust"}},
		{"rules with secp256k1 trust", nil, gData, Rules{Cluster: cluster, Trust: []peer.ID{secpID}}, ErrBadRules, []string{"rules.trust[0]"}},
		{"rules without cluster", nil, gData, Rules{Trust: rules.Trust}, ErrBadRules, []string{"rules.cluster"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := VerifyHead(tc.rules, tc.parent, tc.data, testNow)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if !v.CID.Equals(dag.CID(tc.data)) {
					t.Fatal("wrong CID")
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
			if tc.want != ErrBadRules && tc.want != ErrTooLarge && !strings.Contains(err.Error(), dag.CID(tc.data).String()) {
				t.Errorf("error %q does not name the head's CID", err)
			}
			t.Log(err)
		})
	}
}

// TestRemovedKeySignsNothing: after a head removes k1, nothing k1 signs
// on top of it verifies, while k2 still can.
func TestRemovedKeySignsNothing(t *testing.T) {
	rules := testRules(t, "k1")
	k1, k2 := testKey(t, "k1"), testKey(t, "k2")
	_, gData, _ := signHead(t, spec{cluster: rules.Cluster, signer: k1, trust: trustSet(t, "k1"), time: baseTime})
	g, err := VerifyHead(rules, nil, gData, testNow)
	if err != nil {
		t.Fatal(err)
	}
	// k1 rotates itself out in favour of k2.
	_, aData, _ := signHead(t, spec{cluster: rules.Cluster, signer: k1, trust: trustSet(t, "k2"), seq: 1, time: baseTime + 1, parent: &g.CID})
	a, err := VerifyHead(rules, &g, aData, testNow)
	if err != nil {
		t.Fatalf("rotation head: %v", err)
	}
	for _, seq := range []int64{2, 3, 1000} {
		_, bData, _ := signHead(t, spec{cluster: rules.Cluster, signer: k1, trust: trustSet(t, "k1"), seq: seq, time: baseTime + 2, parent: &a.CID})
		if _, err := VerifyHead(rules, &a, bData, testNow); !errors.Is(err, ErrUntrustedSigner) {
			t.Fatalf("removed key signed seq %d: %v, want ErrUntrustedSigner", seq, err)
		}
	}
	_, bData, _ := signHead(t, spec{cluster: rules.Cluster, signer: k2, trust: trustSet(t, "k2"), seq: 2, time: baseTime + 2, parent: &a.CID})
	if _, err := VerifyHead(rules, &a, bData, testNow); err != nil {
		t.Fatalf("new key: %v", err)
	}
}

func TestVerifyAckAndOffer(t *testing.T) {
	cluster := testID(t, "cluster")
	f1, f2 := testKey(t, "f1"), testKey(t, "f2")
	ack := testAck(t, "f1")
	offer := testOffer(t, "f1")
	secp, _, _ := crypto.GenerateSecp256k1Key(seededReader("secp"))
	secpID, _ := peer.IDFromPrivateKey(secp)

	// forge signs msg with key and claims signer id.
	forgeAck := func(a dag.Ack, key crypto.PrivKey, domain string, id []byte) []byte {
		msg, err := dag.AckSigningBytes(a)
		if err != nil {
			t.Fatal(err)
		}
		msg = append([]byte(domain), msg[len(dag.AckDomain):]...)
		sig, err := key.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != dag.SignatureLen {
			sig = bytes.Repeat([]byte{1}, dag.SignatureLen)
		}
		data, err := dag.EncodeSignedAck(dag.SignedAck{Ack: a, Sig: dag.Signature{Signer: id, Sig: sig}})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	otherCluster := testAck(t, "f1")
	otherCluster.Cluster = []byte(testID(t, "other-cluster"))
	secpAck := testAck(t, "f1")
	secpAck.Peer = []byte(secpID)
	released := ack
	released.State = dag.StateReleased

	ackTests := []struct {
		name string
		data []byte
		want error
	}{
		{"ok", signedAckBytes(t, f1, ack), nil},
		{"released", signedAckBytes(t, f1, released), nil},
		{"wrong cluster", signedAckBytes(t, f1, otherCluster), ErrWrongCluster},
		{"signed by another follower", forgeAck(ack, f2, dag.AckDomain, []byte(testID(t, "f2"))), ErrSignerMismatch},
		{"claims the peer, signed by another", forgeAck(ack, f2, dag.AckDomain, ack.Peer), ErrBadSignature},
		{"signed under the offer domain", forgeAck(ack, f1, dag.OfferDomain, ack.Peer), ErrBadSignature},
		{"signed under the head domain", forgeAck(ack, f1, dag.HeadDomain, ack.Peer), ErrBadSignature},
		{"secp256k1 peer", forgeAck(secpAck, secp, dag.AckDomain, []byte(secpID)), ErrNotEd25519},
		{"garbage", []byte{0xa2, 0x01}, ErrMalformed},
	}
	for _, tc := range ackTests {
		t.Run("ack/"+tc.name, func(t *testing.T) {
			got, err := VerifyAck(cluster, tc.data)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got.Ack.Shard != ack.Shard {
					t.Fatal("wrong ack returned")
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}

	if _, err := VerifyOffer(cluster, signedOfferBytes(t, f1, offer)); err != nil {
		t.Fatalf("offer: %v", err)
	}
	oc := offer
	oc.Cluster = []byte(testID(t, "other-cluster"))
	if _, err := VerifyOffer(cluster, signedOfferBytes(t, f1, oc)); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("offer for another cluster: %v", err)
	}
	// An ACK is not an offer, even with a valid signature.
	if _, err := VerifyOffer(cluster, signedAckBytes(t, f1, ack)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("ack verified as offer: %v", err)
	}
	// Signing a record for someone else is refused up front.
	if _, err := SignAck(f2, ack); !errors.Is(err, ErrSignerMismatch) {
		t.Fatalf("SignAck for another peer: %v", err)
	}
	if _, err := SignOffer(f2, offer); !errors.Is(err, ErrSignerMismatch) {
		t.Fatalf("SignOffer for another peer: %v", err)
	}
	if _, err := SignHead(secp, dag.Head{}); err == nil {
		t.Fatal("SignHead accepted an invalid head or a secp256k1 key")
	}
	bad := ack
	bad.State = "lost"
	if _, err := SignAck(f1, bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("SignAck of an invalid ack: %v", err)
	}
}

func TestSignHeadKeyType(t *testing.T) {
	secp, _, _ := crypto.GenerateSecp256k1Key(seededReader("secp"))
	h := dag.Head{
		Version: dag.Version, Cluster: []byte(testID(t, "cluster")), Time: baseTime,
		Trust: trustSet(t, "k1"), Pinset: fakePinset, Members: fakeMembers, Allocation: fakeAllocation,
	}
	if _, err := SignHead(secp, h); !errors.Is(err, ErrNotEd25519) {
		t.Fatalf("secp256k1 key: %v, want ErrNotEd25519", err)
	}
	sh, err := SignHead(testKey(t, "k1"), h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sh.Sig.Signer, []byte(testID(t, "k1"))) || len(sh.Sig.Sig) != dag.SignatureLen {
		t.Fatal("signature fields wrong")
	}
	// Deterministic: ed25519 signatures do not depend on randomness.
	sh2, _ := SignHead(testKey(t, "k1"), h)
	if !bytes.Equal(sh.Sig.Sig, sh2.Sig.Sig) {
		t.Fatal("signing is not deterministic")
	}
}

func TestRulesDefaults(t *testing.T) {
	r := testRules(t, "k1")
	r.MaxSkew = 0
	if r.maxSkew() != DefaultMaxSkew || r.maxChain() != DefaultMaxChain {
		t.Fatal("zero fields do not take the defaults")
	}
	r.MaxSkew = -time.Second
	if err := r.Validate(); !errors.Is(err, ErrBadRules) || !strings.Contains(err.Error(), "rules.max_skew") {
		t.Fatalf("negative skew: %v", err)
	}
	r.MaxSkew, r.MaxChain = 0, -1
	if err := r.Validate(); !errors.Is(err, ErrBadRules) || !strings.Contains(err.Error(), "rules.max_chain") {
		t.Fatalf("negative chain: %v", err)
	}
}
