package audit

import (
	"bytes"
	"testing"
)

// Fuzz targets: nothing panics; every rejection is a failure (Failed); the
// only answers Verify accepts are the honest ones.

func FuzzDecodeChallenge(f *testing.F) {
	_, pins := shardFixture(f)
	for seed := uint64(0); seed < 4; seed++ {
		b, err := challengeFor(f, pins, 1+int(seed), seed).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := DecodeChallenge(data)
		if err != nil {
			if !Failed(err) {
				t.Fatalf("rejection without a sentinel: %v", err)
			}
			return
		}
		b, err := ch.Encode()
		if err != nil || !bytes.Equal(b, data) {
			t.Fatalf("accepted a non-canonical challenge (%v)", err)
		}
	})
}

// FuzzReadResponseAndVerify feeds arbitrary bytes as the answer to a fixed
// challenge: the decoder and Verify never panic, reject with a failure,
// and accept only the honest answer's paths.
func FuzzReadResponseAndVerify(f *testing.F) {
	bs, pins := shardFixture(f)
	ch := challengeFor(f, pins, 3, 11)
	honest := answer(f, bs, ch)
	var buf bytes.Buffer
	if err := WriteResponse(&buf, honest); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add([]byte{statusAnswer, pathMissing, pathMissing, pathMissing})
	f.Add([]byte{statusBusy})
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := ReadResponse(bytes.NewReader(data), len(ch.Roots), DefaultMaxResponse)
		if err != nil {
			if !Failed(err) && err != ErrBusy && err != ErrRefused {
				t.Fatalf("read: rejection without a sentinel: %v", err)
			}
			return
		}
		n, err := Verify(ch, resp)
		if err != nil {
			if !Failed(err) {
				t.Fatalf("verify: rejection without a sentinel: %v", err)
			}
			return
		}
		if n != len(ch.Roots) {
			t.Fatalf("pass with %d of %d paths", n, len(ch.Roots))
		}
		for i, p := range resp.Paths {
			if len(p.Blocks) != len(honest.Paths[i].Blocks) {
				t.Fatalf("accepted path %d of %d blocks, honest has %d", i, len(p.Blocks), len(honest.Paths[i].Blocks))
			}
			for d := range p.Blocks {
				if !bytes.Equal(p.Blocks[d], honest.Paths[i].Blocks[d]) {
					t.Fatalf("accepted a block that is not the honest one at path %d depth %d", i, d)
				}
			}
		}
	})
}
