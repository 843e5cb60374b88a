package publish

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/boxo/ipns"
)

// RecordFileExt is the extension of a record file.
const RecordFileExt = ".ipns"

// RecordFileName is the conventional file name of a cluster's record
// file: the cluster name (base36 CIDv1, as ipns.Name.String prints it)
// followed by ".ipns". The name is a convention only: ReadRecordFile
// verifies against the cluster name it is given, not the file's name.
func RecordFileName(cluster ipns.Name) string {
	return cluster.String() + RecordFileExt
}

// WriteRecordFile writes a marshaled record (Record.Raw) to path
// atomically: into a temporary file in the same directory, synced, mode
// 0644, then renamed over path. The file holds the raw protobuf record,
// byte for byte what `ipfs routing put /ipns/<name> <file>` takes. It
// refuses bytes that do not unmarshal as an IPNS record, but verifies no
// signature: write records that BuildRecord or ParseRecord returned.
func WriteRecordFile(path string, raw []byte) error {
	if len(raw) > ipns.MaxRecordSize {
		return fmt.Errorf("write record file %s: %w", path,
			also(fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), ipns.MaxRecordSize), ipns.ErrRecordSize))
	}
	if len(raw) == 0 {
		return fmt.Errorf("write record file %s: %w: empty", path, ErrMalformed)
	}
	if _, err := ipns.UnmarshalRecord(raw); err != nil {
		return fmt.Errorf("write record file %s: %w: %w", path, ErrMalformed, err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write record file %s: %w", path, err)
	}
	err = writeSyncClose(tmp, raw)
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name()) // best effort; the error below is what matters
		return fmt.Errorf("write record file %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write record file %s: sync directory: %w", path, err)
	}
	return nil
}

func writeSyncClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadRecordFile reads a record file, reading at most ipns.MaxRecordSize
// bytes (ErrTooLarge beyond), and verifies it with ParseRecord against the
// cluster name at now.
func ReadRecordFile(path string, cluster ipns.Name, now time.Time) (Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return Record{}, fmt.Errorf("read record file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(ipns.MaxRecordSize)+1))
	if err != nil {
		return Record{}, fmt.Errorf("read record file %s: %w", path, err)
	}
	if len(data) > ipns.MaxRecordSize {
		return Record{}, fmt.Errorf("read record file %s: %w", path,
			also(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, ipns.MaxRecordSize), ipns.ErrRecordSize))
	}
	rec, err := ParseRecord(data, cluster, now)
	if err != nil {
		return Record{}, fmt.Errorf("read record file %s: %w", path, err)
	}
	return rec, nil
}
