package trust

import (
	"bytes"
	"errors"
	"sort"
	"strings"
	"testing"
)

// TestEveryBitFlipRejected: for one block of each signed type, every
// single-bit mutation of its bytes is rejected, and with one of this
// package's errors. Exhaustive over bits.
func TestEveryBitFlipRejected(t *testing.T) {
	rules := testRules(t, "k1")
	_, gData, _ := signHead(t, spec{cluster: rules.Cluster, signer: testKey(t, "k1"), trust: trustSet(t, "k1", "k2"), time: baseTime})
	g, err := VerifyHead(rules, nil, gData, testNow)
	if err != nil {
		t.Fatal(err)
	}
	_, aData, _ := signHead(t, spec{cluster: rules.Cluster, signer: testKey(t, "k2"), trust: trustSet(t, "k2", "k3"),
		seq: 1, time: baseTime + 1000, parent: &g.CID})
	ackData := signedAckBytes(t, testKey(t, "f1"), testAck(t, "f1"))
	offerData := signedOfferBytes(t, testKey(t, "f1"), testOffer(t, "f1"))
	auditData := signedAuditBytes(t, testKey(t, "k1"), testAudit(t, "k1", "f1"))
	_, v1Data, _ := signHead(t, spec{cluster: rules.Cluster, signer: testKey(t, "k1"), trust: trustSet(t, "k1"), time: baseTime, version: 1})

	for _, tc := range []struct {
		name   string
		data   []byte
		verify func([]byte) error
	}{
		{"genesis head", gData, func(b []byte) error { _, err := VerifyHead(rules, nil, b, testNow); return err }},
		{"head", aData, func(b []byte) error { _, err := VerifyHead(rules, &g, b, testNow); return err }},
		{"ack", ackData, func(b []byte) error { _, err := VerifyAck(rules.Cluster, b); return err }},
		{"offer", offerData, func(b []byte) error { _, err := VerifyOffer(rules.Cluster, b); return err }},
		{"audit", auditData, func(b []byte) error { _, err := VerifyAudit(rules.Cluster, b); return err }},
		{"version 1 genesis head", v1Data, func(b []byte) error { _, err := VerifyHead(rules, nil, b, testNow); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.verify(tc.data); err != nil {
				t.Fatalf("unmutated block rejected: %v", err)
			}
			kinds := map[string]int{}
			for i := range tc.data {
				for bit := range 8 {
					m := bytes.Clone(tc.data)
					m[i] ^= 1 << bit
					err := tc.verify(m)
					if err == nil {
						t.Fatalf("flipping bit %d of byte %d was accepted", bit, i)
					}
					kinds[kind(err)]++
				}
			}
			var summary []string
			for k, n := range kinds {
				summary = append(summary, k+"="+itoa(n))
			}
			sort.Strings(summary)
			t.Logf("%d bytes, %d mutations rejected: %s", len(tc.data), 8*len(tc.data), strings.Join(summary, " "))
			if kinds["other"] > 0 {
				t.Fatalf("%d rejections without a known sentinel", kinds["other"])
			}
		})
	}
}

var sentinels = []struct {
	name string
	err  error
}{
	{"fork", ErrFork},
	{"bad-signature", ErrBadSignature},
	{"untrusted-signer", ErrUntrustedSigner},
	{"stale-seq", ErrStaleSeq},
	{"wrong-cluster", ErrWrongCluster},
	{"future-time", ErrFutureTime},
	{"past-time", ErrPastTime},
	{"parent-mismatch", ErrParentMismatch},
	{"signer-mismatch", ErrSignerMismatch},
	{"chain-too-long", ErrChainTooLong},
	{"not-descendant", ErrNotDescendant},
	{"version-downgrade", ErrVersionDowngrade},
	{"unknown-version", ErrUnknownVersion},
	{"too-large", ErrTooLarge},
	{"malformed", ErrMalformed},
}

// kind names the first sentinel err wraps, or "other".
func kind(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other"
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
