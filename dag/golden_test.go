package dag

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// TestGolden pins the wire format: every fixture must encode to exactly the
// bytes and CID recorded in testdata/golden/<name>.golden, and those bytes
// must decode back to the fixture. A change here is a format change: it
// needs a new Version, not a new golden file. The version 1 files were
// written by format version 1 and are never regenerated differently.
func TestGolden(t *testing.T) {
	for _, tc := range codecCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.encode()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.name+".golden")
			if *update {
				writeGolden(t, path, tc.name, tc.version, b)
			}
			wantCID, want := readGolden(t, path)
			if !bytes.Equal(b, want) {
				t.Fatalf("encoding changed:\n got %x\nwant %x", b, want)
			}
			if got := CID(b).String(); got != wantCID {
				t.Fatalf("CID %s, golden %s", got, wantCID)
			}
			v, err := tc.decode(want)
			if err != nil {
				t.Fatalf("decode golden bytes: %v", err)
			}
			if !reflect.DeepEqual(normalize(v), normalize(tc.value)) {
				t.Fatalf("golden bytes decode to %+v, want %+v", v, tc.value)
			}
		})
	}
}

func writeGolden(t *testing.T, path, name string, version int, b []byte) {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "# pinfold dag format version %d: %s (%d bytes).\n", version, name, len(b))
	sb.WriteString("# Regenerate only for a deliberate format change: go test ./dag -run TestGolden -update\n")
	fmt.Fprintf(&sb, "cid %s\n", CID(b))
	h := hex.EncodeToString(b)
	for len(h) > 0 {
		n := min(64, len(h))
		sb.WriteString(h[:n] + "\n")
		h = h[n:]
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readGolden(t *testing.T, path string) (string, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var c string
	var h strings.Builder
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "cid "):
			c = strings.TrimPrefix(line, "cid ")
		default:
			h.WriteString(line)
		}
	}
	b, err := hex.DecodeString(h.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c, b
}
