package trust

import (
	"errors"
	"testing"

	"github.com/pinfold/pinfold/dag"
)

func TestVerifySigned(t *testing.T) {
	rules := testRules(t, "k1")
	parent := dag.CID([]byte("a parent nobody has"))
	_, good, _ := signHead(t, spec{cluster: rules.Cluster, signer: testKey(t, "k1"), trust: trustSet(t, "k1"), seq: 7, time: baseTime, parent: &parent})
	_, byK2, _ := signHead(t, spec{cluster: rules.Cluster, signer: testKey(t, "k2"), trust: trustSet(t, "k1"), seq: 7, time: baseTime, parent: &parent})
	_, otherCluster, _ := signHead(t, spec{cluster: testID(t, "elsewhere"), signer: testKey(t, "k1"), trust: trustSet(t, "k1"), seq: 7, time: baseTime, parent: &parent})
	junkSig := resign(t, good, func(sh *dag.SignedHead) { sh.Sig.Sig[0] ^= 1 })
	bumped := resign(t, good, func(sh *dag.SignedHead) { sh.Head.Seq++ })
	tests := []struct {
		name      string
		authority [][]byte
		data      []byte
		want      error
	}{
		{"signed by a key of the set", trustSet(t, "k1"), good, nil},
		{"missing parent is not its business", trustSet(t, "k2", "k1"), good, nil},
		{"signer outside the set", trustSet(t, "k1"), byK2, ErrUntrustedSigner},
		{"empty set", nil, good, ErrUntrustedSigner},
		{"junk signature", trustSet(t, "k1"), junkSig, ErrBadSignature},
		{"head changed after signing", trustSet(t, "k1"), bumped, ErrBadSignature},
		{"other cluster", trustSet(t, "k1"), otherCluster, ErrWrongCluster},
		{"not a head", trustSet(t, "k1"), []byte("junk"), ErrMalformed},
		{"oversized", trustSet(t, "k1"), make([]byte, dag.MaxBlockSize+1), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sh, err := VerifySigned(rules, tc.authority, tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == nil && sh.Head.Seq != 7 {
				t.Fatalf("decoded seq %d", sh.Head.Seq)
			}
		})
	}
}

// BenchmarkVerifySigned measures the relay check of one head
// announcement: strict decoding and one ed25519 verification.
func BenchmarkVerifySigned(b *testing.B) {
	rules := testRules(b, "k1")
	parent := dag.CID([]byte("p"))
	_, data, _ := signHead(b, spec{cluster: rules.Cluster, signer: testKey(b, "k1"), trust: trustSet(b, "k1", "k2", "k3"), seq: 7, time: baseTime, parent: &parent})
	auth := trustSet(b, "k1", "k2", "k3")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifySigned(rules, auth, data); err != nil {
			b.Fatal(err)
		}
	}
}
