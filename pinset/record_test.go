package pinset

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
)

var update = flag.Bool("update", false, "rewrite golden files")

func goldenPin() Pin {
	c, err := cid.Decode("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	if err != nil {
		panic(err)
	}
	return Pin{
		CID:     c,
		Name:    "hello.txt",
		Size:    11,
		Shard:   42,
		ReplMin: 2,
		ReplMax: 3,
		Added:   time.UnixMilli(1_700_000_000_123).UTC(),
		Meta:    map[string]string{"source": "test", "b": "2"},
	}
}

// TestGolden pins the wire format of a record and of its key.
func TestGolden(t *testing.T) {
	p := goldenPin()
	b, err := EncodePin(p)
	if err != nil {
		t.Fatal(err)
	}
	got := "key " + pinKey(p.Shard, p.CID) + "\nvalue " + hex.EncodeToString(b) + "\n"
	path := filepath.Join("testdata", "pin.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("wire format changed:\n got %s\nwant %s", got, want)
	}
	back, err := DecodePin(b)
	if err != nil {
		t.Fatal(err)
	}
	if !pinsEqual(back, p) {
		t.Fatalf("round trip: %+v != %+v", back, p)
	}
}

func TestPinCheck(t *testing.T) {
	long := strings.Repeat("x", MaxNameBytes+1)
	v0, _ := cid.Decode("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n")
	for _, tc := range []struct {
		name  string
		edit  func(*Pin)
		field string // "" = valid
	}{
		{"valid", func(*Pin) {}, ""},
		{"cidv0", func(p *Pin) { p.CID = v0 }, ""},
		{"no meta", func(p *Pin) { p.Meta = nil }, ""},
		{"defaults", func(p *Pin) { p.ReplMin, p.ReplMax = 0, 0 }, ""},
		{"min only", func(p *Pin) { p.ReplMin, p.ReplMax = 5, 0 }, ""},
		{"undefined cid", func(p *Pin) { p.CID = cid.Undef }, "cid"},
		{"long name", func(p *Pin) { p.Name = long }, "name"},
		{"bad utf8 name", func(p *Pin) { p.Name = "\xff" }, "name"},
		{"negative size", func(p *Pin) { p.Size = -1 }, "size"},
		{"negative shard", func(p *Pin) { p.Shard = -1 }, "shard"},
		{"min above max", func(p *Pin) { p.ReplMin, p.ReplMax = 4, 3 }, "replication_min"},
		{"huge max", func(p *Pin) { p.ReplMax = MaxReplication + 1 }, "replication_max"},
		{"negative min", func(p *Pin) { p.ReplMin = -1 }, "replication_min"},
		{"zero time", func(p *Pin) { p.Added = time.Time{} }, "added"},
		{"empty meta key", func(p *Pin) { p.Meta = map[string]string{"": "x"} }, "meta"},
		{"long meta value", func(p *Pin) { p.Meta = map[string]string{"k": strings.Repeat("v", MaxMetaValueBytes+1)} }, "meta"},
		{"too many meta", func(p *Pin) {
			p.Meta = map[string]string{}
			for i := range MaxMetaEntries + 1 {
				p.Meta[string(rune('a'+i))] = "v"
			}
		}, "meta"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := goldenPin()
			tc.edit(&p)
			b, err := EncodePin(p)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("EncodePin: %v", err)
				}
				back, err := DecodePin(b)
				if err != nil || !pinsEqual(back, p) {
					t.Fatalf("round trip: %+v, %v", back, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPin) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("EncodePin err = %v, want ErrInvalidPin naming %s", err, tc.field)
			}
		})
	}
}

