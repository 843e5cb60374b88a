package pinset

import (
	"bytes"
	"encoding/binary"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
)

// A fast path for decoding records, which every merge (the hooks) and
// every listed pin go through. go-ipld-prime's bindnode is the normative
// codec (EncodePin uses it, and DecodePin falls back to it); the fast path
// must accept exactly the bytes the strict bindnode path accepts and
// return the same pin. It does so by construction: it parses leniently,
// checks the pin, and accepts only if appendCanonical (a hand-written
// encoder) re-creates the input byte for byte. Tests check appendCanonical
// against bindnode's encoder on random pins, and fuzzing checks both
// decoders agree on arbitrary input.

// appendCanonical appends the canonical dag-cbor encoding of a checked pin:
// a map with one-letter keys in dag-cbor order c h m n r s t x (length
// first, then bytes), minimal integers, the CID as tag 42 over 0x00||CID.
func appendCanonical(b []byte, p *Pin) []byte {
	fields := uint64(7)
	if len(p.Meta) > 0 {
		fields = 8
	}
	b = appendHead(b, 5, fields)
	b = appendText(b, "c")
	b = append(b, 0xd8, 42)
	cb := p.CID.Bytes()
	b = appendHead(b, 2, uint64(len(cb)+1))
	b = append(b, 0)
	b = append(b, cb...)
	b = appendText(b, "h")
	b = appendHead(b, 0, uint64(p.Shard))
	if len(p.Meta) > 0 {
		b = appendText(b, "m")
		keys := make([]string, 0, len(p.Meta))
		for k := range p.Meta {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y string) int {
			if len(x) != len(y) {
				return len(x) - len(y)
			}
			return bytes.Compare([]byte(x), []byte(y))
		})
		b = appendHead(b, 5, uint64(len(keys)))
		for _, k := range keys {
			b = appendText(b, k)
			b = appendText(b, p.Meta[k])
		}
	}
	b = appendText(b, "n")
	b = appendText(b, p.Name)
	b = appendText(b, "r")
	b = appendHead(b, 0, uint64(p.ReplMin))
	b = appendText(b, "s")
	b = appendHead(b, 0, uint64(p.Size))
	b = appendText(b, "t")
	b = appendHead(b, 0, uint64(p.Added.UnixMilli()))
	b = appendText(b, "x")
	b = appendHead(b, 0, uint64(p.ReplMax))
	return b
}

func appendText(b []byte, s string) []byte {
	b = appendHead(b, 3, uint64(len(s)))
	return append(b, s...)
}

// appendHead appends a CBOR head with the minimal argument encoding.
func appendHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xff:
		return append(b, m|24, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), v)
}

// cborReader reads CBOR heads and strings, failing (ok=false) on anything
// out of bounds. It checks no canonical form: the caller re-encodes.
type cborReader struct {
	b  []byte
	ok bool
}

func (r *cborReader) head() (major byte, v uint64) {
	if !r.ok || len(r.b) == 0 {
		r.ok = false
		return 0, 0
	}
	major, info := r.b[0]>>5, r.b[0]&0x1f
	r.b = r.b[1:]
	n := 0
	switch {
	case info < 24:
		return major, uint64(info)
	case info == 24:
		n = 1
	case info == 25:
		n = 2
	case info == 26:
		n = 4
	case info == 27:
		n = 8
	default:
		r.ok = false
		return 0, 0
	}
	if len(r.b) < n {
		r.ok = false
		return 0, 0
	}
	for _, c := range r.b[:n] {
		v = v<<8 | uint64(c)
	}
	r.b = r.b[n:]
	return major, v
}

func (r *cborReader) uint() int64 {
	major, v := r.head()
	if major != 0 || v > 1<<63-1 {
		r.ok = false
		return 0
	}
	return int64(v)
}

func (r *cborReader) str(major byte) []byte {
	m, n := r.head()
	if !r.ok || m != major || n > uint64(len(r.b)) {
		r.ok = false
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *cborReader) key(want byte) {
	k := r.str(3)
	if !r.ok || len(k) != 1 || k[0] != want {
		r.ok = false
	}
}

// decodeFast decodes canonical record bytes. ok is false for anything the
// fast path does not accept; DecodePin then asks bindnode.
func decodeFast(data []byte) (p Pin, ok bool) {
	r := cborReader{b: data, ok: true}
	major, fields := r.head()
	if major != 5 || (fields != 7 && fields != 8) {
		return Pin{}, false
	}
	r.key('c')
	if !r.ok || len(r.b) < 2 || r.b[0] != 0xd8 || r.b[1] != 42 {
		return Pin{}, false
	}
	r.b = r.b[2:]
	cb := r.str(2)
	if !r.ok || len(cb) < 2 || cb[0] != 0 {
		return Pin{}, false
	}
	c, err := cid.Cast(cb[1:])
	if err != nil {
		return Pin{}, false
	}
	p.CID = c
	r.key('h')
	p.Shard = r.uint()
	if fields == 8 {
		r.key('m')
		m, n := r.head()
		if !r.ok || m != 5 || n == 0 || n > MaxMetaEntries {
			return Pin{}, false
		}
		p.Meta = make(map[string]string, n)
		for range n {
			k := r.str(3)
			v := r.str(3)
			if !r.ok {
				return Pin{}, false
			}
			p.Meta[string(k)] = string(v)
		}
		if len(p.Meta) != int(n) {
			return Pin{}, false // duplicate key
		}
	}
	r.key('n')
	p.Name = string(r.str(3))
	r.key('r')
	p.ReplMin = r.uint()
	r.key('s')
	p.Size = r.uint()
	r.key('t')
	added := r.uint()
	r.key('x')
	p.ReplMax = r.uint()
	if !r.ok || len(r.b) != 0 {
		return Pin{}, false
	}
	p.Added = time.UnixMilli(added).UTC()
	if p.Check() != nil {
		return Pin{}, false
	}
	var buf [256]byte
	if !bytes.Equal(appendCanonical(buf[:0], &p), data) {
		return Pin{}, false
	}
	return p, true
}
