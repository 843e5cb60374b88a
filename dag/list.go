package dag

import (
	"bytes"
	"context"
	"fmt"
	"iter"

	"github.com/ipfs/go-cid"
)

// listKind describes one element type of a chunked List.
type listKind[T any] struct {
	name   string // plural, for errors: "members"
	size   int    // items per full chunk
	check  func(prefix string, v *T) error
	before func(a, b *T) bool // strict order of items; nil if any order
	encode func(items []T) ([]byte, error)
	decode func(data []byte, c cid.Cid) ([]T, error)
}

var memberKind = &listKind[Member]{
	name:   "members",
	size:   MemberChunkSize,
	check:  checkMember,
	before: func(a, b *Member) bool { return bytes.Compare(a.Peer, b.Peer) < 0 },
	encode: func(items []Member) ([]byte, error) { return memberChunkType.encode(&MemberChunk{Items: items}) },
	decode: func(data []byte, c cid.Cid) ([]Member, error) {
		ch, err := decodeMemberChunk(data, c)
		return ch.Items, err
	},
}

var shardKind = &listKind[Shard]{
	name:   "shards",
	size:   ShardChunkSize,
	check:  checkShard,
	before: func(a, b *Shard) bool { return a.ID < b.ID },
	encode: func(items []Shard) ([]byte, error) { return shardChunkType.encode(&ShardChunk{Items: items}) },
	decode: func(data []byte, c cid.Cid) ([]Shard, error) {
		ch, err := decodeShardChunk(data, c)
		return ch.Items, err
	},
}

var logKind = &listKind[LogEntry]{
	name:   "log",
	size:   LogChunkSize,
	check:  checkLogEntry,
	encode: func(items []LogEntry) ([]byte, error) { return logChunkType.encode(&LogChunk{Items: items}) },
	decode: func(data []byte, c cid.Cid) ([]LogEntry, error) {
		ch, err := logChunkType.decode(data, c)
		if err != nil {
			return nil, err
		}
		return ch.Items, nil
	},
}

// ListWriter writes a chunked List one item at a time, storing each chunk
// as soon as it is full, so memory stays at one chunk whatever the length.
// Items must be added in the list's order (members by ascending peer ID,
// shards by ascending ID; log entries in any order). A ListWriter is not
// safe for concurrent use.
type ListWriter[T any] struct {
	s      *Store
	kind   *listKind[T]
	buf    []T
	last   T
	count  int64
	chunks []cid.Cid
	err    error // sticky: a failed writer stays failed
}

// MemberWriter returns a writer for a List of members.
func (s *Store) MemberWriter() *ListWriter[Member] { return newListWriter(s, memberKind) }

// ShardWriter returns a writer for a List of shards.
func (s *Store) ShardWriter() *ListWriter[Shard] { return newListWriter(s, shardKind) }

// LogWriter returns a writer for a List of log entries.
func (s *Store) LogWriter() *ListWriter[LogEntry] { return newListWriter(s, logKind) }

func newListWriter[T any](s *Store, k *listKind[T]) *ListWriter[T] {
	return &ListWriter[T]{s: s, kind: k}
}

// Count returns the number of items added so far.
func (w *ListWriter[T]) Count() int64 { return w.count }

// Add checks v and appends it to the list.
func (w *ListWriter[T]) Add(ctx context.Context, v T) error {
	if w.err != nil {
		return w.err
	}
	if err := w.add(ctx, v); err != nil {
		w.err = fmt.Errorf("write %s: item %d: %w", w.kind.name, w.count, err)
		return w.err
	}
	return nil
}

func (w *ListWriter[T]) add(ctx context.Context, v T) error {
	if err := w.kind.check("", &v); err != nil {
		return err
	}
	if w.count > 0 && w.kind.before != nil && !w.kind.before(&w.last, &v) {
		return fmt.Errorf("%w: %s not in strictly ascending order", ErrMalformed, w.kind.name)
	}
	if w.count >= int64(MaxListChunks)*int64(w.kind.size) {
		return fmt.Errorf("%w: more than %d %s", ErrTooLarge, int64(MaxListChunks)*int64(w.kind.size), w.kind.name)
	}
	w.buf = append(w.buf, v)
	w.last = v
	w.count++
	if len(w.buf) == w.kind.size {
		return w.flush(ctx)
	}
	return nil
}

func (w *ListWriter[T]) flush(ctx context.Context) error {
	data, err := w.kind.encode(w.buf)
	if err != nil {
		return err
	}
	c, err := w.s.put(ctx, data)
	if err != nil {
		return err
	}
	w.chunks = append(w.chunks, c)
	clear(w.buf)
	w.buf = w.buf[:0]
	return nil
}

