package publish

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
)

func TestRecordFileName(t *testing.T) {
	name := testName(t, testKey(t, 1))
	got := RecordFileName(name)
	if want := name.String() + ".ipns"; got != want {
		t.Fatalf("RecordFileName = %q, want %q", got, want)
	}
	if !strings.HasPrefix(got, "k51") {
		t.Errorf("RecordFileName = %q, want the base36 libp2p-key CID (k51...)", got)
	}
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteReadRecordFile(t *testing.T) {
	k := testKey(t, 1)
	name := testName(t, k)
	dir := t.TempDir()
	p := filepath.Join(dir, RecordFileName(name))

	r1 := build(t, k, testHead(t, 1), 1, t0, DefaultRecordConfig())
	if err := WriteRecordFile(p, r1.Raw); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	got, err := ReadRecordFile(p, name, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Raw, r1.Raw) || got.Seq != 1 {
		t.Errorf("read back seq %d, %d bytes; want seq 1, the written bytes", got.Seq, len(got.Raw))
	}

	// Overwrite with a newer record: the file is replaced, nothing is left over.
	r2 := build(t, k, testHead(t, 2), 2, t0, DefaultRecordConfig())
	if err := WriteRecordFile(p, r2.Raw); err != nil {
		t.Fatal(err)
	}
	got, err = ReadRecordFile(p, name, t0)
	if err != nil || got.Seq != 2 {
		t.Fatalf("after overwrite: seq %d, %v; want seq 2", got.Seq, err)
	}
	if names := dirEntries(t, dir); len(names) != 1 || names[0] != RecordFileName(name) {
		t.Errorf("directory holds %v, want only %s", names, RecordFileName(name))
	}

	// A relative path in the working directory works too.
	t.Chdir(dir)
	if err := WriteRecordFile("rel.ipns", r2.Raw); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecordFile("rel.ipns", name, t0); err != nil {
		t.Fatal(err)
	}
}

func TestWriteRecordFileRejects(t *testing.T) {
	valid := build(t, testKey(t, 1), testHead(t, 1), 1, t0, DefaultRecordConfig()).Raw
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"garbage", []byte("not a record"), ErrMalformed},
		{"oversized", append(bytes.Clone(valid), make([]byte, ipns.MaxRecordSize)...), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := WriteRecordFile(filepath.Join(dir, "x.ipns"), tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if names := dirEntries(t, dir); len(names) != 0 {
				t.Errorf("directory holds %v after a refused write", names)
			}
		})
	}
	// The target is a directory: the rename fails, the temporary file is removed.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteRecordFile(filepath.Join(dir, "sub"), valid); err == nil {
		t.Error("writing over a directory succeeded")
	}
	if names := dirEntries(t, dir); len(names) != 1 || names[0] != "sub" {
		t.Errorf("directory holds %v after a failed rename, want only sub", names)
	}
	// A directory that does not exist: error, nothing created.
	if err := WriteRecordFile(filepath.Join(t.TempDir(), "missing", "x.ipns"), valid); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("write into missing directory: %v, want fs.ErrNotExist", err)
	}
}

func TestReadRecordFileRejects(t *testing.T) {
	k := testKey(t, 1)
	name := testName(t, k)
	valid := build(t, k, testHead(t, 1), 1, t0, DefaultRecordConfig()).Raw
	dir := t.TempDir()
	write := func(n string, data []byte) string {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		path   string
		verify ipns.Name
		now    time.Time
		want   error
	}{
		{"missing", filepath.Join(dir, "nope.ipns"), name, t0, fs.ErrNotExist},
		{"empty", write("empty.ipns", nil), name, t0, ErrMalformed},
		{"truncated", write("trunc.ipns", valid[:len(valid)/2]), name, t0, ErrMalformed},
		{"oversized", write("big.ipns", make([]byte, ipns.MaxRecordSize+1)), name, t0, ErrTooLarge},
		{"a directory", dir, name, t0, nil}, // the OS error, whichever it is
		{"wrong cluster", write("other.ipns", valid), testName(t, testKey(t, 2)), t0, ErrBadSignature},
		{"expired", write("old.ipns", valid), name, t0.Add(49 * time.Hour), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadRecordFile(tt.path, tt.verify, tt.now)
			if tt.want == nil {
				if err == nil {
					t.Fatal("ReadRecordFile succeeded")
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.path) && tt.name != "missing" {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	// A record file exactly at the limit is read in full (and then judged
	// as a record, not refused for its size).
	_, err := ReadRecordFile(write("limit.ipns", make([]byte, ipns.MaxRecordSize)), name, t0)
	if errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrMalformed) {
		t.Errorf("file of exactly MaxRecordSize zero bytes: %v, want ErrMalformed", err)
	}
}

// TestRecordFileIsRoutingRecord checks that the file holds what a DHT
// stores under /ipns/<name>: boxo's routing validator (the one `ipfs
// routing put` runs) accepts the bytes under the name's routing key. boxo
// checks expiry against the wall clock, so the record is valid until 2224.
func TestRecordFileIsRoutingRecord(t *testing.T) {
	k := testKey(t, 1)
	name := testName(t, k)
	r := build(t, k, testHead(t, 1), 3, t0, RecordConfig{Validity: farEOL, TTL: time.Minute})
	p := filepath.Join(t.TempDir(), RecordFileName(name))
	if err := WriteRecordFile(p, r.Raw); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := (ipns.Validator{}).Validate(string(name.RoutingKey()), raw); err != nil {
		t.Fatalf("ipns.Validator rejects the record file: %v", err)
	}
	if err := (ipns.Validator{}).Validate(string(testName(t, testKey(t, 2)).RoutingKey()), raw); err == nil {
		t.Fatal("ipns.Validator accepts the record file under another name")
	}
}
