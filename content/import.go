package content

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	chunk "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// The import profile: IPIP-499's unixfs-v1-2025, which kubo offers as a
// profile too, so `ipfs add` with the same settings gives the same CIDs.
const (
	// DefaultChunkSize is the size of a file's leaf blocks: 1 MiB, the
	// largest chunk every IPFS implementation accepts and fetches.
	DefaultChunkSize = 1 << 20
	// fileWidth is the most links of one file node (balanced layout).
	fileWidth = 1024
	// hamtFanout is the width of a sharded folder's nodes; folders switch
	// to sharding above 256 KiB of links (boxo's default threshold),
	// estimated from the encoded block size.
	hamtFanout = 256
)

// cidPrefix is the import's CID format: CIDv1, dag-pb (raw for leaves),
// sha2-256.
var cidPrefix = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}

// ImportOptions shape Import.
type ImportOptions struct {
	// PerEntry makes one pin per direct entry of the folder given (files
	// and subfolders alike) instead of one pin for the folder. For a file
	// it changes nothing.
	PerEntry bool

	// ChunkSize is the size of file leaf blocks, from 1 KiB to 1 MiB.
	// 0 means DefaultChunkSize. Changing it changes every CID.
	ChunkSize int
}

// Imported is one pin made by Import.
type Imported struct {
	// Path is the file or folder the pin holds: the path given to Import,
	// or with PerEntry that path joined with the entry's name.
	Path string
	// CID is the root of the pin's UnixFS DAG.
	CID cid.Cid
	// Size is the total bytes of the DAG's distinct blocks: what a holder
	// of the pin stores (more than the file bytes by the DAG's own nodes).
	Size int64
	// Blocks is how many distinct blocks the DAG has.
	Blocks int64
}

// Import adds the file or folder at path to dag as UnixFS and returns one
// entry per pin (see ImportOptions.PerEntry), in the order of the folder's
// entries (sorted by name).
//
// The layout is IPIP-499's unixfs-v1-2025 profile: CIDv1 with sha2-256,
// balanced file DAGs of 1 MiB raw leaves (ChunkSize) and at most 1024
// links per node, folders sharded (HAMT, fanout 256) above 256 KiB of
// links. No file mode or mtime is stored, so the CIDs depend on names and
// bytes only. Symbolic links are stored as UnixFS symlinks, not followed;
// devices, sockets and pipes fail with ErrUnsupported. ctx cancels the
// import between reads.
func Import(ctx context.Context, dag ipld.DAGService, path string, opt ImportOptions) ([]Imported, error) {
	size := opt.ChunkSize
	if size == 0 {
		size = DefaultChunkSize
	}
	if size < 1<<10 || size > DefaultChunkSize {
		return nil, fmt.Errorf("%w: chunk size %d; want 1KiB to 1MiB", ErrInvalid, opt.ChunkSize)
	}
	path = filepath.Clean(path)
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	im := &importer{ctx: ctx, rec: newRecorder(dag), chunk: int64(size)}

	type item struct {
		path string
		fi   fs.FileInfo
	}
	items := []item{{path, fi}}
	if opt.PerEntry && fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("import %s: %w", path, ErrEmpty)
		}
		items = items[:0]
		for _, e := range entries {
			p := filepath.Join(path, e.Name())
			efi, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("import: %w", err)
			}
			items = append(items, item{p, efi})
		}
	}
	out := make([]Imported, 0, len(items))
	for _, it := range items {
		nd, err := im.node(it.path, it.fi)
		if err != nil {
			return nil, err
		}
		st, err := im.rec.stat(ctx, nd.Cid())
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", it.path, err)
		}
		out = append(out, Imported{Path: it.path, CID: nd.Cid(), Size: st.Bytes, Blocks: st.Blocks})
	}
	return out, nil
}

// importer builds UnixFS DAGs into rec.
type importer struct {
	ctx   context.Context
	rec   *recorder
	chunk int64
}

func (im *importer) node(path string, fi fs.FileInfo) (ipld.Node, error) {
	if err := im.ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case fi.Mode().IsRegular():
		return im.file(path)
	case fi.IsDir():
		return im.dir(path)
	case fi.Mode()&fs.ModeSymlink != 0:
		return im.symlink(path)
	default:
		return nil, fmt.Errorf("import %s (%s): %w", path, fi.Mode().Type(), ErrUnsupported)
	}
}

