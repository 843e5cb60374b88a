package trust

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ipfs/boxo/ipns"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// maxKeyFile bounds what LoadKey reads: a marshaled ed25519 key is 68 bytes.
const maxKeyFile = 4096

// GenerateKey returns a new ed25519 key drawn from r. r must not be nil:
// randomness is always the caller's (crypto/rand.Reader in production, a
// seeded reader in tests).
func GenerateKey(r io.Reader) (crypto.PrivKey, error) {
	if r == nil {
		return nil, errors.New("trust: generate key: nil random source")
	}
	k, _, err := crypto.GenerateEd25519Key(r)
	if err != nil {
		return nil, fmt.Errorf("trust: generate key: %w", err)
	}
	return k, nil
}

// SaveKey writes key, libp2p-marshaled, to a new file at path with mode
// 0600. The write is atomic (a temporary file in the same directory, synced,
// then linked into place) and never replaces an existing file: that returns
// ErrKeyExists.
func SaveKey(path string, key crypto.PrivKey) error {
	if key == nil || key.Type() != crypto.Ed25519 {
		return fmt.Errorf("save key %s: %w", path, ErrNotEd25519)
	}
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".key-*.tmp") // created with mode 0600
	if err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	// A hard link fails if path exists, so an existing key is never lost.
	// Where hard links are not supported (FAT on a USB stick), rename after
	// checking that path does not exist.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("save key %s: %w", path, ErrKeyExists)
		}
		if _, serr := os.Lstat(path); serr == nil {
			return fmt.Errorf("save key %s: %w", path, ErrKeyExists)
		} else if !errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("save key %s: %w", path, serr)
		}
		if rerr := os.Rename(tmp.Name(), path); rerr != nil {
			return fmt.Errorf("save key %s: %w (link: %v)", path, rerr, err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil {
			return fmt.Errorf("save key %s: sync directory: %w", path, serr)
		}
	}
	return nil
}

// LoadKey reads an ed25519 key written by SaveKey. It refuses a file that
// group or others may read (ErrKeyPermissions, naming the path and mode)
// and any key type other than ed25519 (ErrNotEd25519).
func LoadKey(path string) (crypto.PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("load key %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load key %s: %w: mode %04o, want 0600 (chmod 600 %s)", path, ErrKeyPermissions, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("load key %s: file larger than %d bytes", path, maxKeyFile)
	}
	k, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("load key %s: %w (type %s)", path, ErrNotEd25519, k.Type())
	}
	return k, nil
}

// PeerID returns the peer ID of key.
func PeerID(key crypto.PrivKey) (peer.ID, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("trust: peer ID: %w", err)
	}
	return id, nil
}

// IPNSName returns the IPNS name of key: the name under which a cluster key
// publishes heads. Its String form is what users see as the cluster name.
func IPNSName(key crypto.PrivKey) (ipns.Name, error) {
	id, err := PeerID(key)
	if err != nil {
		return ipns.Name{}, err
	}
	return ipns.NameFromPeer(id), nil
}
