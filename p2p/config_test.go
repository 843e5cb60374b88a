package p2p

import (
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestDefaultConfigValid(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	want := []string{"/ip4/0.0.0.0/tcp/4050", "/ip4/0.0.0.0/udp/4050/quic-v1"}
	if !reflect.DeepEqual(cfg.Listen, want) {
		t.Errorf("Listen = %v, want %v", cfg.Listen, want)
	}
	if cfg.Relay || cfg.HolePunching || cfg.NATPortMap || cfg.PeerExchange || cfg.FloodPublish {
		t.Errorf("defaults enable relay/hole punching/NAT/PX/flood publish: %+v", cfg)
	}
	if cfg.DHT.Mode != DHTOff || len(cfg.DHT.Bootstrap) != 0 || cfg.DHT.ProtocolPrefix != "/ipfs" {
		t.Errorf("DHT defaults = %+v, want off, no bootstrap, /ipfs", cfg.DHT)
	}
}

func TestValidate(t *testing.T) {
	const pid = "12D3KooWEaVjx7z3WQpsbprHNnvRu8mL6ANDJy7bU9KHLupRjYwS"
	tests := []struct {
		name   string
		change func(*Config)
		field  string // "" means valid
	}{
		{"default", func(*Config) {}, ""},
		{"loopback port 0", func(c *Config) { c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} }, ""},
		{"ipv6", func(c *Config) { c.Listen = []string{"/ip6/::1/tcp/0"} }, ""},
		{"no listen", func(c *Config) { c.Listen = nil }, "p2p.listen "},
		{"bad listen", func(c *Config) { c.Listen = []string{"/ip4/1.2.3.4/tcp/1", "nonsense"} }, "p2p.listen[1]"},
		{"websocket listen", func(c *Config) { c.Listen = []string{"/ip4/0.0.0.0/tcp/1/ws"} }, "p2p.listen[0]"},
		{"old quic", func(c *Config) { c.Listen = []string{"/ip4/0.0.0.0/udp/1/quic"} }, "p2p.listen[0]"},
		{"announce", func(c *Config) { c.Announce = []string{"/ip4/1.2.3.4/tcp/4050"} }, ""},
		{"bad announce", func(c *Config) { c.Announce = []string{"x"} }, "p2p.announce[0]"},
		{"bootstrap", func(c *Config) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1/p2p/" + pid} }, ""},
		{"bootstrap no id", func(c *Config) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} }, "p2p.bootstrap[0]"},
		{"remember negative", func(c *Config) { c.RememberPeers = -1 }, "p2p.remember_peers"},
		{"remember huge", func(c *Config) { c.RememberPeers = maxRememberPeers + 1 }, "p2p.remember_peers"},
		{"remember none", func(c *Config) { c.RememberPeers = 0 }, ""},
		{"save every", func(c *Config) { c.SavePeersEvery = 0 }, "p2p.save_peers_every"},
		{"conn low", func(c *Config) { c.ConnLow = 0 }, "p2p.conn_low"},
		{"conn high", func(c *Config) { c.ConnHigh = c.ConnLow }, "p2p.conn_high"},
		{"conn grace", func(c *Config) { c.ConnGrace = -time.Second }, "p2p.conn_grace"},
		{"dial timeout", func(c *Config) { c.DialTimeout = 0 }, "p2p.dial_timeout"},
		{"static relays", func(c *Config) { c.Relay, c.StaticRelays = true, []string{"/ip4/127.0.0.1/tcp/1/p2p/" + pid} }, ""},
		{"static relays without relay", func(c *Config) { c.StaticRelays = []string{"/ip4/127.0.0.1/tcp/1/p2p/" + pid} }, "p2p.static_relays"},
		{"static relay no id", func(c *Config) { c.Relay, c.StaticRelays = true, []string{"/ip4/127.0.0.1/tcp/1"} }, "p2p.static_relays[0]"},
		{"reachability", func(c *Config) { c.ForceReachability = "public" }, ""},
		{"bad reachability", func(c *Config) { c.ForceReachability = "open" }, "p2p.force_reachability"},
		{"relay reservations", func(c *Config) { c.RelayLimits.Reservations = 0 }, "p2p.relay_limits.reservations"},
		{"relay circuits", func(c *Config) { c.RelayLimits.CircuitsPerPeer = maxRelayCircuits + 1 }, "p2p.relay_limits.circuits_per_peer"},
		{"relay duration", func(c *Config) { c.RelayLimits.Duration = time.Millisecond }, "p2p.relay_limits.duration"},
		{"relay data", func(c *Config) { c.RelayLimits.Data = 10 }, "p2p.relay_limits.data"},
		{"cluster dht mode", func(c *Config) { c.ClusterDHT.Mode = "on" }, "p2p.cluster_dht.mode"},
		{"cluster dht prefix", func(c *Config) { c.ClusterDHT.ProtocolPrefix = "/pinfold/" }, "p2p.cluster_dht.protocol_prefix"},
		{"provide interval", func(c *Config) { c.Provide.Interval = 48 * time.Hour }, "p2p.provide.interval"},
		{"provide workers", func(c *Config) { c.Provide.Workers = 1 }, "p2p.provide.workers"},
		{"reconnect min", func(c *Config) { c.ReconnectMin = 0 }, "p2p.reconnect_min"},
		{"reconnect max", func(c *Config) { c.ReconnectMax = c.ReconnectMin - 1 }, "p2p.reconnect_max"},
		{"keep reconnect max", func(c *Config) { c.KeepReconnectMax = c.ReconnectMin - 1 }, "p2p.keep_reconnect_max"},
		{"keep members negative", func(c *Config) { c.KeepMembers = -1 }, "p2p.keep_members"},
		{"keep members huge", func(c *Config) { c.KeepMembers = 257 }, "p2p.keep_members"},
		{"keep no members", func(c *Config) { c.KeepMembers = 0 }, ""},
		{"parallel dials", func(c *Config) { c.MaxParallelDials = 0 }, "p2p.max_parallel_dials"},
		{"hole punching alone", func(c *Config) { c.HolePunching = true }, "p2p.hole_punching"},
		{"hole punching with relay", func(c *Config) { c.HolePunching, c.Relay = true, true }, ""},
		{"message small", func(c *Config) { c.MaxMessageSize = 1024 }, "p2p.max_message_size"},
		{"message huge", func(c *Config) { c.MaxMessageSize = 1 << 30 }, "p2p.max_message_size"},
		{"sub buffer", func(c *Config) { c.SubscriptionBuffer = 0 }, "p2p.subscription_buffer"},
		{"validate timeout", func(c *Config) { c.ValidateTimeout = 0 }, "p2p.validate_timeout"},
		{"rate zero", func(c *Config) { c.RatePerSecond = 0 }, "p2p.rate_per_second"},
		{"rate NaN", func(c *Config) { c.RatePerSecond = math.NaN() }, "p2p.rate_per_second"},
		{"burst", func(c *Config) { c.RateBurst = 0 }, "p2p.rate_burst"},
		{"rejections", func(c *Config) { c.Rejections = -1 }, "p2p.rejections"},
		{"search delay", func(c *Config) { c.Bitswap.SearchDelay = 0 }, "p2p.bitswap.search_delay"},
		{"rebroadcast", func(c *Config) { c.Bitswap.RebroadcastDelay = 0 }, "p2p.bitswap.rebroadcast_delay"},
		{"target small", func(c *Config) { c.Bitswap.TargetMessageSize = 10 }, "p2p.bitswap.target_message_size"},
		{"target big", func(c *Config) { c.Bitswap.TargetMessageSize = 8 << 20 }, "p2p.bitswap.target_message_size"},
		{"per peer delay", func(c *Config) { c.Bitswap.PerPeerSendDelay = 0 }, "p2p.bitswap.per_peer_send_delay"},
		{"promise timeout", func(c *Config) { c.Bitswap.PromiseTimeout = time.Millisecond }, "p2p.bitswap.promise_timeout"},
		{"penalty", func(c *Config) { c.Bitswap.Penalty = 0 }, "p2p.bitswap.penalty"},
		{"dht server", func(c *Config) { c.DHT.Mode = DHTServer }, ""},
		{"dht client private", func(c *Config) {
			c.DHT.Mode, c.DHT.ProtocolPrefix = DHTClient, "/pinfold"
			c.DHT.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1/p2p/" + pid, "/ip4/127.0.0.1/udp/1/quic-v1/p2p/" + pid}
		}, ""},
		{"dht auto", func(c *Config) { c.DHT.Mode = DHTAuto }, ""},
		{"dht mode empty", func(c *Config) { c.DHT.Mode = "" }, "p2p.dht.mode"},
		{"dht mode bad", func(c *Config) { c.DHT.Mode = "on" }, "p2p.dht.mode"},
		{"dht mode case", func(c *Config) { c.DHT.Mode = "Server" }, "p2p.dht.mode"},
		{"dht bootstrap no id", func(c *Config) { c.DHT.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} }, "p2p.dht.bootstrap[0]"},
		{"dht bootstrap garbage", func(c *Config) {
			c.DHT.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1/p2p/" + pid, "bootstrap.example.com"}
		}, "p2p.dht.bootstrap[1]"},
		{"dht bootstrap too many", func(c *Config) {
			c.DHT.Bootstrap = make([]string, maxBootstrap+1)
			for i := range c.DHT.Bootstrap {
				c.DHT.Bootstrap[i] = "/ip4/127.0.0.1/tcp/1/p2p/" + pid
			}
		}, "p2p.dht.bootstrap"},
		{"dht prefix empty", func(c *Config) { c.DHT.ProtocolPrefix = "" }, "p2p.dht.protocol_prefix"},
		{"dht prefix slash", func(c *Config) { c.DHT.ProtocolPrefix = "/" }, "p2p.dht.protocol_prefix"},
		{"dht prefix relative", func(c *Config) { c.DHT.ProtocolPrefix = "ipfs" }, "p2p.dht.protocol_prefix"},
		{"dht prefix trailing", func(c *Config) { c.DHT.ProtocolPrefix = "/ipfs/" }, "p2p.dht.protocol_prefix"},
		{"dht prefix space", func(c *Config) { c.DHT.ProtocolPrefix = "/my dht" }, "p2p.dht.protocol_prefix"},
		{"dht prefix long", func(c *Config) { c.DHT.ProtocolPrefix = "/" + strings.Repeat("x", maxProtocolPrefix) }, "p2p.dht.protocol_prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg)
			before, _ := json.Marshal(cfg)
			err := cfg.Validate()
			after, _ := json.Marshal(cfg)
			if string(before) != string(after) {
				t.Errorf("Validate changed the config")
			}
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Validate() = %q, want it to name %q", err, tt.field)
			}
		})
	}
}