func (im *importer) file(path string) (ipld.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	buf := ipld.NewBufferedDAG(im.ctx, im.rec)
	params := helpers.DagBuilderParams{Maxlinks: fileWidth, RawLeaves: true, CidBuilder: cidPrefix, Dagserv: buf}
	db, err := params.New(chunk.NewSizeSplitter(ctxReader{im.ctx, f}, im.chunk))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	nd, err := balanced.Layout(db)
	cerr := buf.Commit() // also on error: it stops the batch
	if err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return nd, nil
}

func (im *importer) dir(path string) (ipld.Node, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	d, err := uio.NewDirectory(im.rec, uio.WithCidBuilder(cidPrefix), uio.WithMaxHAMTFanout(hamtFanout),
		uio.WithSizeEstimationMode(uio.SizeEstimationBlock))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	for _, e := range entries {
		p := filepath.Join(path, e.Name())
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		child, err := im.node(p, fi)
		if err != nil {
			return nil, err
		}
		if err := d.AddChild(im.ctx, e.Name(), child); err != nil {
			return nil, fmt.Errorf("import %s: %w", p, err)
		}
	}
	nd, err := d.GetNode()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	if err := im.rec.Add(im.ctx, nd); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return nd, nil
}

func (im *importer) symlink(path string) (ipld.Node, error) {
	target, err := os.Readlink(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	data, err := ft.SymlinkData(target)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	nd := merkledag.NodeWithData(data)
	if err := nd.SetCidBuilder(cidPrefix); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	if err := im.rec.Add(im.ctx, nd); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return nd, nil
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// recorder passes nodes on to a DAG service and remembers each one's size
// and links, so Import can size every pin without reading blocks back.
// Safe for concurrent use (a batch adds from several goroutines).
type recorder struct {
	ipld.DAGService
	mu    sync.Mutex
	nodes map[string]recorded // by CID bytes
}

type recorded struct {
	size  int64
	links []cid.Cid
}

func newRecorder(dag ipld.DAGService) *recorder {
	return &recorder{DAGService: dag, nodes: make(map[string]recorded)}
}

func (r *recorder) note(nd ipld.Node) {
	rec := recorded{size: int64(len(nd.RawData()))}
	for _, l := range nd.Links() {
		rec.links = append(rec.links, l.Cid)
	}
	r.mu.Lock()
	r.nodes[nd.Cid().KeyString()] = rec
	r.mu.Unlock()
}

// Add records nd and adds it to the wrapped service.
func (r *recorder) Add(ctx context.Context, nd ipld.Node) error {
	r.note(nd)
	return r.DAGService.Add(ctx, nd)
}

// AddMany records nds and adds them to the wrapped service.
func (r *recorder) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		r.note(nd)
	}
	return r.DAGService.AddMany(ctx, nds)
}

// stat counts the distinct blocks under root from what was recorded,
// reading through the wrapped service what was not (a node that was
// already stored and reused).
func (r *recorder) stat(ctx context.Context, root cid.Cid) (Stat, error) {
	var st Stat
	visited := make(map[string]struct{})
	counted := make(map[string]struct{})
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := visited[c.KeyString()]; ok {
			continue
		}
		visited[c.KeyString()] = struct{}{}
		r.mu.Lock()
		rec, ok := r.nodes[c.KeyString()]
		r.mu.Unlock()
		if !ok {
			nd, err := r.DAGService.Get(ctx, c)
			if err != nil {
				return Stat{}, fmt.Errorf("size %s: %w", c, err)
			}
			rec = recorded{size: int64(len(nd.RawData()))}
			for _, l := range nd.Links() {
				rec.links = append(rec.links, l.Cid)
			}
		}
		if _, ok := counted[string(c.Hash())]; !ok && !isIdentityHash(c.Hash()) {
			counted[string(c.Hash())] = struct{}{}
			st.Blocks++
			st.Bytes += rec.size
		}
		stack = append(stack, rec.links...)
	}
	return st, nil
}
