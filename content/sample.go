package content

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Bounds of GenerateSample's arguments.
const (
	maxSampleFiles = 1_000_000
	minSampleSize  = 4 << 10 // the smallest file before scaling to total
	maxSampleSize  = 4 << 20 // the largest file before scaling to total
)

// sampleWords is the vocabulary of the generated text files.
var sampleWords = strings.Fields(`archive record letter survey station river harbour museum
collection catalogue volume series report census index atlas journal minutes ledger
photograph negative print map chart notebook diary manuscript register inventory
north south east west upper lower old new general annual monthly weekly daily
water weather rainfall temperature pressure wind tide harvest grain cattle market
school parish council library society committee office department bureau board
and the of in to for with on by from at as is was were be been are not this that
which their other into more over under between during after before about against
first second third last early late small large public private local national`)

// sampleCollections name the top-level folders.
var sampleCollections = strings.Fields(`letters maps surveys photographs newspapers
census-records weather-logs parish-registers field-notes catalogues oral-histories
ship-manifests court-records school-reports museum-inventory harbour-books`)

// sampleKinds are the file kinds, with their share of files.
var sampleKinds = []struct {
	ext    string
	weight int
}{{".txt", 30}, {".csv", 15}, {".jsonl", 10}, {".md", 5}, {".bin", 25}, {".jpg", 15}}

// GenerateSample writes a sample archive into dir for demos and tests:
// exactly files files totalling total bytes (files of at least one byte
// each), in nested folders, the same tree for the same seed on every
// machine. dir must not exist or be an empty folder.
//
// The shape: about files/12 top-level collection folders, each with a few
// subfolders up to two levels deep, plus about one file in 25 loose at
// the top. File sizes follow a log-uniform spread from 4 KiB to 4 MiB,
// then scaled so they add up to total. Kinds: plain text and Markdown
// (words), CSV and JSON Lines (records): compressible; .bin and .jpg:
// random bytes, incompressible. No two files are alike, so the archive
// has no duplicate blocks.
func GenerateSample(dir string, seed int64, files int, total int64) error {
	if files < 1 || files > maxSampleFiles {
		return fmt.Errorf("%w: sample of %d files; want 1 to %d", ErrInvalid, files, maxSampleFiles)
	}
	if total < int64(files) {
		return fmt.Errorf("%w: sample of %d bytes for %d files; want at least one byte per file", ErrInvalid, total, files)
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x70696e666f6c64)) // "pinfold"
	paths := samplePaths(rng, files)
	sizes := sampleSizes(rng, files, total)
	for i, p := range paths {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("generate sample: %w", err)
		}
		if err := writeSampleFile(full, sampleSeed(seed, i), sizes[i]); err != nil {
			return fmt.Errorf("generate sample: %w", err)
		}
	}
	return nil
}

// emptyDir creates dir, or checks that it is an empty folder.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("generate sample: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("generate sample: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("generate sample: %w: %s is not empty", ErrInvalid, dir)
	}
	return nil
}

// samplePaths returns files distinct slash-separated relative paths.
func samplePaths(rng *rand.Rand, files int) []string {
	nTop := max(1, files/12)
	type collection struct {
		name string
		subs []string // "" is the collection folder itself
	}
	cols := make([]collection, nTop)
	for i := range cols {
		name := fmt.Sprintf("%02d-%s", i+1, sampleCollections[i%len(sampleCollections)])
		c := collection{name: name, subs: []string{""}}
		for s := range 1 + rng.IntN(4) {
			sub := fmt.Sprintf("%s-%d", sampleWords[rng.IntN(len(sampleWords))], 1900+rng.IntN(120))
			if s > 0 && rng.IntN(3) == 0 { // nest under the previous subfolder
				sub = c.subs[len(c.subs)-1] + "/" + sub
			}
			c.subs = append(c.subs, strings.TrimPrefix(sub, "/"))
		}
		cols[i] = c
	}
	loose := files / 25
	out := make([]string, 0, files)
	for i := range files {
		kind := pickKind(rng)
		word := sampleWords[rng.IntN(len(sampleWords))]
		name := fmt.Sprintf("%s-%04d%s", word, i, kind)
		if i < loose {
			out = append(out, name)
			continue
		}
		c := cols[rng.IntN(len(cols))]
		sub := c.subs[rng.IntN(len(c.subs))]
		out = append(out, strings.TrimSuffix(c.name+"/"+sub, "/")+"/"+name)
	}
	return out
}