func TestConfigJSONGolden(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeersFile = "/var/lib/pinfold/peers.json"
	got, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "config.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(got) != string(want) {
		t.Errorf("config JSON changed:\n got: %s\nwant: %s", got, want)
	}
	var back Config
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, cfg)
	}
}

func TestConfigJSONPartial(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(Config) bool
		err   string
	}{
		{"empty keeps defaults", `{}`, func(c Config) bool { return reflect.DeepEqual(c, DefaultConfig()) }, ""},
		{"listen replaced", `{"listen":["/ip4/127.0.0.1/tcp/0"]}`,
			func(c Config) bool { return len(c.Listen) == 1 && c.ConnHigh == 400 }, ""},
		{"sizes as text", `{"max_message_size":"2MiB","bitswap":{"target_message_size":"64KiB"}}`,
			func(c Config) bool { return c.MaxMessageSize == 2<<20 && c.Bitswap.TargetMessageSize == 64<<10 }, ""},
		{"size as number", `{"max_message_size":65536}`, func(c Config) bool { return c.MaxMessageSize == 65536 }, ""},
		{"durations", `{"conn_grace":"30s","bitswap":{"search_delay":"100ms"}}`,
			func(c Config) bool {
				return c.ConnGrace == 30*time.Second && c.Bitswap.SearchDelay == 100*time.Millisecond
			}, ""},
		{"dht partial", `{"dht":{"mode":"server"}}`,
			func(c Config) bool { return c.DHT.Mode == DHTServer && c.DHT.ProtocolPrefix == "/ipfs" }, ""},
		{"dht full", `{"dht":{"mode":"client","bootstrap":["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWEaVjx7z3WQpsbprHNnvRu8mL6ANDJy7bU9KHLupRjYwS"],"protocol_prefix":"/pinfold"}}`,
			func(c Config) bool {
				return c.DHT.Mode == DHTClient && len(c.DHT.Bootstrap) == 1 && c.DHT.ProtocolPrefix == "/pinfold"
			}, ""},
		{"dht unknown field", `{"dht":{"mode":"server","public_bootstrap":true}}`, nil, "unknown field"},
		{"dht mode not a string", `{"dht":{"mode":1}}`, nil, "dht"},
		{"unknown field", `{"mdns":true}`, nil, "unknown field"},
		{"bad duration", `{"conn_grace":"soon"}`, nil, "soon"},
		{"duration as number", `{"conn_grace":30}`, nil, "duration"},
		{"negative size", `{"max_message_size":"-1MiB"}`, nil, "negative"},
		{"bad size", `{"max_message_size":"lots"}`, nil, "lots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			err := json.Unmarshal([]byte(tt.in), &cfg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Unmarshal(%s) = %v, want error containing %q", tt.in, err, tt.err)
				}
				if !reflect.DeepEqual(cfg, DefaultConfig()) {
					t.Errorf("failed Unmarshal changed the config")
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s) = %v", tt.in, err)
			}
			if !tt.check(cfg) {
				t.Errorf("Unmarshal(%s) gave %+v", tt.in, cfg)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	for n, want := range map[int]string{0: "0", 1: "1", 1024: "1KiB", 1536: "1536", 1 << 20: "1MiB", 3 << 30: "3GiB"} {
		if got := sizeString(n); got != want {
			t.Errorf("sizeString(%d) = %q, want %q", n, got, want)
		}
	}
}
