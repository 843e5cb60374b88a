package curator

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendPinJSONMatchesEncodingJSON: the hand-written encoder writes
// exactly what encoding/json's Encoder wrote before it, for plain and
// awkward pins.
func TestAppendPinJSONMatchesEncodingJSON(t *testing.T) {
	added := time.UnixMilli(1_700_000_000_123).UTC()
	pins := []PinJSON{
		{PinRequest: PinRequest{CID: "bafkqaaa", Size: 0}, Added: time.UnixMilli(0).UTC()},
		{PinRequest: PinRequest{CID: "bafkqaaa", Name: "a file.txt", Size: 12, ReplMin: 2, ReplMax: 3}, Shard: 7, Added: added},
		{PinRequest: PinRequest{CID: "bafkqaaa", Name: "tab\there \"q\" <b>&amp; \\ é \u2028 \x00", Size: -1}, Shard: 1 << 40, Added: added, SizeChecked: "failed: <why> & \"so\""},
		{PinRequest: PinRequest{CID: "bafkqaaa", Name: "bad utf8 \xff\xfe", Meta: map[string]string{"z": "1", "a": "<2>", "m": ""}}, Added: added},
		{PinRequest: PinRequest{CID: "bafkqaaa", Meta: map[string]string{}}, Added: added.Add(time.Millisecond * 100)},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("abc XYZ09\t\n\"\\<>&é\u2028\x7f/")
	for range 200 {
		name := make([]rune, rng.IntN(20))
		for i := range name {
			name[i] = alphabet[rng.IntN(len(alphabet))]
		}
		pins = append(pins, PinJSON{PinRequest: PinRequest{CID: "bafy" + string(name[:len(name)/2]), Name: string(name),
			Size: rng.Int64(), ReplMin: rng.Int64N(3), ReplMax: rng.Int64N(5)}, Shard: rng.Int64N(1000),
			Added: time.UnixMilli(rng.Int64N(4_000_000_000_000)).UTC()})
	}
	for _, p := range pins {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		if got := appendPinJSON(nil, p); string(got) != string(want) {
			t.Errorf("appendPinJSON:\n got %s\nwant %s", got, want)
		}
	}
}

func TestAppendPinTSV(t *testing.T) {
	cases := []struct {
		p    PinJSON
		want string
	}{
		{PinJSON{PinRequest: PinRequest{CID: "bafkqaaa", Name: "a b.txt", Size: 12}, Shard: 3}, "bafkqaaa\t3\t12\ta b.txt\n"},
		{PinJSON{PinRequest: PinRequest{CID: "bafkqaaa", Size: 0}}, "bafkqaaa\t0\t0\t\n"},
		{PinJSON{PinRequest: PinRequest{CID: "bafkqaaa", Name: "x\ty\nz\r\x01\x7f\\é", Size: 1}, Shard: 1, SizeChecked: "mismatch: walked 5"},
			"bafkqaaa\t1\t1\tx\\ty\\nz\\r\\x01\\x7f\\é\tmismatch: walked 5\n"},
	}
	for _, c := range cases {
		if got := string(appendPinTSV(nil, c.p)); got != c.want {
			t.Errorf("appendPinTSV(%+v) = %q, want %q", c.p, got, c.want)
		}
	}
}

func FuzzAppendPinJSON(f *testing.F) {
	f.Add("bafkqaaa", "name", int64(1), int64(0), int64(2), int64(1_700_000_000_000), "ok")
	f.Add("", "\x00<\u2028>\xff", int64(-1), int64(1), int64(1<<40), int64(-62135596800000), "")
	f.Fuzz(func(t *testing.T, c, name string, size, repl, shard, ms int64, check string) {
		p := PinJSON{PinRequest: PinRequest{CID: c, Name: name, Size: size, ReplMin: repl, ReplMax: -repl}, Shard: shard,
			Added: time.UnixMilli(ms).UTC(), SizeChecked: check}
		want, err := json.Marshal(p)
		if err != nil {
			return // a year outside 0-9999: encoding/json refuses it
		}
		if got := appendPinJSON(nil, p); string(got) != string(want)+"\n" {
			t.Fatalf("appendPinJSON:\n got %s\nwant %s", got, want)
		}
	})
}
