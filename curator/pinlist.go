package curator

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/pinfold/pinfold/pinset"
)

// The list API's two line formats, written by hand: encoding/json spent
// about 2 s per million pins on reflection and time formatting.
const (
	// FormatJSON is a JSON object per line (PinJSON), the default.
	FormatJSON = "json"
	// FormatTSV is the text curate pin ls prints: CID, shard, size and
	// name, tab-separated, and the size check's outcome as a fifth column
	// when there is one. Control characters in names and outcomes are
	// escaped (\t, \n, \r, \xNN), so that a line is always one pin.
	FormatTSV = "tsv"
)

// appendPinJSON appends p as encoding/json marshals it, and a newline.
func appendPinJSON(dst []byte, p PinJSON) []byte {
	dst = append(dst, `{"cid":`...)
	dst = appendJSONString(dst, p.CID)
	if p.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = appendJSONString(dst, p.Name)
	}
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, p.Size, 10)
	if p.ReplMin != 0 {
		dst = append(dst, `,"replication_min":`...)
		dst = strconv.AppendInt(dst, p.ReplMin, 10)
	}
	if p.ReplMax != 0 {
		dst = append(dst, `,"replication_max":`...)
		dst = strconv.AppendInt(dst, p.ReplMax, 10)
	}
	if len(p.Meta) > 0 {
		dst = append(dst, `,"meta":`...)
		b, err := json.Marshal(p.Meta) // rare: keys sorted, as encoding/json does
		if err != nil {
			b = []byte("{}") // a map[string]string always marshals
		}
		dst = append(dst, b...)
	}
	dst = append(dst, `,"shard":`...)
	dst = strconv.AppendInt(dst, p.Shard, 10)
	dst = append(dst, `,"added":`...)
	dst = appendJSONTime(dst, p.Added)
	if p.SizeChecked != "" {
		dst = append(dst, `,"size_checked":`...)
		dst = appendJSONString(dst, p.SizeChecked)
	}
	return append(dst, "}\n"...)
}

// appendJSONString appends s quoted as encoding/json does (with its HTML
// escaping): printable ASCII other than " \ < > & is copied, anything else
// goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendJSONTime appends t as time.Time's MarshalJSON does; a year it
// refuses (outside 0-9999) is written anyway.
func appendJSONTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendPinTSV appends p as a FormatTSV line.
func appendPinTSV(dst []byte, p PinJSON) []byte {
	dst = append(dst, p.CID...)
	dst = append(dst, '\t')
	dst = strconv.AppendInt(dst, p.Shard, 10)
	dst = append(dst, '\t')
	dst = strconv.AppendInt(dst, p.Size, 10)
	dst = append(dst, '\t')
	dst = appendTSVField(dst, p.Name)
	if p.SizeChecked != "" {
		dst = append(dst, '\t')
		dst = appendTSVField(dst, p.SizeChecked)
	}
	return append(dst, '\n')
}

// appendTSVField appends s with its control characters escaped.
func appendTSVField(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\t':
			dst = append(dst, `\t`...)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c < 0x20 || c == 0x7f:
			dst = append(dst, '\\', 'x', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// pinFormatter returns the line format for one listing, or false when
// format is neither FormatJSON nor FormatTSV. The size checks' state is
// read per pin, so it may be called from several goroutines.
func (d *Daemon) pinFormatter(format string) (pinset.Format, bool) {
	var line func([]byte, PinJSON) []byte
	switch format {
	case "", FormatJSON:
		line = appendPinJSON
	case FormatTSV:
		line = appendPinTSV
	default:
		return nil, false
	}
	return func(dst []byte, p pinset.Pin) []byte {
		pj := pinJSON(p)
		if sc, ok := d.checks.lookup(p.CID); ok {
			pj.SizeChecked = sc.String()
		}
		return line(dst, pj)
	}, true
}
