package trust

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipns"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestGenerateKeyDeterministic(t *testing.T) {
	a, err := GenerateKey(seededReader("seed"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey(seededReader("seed"))
	c, _ := GenerateKey(seededReader("other"))
	if !a.Equals(b) {
		t.Fatal("same seed gave different keys")
	}
	if a.Equals(c) {
		t.Fatal("different seeds gave the same key")
	}
	if a.Type() != crypto.Ed25519 {
		t.Fatalf("key type %s", a.Type())
	}
	if _, err := GenerateKey(nil); err == nil {
		t.Fatal("nil reader accepted")
	}
}

func TestSaveLoadKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "curator.key")
	k := testKey(t, "k1")
	if err := SaveKey(path, k); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	got, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(k) {
		t.Fatal("loaded key differs")
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files in the key directory, want 1", len(entries))
	}

	// Never overwrites.
	if err := SaveKey(path, testKey(t, "k2")); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("overwrite: %v, want ErrKeyExists", err)
	}
	if again, _ := LoadKey(path); !again.Equals(k) {
		t.Fatal("existing key was replaced")
	}

	// Readable by group or others: refused, naming path and mode.
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKey(path)
		if !errors.Is(err, ErrKeyPermissions) {
			t.Fatalf("mode %04o: %v, want ErrKeyPermissions", mode, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("mode %04o: error %q does not name the path", mode, err)
		}
		if want := "mode " + octal(mode); !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not contain %q", err, want)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}

	if _, err := LoadKey(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestLoadKeyRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secp, _, err := crypto.GenerateSecp256k1Key(seededReader("secp"))
	if err != nil {
		t.Fatal(err)
	}
	secpBytes, _ := crypto.MarshalPrivateKey(secp)
	if _, err := LoadKey(write("secp.key", secpBytes)); !errors.Is(err, ErrNotEd25519) {
		t.Fatalf("secp256k1 key: %v, want ErrNotEd25519", err)
	}
	if err := SaveKey(filepath.Join(dir, "secp2.key"), secp); !errors.Is(err, ErrNotEd25519) {
		t.Fatalf("save secp256k1 key: %v, want ErrNotEd25519", err)
	}
	if _, err := LoadKey(write("garbage.key", []byte("not a key"))); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := LoadKey(write("big.key", make([]byte, 10000))); err == nil {
		t.Fatal("oversized file accepted")
	}
	if _, err := LoadKey(dir); err == nil {
		t.Fatal("directory accepted")
	}
}

func TestPeerIDAndIPNSName(t *testing.T) {
	k := testKey(t, "cluster")
	id, err := PeerID(k)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := peer.IDFromPrivateKey(k)
	if id != want {
		t.Fatalf("PeerID %s, want %s", id, want)
	}
	name, err := IPNSName(k)
	if err != nil {
		t.Fatal(err)
	}
	if name.String() != ipns.NameFromPeer(id).String() || !strings.HasPrefix(name.String(), "k51") {
		t.Fatalf("IPNS name %s", name)
	}
	t.Logf("cluster peer ID %s, IPNS name %s", id, name)
}

// TestPublicKeyFromPeerID: the fast extraction of the ed25519 key from a
// peer ID agrees with libp2p's for many keys, and refuses other key types.
func TestPublicKeyFromPeerID(t *testing.T) {
	r := seededReader("extract")
	for range 200 {
		k, err := GenerateKey(r)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(k)
		pub, ok := publicKey([]byte(id))
		if !ok {
			t.Fatalf("%s: not recognised as ed25519", id)
		}
		lp, err := id.ExtractPublicKey()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := lp.Raw()
		if !bytes.Equal(pub, raw) {
			t.Fatalf("%s: extracted key differs from libp2p's", id)
		}
	}
	secp, _, _ := crypto.GenerateSecp256k1Key(seededReader("secp"))
	sid, _ := peer.IDFromPrivateKey(secp)
	if IsEd25519(sid) {
		t.Fatal("secp256k1 peer ID taken for ed25519")
	}
	id := []byte(testID(t, "k1"))
	for _, bad := range [][]byte{nil, id[:len(id)-1], append(bytes.Clone(id), 0), append([]byte{1}, id[1:]...)} {
		if _, ok := publicKey(bad); ok {
			t.Fatalf("publicKey accepted %x", bad)
		}
	}
}
