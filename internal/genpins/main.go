// Command genpins writes N distinct pin lines for 'curate pin import':
// raw CIDv1s of sha256(i), named file-<i>, each of the given size. The
// output is the same for the same arguments, so measurement runs compare.
//
//	go run ./internal/genpins 1000000 100KiB > pins.txt
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pinfold/pinfold/configs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genpins:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: genpins <count> <size per pin, e.g. 100KiB>")
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil {
		return fmt.Errorf("count %q: %w", args[0], err)
	}
	size, err := configs.ParseSize(args[1])
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	var b [8]byte
	for i := range n {
		binary.BigEndian.PutUint64(b[:], i)
		d := sha256.Sum256(b[:])
		mh, err := multihash.Encode(d[:], multihash.SHA2_256)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\tfile-%07d\t%d\n", cid.NewCidV1(cid.Raw, mh), i, int64(size)); err != nil {
			return err
		}
	}
	return w.Flush()
}
