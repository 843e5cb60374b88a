package publish

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"google.golang.org/protobuf/encoding/protowire"
)

// What a single-bit flip can reach, and why pinfold rejects all of them.
//
// An IPNS V2 signature (SignatureV2, protobuf field 8) covers
// "ipns-signature:" || Data, and Data (field 9, dag-cbor) holds Value,
// Validity, ValidityType, Sequence and TTL: in V2 all five, TTL and
// Sequence included, are signed. Outside Data nothing is signed: the
// protobuf framing (tags, lengths), PubKey (field 7, which must hash to the
// name anyway) and the six legacy V1 fields that V1-compatible records
// repeat: Value (1), SignatureV1 (2), ValidityType (3), Validity (4),
// Sequence (5), TTL (6). The V1 signature covers only Value || Validity ||
// "EOL" -- in V1, Sequence and TTL were never signed at all.
//
// boxo's ValidateWithName verifies SignatureV2 only and, when V1 fields are
// present, compares fields 1, 3, 4, 5 and 6 with Data. It never checks
// SignatureV1, and protobuf decoding keeps unknown fields silently and
// cannot tell an absent ValidityType from one holding 0 (EOL). So for a
// V1-compatible record boxo alone accepts exactly these flips: any bit of
// the SignatureV1 field (payload, and the tag or length flips that turn it
// into an unknown field or let it swallow the ValidityType field), and tag
// flips of the ValidityType field that turn it into an unknown field. For a
// V2-only record it accepts none. ParseRecord closes the gap: it verifies
// SignatureV1, requires the V1 fields all present or all absent, refuses
// unknown fields and requires canonical protobuf and dag-cbor encodings.

// farEOL is the validity used where boxo's wall-clock expiry check must
// not interfere: records built at t0 stay valid until 2224.
const farEOL = 200 * 365 * 24 * time.Hour

// span is where one protobuf field sits in a marshaled record.
type span struct {
	num        protowire.Number
	start, val int // tag starts at start, value (after length) at val
	end        int
}

func fieldSpans(tb testing.TB, raw []byte) []span {
	tb.Helper()
	var out []span
	for off := 0; off < len(raw); {
		num, typ, n := protowire.ConsumeTag(raw[off:])
		if n < 0 {
			tb.Fatalf("bad tag at %d", off)
		}
		m := protowire.ConsumeFieldValue(num, typ, raw[off+n:])
		if m < 0 {
			tb.Fatalf("bad field %d at %d", num, off)
		}
		val := off + n
		if typ == protowire.BytesType {
			_, l := protowire.ConsumeVarint(raw[val:])
			val += l
		}
		out = append(out, span{num: num, start: off, val: val, end: off + n + m})
		off += n + m
	}
	return out
}

func spanOf(tb testing.TB, spans []span, num protowire.Number) span {
	tb.Helper()
	for _, s := range spans {
		if s.num == num {
			return s
		}
	}
	tb.Fatalf("no field %d", num)
	return span{}
}

func flipped(raw []byte, bit int) []byte {
	m := bytes.Clone(raw)
	m[bit/8] ^= 1 << (bit % 8)
	return m
}

// sentinels are the errors every ParseRecord failure must match one of.
var sentinels = []error{ErrTooLarge, ErrMalformed, ErrBadName, ErrBadSignature, ErrBadValue, ErrSeqRange, ErrExpired}

func classified(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func TestEveryBitFlipRejected(t *testing.T) {
	k := testKey(t, 1)
	name := testName(t, k)
	cfg := RecordConfig{Validity: farEOL, TTL: time.Minute}
	v1 := build(t, k, testHead(t, 1), 7, t0, cfg).Raw
	rec, err := ipns.NewRecord(k, path.FromCid(testHead(t, 1)), 7, t0.Add(farEOL), time.Minute, ipns.WithV1Compatibility(false))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ipns.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
	}{{"V1-compatible", v1}, {"V2-only", v2}} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseRecord(tc.raw, name, t0); err != nil {
				t.Fatalf("unmutated record rejected: %v", err)
			}
			for bit := range len(tc.raw) * 8 {
				_, err := ParseRecord(flipped(tc.raw, bit), name, t0)
				if err == nil {
					t.Errorf("flip of byte %d bit %d accepted", bit/8, bit%8)
				} else if !classified(err) {
					t.Errorf("flip of byte %d bit %d: unclassified error %v", bit/8, bit%8, err)
				}
			}
			t.Logf("%d bytes, all %d single-bit flips rejected", len(tc.raw), len(tc.raw)*8)
		})
	}
}

