package publish

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/boxo/util"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// goldenRecord is the record the golden files hold: cluster key from seed
// byte 1, head testHead(1), seq 7, built at t0 with the default config.
func goldenRecord(t *testing.T) Record {
	t.Helper()
	k := testKey(t, 1)
	return build(t, k, testHead(t, 1), 7, t0, DefaultRecordConfig())
}

// describe renders a record and its protobuf layout as text.
func describe(t *testing.T, r Record) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# IPNS record for a pinfold head. Regenerate: go test ./publish -run TestGolden -update\n")
	fmt.Fprintf(&b, "cluster  %s\n", r.Name)
	fmt.Fprintf(&b, "file     %s\n", RecordFileName(r.Name))
	fmt.Fprintf(&b, "value    /ipfs/%s\n", r.Head)
	fmt.Fprintf(&b, "sequence %d\n", r.Seq)
	fmt.Fprintf(&b, "eol      %s\n", util.FormatRFC3339(r.EOL))
	fmt.Fprintf(&b, "ttl      %s (%d ns)\n", r.TTL, int64(r.TTL))
	fmt.Fprintf(&b, "size     %d bytes\n", len(r.Raw))
	names := map[int]string{1: "value", 2: "signatureV1", 3: "validityType", 4: "validity", 5: "sequence", 6: "ttl", 7: "pubKey", 8: "signatureV2", 9: "data"}
	fmt.Fprintf(&b, "# protobuf fields: number name [offset,end) bytes\n")
	for _, s := range fieldSpans(t, r.Raw) {
		fmt.Fprintf(&b, "%d %-12s [%3d,%3d) %x\n", s.num, names[int(s.num)], s.start, s.end, r.Raw[s.start:s.end])
	}
	return b.String()
}

func TestGoldenRecord(t *testing.T) {
	r := goldenRecord(t)
	rawPath := filepath.Join("testdata", RecordFileName(r.Name))
	txtPath := filepath.Join("testdata", "record.golden.txt")
	txt := describe(t, r)
	if *update {
		if err := WriteRecordFile(rawPath, r.Raw); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(txtPath, []byte(txt), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(rawPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(raw, r.Raw) {
		t.Errorf("BuildRecord output differs from %s:\n got %x\nwant %x", rawPath, r.Raw, raw)
	}
	wantTxt, err := os.ReadFile(txtPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(wantTxt) != txt {
		t.Errorf("description differs from %s:\n got:\n%s\nwant:\n%s", txtPath, txt, wantTxt)
	}

	// The golden file reads back, verified, with the fields it was built from.
	got, err := ReadRecordFile(rawPath, r.Name, t0)
	if err != nil {
		t.Fatalf("ReadRecordFile(golden): %v", err)
	}
	if !got.Head.Equals(testHead(t, 1)) || got.Seq != 7 || !got.EOL.Equal(t0.Add(DefaultRecordConfig().Validity)) ||
		got.TTL != DefaultRecordConfig().TTL {
		t.Errorf("golden record reads as %+v", got)
	}
}