func pickKind(rng *rand.Rand) string {
	sum := 0
	for _, k := range sampleKinds {
		sum += k.weight
	}
	n := rng.IntN(sum)
	for _, k := range sampleKinds {
		if n < k.weight {
			return k.ext
		}
		n -= k.weight
	}
	return sampleKinds[0].ext
}

// sampleSizes draws log-uniform sizes and scales them to add up to total,
// each at least 1.
func sampleSizes(rng *rand.Rand, files int, total int64) []int64 {
	w := make([]float64, files)
	var sum float64
	lo, hi := math.Log(minSampleSize), math.Log(maxSampleSize)
	for i := range w {
		w[i] = math.Exp(lo + rng.Float64()*(hi-lo))
		sum += w[i]
	}
	sizes := make([]int64, files)
	rest := total - int64(files) // one byte each is set aside
	var given int64
	for i := range sizes {
		extra := int64(float64(rest) * w[i] / sum)
		sizes[i] = 1 + extra
		given += extra
	}
	// Rounding left a few bytes over: give them out one per file.
	for i := 0; given < rest; i = (i + 1) % files {
		sizes[i]++
		given++
	}
	return sizes
}

// sampleSeed derives file i's content seed from the sample seed.
func sampleSeed(seed int64, i int) [32]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(seed))
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return sha256.Sum256(b[:])
}

// writeSampleFile writes size bytes of the kind its name says.
func writeSampleFile(path string, seed [32]byte, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	rng := rand.New(rand.NewChaCha8(seed))
	lw := &limitWriter{w: w, left: size}
	switch filepath.Ext(path) {
	case ".bin", ".jpg":
		_, err = io.CopyN(w, rand.NewChaCha8(seed), size)
	case ".csv":
		err = writeRecords(lw, rng, csvRow)
	case ".jsonl":
		err = writeRecords(lw, rng, jsonRow)
	default:
		err = writeRecords(lw, rng, textLine)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// limitWriter takes exactly left more bytes, then reports it is full.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) full() bool { return l.left <= 0 }

func (l *limitWriter) write(b []byte) error {
	if int64(len(b)) > l.left {
		b = b[:l.left]
	}
	l.left -= int64(len(b))
	_, err := l.w.Write(b)
	return err
}

// writeRecords appends lines made by row until lw is full.
func writeRecords(lw *limitWriter, rng *rand.Rand, row func([]byte, *rand.Rand, int) []byte) error {
	buf := make([]byte, 0, 512)
	for n := 0; !lw.full(); n++ {
		buf = row(buf[:0], rng, n)
		if err := lw.write(buf); err != nil {
			return err
		}
	}
	return nil
}

func textLine(b []byte, rng *rand.Rand, n int) []byte {
	if n%12 == 11 {
		return append(b, '\n')
	}
	words := 6 + rng.IntN(10)
	for i := range words {
		w := sampleWords[rng.IntN(len(sampleWords))]
		if i == 0 {
			b = append(b, strings.ToUpper(w[:1])...)
			w = w[1:]
		} else {
			b = append(b, ' ')
		}
		b = append(b, w...)
	}
	return append(b, ".\n"...)
}

func csvRow(b []byte, rng *rand.Rand, n int) []byte {
	if n == 0 {
		return append(b, "id,date,station,reading,flag\n"...)
	}
	b = strconv.AppendInt(b, int64(n), 10)
	b = fmt.Appendf(b, ",%04d-%02d-%02d,", 1850+rng.IntN(170), 1+rng.IntN(12), 1+rng.IntN(28))
	b = append(b, sampleWords[rng.IntN(len(sampleWords))]...)
	b = append(b, ',')
	b = strconv.AppendFloat(b, rng.NormFloat64()*12+8, 'f', 2, 64)
	b = append(b, ',')
	b = append(b, "ABCDEFGH"[rng.IntN(8)])
	return append(b, '\n')
}

func jsonRow(b []byte, rng *rand.Rand, n int) []byte {
	b = fmt.Appendf(b, `{"id":%d,"title":"%s %s","year":%d,"pages":%d}`, n,
		sampleWords[rng.IntN(len(sampleWords))], sampleWords[rng.IntN(len(sampleWords))],
		1800+rng.IntN(220), 1+rng.IntN(900))
	return append(b, '\n')
}