func TestBitFlipsBoxoAloneAccepts(t *testing.T) {
	k := testKey(t, 1)
	name := testName(t, k)
	cfg := RecordConfig{Validity: farEOL, TTL: time.Minute}

	t.Run("V1-compatible", func(t *testing.T) {
		raw := build(t, k, testHead(t, 1), 7, t0, cfg).Raw
		spans := fieldSpans(t, raw)
		sig1 := spanOf(t, spans, 2)
		vt := spanOf(t, spans, 3)
		if raw[sig1.start] != 0x12 || raw[sig1.start+1] != 0x40 || raw[vt.start] != 0x18 || raw[vt.start+1] != 0 || vt.start != sig1.end {
			t.Fatalf("unexpected layout: % x ... % x", raw[sig1.start:sig1.val], raw[vt.start:vt.end])
		}
		// The exact set of flips boxo accepts, each explained.
		want := map[int]string{}
		for bit := sig1.val * 8; bit < sig1.end*8; bit++ {
			want[bit] = "SignatureV1 payload: never verified by boxo"
		}
		tag := sig1.start * 8 // tag 0x12: field 2, length-delimited
		want[tag+3] = "0x12->0x1a: field 3 with the wrong wire type, kept as an unknown field; SignatureV1 gone"
		want[tag+5] = "0x12->0x32: field 6 with the wrong wire type, unknown field; SignatureV1 gone"
		want[tag+6] = "0x12->0x52: field 10, unknown field; SignatureV1 gone"
		want[(sig1.start+1)*8+1] = "length 64->66: SignatureV1 swallows the ValidityType field (18 00); absent reads as 0 = EOL"
		tag = vt.start * 8 // tag 0x18: field 3, varint, value 0
		want[tag+1] = "0x18->0x1a: field 3 length-delimited, value byte 00 read as empty: unknown field, ValidityType absent = EOL"
		want[tag+3] = "0x18->0x10: field 2 varint, wrong wire type: unknown field"
		want[tag+4] = "0x18->0x08: field 1 varint, wrong wire type: unknown field"
		want[tag+5] = "0x18->0x38: field 7 varint, wrong wire type: unknown field"
		want[tag+6] = "0x18->0x58: field 11, unknown field"

		for bit := range len(raw) * 8 {
			m := flipped(raw, bit)
			why, expect := want[bit]
			if ok := boxoOnly(m, name) == nil; ok != expect {
				t.Errorf("byte %d bit %d: boxo accepts = %v, want %v (%s)", bit/8, bit%8, ok, expect, why)
			}
			if !expect {
				continue
			}
			_, err := ParseRecord(m, name, t0)
			inPayload := bit/8 >= sig1.val && bit/8 < sig1.end
			switch {
			case err == nil:
				t.Errorf("ParseRecord accepts the flip of byte %d bit %d (%s)", bit/8, bit%8, why)
			case inPayload && !errors.Is(err, ErrBadSignature):
				t.Errorf("SignatureV1 payload flip: error %v, want ErrBadSignature", err)
			case !inPayload && !errors.Is(err, ErrMalformed):
				t.Errorf("framing flip at byte %d bit %d: error %v, want ErrMalformed", bit/8, bit%8, err)
			}
		}
		t.Logf("boxo alone accepts exactly %d of %d flips: SignatureV1 at bytes [%d,%d), ValidityType tag at byte %d; ParseRecord rejects all",
			len(want), len(raw)*8, sig1.start, sig1.end, vt.start)
	})

	t.Run("V2-only", func(t *testing.T) {
		rec, err := ipns.NewRecord(k, path.FromCid(testHead(t, 1)), 7, t0.Add(farEOL), time.Minute, ipns.WithV1Compatibility(false))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := ipns.MarshalRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := boxoOnly(raw, name); err != nil {
			t.Fatalf("boxo rejects the unmutated record: %v", err)
		}
		for bit := range len(raw) * 8 {
			if boxoOnly(flipped(raw, bit), name) == nil {
				t.Errorf("boxo accepts a flip of byte %d bit %d in a V2-only record", bit/8, bit%8)
			}
		}
	})
}

func TestEveryTruncationRejected(t *testing.T) {
	k := testKey(t, 1)
	name := testName(t, k)
	raw := build(t, k, testHead(t, 1), 7, t0, DefaultRecordConfig()).Raw
	for n := range len(raw) {
		_, err := ParseRecord(raw[:n], name, t0)
		if err == nil {
			t.Errorf("prefix of %d of %d bytes accepted", n, len(raw))
		} else if !classified(err) {
			t.Errorf("prefix of %d bytes: unclassified error %v", n, err)
		}
	}
}
