package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// Response is a holder's answer: one Path per root of the challenge, in
// order.
type Response struct {
	Paths []Path
}

// Path is the answer for one root: the blocks of its path, root first, or
// Missing when the holder says it lacks a block of the path.
type Path struct {
	Blocks  [][]byte
	Missing bool
}

// Size is the bytes of block data in r.
func (r Response) Size() int64 {
	var n int64
	for _, p := range r.Paths {
		for _, b := range p.Blocks {
			n += int64(len(b))
		}
	}
	return n
}

// Wire form of an answer, after the status byte (see docs/protocol.md):
//
//	answer = status path*          status 0x00: one path per root, in order
//	       | 0x01                  busy
//	       | 0x02                  refused
//	path   = 0x00 uvarint(n) block{n}      1 <= n <= MaxDepth
//	       | 0x01                          not found
//	block  = uvarint(len) byte{len}        1 <= len <= MaxBlockSize
const (
	statusAnswer  = 0x00
	statusBusy    = 0x01
	statusRefused = 0x02

	pathBlocks  = 0x00
	pathMissing = 0x01
)

// WriteResponse writes status 0x00 and the paths of r.
func WriteResponse(w io.Writer, r Response) error {
	bw := bufio.NewWriter(w)
	var buf [binary.MaxVarintLen64]byte
	bw.WriteByte(statusAnswer)
	for _, p := range r.Paths {
		if p.Missing {
			bw.WriteByte(pathMissing)
			continue
		}
		bw.WriteByte(pathBlocks)
		bw.Write(buf[:binary.PutUvarint(buf[:], uint64(len(p.Blocks)))])
		for _, b := range p.Blocks {
			bw.Write(buf[:binary.PutUvarint(buf[:], uint64(len(b)))])
			bw.Write(b)
		}
	}
	return bw.Flush()
}

// ReadResponse reads an answer of exactly paths paths from r and requires
// r to end after it. It reads at most maxBytes bytes of block data and
// refuses any block over MaxBlockSize and any path over MaxDepth blocks
// before reading them, so a hostile holder costs at most maxBytes of
// memory. A busy or refusing holder gives ErrBusy or ErrRefused.
func ReadResponse(r io.Reader, paths int, maxBytes int64) (Response, error) {
	br := bufio.NewReader(markErrors{r})
	status, err := br.ReadByte()
	if err != nil {
		return Response{}, fmt.Errorf("read response: %w", readErr(err))
	}
	switch status {
	case statusAnswer:
	case statusBusy:
		return Response{}, ErrBusy
	case statusRefused:
		return Response{}, ErrRefused
	default:
		return Response{}, fmt.Errorf("read response: %w: status 0x%02x", ErrMalformed, status)
	}
	resp := Response{Paths: make([]Path, paths)}
	var total int64
	for i := range resp.Paths {
		kind, err := br.ReadByte()
		if err != nil {
			return Response{}, fmt.Errorf("read response: path %d: %w", i, readErr(err))
		}
		switch kind {
		case pathMissing:
			resp.Paths[i].Missing = true
			continue
		case pathBlocks:
		default:
			return Response{}, fmt.Errorf("read response: path %d: %w: kind 0x%02x", i, ErrMalformed, kind)
		}
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return Response{}, fmt.Errorf("read response: path %d: %w", i, readErr(err))
		}
		if n == 0 || n > MaxDepth {
			return Response{}, fmt.Errorf("read response: path %d: %w: %d blocks, want 1..%d", i, ErrMalformed, n, MaxDepth)
		}
		blocks := make([][]byte, n)
		for d := range blocks {
			size, err := binary.ReadUvarint(br)
			if err != nil {
				return Response{}, fmt.Errorf("read response: path %d depth %d: %w", i, d, readErr(err))
			}
			if size == 0 || size > MaxBlockSize {
				return Response{}, fmt.Errorf("read response: path %d depth %d: %w: block of %d bytes, limit %d", i, d, ErrTooLarge, size, MaxBlockSize)
			}
			if total += int64(size); total > maxBytes {
				return Response{}, fmt.Errorf("read response: path %d depth %d: %w: more than %d bytes of blocks", i, d, ErrTooLarge, maxBytes)
			}
			blocks[d] = make([]byte, size)
			if _, err := io.ReadFull(br, blocks[d]); err != nil {
				return Response{}, fmt.Errorf("read response: path %d depth %d: %w", i, d, readErr(err))
			}
		}
		resp.Paths[i].Blocks = blocks
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err == nil {
			return Response{}, fmt.Errorf("read response: %w: bytes after the last path", ErrMalformed)
		}
		return Response{}, fmt.Errorf("read response: %w", readErr(err))
	}
	return resp, nil
}

