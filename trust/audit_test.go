package trust

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pinfold/pinfold/dag"
)

func TestVerifyAudit(t *testing.T) {
	cluster := testID(t, "cluster")
	k1, k2, f1 := testKey(t, "k1"), testKey(t, "k2"), testKey(t, "f1")
	audit := testAudit(t, "k1", "f1")
	failed := audit
	failed.Result, failed.Reason, failed.Samples = dag.ResultFail, "audit: block missing: path 2", 2
	otherCluster := audit
	otherCluster.Cluster = []byte(testID(t, "other-cluster"))
	// forge signs the audit under domain with key and claims signer id.
	forge := func(a dag.Audit, key crypto.PrivKey, domain string, id []byte) []byte {
		msg, err := dag.AuditSigningBytes(a)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := key.Sign(append([]byte(domain), msg[len(dag.AuditDomain):]...))
		if err != nil {
			t.Fatal(err)
		}
		data, err := dag.EncodeSignedAudit(dag.SignedAudit{Audit: a, Sig: dag.Signature{Signer: id, Sig: sig}})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// A version 1 audit cannot be encoded; write the bytes by hand.
	v1 := bytes.Replace(signedAuditBytes(t, k1, audit), []byte("\x67version\x02"), []byte("\x67version\x01"), 1)
	ackData := signedAckBytes(t, f1, testAck(t, "f1"))

	for _, tc := range []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"pass", signedAuditBytes(t, k1, audit), nil, ""},
		{"fail", signedAuditBytes(t, k1, failed), nil, ""},
		{"wrong cluster", signedAuditBytes(t, k1, otherCluster), ErrWrongCluster, ""},
		{"signed by another curator", forge(audit, k2, dag.AuditDomain, []byte(testID(t, "k2"))), ErrSignerMismatch, ""},
		{"claims the auditor, signed by another", forge(audit, k2, dag.AuditDomain, audit.Auditor), ErrBadSignature, ""},
		{"signed by the holder", forge(audit, f1, dag.AuditDomain, audit.Auditor), ErrBadSignature, ""},
		{"signed under the ack domain", forge(audit, k1, dag.AckDomain, audit.Auditor), ErrBadSignature, ""},
		{"signed under the head domain", forge(audit, k1, dag.HeadDomain, audit.Auditor), ErrBadSignature, ""},
		{"version 1", v1, ErrUnknownVersion, "version 1 for an audit"},
		{"an ack", ackData, ErrMalformed, ""},
		{"garbage", []byte("audit"), ErrMalformed, ""},
		{"oversized", make([]byte, dag.MaxBlockSize+1), ErrTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyAudit(cluster, tc.data)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Audit.Holder, audit.Holder) || got.Audit.Shard != audit.Shard {
					t.Fatalf("wrong audit returned: %+v", got.Audit)
				}
				if err := VerifyLoggedAudit(cluster, got); err != nil {
					t.Fatalf("logged form: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
			t.Log(err)
		})
	}

	// A logged audit whose fields were changed after signing fails.
	sa, err := SignAudit(k1, audit)
	if err != nil {
		t.Fatal(err)
	}
	sa.Audit.Result, sa.Audit.Reason = dag.ResultFail, "edited"
	if err := VerifyLoggedAudit(cluster, sa); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("edited logged audit: %v, want ErrBadSignature", err)
	}
	// Signing for another auditor, or an invalid audit, is refused.
	if _, err := SignAudit(k2, audit); !errors.Is(err, ErrSignerMismatch) {
		t.Fatalf("SignAudit for another auditor: %v", err)
	}
	bad := audit
	bad.Nonce = bad.Nonce[:5]
	if _, err := SignAudit(k1, bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("SignAudit of an invalid audit: %v", err)
	}
}

// TestHeadVersions: a version 1 chain still verifies; a version 2 head may
// follow a version 1 parent; a version 1 head may not follow a version 2
// parent.
func TestHeadVersions(t *testing.T) {
	rules := testRules(t, "k1")
	k1 := testKey(t, "k1")
	gCID, gData, _ := signHead(t, spec{cluster: rules.Cluster, signer: k1, trust: trustSet(t, "k1"), time: baseTime, version: 1})
	g, err := VerifyHead(rules, nil, gData, testNow)
	if err != nil {
		t.Fatalf("version 1 genesis: %v", err)
	}
	child := func(parent cid.Cid, seq, version int64) []byte {
		_, d, _ := signHead(t, spec{cluster: rules.Cluster, signer: k1, trust: trustSet(t, "k1"),
			seq: seq, time: baseTime + seq, parent: &parent, version: version})
		return d
	}
	v1, err := VerifyHead(rules, &g, child(gCID, 1, 1), testNow)
	if err != nil {
		t.Fatalf("version 1 child of version 1: %v", err)
	}
	v2, err := VerifyHead(rules, &v1, child(v1.CID, 2, 2), testNow)
	if err != nil {
		t.Fatalf("version 2 child of version 1: %v", err)
	}
	if _, err := VerifyHead(rules, &v2, child(v2.CID, 3, 2), testNow); err != nil {
		t.Fatalf("version 2 child of version 2: %v", err)
	}
	_, err = VerifyHead(rules, &v2, child(v2.CID, 3, 1), testNow)
	if !errors.Is(err, ErrVersionDowngrade) || !strings.Contains(err.Error(), "version 1 after parent") {
		t.Fatalf("version 1 child of version 2: %v, want ErrVersionDowngrade", err)
	}
	t.Log(err)
}
