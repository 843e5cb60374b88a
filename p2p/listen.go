package p2p

import (
	"fmt"
	"net"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// listen makes h listen on every address of addrs, or fails naming the
// first address it cannot listen on. libp2p alone would succeed when any
// one address works (and only log the others), and its TCP transport sets
// SO_REUSEPORT, so a second program on the same port would share it
// silently: two pinfold processes on one host would each get some of the
// other's connections. So a fixed TCP port is first bound without
// SO_REUSEPORT, which fails if another program holds it.
func listen(h host.Host, addrs []string) error {
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s) // Validate parsed them already
		if err != nil {
			return fmt.Errorf("%w on %s: %w", ErrListen, s, err)
		}
		err = probeTCP(a)
		if err == nil {
			err = h.Network().Listen(a)
		}
		if err != nil {
			return fmt.Errorf("%w on %s: %w (is another program, perhaps another pinfold daemon, using the port? choose another in the listen setting of config.json)", ErrListen, s, err)
		}
	}
	return nil
}

// probeTCP binds a's TCP address, if it is one with a fixed port, and
// lets it go at once.
func probeTCP(a ma.Multiaddr) error {
	port, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil || port == "0" {
		return nil // not TCP, or any free port
	}
	na, err := manet.ToNetAddr(a)
	if err != nil {
		return nil // libp2p reports what it cannot listen on
	}
	l, err := net.Listen(na.Network(), na.String())
	if err != nil {
		return err
	}
	return l.Close()
}