// readErr classifies a read error: an error of the stream itself
// (deadline, reset) passes through for the caller; an early end or a
// varint over 64 bits is a malformed answer.
func readErr(err error) error {
	var se streamError
	if errors.As(err, &se) {
		return se.err
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// streamError marks an error of the underlying reader other than io.EOF.
type streamError struct{ err error }

func (e streamError) Error() string { return e.err.Error() }

type markErrors struct{ r io.Reader }

func (m markErrors) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = streamError{err}
	}
	return n, err
}

// Verify checks a holder's answer to ch without trusting the holder: for
// every path, the first block must hash to its root; each next block must
// hash to the CID the path rule picks in the block before it; and the path
// must end exactly where the rule ends it. It returns the number of paths
// checked in full (len(ch.Roots) when it passes) and, on failure, an error
// naming the path and depth, wrapping ErrBlockMissing, ErrWrongBlock,
// ErrPathTooShort, ErrPathTooLong, ErrTooLarge or ErrMalformed.
//
// Verify is pure: it reads no clock, no network and no store; its work is
// bounded by the answer's size (one hash per byte, one decode per block).
func Verify(ch Challenge, resp Response) (int, error) {
	if err := ch.Validate(); err != nil {
		return 0, fmt.Errorf("verify: %w", err)
	}
	if len(resp.Paths) != len(ch.Roots) {
		return 0, fmt.Errorf("verify: %w: %d paths for %d roots", ErrMalformed, len(resp.Paths), len(ch.Roots))
	}
	for i, p := range resp.Paths {
		if err := verifyPath(&ch.Nonce, i, ch.Roots[i], p); err != nil {
			return i, fmt.Errorf("verify: path %d (root %s): %w", i, ch.Roots[i], err)
		}
	}
	return len(ch.Roots), nil
}

func verifyPath(nonce *[NonceLen]byte, i int, root cid.Cid, p Path) error {
	if p.Missing {
		return fmt.Errorf("%w: the holder does not have a block of it", ErrBlockMissing)
	}
	if len(p.Blocks) > MaxDepth {
		return fmt.Errorf("%w: %d blocks, limit %d", ErrPathTooLong, len(p.Blocks), MaxDepth)
	}
	want := root
	for d, b := range p.Blocks {
		if len(b) > MaxBlockSize {
			return fmt.Errorf("depth %d: %w: block of %d bytes, limit %d", d, ErrTooLarge, len(b), MaxBlockSize)
		}
		got, err := want.Prefix().Sum(b)
		if err != nil || !got.Equals(want) {
			return fmt.Errorf("depth %d: %w: want %s", d, ErrWrongBlock, want)
		}
		nxt, ok := next(nonce, i, d, want, b)
		if !ok {
			if d+1 < len(p.Blocks) {
				return fmt.Errorf("depth %d: %w: the path ends at %s, %d more blocks sent", d, ErrPathTooLong, want, len(p.Blocks)-d-1)
			}
			return nil
		}
		want = nxt
	}
	return fmt.Errorf("depth %d: %w: block %s not sent", len(p.Blocks), ErrPathTooShort, want)
}