// Finish stores the last chunk and the List block and returns the List's
// CID. An empty list is a List block with count 0 and no chunks.
func (w *ListWriter[T]) Finish(ctx context.Context) (cid.Cid, error) {
	if w.err != nil {
		return cid.Undef, w.err
	}
	if len(w.buf) > 0 {
		if err := w.flush(ctx); err != nil {
			w.err = fmt.Errorf("write %s: %w", w.kind.name, err)
			return cid.Undef, w.err
		}
	}
	c, err := putTyped(ctx, w.s, listType, &List{Count: w.count, Chunks: w.chunks})
	if err != nil {
		w.err = fmt.Errorf("write %s: %w", w.kind.name, err)
		return cid.Undef, w.err
	}
	return c, nil
}

func writeAll[T any](ctx context.Context, w *ListWriter[T], items []T) (cid.Cid, error) {
	for _, v := range items {
		if err := w.Add(ctx, v); err != nil {
			return cid.Undef, err
		}
	}
	return w.Finish(ctx)
}

// PutMembers stores members (ascending by peer ID, unique) as a List.
func (s *Store) PutMembers(ctx context.Context, members []Member) (cid.Cid, error) {
	return writeAll(ctx, s.MemberWriter(), members)
}

// PutShards stores shards (ascending by ID, unique) as a List.
func (s *Store) PutShards(ctx context.Context, shards []Shard) (cid.Cid, error) {
	return writeAll(ctx, s.ShardWriter(), shards)
}

// PutLog stores log entries, in the given order, as a List.
func (s *Store) PutLog(ctx context.Context, entries []LogEntry) (cid.Cid, error) {
	return writeAll(ctx, s.LogWriter(), entries)
}

// Members iterates over the members of the List c, reading one chunk at a
// time. It checks the whole structure on the way (chunk fill, order across
// chunks, count); on the first error it yields that error and stops.
func (s *Store) Members(ctx context.Context, c cid.Cid) iter.Seq2[Member, error] {
	return items(ctx, s, memberKind, c)
}

// Shards iterates over the shards of the List c; see Members.
func (s *Store) Shards(ctx context.Context, c cid.Cid) iter.Seq2[Shard, error] {
	return items(ctx, s, shardKind, c)
}

// Log iterates over the log entries of the List c; see Members.
func (s *Store) Log(ctx context.Context, c cid.Cid) iter.Seq2[LogEntry, error] {
	return items(ctx, s, logKind, c)
}

func items[T any](ctx context.Context, s *Store, k *listKind[T], c cid.Cid) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		stopped := false
		err := readList(ctx, s, k, c, func(_ cid.Cid, chunk []T) bool {
			for _, v := range chunk {
				if !yield(v, nil) {
					stopped = true
					return false
				}
			}
			return true
		})
		if err != nil && !stopped {
			var zero T
			yield(zero, err)
		}
	}
}

// readList reads the List c and calls fn with each chunk's CID and items
// once the chunk has been checked against its neighbours. fn returns false
// to stop early (readList then returns nil).
func readList[T any](ctx context.Context, s *Store, k *listKind[T], c cid.Cid, fn func(cid.Cid, []T) bool) error {
	l, err := getTyped(ctx, s, listType, c)
	if err != nil {
		return fmt.Errorf("read %s: %w", k.name, err)
	}
	if err := checkListFor(l, k.size); err != nil {
		return fmt.Errorf("read %s: list %s: %w", k.name, c, err)
	}
	var (
		last  T
		total int64
	)
	for i, cc := range l.Chunks {
		data, err := s.get(ctx, k.name+" chunk", cc)
		if err != nil {
			return fmt.Errorf("read %s: %w", k.name, err)
		}
		chunk, err := k.decode(data, cc)
		if err != nil {
			return fmt.Errorf("read %s: %w", k.name, err)
		}
		if i < len(l.Chunks)-1 && len(chunk) != k.size {
			return fmt.Errorf("read %s: chunk %d (%s): %w: %d items, a chunk before the last holds %d",
				k.name, i, cc, ErrMalformed, len(chunk), k.size)
		}
		if total > 0 && k.before != nil && !k.before(&last, &chunk[0]) {
			return fmt.Errorf("read %s: chunk %d (%s): %w: %s not in strictly ascending order across chunks",
				k.name, i, cc, ErrMalformed, k.name)
		}
		total += int64(len(chunk))
		last = chunk[len(chunk)-1]
		if !fn(cc, chunk) {
			return nil
		}
	}
	if total != l.Count {
		return fmt.Errorf("read %s: list %s: %w: count says %d, chunks hold %d", k.name, c, ErrMalformed, l.Count, total)
	}
	return nil
}
