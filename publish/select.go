package publish

import (
	"bytes"
	"cmp"
	"fmt"
	"time"

	"github.com/ipfs/boxo/ipns"
)

// Rejection says why Select skipped one of its inputs.
type Rejection struct {
	Index int   // position in the slice given to Select
	Err   error // from ParseRecord
}

// Compare orders two records by preference: it returns +1 if a is better
// than b, -1 if b is better, 0 if their bytes are identical. Higher
// sequence wins; at equal sequence the later EOL; at equal EOL the record
// whose marshaled bytes are greater in bytes.Compare order (the same tie
// break as boxo's ipns.Validator.Select). It does not verify anything:
// compare records returned by ParseRecord or BuildRecord.
func Compare(a, b Record) int {
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	if c := a.EOL.Compare(b.EOL); c != 0 {
		return c
	}
	return bytes.Compare(a.Raw, b.Raw)
}

// Select verifies every candidate with ParseRecord against name at now and
// returns the best valid one by Compare, plus the reasons for every
// candidate skipped, in input order. The choice does not depend on the
// order of candidates. If none is valid it returns ErrNoRecord (and the
// rejections).
func Select(candidates [][]byte, name ipns.Name, now time.Time) (Record, []Rejection, error) {
	var (
		best     Record
		found    bool
		rejected []Rejection
	)
	for i, data := range candidates {
		rec, err := ParseRecord(data, name, now)
		if err != nil {
			rejected = append(rejected, Rejection{Index: i, Err: err})
			continue
		}
		if !found || Compare(rec, best) > 0 {
			best, found = rec, true
		}
	}
	if !found {
		return Record{}, rejected, fmt.Errorf("%w: %d candidates, all rejected", ErrNoRecord, len(candidates))
	}
	return best, rejected, nil
}
