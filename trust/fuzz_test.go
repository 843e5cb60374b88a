package trust

import (
	"bytes"
	"testing"
)

// The fuzz targets feed arbitrary bytes to the verifiers. Nothing may
// panic; every rejection carries one of the package's sentinels; and since
// no one can forge a signature or a second encoding of a signed record,
// the only inputs accepted are the exact seed blocks.

func fuzzVerify(f *testing.F, seeds [][]byte, verify func([]byte) error) {
	for _, s := range seeds {
		if err := verify(s); err != nil {
			f.Fatalf("seed rejected: %v", err)
		}
		f.Add(s)
		f.Add(s[:len(s)-1])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		err := verify(data)
		if err == nil {
			for _, s := range seeds {
				if bytes.Equal(s, data) {
					return
				}
			}
			t.Fatalf("accepted bytes that are not a signed seed: %x", data)
		}
		if kind(err) == "other" {
			t.Fatalf("rejection without a sentinel: %v", err)
		}
	})
}

func FuzzVerifyHead(f *testing.F) {
	rules := testRules(f, "k1")
	_, gData, _ := signHead(f, spec{cluster: rules.Cluster, signer: testKey(f, "k1"), trust: trustSet(f, "k1", "k2"), time: baseTime})
	g, err := VerifyHead(rules, nil, gData, testNow)
	if err != nil {
		f.Fatal(err)
	}
	_, aData, _ := signHead(f, spec{cluster: rules.Cluster, signer: testKey(f, "k2"), trust: trustSet(f, "k2"),
		seq: 1, time: baseTime + 1, parent: &g.CID})
	fuzzVerify(f, [][]byte{gData, aData}, func(b []byte) error {
		_, err1 := VerifyHead(rules, nil, b, testNow)
		_, err2 := VerifyHead(rules, &g, b, testNow)
		if err1 == nil || err2 == nil {
			return nil
		}
		return err2
	})
}

func FuzzVerifyAck(f *testing.F) {
	cluster := testID(f, "cluster")
	seed := signedAckBytes(f, testKey(f, "f1"), testAck(f, "f1"))
	fuzzVerify(f, [][]byte{seed}, func(b []byte) error { _, err := VerifyAck(cluster, b); return err })
}

func FuzzVerifyOffer(f *testing.F) {
	cluster := testID(f, "cluster")
	seed := signedOfferBytes(f, testKey(f, "f1"), testOffer(f, "f1"))
	fuzzVerify(f, [][]byte{seed}, func(b []byte) error { _, err := VerifyOffer(cluster, b); return err })
}

func FuzzVerifyAudit(f *testing.F) {
	cluster := testID(f, "cluster")
	pass := signedAuditBytes(f, testKey(f, "k1"), testAudit(f, "k1", "f1"))
	failed := testAudit(f, "k1", "f1")
	failed.Result, failed.Reason = "fail", "audit: block missing"
	fail := signedAuditBytes(f, testKey(f, "k1"), failed)
	fuzzVerify(f, [][]byte{pass, fail}, func(b []byte) error { _, err := VerifyAudit(cluster, b); return err })
}
