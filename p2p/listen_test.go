package p2p

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

// freeTCPPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestListenPortInUse: a second node on a port another node holds fails
// to start, naming the address (libp2p's TCP transport sets SO_REUSEPORT,
// so without the check both would listen); so does a node whose QUIC port
// is taken while its TCP one is free (libp2p alone succeeds when any one
// address works).
func TestListenPortInUse(t *testing.T) {
	port := freeTCPPort(t)
	cfg := testConfig(t.TempDir())
	cfg.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)}
	first, err := New(testKey(t, 1), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	cfg2 := testConfig(t.TempDir())
	cfg2.Listen = cfg.Listen
	n, err := New(testKey(t, 2), cfg2, nil)
	if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), cfg.Listen[0]) {
		if n != nil {
			n.Close()
		}
		t.Fatalf("second node on %s: %v, want ErrListen naming the address", cfg.Listen[0], err)
	}
	t.Logf("TCP port taken: %v", err)

	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	cfg3 := testConfig(t.TempDir())
	quic := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", udp.LocalAddr().(*net.UDPAddr).Port)
	cfg3.Listen = []string{"/ip4/127.0.0.1/tcp/0", quic}
	n, err = New(testKey(t, 3), cfg3, nil)
	if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), quic) {
		if n != nil {
			n.Close()
		}
		t.Fatalf("node with its QUIC port taken: %v, want ErrListen naming %s", err, quic)
	}
	t.Logf("QUIC port taken: %v", err)
}