// encodeMap encodes fields (in the given order, not sorted) as a dag-cbor
// map: a way to write records a correct encoder never would.
func encodeMap(t *testing.T, fields [][2]any, sorted bool) []byte {
	t.Helper()
	n, err := qp.BuildMap(basicnode.Prototype.Any, int64(len(fields)), func(ma datamodel.MapAssembler) {
		for _, f := range fields {
			k := f[0].(string)
			switch v := f[1].(type) {
			case int:
				qp.MapEntry(ma, k, qp.Int(int64(v)))
			case string:
				qp.MapEntry(ma, k, qp.String(v))
			case cid.Cid:
				qp.MapEntry(ma, k, qp.Link(cidlink.Link{Cid: v}))
			case map[string]string:
				qp.MapEntry(ma, k, qp.Map(int64(len(v)), func(ma datamodel.MapAssembler) {
					for mk, mv := range v {
						qp.MapEntry(ma, mk, qp.String(mv))
					}
				}))
			case []byte:
				qp.MapEntry(ma, k, qp.Bytes(v))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mode := codec.MapSortMode_None
	if sorted {
		mode = codec.MapSortMode_RFC7049
	}
	var buf bytes.Buffer
	if err := (dagcbor.EncodeOptions{AllowLinks: true, MapSortMode: mode}).Encode(n, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodePinStrict(t *testing.T) {
	p := goldenPin()
	good := [][2]any{{"c", p.CID}, {"n", p.Name}, {"s", 11}, {"h", 42}, {"r", 2}, {"x", 3}, {"t", 1_700_000_000_123}}
	with := func(extra ...[2]any) [][2]any { return append(append([][2]any{}, good...), extra...) }
	without := func(k string) [][2]any {
		var out [][2]any
		for _, f := range good {
			if f[0] != k {
				out = append(out, f)
			}
		}
		return out
	}
	replace := func(k string, v any) [][2]any {
		out := without(k)
		return append(out, [2]any{k, v})
	}
	canonical := encodeMap(t, good, true)
	if _, err := DecodePin(canonical); err != nil {
		t.Fatalf("hand-built canonical record rejected: %v", err)
	}
	nonMinimal := bytes.Replace(canonical, []byte{0x61, 's', 0x0b}, []byte{0x61, 's', 0x18, 0x0b}, 1)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not a map", []byte{0x01}},
		{"unsorted keys", encodeMap(t, append([][2]any{good[6]}, good[:6]...), false)},
		{"unknown field", encodeMap(t, with([2]any{"z", 1}), true)},
		{"missing name", encodeMap(t, without("n"), true)},
		{"size as string", encodeMap(t, replace("s", "11"), true)},
		{"cid as bytes", encodeMap(t, replace("c", p.CID.Bytes()), true)},
		{"negative size", encodeMap(t, replace("s", -1), true)},
		{"min above max", encodeMap(t, replace("r", 9), true)},
		{"empty meta", encodeMap(t, with([2]any{"m", map[string]string{}}), true)},
		{"non-minimal int", nonMinimal},
		{"trailing bytes", append(append([]byte{}, canonical...), 0x00)},
		{"truncated", canonical[:len(canonical)-1]},
		{"oversize", bytes.Repeat([]byte{0x60}, MaxRecordBytes+1)},
		{"deep nesting", bytes.Repeat([]byte{0x81}, 64)},
		{"huge map header", []byte{0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.data, canonical) {
				t.Fatal("test input is the canonical record")
			}
			if _, err := DecodePin(tc.data); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodePin = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	p := goldenPin()
	v1 := cid.NewCidV1(cid.DagProtobuf, testCID(1).Hash())
	v0 := cid.NewCidV0(v1.Hash())
	if pinKey(3, v0) != pinKey(3, v1) {
		t.Fatalf("CIDv0 and CIDv1 keys differ: %s %s", pinKey(3, v0), pinKey(3, v1))
	}
	if got, want := shardPrefix(math.MaxInt64), "/7fffffffffffffff"; got != want {
		t.Fatalf("shardPrefix(max) = %s, want %s", got, want)
	}
	// Byte order of keys is shard order.
	rng := rand.New(rand.NewPCG(5, 5))
	for range 1000 {
		a, b := rng.Int64(), rng.Int64()
		if (a < b) != (shardPrefix(a) < shardPrefix(b)) {
			t.Fatalf("order of %d, %d differs from their keys", a, b)
		}
	}
	for _, tc := range []struct {
		key   string
		shard int64
		ok    bool
	}{
		{pinKey(42, p.CID), 42, true},
		{"/000000000000002a/" + cidKey(p.CID), 42, true},
		{"/000000000000002A/" + cidKey(p.CID), 0, false}, // upper case
		{"/00000000000002a/" + cidKey(p.CID), 0, false},  // 15 digits
		{"/8000000000000000/" + cidKey(p.CID), 0, false}, // beyond int64
		{"/000000000000002a/", 0, false},
		{"/000000000000002a/a/b", 0, false},
		{"/000000000000002a/..", 0, false},
		{"/000000000000002a/QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", 0, false}, // CIDv0 form
		{"/000000000000002a/" + strings.ToUpper(cidKey(p.CID)), 0, false},              // not canonical
		{"000000000000002a/x", 0, false},
		{"", 0, false},
	} {
		shard, ck, err := parseKey(tc.key)
		if tc.ok != (err == nil) || (tc.ok && (shard != tc.shard || ck != cidKey(p.CID))) {
			t.Errorf("parseKey(%q) = %d, %q, %v", tc.key, shard, ck, err)
		}
		if !tc.ok && !errors.Is(err, ErrMalformed) {
			t.Errorf("parseKey(%q) error %v is not ErrMalformed", tc.key, err)
		}
	}
	// A record under the wrong key is malformed.
	b, _ := EncodePin(p)
	if _, err := decodeEntry(pinKey(p.Shard+1, p.CID), b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("record under another shard's key: %v", err)
	}
	if _, err := decodeEntry(pinKey(p.Shard, testCID(9)), b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("record under another CID's key: %v", err)
	}
}

// TestRecordRoundTrip: random valid pins survive encode and decode, and
// the encoding is a function of the pin (map order does not matter).
func TestRecordRoundTrip(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 2000 {
		p := randomPin(rng)
		b1, err := EncodePin(p)
		if err != nil {
			t.Fatalf("pin %d %+v: %v", i, p, err)
		}
		b2, _ := EncodePin(p) // map iteration order differs run to run
		if !bytes.Equal(b1, b2) {
			t.Fatalf("pin %d: two encodings differ", i)
		}
		back, err := DecodePin(b1)
		if err != nil || !pinsEqual(back, p) {
			t.Fatalf("pin %d: round trip %+v, %v", i, back, err)
		}
	}
}

func randomPin(rng *rand.Rand) Pin {
	p := Pin{
		CID:   testCID(rng.Uint64()),
		Name:  randString(rng, rng.IntN(40)),
		Size:  rng.Int64N(1 << 50),
		Shard: rng.Int64N(1 << 40),
		Added: time.UnixMilli(rng.Int64N(1 << 42)).UTC(),
	}
	if rng.IntN(2) == 0 {
		p.ReplMin = rng.Int64N(10)
		p.ReplMax = p.ReplMin + rng.Int64N(10)
	}
	if n := rng.IntN(5); n > 0 {
		p.Meta = map[string]string{}
		for range n {
			p.Meta[randString(rng, 1+rng.IntN(10))] = randString(rng, rng.IntN(20))
		}
	}
	return p
}

func randString(rng *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_. éü漢"
	r := []rune(alphabet)
	var b strings.Builder
	for range n {
		b.WriteRune(r[rng.IntN(len(r))])
	}
	return b.String()
}

// FuzzDecodePin: no input makes DecodePin panic, and whatever it accepts
// is canonical (re-encodes to the same bytes).
func FuzzDecodePin(f *testing.F) {
	b, _ := EncodePin(goldenPin())
	f.Add(b)
	p := goldenPin()
	p.Meta = nil
	b, _ = EncodePin(p)
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePin(data)
		sp, serr := decodeStrict(data)
		if (err == nil) != (serr == nil) || (err == nil && !pinsEqual(p, sp)) {
			t.Fatalf("fast and bindnode decoders disagree on %x: %v / %v", data, err, serr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := EncodePin(p)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted non-canonical input %x (re-encodes to %x, %v)", data, again, err)
		}
	})
}

// FuzzParseKey: parseKey never panics and accepts only what pinKey writes.
func FuzzParseKey(f *testing.F) {
	f.Add(pinKey(42, goldenPin().CID))
	f.Add("/0000000000000000/x")
	f.Add("/0000000000000000/" + cidKey(testCID(1)))
	f.Fuzz(func(t *testing.T, k string) {
		shard, ck, err := parseKey(k)
		if err != nil {
			return
		}
		if shardPrefix(shard)+"/"+ck != k {
			t.Fatalf("parseKey(%q) accepted a key pinKey would not write", k)
		}
	})
}

// TestFastCodecMatchesBindnode: the hand-written encoder used by the fast
// decode path writes exactly bindnode's bytes.
func TestFastCodecMatchesBindnode(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	pins := []Pin{goldenPin()}
	for range 5000 {
		pins = append(pins, randomPin(rng))
	}
	v0 := goldenPin()
	v0.CID = cid.NewCidV0(testCID(3).Hash())
	big := goldenPin()
	big.Size, big.Shard, big.ReplMax = math.MaxInt64, math.MaxInt64, MaxReplication
	pins = append(pins, v0, big)
	for i, p := range pins {
		want, err := encodeStrict(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := EncodePin(p); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("pin %d %+v: EncodePin %x, %v; bindnode %x", i, p, got, err, want)
		}
		if got := appendCanonical(nil, &p); !bytes.Equal(got, want) {
			t.Fatalf("pin %d %+v:\nfast     %x\nbindnode %x", i, p, got, want)
		}
		fp, ok := decodeFast(want)
		if !ok || !pinsEqual(fp, p) {
			t.Fatalf("pin %d: fast decode %+v, %v", i, fp, ok)
		}
	}
}
